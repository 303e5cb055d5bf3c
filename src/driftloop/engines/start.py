"""The one start path of a run, shared by ``run``, ``resume`` and sweeps, whatever engine advances it.

:func:`prepare` turns what a user asked for into a validated :class:`~driftloop.config.RunConfig`, a built
replicator and the loaded input frames, and refuses bad inputs and budgets before anything is written.
:func:`start` stores a new run (or finds the same unfinished one to continue) and :func:`continue_run`
picks a stored run up from its last frames; both hand the chains to an engine's ``execute``.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop import chain as core
from driftloop import fmt
from driftloop.config import IMPORTED_PREFIX, InputRef, MetricsConfig, RunConfig
from driftloop.cost import Factors, HostedEstimate, Meters, load_factors, pick_meters
from driftloop.engines import local
from driftloop.engines import ray as ray_engine
from driftloop.engines.groups import Pending
from driftloop.engines.local import ProgressCallback, frames_stored
from driftloop.errors import (
    DriftloopError,
    InputError,
    ReadOnlyWorkspaceError,
    SpecError,
    StorageError,
    StorageFullError,
    storage_error,
)
from driftloop.images import DEFAULT_MAX_PIXELS, LoadedImage, load_image, load_images, target_size
from driftloop.metrics.recorder import metrics_settings
from driftloop.provenance import host, versions
from driftloop.replicators import registry
from driftloop.replicators.base import (
    Replicator,
    align_with,
    call_estimate,
    hosted_estimate,
    notices,
    price_model,
)
from driftloop.replicators.hosted.replicator import offline
from driftloop.replicators.spec import full_spec
from driftloop.stabilizers import parse_stabilizer
from driftloop.store import Store, clear_stopped, mark_stopped, run_lock
from driftloop.store.listing import summaries

Logger = Callable[[str], None]
RETRYABLE = ("error", "refused")  # chain outcomes `resume --retry-failed` asks again
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Engine:
    """Where chains run: ``local`` (this process) or ``ray`` (actors on a Ray cluster at ``address``; none:
    a local Ray with this machine's CPUs and GPUs)."""

    name: str = "local"
    address: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise SpecError(f"--engine {self.name!r}: choose one of {', '.join(ENGINES)}")
        if (self.address or self.workers) and self.name != "ray":
            raise SpecError("--address and --workers are for --engine ray")
        if self.workers is not None and self.workers < 1:
            raise SpecError(f"--workers must be at least 1 (got {self.workers})")
        if self.name == "ray":
            ray_engine.check_available()

    def build(self, model: str | Replicator | Callable[..., Any], **overrides: Any) -> Replicator:
        """The run's model as the driver holds it: built here, except a local model on Ray, which is built
        only on the cluster (:func:`driftloop.engines.ray.remote_model`), placed by what its spec needs."""
        if self.name == "ray" and isinstance(model, str) and not registry.needs(model, **overrides).api:
            return ray_engine.remote_model(model, overrides, self.address)
        return registry.build(model, **overrides)

    def execute(self, *args: Any, **kwargs: Any) -> None:
        if self.name == "ray":
            ray_engine.execute(*args, address=self.address, workers=self.workers, **kwargs)
        else:
            local.execute(*args, **kwargs)


LOCAL = Engine()


MODEL_WORDS = 32  # most characters of the model's words in a run id
STABILIZER_WORDS = 20  # most characters of the stabilizer's


def _slug(text: str, most: int) -> str:
    """``text`` as lower-case words joined by ``-`` (decimal points kept: ``strength-0.3``), cut after the
    last whole word that fits in ``most`` characters (a single longer word is cut)."""
    words = [w.strip(".") for w in re.split(r"[^a-z0-9.]+", text.lower())]
    out = ""
    for word in filter(None, words):
        joined = f"{out}-{word}" if out else word
        if len(joined) > most:
            return out or word[:most]
        out = joined
    return out


def new_run_id(model: str, stabilize: str | None = None) -> str:
    """A readable, unique run id: when, the model with its parameters as people read them
    (``webp-quality-80``), the stabilizer if any, each cut at a word boundary, then 4 random hex digits:
    ``20261204-101500-sd-turbo-strength-0.3-steps-2-stabilize-colour-lab-9f2c``. Ids are never parsed:
    runs made with the older, shorter ids read as before."""
    words = _slug(full_spec(model), MODEL_WORDS) or "model"
    if stabilize and stabilize != "none":
        words += "-stabilize-" + (_slug(stabilize, STABILIZER_WORDS) or "on")
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{words}-{secrets.token_hex(2)}"


def settings_of(config: RunConfig) -> core.EngineSettings:
    """Engine settings from a run's configuration (the same for a new run and a resumed one)."""
    return core.EngineSettings(
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        stop_on_fixed_point=config.stop_on_fixed_point,
        patience=config.patience,
        refusal_retries=config.refusal_retries,
        max_cost_usd=config.max_cost_usd,
        stabilizer=None if config.stabilize == "none" else parse_stabilizer(config.stabilize),
        keep_raw=config.keep_raw,
    )


def spec_overrides(model: object, device: str | None, dtype: str | None = None) -> dict[str, str]:
    """``--device`` / ``--dtype`` as spec overrides; one the model does not have is an error, not ignored."""
    out: dict[str, str] = {}
    for key, value in (("device", device), ("dtype", dtype)):
        if not value:
            continue
        backend = registry.lookup(model) if isinstance(model, str) else None
        if backend is None or key not in {f.name for f in dataclasses.fields(backend.config_type)}:
            name = model if isinstance(model, str) else "this model"
            raise SpecError(f"--{key}: {name} has no {key} parameter")
        out[key] = value
    return out


def check_priced(replicator: Replicator, max_cost: float | None) -> None:
    """A budget needs a price: refuse ``--max-cost`` for a paid model the cost table cannot price."""
    req = replicator.requirements
    if max_cost is not None and req.device == "api" and req.cost_per_image_usd <= 0:
        key = price_model(replicator)
        raise SpecError(
            f"--max-cost needs a price, and the cost table has none for {key}: put "
            f'[prices."{key}"] with default = <USD per image> in a --cost-factors file '
            f'(or [cost.prices."{key}"] in WORKSPACE/driftloop.toml)'
        )


@dataclass
class Prepared:
    """A run ready to start: its configuration, model and input frames, checked."""

    config: RunConfig
    replicator: Replicator
    loaded: list[LoadedImage]
    factors: Factors
    meters: Meters
    hosted: HostedEstimate | None
    per_call: Any = None  # a hosted model's CallEstimate at the run's frame size
    notices: tuple[str, ...] = ()  # warnings about the model (retired, ...), stored as run events


def _as_list(images: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(images, str | Path):
        return [Path(images)]
    return [Path(p) for p in images]


def check_frame_size(size: int, max_pixels: int) -> None:
    """A frame side asked for must fit the same pixel budget as an input (``--max-pixels``)."""
    if size * size > max_pixels:
        raise SpecError(
            f"--size {size} makes {size}×{size} = {size * size:,} pixels per frame, more than the limit of "
            f"{max_pixels:,} (--max-pixels); choose a smaller --size"
        )


def prepare(
    images: str | Path | Sequence[str | Path],
    model: str | Replicator | Callable[..., Any],
    n: int,
    seeds: Sequence[int],
    size: int,
    workspace: str | Path,
    batch_size: int | None = None,
    stop_on_fixed_point: bool = False,
    patience: int = 3,
    refusal_retries: int = 2,
    max_cost: float | None = None,
    device: str | None = None,
    dtype: str | None = None,
    cost_factors: str | Path | None = None,
    country: str | None = None,
    metrics: bool = True,
    perceptual: bool = False,
    faces: bool = False,
    sweep: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    stabilize: str | None = "none",
    keep_raw: bool = False,
    log: Logger | None = None,
    dry_run: bool = False,
    engine: Engine = LOCAL,
) -> Prepared:
    """Check everything a run needs before anything is written: settings, model, inputs and budget.

    ``stabilize`` is a stabilizer spec (:func:`driftloop.stabilizers.parse_stabilizer`) applied to each
    copy before it is stored and fed back; ``keep_raw`` stores the model's own copy beside it.
    ``dry_run``: build a hosted model for an estimate only (no key or client needed, nothing can be sent)."""

    say = log or (lambda _msg: None)
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    stabilizer = parse_stabilizer(stabilize).spec  # canonical spelling; an unknown one is a SpecError
    # settings first (cheap, and a bad one should not wait for a model to load)
    RunConfig("check", (), tuple(seeds) or (0,), n, max(size, 1), size, batch_size, stop_on_fixed_point,
              patience, refusal_retries, max_cost, stabilize=stabilizer, keep_raw=keep_raw)  # fmt: skip
    if not seeds:
        raise SpecError("give at least one seed")
    check_frame_size(size, max_pixels)
    paths = _as_list(images)
    if not paths:
        raise InputError("no input images given")
    if dry_run:
        with offline():
            replicator = registry.build(model, **spec_overrides(model, device, dtype))
    else:
        replicator = engine.build(model, **spec_overrides(model, device, dtype))
    for note in notices(replicator):
        say(f"warning: {note}")
    multiple = replicator.requirements.size_multiple
    loaded = load_images(paths, size=size, multiple=multiple, max_pixels=max_pixels, min_side=multiple)
    for item in loaded:
        for note in item.notes:
            say(f"{item.path}: {note}")
    factors = load_factors(cost_factors, workspace if Path(workspace).is_dir() else None)
    if country:
        factors.grid(country)  # validates the code before anything is written
        factors = dataclasses.replace(factors, country=country)
    meters = pick_meters(replicator.requirements.device, factors)
    config = RunConfig(
        model=replicator.spec,
        inputs=tuple(InputRef(str(i.path), i.source_sha256) for i in loaded),
        seeds=tuple(seeds),
        n_steps=n,
        size=target_size(size, multiple),
        requested_size=size,
        batch_size=batch_size,
        stop_on_fixed_point=stop_on_fixed_point,
        patience=patience,
        refusal_retries=refusal_retries,
        max_cost_usd=max_cost,
        cost={"factors": factors.to_dict(), "meters": meters.describe()},
        metrics=MetricsConfig(enabled=metrics, perceptual=perceptual, faces=faces),
        sweep=sweep,
        stabilize=stabilizer,
        keep_raw=keep_raw,
    )
    hosted = hosted_estimate(replicator, factors)  # prices from this run's factor table, overrides included
    # a hosted call's price with its input tokens; the dearest frame size is what a budget is checked against
    estimates = [
        call_estimate(replicator, h, w, factors) for h, w in sorted({i.frame.shape[:2] for i in loaded})
    ]
    per_call = max((e for e in estimates if e is not None), key=lambda e: e.usd, default=None)
    if per_call is not None:
        replicator.requirements = dataclasses.replace(
            replicator.requirements, cost_per_image_usd=per_call.usd
        )
    check_priced(replicator, max_cost)
    estimate = replicator.requirements.cost_per_image_usd * n * config.chain_count
    how = f"{config.chain_count} chain(s) × {n} copies × ${replicator.requirements.cost_per_image_usd:.3f}"
    if per_call is not None and per_call.turn_usd is not None:  # a conversation: each turn costs more
        estimate = per_call.total_usd(config.chain_count, n)
        how = f"{config.chain_count} chain(s) × {n} turns, ${per_call.turn_usd(n):.3f} at turn {n}"
    if max_cost is not None and estimate > max_cost + 1e-9:
        raise DriftloopError(
            f"this run would cost about {fmt.usd(estimate)} ({how}), more than --max-cost {fmt.usd(max_cost)}"
        )
    if estimate:
        say(f"estimated cost: {fmt.usd(estimate)}")
    return Prepared(config, replicator, loaded, factors, meters, hosted, per_call, tuple(notices(replicator)))


@dataclass(frozen=True)
class DryRun:
    """What a run would do, with nothing called and nothing written (``driftloop run --dry-run``)."""

    model: str
    chains: int
    steps: int
    calls: int
    usd: float | None  # None: no price known
    usd_per_call: float | None
    price_detail: str
    seconds: float | None  # None: unknown (a local model is not timed here)
    seconds_detail: str
    notices: tuple[str, ...] = ()
    turns: tuple[tuple[int, float], ...] = ()  # a conversation: (turn, USD per copy) at turns 1, 50 and N


def local_time(store: Store | None, model: str, size: int, calls: int) -> tuple[float | None, str]:
    """A local model's time for ``calls`` copies from its stored runs at this size (the mean seconds a copy
    took the model: a total is a sum, so slow copies count), or None and why not."""
    seconds, runs = store.copy_seconds(model, size) if store is not None else ([], 0)
    if not seconds:
        return None, (
            f"local model: no stored run of {model} at {size} px to learn from; "
            "sweep --dry-run times one copy"
        )
    per = statistics.fmean(seconds)
    where = f"{runs} stored run{'s' if runs != 1 else ''}"
    return per * calls, (
        f"{per:.3g} s per copy: the mean of {len(seconds)} copies in {where} of {model} at {size} px; "
        "model time, measuring and writing frames add a little"
    )


def estimate(prepared: Prepared, workspace: str | Path | None = None) -> DryRun:
    """Number of calls, price (input tokens included where the provider's rules are known) and time of a
    prepared run: a hosted model's from the catalogue's typical latency (waves of ``concurrency`` calls,
    under the ``rpm`` limit), a local model's from its stored runs at this size in ``workspace``."""
    config, est = prepared.config, prepared.per_call
    chains, steps = config.chain_count, config.n_steps
    calls = chains * steps
    if est is None:
        store = Store(workspace) if workspace is not None and Store.exists(workspace) else None
        seconds, how = local_time(store, config.model, config.requested_size, calls)
        return DryRun(config.model, chains, steps, calls, 0.0, 0.0, "local model: no per-image fee", seconds,
                      how, prepared.notices)  # fmt: skip
    seconds = est.duration(chains, steps)
    how = (
        f"{est.seconds:g} s per call (typical, an assumption)" if est.seconds else "no typical latency known"
    )
    how += f", {min(est.concurrency, chains)} at a time"
    if est.rpm:
        how += f", at most {est.rpm:g} calls per minute"
    usd = est.total_usd(chains, steps) if est.usd else None
    turns: tuple[tuple[int, float], ...] = ()
    if est.turn_usd is not None:
        turns = tuple((t, est.turn_usd(t)) for t in sorted({1, min(50, steps), steps}))
    return DryRun(config.model, chains, steps, calls, usd, est.usd or None, est.detail, seconds, how,
                  prepared.notices, turns)  # fmt: skip


@contextmanager
def storage_guard(store: Store, run_id: str) -> Iterator[None]:
    """Out of space (or a read-only disk) anywhere around a stored run, outside the engine itself (the
    events before it starts, the report after it ends): the one message that names the run and how many
    frames it has, and a run marked ``stopped`` if it was still ``running``."""
    try:
        yield
    except (StorageError, OSError) as exc:
        if isinstance(exc, StorageFullError | ReadOnlyWorkspaceError) and exc.run_id == run_id:
            raise
        found = storage_error(exc, store.root, frames_stored(store, run_id), run_id)
        if found is None:
            raise
        try:
            if store.get_run(run_id).status in ("created", "running"):
                store.set_run_status(run_id, "stopped")
        except Exception:  # no room for the status either: the marker says it
            mark_stopped(store.run_dir(run_id))
        raise found from None


def start(
    prepared: Prepared,
    store: Store,
    progress: ProgressCallback | None = None,
    log: Logger | None = None,
    resume: bool = False,
    reuse_done: bool = False,
    engine: Engine = LOCAL,
) -> str:
    """Store a new run and advance it; return its id. With ``resume``, an unfinished run of the same
    inputs and settings is continued instead (and with ``reuse_done`` a finished one is returned)."""
    say = log or (lambda _msg: None)
    config, replicator = prepared.config, prepared.replicator
    if resume:
        for row in store.runs():  # newest first
            if not RunConfig.from_dict(row.config).same_run_as(config):
                continue
            if row.status != "done":
                say(f"resuming run {row.id}")
                continue_run(store, row.id, replicator, progress, say, config.max_cost_usd, engine=engine)
                return row.id
            if reuse_done:
                say(f"already done: run {row.id}")
                return row.id
    run_id = new_run_id(replicator.spec, config.stabilize)
    loaded, seeds = prepared.loaded, config.seeds
    chains = [(str(item.path), item.source_sha256, seed) for item in loaded for seed in seeds]
    store.create_run(
        run_id, replicator.spec, config.n_steps, config.to_dict(), replicator.describe(), versions(), host(),
        chains,
    )  # fmt: skip
    for note in prepared.notices:
        store.add_event(run_id, "warning", note)
    pending = [Pending(i, seed, -1) for i, seed in enumerate(seed for _item in loaded for seed in seeds)]
    by_chain = [item for item in loaded for _seed in seeds]
    with storage_guard(store, run_id), run_lock(store.run_dir(run_id), run_id):
        measuring = metrics_settings(store, run_id, config.metrics, say)
        engine.execute(store, run_id, replicator, pending, settings_of(config), progress,
                       lambda chain: by_chain[chain].frame, prepared.meters, measuring,
                       prepared.hosted)  # fmt: skip
    return run_id


def already_complete(store: Store, run_id: str, retry_failed: bool = False) -> str | None:
    """``run X is already complete (N/N steps); nothing to do`` when resuming the run would change nothing
    (it is done and no chain is left to continue, or to ask again with ``retry_failed``); else None.

    Said before the model is built, so resuming a finished run answers at once and writes nothing."""
    row = store.get_run(run_id)
    if str(row.config.get("model", row.model)).startswith(IMPORTED_PREFIX):
        return None  # not a run driftloop can continue: rebuilding it says so
    chains = store.chains(run_id)
    failed = [c.chain for c in chains if c.status in RETRYABLE]
    if row.status != "done" or any(c.status == "running" for c in chains) or (retry_failed and failed):
        return None
    (summary,) = [s for s in summaries(store, live_status=False) if s.id == run_id]
    message = f"run {run_id} is already complete ({summary.steps} steps); nothing to do"
    if failed:
        numbers = ", ".join(map(str, failed))
        message += f" (chain(s) {numbers} ended error or refused: --retry-failed asks again)"
    return message


def continue_run(
    store: Store,
    run_id: str,
    replicator: Replicator,
    progress: ProgressCallback | None,
    say: Logger,
    max_cost: float | None = None,
    retry_failed: bool = False,
    engine: Engine = LOCAL,
    restart_thread: bool = False,
) -> None:
    """Continue every unfinished chain of a stored run from its last stored frame (a chain with none yet
    starts from its input, which must still be the file the run was made from). ``restart_thread``: a
    conversation model begins a new thread from each chain's last frame (recorded as an event per chain)."""
    row = store.get_run(run_id)
    config = RunConfig.from_dict(row.config).with_budget(max_cost)
    settings = dataclasses.replace(settings_of(config), restart_thread=restart_thread)
    if restart_thread and not replicator.requirements.memory:
        raise SpecError(f"--restart-thread: {replicator.spec} keeps no thread (not a conversation model)")
    factors = Factors.from_dict(config.cost["factors"])
    hosted = hosted_estimate(replicator, factors)
    check_priced(replicator, settings.max_cost_usd)  # before anything about the run changes
    for message in align_with(replicator, row.model_info):  # e.g. the thread count, which changes rounding
        say(message)
    with storage_guard(store, run_id), run_lock(store.run_dir(run_id), run_id):
        clear_stopped(store.run_dir(run_id))
        removed = store.clean_orphans(run_id)
        if removed:
            say(f"removed {len(removed)} unfinished frame file(s) left by the interruption")
        pending, inputs = [], {}
        for c in store.chains(run_id):
            if retry_failed and c.status in RETRYABLE:
                say(f"chain {c.chain} ended {c.status} ({c.stop_reason}); asking again")
                store.add_event(run_id, "retry", f"was {c.status}: {c.stop_reason}", chain=c.chain)
                store.set_chain_status(run_id, c.chain, "running")
            elif c.status != "running":
                continue
            pending.append(Pending(c.chain, c.seed, c.last_step))
            inputs[c.chain] = (c.input_path, c.input_sha256)
            if restart_thread and c.last_step > 0:
                message = f"a new thread begins from frame {c.last_step} (--restart-thread)"
                store.add_event(run_id, "thread_restart", message, chain=c.chain, step=c.last_step + 1)
        if pending:
            first = max(min(p.step for p in pending), 0)
            say(f"run {run_id}: continuing {len(pending)} chain(s) from step {first}")
            meters = pick_meters(replicator.requirements.device, factors)
            measuring = metrics_settings(store, run_id, config.metrics, say)
            origin = input_frames(run_id, config, replicator, inputs)
            engine.execute(store, run_id, replicator, pending, settings, progress, origin, meters, measuring,
                           hosted)  # fmt: skip
        else:
            store.set_run_status(run_id, "done")


def input_frames(
    run_id: str, config: RunConfig, replicator: Replicator, inputs: dict[int, tuple[str, str]]
) -> Callable[[int], Any]:
    """Frame 0 of a chain not started before an interruption: its input loaded again as the run did, and
    refused if the file changed since."""

    def origin(chain: int) -> Any:
        path, sha = inputs[chain]
        loaded = load_image(path, config.requested_size, replicator.requirements.size_multiple)
        if loaded.source_sha256 != sha:
            raise InputError(
                f"{path}: changed since run {run_id} started (its sha256 differs); put the original file "
                "back to continue the run, or start a new run"
            )
        return loaded.frame

    return origin


def rebuild(
    store: Store,
    run_id: str,
    model: Replicator | Callable[..., Any] | None,
    device: str | None,
    say: Logger,
    engine: Engine = LOCAL,
) -> Replicator:
    """The model of a stored run, rebuilt from its spec (a run made with a Python callable needs the same
    callable again); a different callable is a warning, stored as an event."""
    row = store.get_run(run_id)
    spec = row.config["model"]
    if str(spec).startswith(IMPORTED_PREFIX):
        raise SpecError(
            f"run {row.id} ({spec}): imported runs cannot be resumed; their copies were made elsewhere "
            "(import the complete sequence again with driftloop import)"
        )
    if model is None:
        if spec.startswith("callable:"):
            raise SpecError(f"run {row.id} was made with a Python callable ({spec}); pass it again as model=")
        model = spec
    replicator = engine.build(model, **spec_overrides(model, device))
    recorded = row.model_info.get("code_sha256")
    if spec.startswith("callable:") and recorded and replicator.describe().get("code_sha256") != recorded:
        message = "the callable passed is not the one the run was made with (its code differs): "
        message += "resumed chains may not match an uninterrupted run"
        say(f"warning: {message}")
        store.add_event(row.id, "warning", message)
    return replicator
