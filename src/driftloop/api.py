"""The Python API; the CLI is a thin shell over it.

import driftloop
run = driftloop.run("photo.jpg", model="taef2", n=101)
run.frame(chain=0, step=101)      # an RGB uint8 array
run.records()                     # one dict per stored frame
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import platform
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from driftloop import chain as engine
from driftloop.cost import (
    Factors,
    FrameCost,
    HostedEstimate,
    Meters,
    Totals,
    combine,
    load_factors,
    pick_meters,
    totals,
)
from driftloop.errors import DriftloopError, InputError, RunInterrupted, RunNotFoundError, SpecError
from driftloop.images import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    frame_sha256,
    load_images,
    read_frame,
    target_size,
)
from driftloop.measure import MetricsRecorder, MetricsSettings, missing_frames
from driftloop.replicators import registry
from driftloop.replicators.base import Replicator, align_with, hosted_estimate, price_model
from driftloop.store import DB_NAME, ChainRow, FrameRow, RunRow, Store

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.analysis import ChainSummary

DEFAULT_WORKSPACE = "driftloop-runs"
DEFAULT_STEPS = 101
RETRYABLE = ("error", "refused")  # chain outcomes `resume --retry-failed` asks again

ProgressCallback = Callable[[engine.ProgressEvent], None]
Logger = Callable[[str], None]


def versions() -> dict[str, str]:
    """Versions of what shapes the frames: Python and the libraries a chain goes through."""
    out = {"python": platform.python_version()}
    for pkg in ("driftloop", "torch", "numpy", "pillow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def host() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:24] or "model"


def new_run_id(model: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(model)}-{secrets.token_hex(2)}"


@contextmanager
def run_lock(store: Store, run_id: str) -> Iterator[None]:
    """Only one process advances a run at a time; the lock dies with its process (kill -9 included)."""
    path = store.run_dir(run_id) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DriftloopError(f"run {run_id} is being advanced by another process right now") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_live(store: Store, run_id: str) -> bool:
    """True when some process holds the run's lock."""
    path = store.run_dir(run_id) / ".lock"
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


@dataclass(frozen=True)
class RunSummary:
    """One line of ``driftloop runs``."""

    id: str
    model: str
    chains: int
    steps_done: int  # the least advanced chain's last step
    n_steps: int
    status: str
    created_at: float
    steps_most: int = 0  # the most advanced chain's (chains stopped early by a fixed point or a refusal)


class RunHandle:
    """A stored run: its configuration, chains, frames and records."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.row: RunRow = store.get_run(run_id)
        self.id = self.row.id

    @property
    def path(self) -> Path:
        return self.store.run_dir(self.id)

    @property
    def config(self) -> dict[str, Any]:
        return self.row.config

    @property
    def status(self) -> str:
        return self.store.get_run(self.id).status

    def chains(self) -> list[ChainRow]:
        return self.store.chains(self.id)

    def frame_rows(self, chain: int | None = None) -> list[FrameRow]:
        return self.store.frames(self.id, chain)

    def frame_path(self, chain: int, step: int) -> Path:
        return self.store.frame_path(self.id, chain, step)

    def frame(self, chain: int, step: int) -> np.ndarray:
        """The stored frame as an RGB uint8 array."""
        return read_frame(self.frame_path(chain, step))

    def frames(self, chain: int = 0) -> list[tuple[int, np.ndarray]]:
        """(step, frame) pairs of one chain, in order."""
        return [(r.step, read_frame(self.path / r.path)) for r in self.frame_rows(chain)]

    def records(self) -> list[dict[str, Any]]:
        """One dict per stored frame (chain, step, seed, sha256, path, model_seconds, input, chain seed)."""
        chains = {c.chain: c for c in self.chains()}
        return [
            {
                "run_id": r.run_id,
                "chain": r.chain,
                "step": r.step,
                "seed": r.seed,
                "sha256": r.sha256,
                "path": str(self.path / r.path),
                "model_seconds": r.model_seconds,
                "info": r.info,
                "input": chains[r.chain].input_path,
                "chain_seed": chains[r.chain].seed,
            }
            for r in self.frame_rows()
        ]

    def events(self) -> list[dict[str, Any]]:
        return self.store.events(self.id)

    @property
    def factors(self) -> Factors:
        """The cost factors the run was made with (a snapshot, so later edits do not rewrite history)."""
        return Factors.from_dict(self.config["cost"]["factors"])

    def cost_totals(self) -> tuple[dict[int, Totals], Totals]:
        """Time, energy, CO2, water and money per chain and for the whole run."""
        factors = self.factors
        per_chain: dict[int, list[FrameCost]] = {c.chain: [] for c in self.chains()}
        for r in self.frame_rows():
            if r.cost is not None:
                per_chain[r.chain].append(FrameCost.from_dict(r.cost))
        chains = {chain: totals(costs, factors) for chain, costs in per_chain.items()}
        return chains, combine(chains.values()) if chains else totals([], factors)

    def dataframe(self) -> pd.DataFrame:
        """One row per (chain, step): the frame record, its cost and its metrics."""
        from driftloop.export import frame_table

        return frame_table(self)

    def export(self, fmt: str = "csv", path: str | Path | None = None) -> Path:
        """Write :meth:`dataframe` as csv, parquet or json (default: into the run folder)."""
        from driftloop.export import export

        return export(self, fmt, Path(path) if path else None)  # type: ignore[arg-type]

    def recompute_metrics(
        self, progress: Callable[[int, int], None] | None = None, perceptual: bool | None = None
    ) -> int:
        """Measure every stored frame again (after a metrics upgrade, or with perceptual metrics added)."""
        config = dict(self.config)
        if perceptual is not None:
            config["metrics"] = {"enabled": True, "perceptual": perceptual}
        settings = _metrics_settings(self.store, self.id, config, lambda _m: None) or MetricsSettings()
        self.store.delete_metrics(self.id)
        recorder = MetricsRecorder(self.store, self.id, settings)
        rows = self.frame_rows()
        for i, r in enumerate(rows, 1):
            recorder.submit(r.chain, r.step, read_frame(self.path / r.path))
            if progress:
                progress(i, len(rows))
        recorder.close()
        return len(rows)

    def summary(self, df: pd.DataFrame | None = None) -> list[ChainSummary]:
        """One summary per chain: half-life, first fixed point (over the run's ``patience``), colour drift
        at steps 1, 10, 25, 50, 100 and the last, drift rates with 95% CIs, face loss. ``df``: this run's
        :meth:`dataframe`, if already at hand."""
        from driftloop.analysis import summarize_run

        df = self.dataframe() if df is None else df
        return summarize_run(df, fixed_point_k=int(self.config.get("patience", 3))) if len(df) else []

    def render(self, **kwargs: Any) -> dict[str, Path]:
        """GIF + MP4 per chain and a contact sheet of all chains, in the run folder."""
        from driftloop.outputs import render_run

        return render_run(self, **kwargs)

    def __repr__(self) -> str:
        return f"RunHandle({self.id!r}, model={self.row.model!r}, status={self.status!r})"


def _as_list(images: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(images, str | Path):
        return [Path(images)]
    return [Path(p) for p in images]


def _config_key(config: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two runs the same run (for ``--resume``)."""
    return (
        config["model"],
        tuple(i["sha256"] for i in config["inputs"]),
        tuple(config["seeds"]),
        config["n_steps"],
        config["size"],
        config["stop_on_fixed_point"],
    )


def _frame0(states: list[engine.ChainState], writer: engine.FrameWriter) -> list[engine.NewFrame]:
    first = [engine.NewFrame(s.chain, 0, None, s.frame, frame_sha256(s.frame)) for s in states]
    writer.write_frames(first)
    return first


def _execute(
    store: Store,
    run_id: str,
    replicator: Replicator,
    states: list[engine.ChainState],
    settings: engine.EngineSettings,
    progress: ProgressCallback | None,
    write_first: bool,
    meters: Meters | None = None,
    metrics: MetricsSettings | None = None,
    hosted: HostedEstimate | None = None,
) -> None:
    """Advance the chains under the run's lock, keeping the run's status true whatever happens.

    Frames go to the writer thread (disk, then database) and, with ``metrics``, to the metrics thread.
    """
    store.set_run_status(run_id, "running", pid=os.getpid())
    writer = engine.FrameWriter(store, run_id)
    recorder = (
        MetricsRecorder(store, run_id, metrics, on_error=lambda m: store.add_event(run_id, "metrics", m))
        if metrics is not None
        else None
    )
    on_frames = None
    if recorder is not None:
        recorder.submit_many(
            (c, s, read_frame(store.frame_path(run_id, c, s))) for c, s in missing_frames(store, run_id)
        )
        on_frames = lambda made: recorder.submit_many((f.chain, f.step, f.frame) for f in made)  # noqa: E731
    status, error = "done", None
    try:
        if write_first:
            first = _frame0(states, writer)
            if on_frames:
                on_frames(first)
        spent = sum((r.cost or {}).get("usd") or 0.0 for r in store.frames(run_id))
        engine.advance(replicator, states, settings, writer, progress, meters, on_frames, hosted, spent)
    except engine.BudgetReached:
        status = "budget"
        raise
    except KeyboardInterrupt:
        status = "interrupted"
        raise RunInterrupted(run_id, str(store.root)) from None
    except BaseException as exc:
        status, error = "failed", str(exc)
        raise
    finally:
        try:
            writer.close()
            if recorder is not None:
                recorder.close()
        except BaseException as exc:
            status, error = "failed", f"writing frames: {exc}"
            raise
        finally:
            store.set_run_status(run_id, status, error=error)
            if error:
                store.add_event(run_id, "error", error)


def _settings(config: dict[str, Any]) -> engine.EngineSettings:
    """Engine settings from a run's stored configuration (the same for a new run and a resumed one)."""
    return engine.EngineSettings(
        n_steps=config["n_steps"],
        batch_size=config["batch_size"],
        stop_on_fixed_point=config["stop_on_fixed_point"],
        patience=config["patience"],
        refusal_retries=config.get("refusal_retries", 2),
        max_cost_usd=config.get("max_cost_usd"),
    )


def _hosted(replicator: Replicator, factors: Factors) -> HostedEstimate | None:
    """A hosted model's per-image energy and price estimate (local models have none)."""
    return hosted_estimate(replicator, factors)


def _overrides(model: object, device: str | None, dtype: str | None = None) -> dict[str, str]:
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


def _check_priced(replicator: Replicator, max_cost: float | None) -> None:
    """A budget needs a price: refuse ``--max-cost`` for a paid model the cost table cannot price."""
    req = replicator.requirements
    if max_cost is not None and req.device == "api" and req.cost_per_image_usd <= 0:
        key = price_model(replicator)
        raise SpecError(
            f"--max-cost needs a price, and the cost table has none for {key}: put "
            f'[prices."{key}"] with default = <USD per image> in a --cost-factors file '
            f'(or [cost.prices."{key}"] in WORKSPACE/driftloop.toml)'
        )


def _metrics_settings(
    store: Store, run_id: str, config: dict[str, Any], say: Logger
) -> MetricsSettings | None:
    """What the run measures, saying once (in the log and as an event) which metrics are skipped and why."""
    wanted = config.get("metrics", {"enabled": True, "perceptual": False})
    if not wanted["enabled"]:
        return None
    faces = None
    if wanted.get("faces", False):
        from driftloop.metrics import face

        ok, why = face.available()
        if ok:
            faces = face.FaceMeasurer()
        else:
            say(f"face metrics skipped: {why}")
            store.add_event(run_id, "metrics-skipped", f"faces: {why}")
    scorer = None
    if wanted["perceptual"]:
        from driftloop.metrics.perceptual import PerceptualScorer

        scorer = PerceptualScorer(device="cpu")
        for family, reason in scorer.skipped().items():
            say(f"{family} metrics skipped: {reason}")
            store.add_event(run_id, "metrics-skipped", f"{family}: {reason}")
        if not scorer.available():
            scorer = None
    else:
        store.add_event(run_id, "metrics-skipped", "perceptual metrics (LPIPS, CLIP, DINOv2) not requested")
    return MetricsSettings(perceptual=scorer, faces=faces)


def run(
    images: str | Path | Sequence[str | Path],
    model: str | Replicator | Callable[..., Any] = "taef2",
    n: int = DEFAULT_STEPS,
    seeds: Sequence[int] = (0,),
    size: int = 512,
    workspace: str | Path = DEFAULT_WORKSPACE,
    batch_size: int | None = None,
    stop_on_fixed_point: bool = False,
    patience: int = 3,
    refusal_retries: int = 2,
    max_cost: float | None = None,
    device: str | None = None,
    dtype: str | None = None,
    resume: bool = False,
    render: bool = True,
    cost_factors: str | Path | None = None,
    country: str | None = None,
    metrics: bool = True,
    perceptual: bool = False,
    faces: bool = False,
    reuse_done: bool = False,
    sweep: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: ProgressCallback | None = None,
    log: Logger | None = None,
) -> RunHandle:
    """Run one chain per (image, seed): ``n`` copies each, every frame stored as it is made.

    ``model`` is a spec string (``taef2``, ``jpeg:quality=75``), a Replicator, or a plain callable
    ``(frames, seeds) -> frames``. With ``resume=True`` an unfinished run of the same inputs and settings
    is continued instead of starting a new one. Bad inputs raise before anything is written.
    ``cost_factors`` is a TOML file overriding the energy/CO2/water/price factors; ``country`` picks the
    grid intensity (default: the factors' own, a world average). ``metrics`` measures every frame as it
    is made; ``perceptual`` adds LPIPS/CLIP/DINOv2 scores where their weights are present; ``faces``
    measures face landmarks (eyebrows, eyes, mouth) where MediaPipe is installed.
    """
    say = log or (lambda _msg: None)
    if n < 1:
        raise SpecError(f"number of steps must be at least 1 (got {n})")
    if size < 8:
        raise SpecError(f"--size must be at least 8 pixels (got {size})")
    if batch_size is not None and batch_size < 1:
        raise SpecError(f"batch size must be at least 1 (got {batch_size})")
    if patience < 1:
        raise SpecError(f"fixed-point patience must be at least 1 (got {patience})")
    if refusal_retries < 0:
        raise SpecError(f"refusal retries must be 0 or more (got {refusal_retries})")
    if max_cost is not None and max_cost < 0:
        raise SpecError(f"--max-cost must be 0 or more dollars (got {max_cost})")
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if not seeds:
        raise SpecError("give at least one seed")
    paths = _as_list(images)
    if not paths:
        raise InputError("no input images given")
    replicator = registry.build(model, **_overrides(model, device, dtype))
    multiple = replicator.requirements.size_multiple
    loaded: list[LoadedImage] = load_images(paths, size=size, multiple=multiple, max_pixels=max_pixels)
    for item in loaded:
        for note in item.notes:
            say(f"{item.path}: {note}")
    factors = load_factors(cost_factors, workspace if Path(workspace).is_dir() else None)
    if country:
        factors.grid(country)  # validates the code before anything is written
        factors = dataclasses.replace(factors, country=country)
    meters = pick_meters(replicator.requirements.device, factors)
    config = {
        "model": replicator.spec,
        "inputs": [{"path": str(i.path), "sha256": i.source_sha256} for i in loaded],
        "seeds": seeds,
        "n_steps": n,
        "size": target_size(size, multiple),
        "requested_size": size,
        "batch_size": batch_size,
        "stop_on_fixed_point": stop_on_fixed_point,
        "patience": patience,
        "refusal_retries": refusal_retries,
        "max_cost_usd": max_cost,
        "cost": {"factors": factors.to_dict(), "meters": meters.describe()},
        "metrics": {"enabled": metrics, "perceptual": perceptual, "faces": faces},
        "sweep": sweep,
    }
    hosted = _hosted(replicator, factors)  # prices from this run's factor table, overrides included
    _check_priced(replicator, max_cost)
    estimate = replicator.requirements.cost_per_image_usd * n * len(loaded) * len(seeds)
    if max_cost is not None and estimate > max_cost + 1e-9:
        raise DriftloopError(
            f"this run would cost about ${estimate:.2f} ({len(loaded) * len(seeds)} chain(s) × {n} copies × "
            f"${replicator.requirements.cost_per_image_usd:.3f}), more than --max-cost ${max_cost:.2f}"
        )
    if estimate:
        say(f"estimated cost: ${estimate:.2f}")
    store = Store(workspace)
    if resume:
        for row in reversed(store.runs()):
            if _config_key(row.config) != _config_key(config):
                continue
            if row.status != "done":
                say(f"resuming run {row.id}")
                return _resume(store, row.id, replicator, progress, render, say, max_cost)
            if reuse_done:
                say(f"already done: run {row.id}")
                return RunHandle(store, row.id)
    run_id = new_run_id(replicator.spec)
    chains = [(str(item.path), item.source_sha256, seed) for item in loaded for seed in seeds]
    store.create_run(run_id, replicator.spec, n, config, replicator.describe(), versions(), host(), chains)
    states = [
        engine.ChainState(
            chain=i, seed=seed, step=0, frame=item.frame, recent=[frame_sha256(item.frame)], origin=item.frame
        )
        for i, (item, seed) in enumerate((item, seed) for item in loaded for seed in seeds)
    ]
    settings = _settings(config)
    with run_lock(store, run_id):
        measuring = _metrics_settings(store, run_id, config, say)
        _execute(store, run_id, replicator, states, settings, progress, True, meters, measuring, hosted)
    handle = RunHandle(store, run_id)
    if render:
        handle.render()
    return handle


def _resume(
    store: Store,
    run_id: str,
    replicator: Replicator,
    progress: ProgressCallback | None,
    render: bool,
    say: Logger,
    max_cost: float | None = None,
    retry_failed: bool = False,
) -> RunHandle:
    row = store.get_run(run_id)
    cfg = dict(row.config)
    if max_cost is not None:
        cfg["max_cost_usd"] = max_cost
    settings = _settings(cfg)
    factors = Factors.from_dict(cfg["cost"]["factors"])
    hosted = _hosted(replicator, factors)
    _check_priced(replicator, settings.max_cost_usd)  # before anything about the run changes
    for message in align_with(replicator, row.model_info):  # e.g. the thread count, which changes rounding
        say(message)
    with run_lock(store, run_id):
        removed = store.clean_orphans(run_id)
        if removed:
            say(f"removed {len(removed)} unfinished frame file(s) left by the interruption")
        states = []
        for c in store.chains(run_id):
            if retry_failed and c.status in RETRYABLE:
                say(f"chain {c.chain} ended {c.status} ({c.stop_reason}); asking again")
                store.add_event(run_id, "retry", f"was {c.status}: {c.stop_reason}", chain=c.chain)
                store.set_chain_status(run_id, c.chain, "running")
            elif c.status != "running":
                continue
            rows = store.frames(run_id, c.chain)
            if not rows:
                raise DriftloopError(f"run {run_id}: chain {c.chain} has no stored frame 0; start a new run")
            last = rows[-1]
            frame = read_frame(store.run_dir(run_id) / last.path)
            if frame_sha256(frame) != last.sha256:
                raise DriftloopError(
                    f"run {run_id}: {store.run_dir(run_id) / last.path} does not match its recorded sha256; "
                    "the file was changed after it was written"
                )
            origin = None  # frame 0, read back only for a replicator that looks at it (``prompt=auto``)
            if replicator.requirements.wants_context:
                origin = frame if last.step == 0 else read_frame(store.run_dir(run_id) / rows[0].path)
            state = engine.ChainState(
                c.chain, c.seed, last.step, frame, recent=[r.sha256 for r in rows], origin=origin
            )
            if settings.stop_on_fixed_point and engine.is_fixed_point(state, settings.patience):
                # reached before the interruption, but its status was not yet committed
                reason = engine.fixed_point_reason(settings.patience)
                store.set_chain_status(run_id, c.chain, "fixed_point", reason)
                continue
            states.append(state)
        if states:
            say(f"run {run_id}: continuing {len(states)} chain(s) from step {min(s.step for s in states)}")
            meters = pick_meters(replicator.requirements.device, factors)
            measuring = _metrics_settings(store, run_id, cfg, say)
            _execute(store, run_id, replicator, states, settings, progress, False, meters, measuring, hosted)
        else:
            store.set_run_status(run_id, "done")
    handle = RunHandle(store, run_id)
    if render:
        handle.render()
    return handle


def resume(
    run_id: str,
    workspace: str | Path = DEFAULT_WORKSPACE,
    model: Replicator | Callable[..., Any] | None = None,
    device: str | None = None,
    render: bool = True,
    max_cost: float | None = None,
    retry_failed: bool = False,
    progress: ProgressCallback | None = None,
    log: Logger | None = None,
) -> RunHandle:
    """Continue every unfinished chain of a run from its last stored frame.

    The model is rebuilt from the run's stored spec; a run made with a Python callable needs the same
    callable passed again as ``model``. ``max_cost`` replaces the run's budget (after it stopped on it).
    ``retry_failed`` also continues chains that ended ``error`` or ``refused`` (after an outage, say).
    """
    store = _existing_store(workspace)
    row = store.get_run(run_id)
    spec = row.config["model"]
    if model is None:
        if spec.startswith("callable:"):
            raise SpecError(f"run {row.id} was made with a Python callable ({spec}); pass it again as model=")
        model = spec
    replicator = registry.build(model, **_overrides(model, device))
    say = log or (lambda _msg: None)
    recorded = row.model_info.get("code_sha256")
    if spec.startswith("callable:") and recorded and replicator.describe().get("code_sha256") != recorded:
        message = "the callable passed is not the one the run was made with (its code differs): "
        message += "resumed chains may not match an uninterrupted run"
        say(f"warning: {message}")
        store.add_event(row.id, "warning", message)
    return _resume(store, row.id, replicator, progress, render, say, max_cost, retry_failed)


def open_run(run_id: str, workspace: str | Path = DEFAULT_WORKSPACE) -> RunHandle:
    """A handle to a stored run (id or unique prefix)."""
    return RunHandle(_existing_store(workspace), run_id)


def _existing_store(workspace: str | Path) -> Store:
    """The store of a workspace that exists: a mistyped ``--workspace`` is an error, not a new workspace."""
    if not Store.exists(workspace):
        raise RunNotFoundError(
            f"no driftloop workspace at {workspace} (no {DB_NAME} there); check --workspace"
        )
    return Store(workspace)


def runs(workspace: str | Path = DEFAULT_WORKSPACE) -> list[RunSummary]:
    """Every run in a workspace, oldest first; a 'running' run whose process died shows as 'interrupted'.

    A folder that holds no workspace has no runs (and is not made into one)."""
    if not Store.exists(workspace):
        return []
    store = Store(workspace)
    counts = store.frame_counts()
    out = []
    for r in store.runs():
        status = r.status
        if status == "running" and not is_live(store, r.id):
            status = "interrupted"
        chains, done, most = counts.get(r.id, (0, -1, -1))
        out.append(
            RunSummary(r.id, r.model, chains, max(done, 0), r.n_steps, status, r.created_at, max(most, 0))
        )
    return out
