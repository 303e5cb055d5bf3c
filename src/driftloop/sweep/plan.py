"""What a sweep still needs: the stored chains it can reuse, the runs it must make, and their time and
price (``sweep --dry-run``)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.config import RunConfig, arm_label, split_arm
from driftloop.cost import Factors, load_factors
from driftloop.engines.start import RETRYABLE
from driftloop.images import load_image
from driftloop.replicators import registry
from driftloop.replicators.hosted.replicator import CallEstimate, offline
from driftloop.replicators.spec import split_spec
from driftloop.store import Store
from driftloop.sweep.spec import Sweep, input_hashes, is_hosted


@dataclass
class Coverage:
    """Which of a model's sweep chains are already stored, and in which runs."""

    runs: list[str] = field(default_factory=list)  # runs holding at least one wanted chain
    unfinished: list[str] = field(default_factory=list)  # of those, runs to resume
    failed: list[str] = field(default_factory=list)  # of those, runs with wanted chains ended error/refused
    chains: set[tuple[str, int]] = field(default_factory=set)  # (input sha256, seed) already present
    frames: int = 0  # frames of wanted chains already stored (step 0 excluded)
    seconds: list[float] = field(default_factory=list)  # per-frame model seconds seen at this size


def same_chains(config: RunConfig, model: str, steps: int, size: int, options: dict[str, Any]) -> bool:
    """A stored run made the same kind of chains: same arm (model and stabilizer), steps, size, stop rule,
    and faces if wanted."""
    return (
        arm_label(config.model, config.stabilize) == model
        and config.n_steps == steps
        and config.requested_size == size
        and config.stop_on_fixed_point == bool(options.get("stop_on_fixed_point", False))
        and (not options.get("faces") or config.metrics.faces)
    )


def coverage(store: Store, sweep: Sweep, model: str, hashes: dict[Path, str]) -> Coverage:
    """The stored chains a sweep can reuse for ``model``: any run's, not only its own.

    An unfinished run is resumed only when every chain it would continue is one the sweep wants (so a
    sweep never pays for someone else's chains); otherwise only its finished wanted chains count.
    """
    wanted = {(sha, seed) for sha in hashes.values() for seed in sweep.seeds}
    out = Coverage(seconds=store.copy_seconds(split_arm(model)[0], sweep.size)[0])  # the model's time
    for run in reversed(store.runs()):  # oldest first: the first run that holds a chain keeps it
        cfg = RunConfig.from_dict(run.config)
        if not same_chains(cfg, model, sweep.steps, sweep.size, sweep.options):
            continue
        chains = store.chains(run.id)
        running = [c for c in chains if c.status == "running"]
        resumable = run.status != "done" and all((c.input_sha256, c.seed) in wanted for c in running)
        mine = [
            c for c in chains
            if (c.input_sha256, c.seed) in wanted and (c.input_sha256, c.seed) not in out.chains
            and (resumable or c.status != "running")
        ]  # fmt: skip
        if not mine:
            continue
        out.runs.append(run.id)
        if resumable:
            out.unfinished.append(run.id)
        if any(c.status in RETRYABLE for c in mine):
            out.failed.append(run.id)
        out.chains |= {(c.input_sha256, c.seed) for c in mine}
        out.frames += sum(max(c.last_step, 0) for c in mine)
    return out


def missing_runs(
    sweep: Sweep, hashes: dict[Path, str], have: set[tuple[str, int]]
) -> list[tuple[list[Path], list[int]]]:
    """The new runs a model needs: (images, seeds) groups covering exactly its missing chains (two paths
    to the same picture count once)."""
    by_seeds: dict[tuple[int, ...], list[Path]] = {}
    seen: set[str] = set()
    for path in sweep.images:
        if hashes[path] in seen:
            continue
        seen.add(hashes[path])
        seeds = tuple(s for s in sweep.seeds if (hashes[path], s) not in have)
        if seeds:
            by_seeds.setdefault(seeds, []).append(path)
    return [(images, list(seeds)) for seeds, images in by_seeds.items()]


@dataclass(frozen=True)
class PlanRow:
    """One run of a sweep: its model, how many chains, and what is already done."""

    model: str
    chains: int
    steps: int
    done_frames: int
    seconds_per_frame: float | None
    usd_per_frame: float

    @property
    def remaining_frames(self) -> int:
        return self.chains * self.steps - self.done_frames


def hosted_call(spec: str, factors: Factors, size: int) -> CallEstimate | None:
    """A hosted model's price and time for one copy of a size×size frame (input tokens included where the
    provider's rules are known), with no key and nothing sent; None for a local model."""
    backend, config = registry.parse(split_arm(spec)[0])
    if not is_hosted(backend):
        return None
    with offline():
        return backend.build(config).call_estimate(size, size, factors)


def price_per_copy(spec: str, factors: Factors, size: int | None = None, steps: int = 1) -> float:
    """The price of one copy (0 for local models): a hosted model's own estimate at ``size`` (a
    conversation's mean over ``steps`` turns, as its thread grows), else the listed price in the cost factor
    table."""
    call = hosted_call(spec, factors, size) if size else None
    if call is not None:
        return call.total_usd(1, steps) / max(1, steps) if call.turn_usd is not None else call.usd
    name, positional, params = split_spec(split_arm(spec)[0])
    price = factors.price(
        f"{name}:{positional}" if positional else name, params.get("quality"), params.get("size")
    )
    return price.usd if price else 0.0


def plan(sweep: Sweep, workspace: str | Path) -> list[PlanRow]:
    """What running the sweep would do, with a time estimate from earlier runs of each model at this size
    (the mean seconds a copy took, as `run --dry-run` has it: a total is a sum)."""
    store = Store(workspace) if Store.exists(workspace) else None
    factors = load_factors(workspace=workspace if Path(workspace).is_dir() else None)
    hashes = input_hashes(sweep)
    rows = []
    for model in sweep.models:
        cov = coverage(store, sweep, model, hashes) if store is not None else Coverage()
        chains = len(sweep.images) * len(sweep.seeds)
        rows.append(
            PlanRow(model, chains, sweep.steps, min(cov.frames, chains * sweep.steps),
                    statistics.fmean(cov.seconds) if cov.seconds else None,
                    price_per_copy(model, factors, sweep.size, sweep.steps))
        )  # fmt: skip
    return rows


@dataclass(frozen=True)
class EstimateRow:
    """A plan row with its time and price: what ``sweep --dry-run`` prints for one model."""

    model: str
    chains: int
    steps: int
    remaining_frames: int
    seconds_per_frame: float | None  # None: unknown, for the reason in ``unknown``
    usd: float
    unknown: str = ""  # why the time is unknown: a hosted model is never called to time it; absent weights


@dataclass(frozen=True)
class Estimate:
    """What running a sweep would take: per model, and in total."""

    sweep: Sweep
    rows: list[EstimateRow]
    seconds: float  # of the models whose time is known
    usd: float
    time_known: bool


def estimate(sweep: Sweep, workspace: str | Path) -> Estimate:
    """Chains, time and cost of what is still to do; calls no hosted model and stores nothing.

    Time per copy comes from earlier runs of the model at this size, else from timing one copy of a local
    model whose weights are here."""
    rows = []
    factors = load_factors(workspace=workspace if Path(workspace).is_dir() else None)
    for row in plan(sweep, workspace):
        seconds = row.seconds_per_frame
        call = hosted_call(row.model, factors, sweep.size) if seconds is None else None
        duration = call.duration(row.chains, row.steps) if call is not None else None
        if duration is not None:  # the catalogue's typical latency under concurrency and rpm: per copy
            seconds = duration / max(1, row.chains * row.steps)
        elif seconds is None and row.remaining_frames:
            seconds = probe_seconds(row.model, sweep.images[0], sweep.size)
        rows.append(EstimateRow(row.model, row.chains, row.steps, row.remaining_frames, seconds,
                                row.usd_per_frame * row.remaining_frames,
                                "" if seconds is not None else _why_unknown(row.model)))  # fmt: skip
    known = [r.seconds_per_frame * r.remaining_frames for r in rows if r.seconds_per_frame is not None]
    return Estimate(sweep, rows, sum(known), sum(r.usd for r in rows), len(known) == len(rows))


def _why_unknown(model: str) -> str:
    """Why a model's time per copy could not be estimated, in a few words for the dry run's table."""
    backend, config = registry.parse(split_arm(model)[0])
    if is_hosted(backend):
        return "hosted"
    if not backend.weights_status(config).present:
        return "weights not here"
    return "no timing"


def probe_seconds(model: str, image: Path, size: int) -> float | None:
    """Seconds one copy takes here, timed on the sweep's first image (warm, after one call).

    Hosted models are not probed: a probe would be a paid request.
    """
    backend, config = registry.parse(split_arm(model)[0])
    if not backend.weights_status(config).present:
        return None  # timing it would mean downloading it
    replicator = backend.build(config)
    if replicator.requirements.device == "api":
        return None
    frame = load_image(image, size, replicator.requirements.size_multiple).frame
    replicator.replicate([frame], [0])
    started = time.perf_counter()
    replicator.replicate([frame], [1])
    return time.perf_counter() - started
