"""The chain engine: advance many chains in lockstep, one batched model call per step.

Why it looks like this:
- Step seeds derive from (chain seed, step) only, so a resumed chain gets the same seeds as an
  uninterrupted one, whatever else was running.
- Frames are quantised to 8 bits between steps (the replicator returns ``uint8``), so what is stored as
  PNG is exactly what the next step reads: resuming from disk changes nothing.
- It knows no SQL and no files: what it makes goes to a :class:`FrameSink`. The store's writer makes a
  frame's file durable before committing its row, on a thread that overlaps the next model call; a crash
  loses at most the frames still queued, which a resume recomputes bit for bit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from driftloop.cost import HostedEstimate, Meters, measure
from driftloop.errors import DriftloopError
from driftloop.frames import NewFrame, frame_sha256
from driftloop.replicators.base import (
    BatchAborted,
    Copy,
    Failure,
    Memory,
    Refusal,
    Replicator,
    StepContext,
    next_call_usd,
)

NO_METERS = Meters(meters=(), notes=())


def step_seed(chain_seed: int, step: int) -> int:
    """The seed of ``step`` in a chain: a 63-bit hash of (chain seed, step), never global RNG state."""
    digest = hashlib.sha256(f"driftloop/step-seed/{chain_seed}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class ChainState:
    """Where one chain stands: its seed, last step and frame, and the hashes of its recent frames."""

    chain: int
    seed: int
    step: int
    frame: np.ndarray
    recent: deque[str] = field(default_factory=deque)
    stopped: str | None = None
    origin: np.ndarray | None = None  # frame 0, for replicators that look at it (``prompt=auto``)
    memory: Memory | None = None  # the stored past, for a conversation; handed over with the next call


@dataclass(frozen=True)
class ProgressEvent:
    """Sent after every batch: how far the run is, in lockstep steps and in frames (copies)."""

    step: int
    n_steps: int
    frames_done: int
    frames_total: int
    model_seconds: float
    chains_done: int = 0  # run-wide figures an engine adds when it advances chains in groups
    chains_total: int = 0
    usd: float = 0.0
    seconds: float = 0.0


class FrameStabilizer(Protocol):
    """What the engine applies to each copy before it is stored and fed back (a
    :class:`driftloop.stabilizers.Stabilizer`, built by the start path from the run's ``stabilize``)."""

    spec: str

    @property
    def is_identity(self) -> bool:
        """True for ``none``: the copy is stored as the model made it."""

    def apply(self, frame: np.ndarray, origin: np.ndarray) -> np.ndarray:
        """The copy ``frame`` stabilized towards ``origin`` (the chain's frame 0)."""


@dataclass(frozen=True)
class EngineSettings:
    """How chains advance: total steps, chains per model call, the optional fixed-point stop, and the
    stabilizer applied to each copy (with ``keep_raw``, the model's own copy is stored beside it)."""

    n_steps: int
    batch_size: int | None = None
    stop_on_fixed_point: bool = False
    patience: int = 3
    refusal_retries: int = 2
    max_cost_usd: float | None = None
    stabilizer: FrameStabilizer | None = None
    keep_raw: bool = False
    restart_thread: bool = False  # a conversation model begins a new thread from each chain's last frame


def stabilize(
    settings: EngineSettings, state: ChainState, frame: np.ndarray, info: dict[str, Any] | None
) -> tuple[np.ndarray, dict[str, Any] | None, np.ndarray | None]:
    """A checked copy as it is stored: (frame that feeds the next copy, its info, the raw copy to keep).

    Without a stabilizer (or with ``none``) the copy is unchanged and nothing is added to its info, so a
    plain run's records are those of earlier releases.
    """
    stab = settings.stabilizer
    if stab is None or stab.is_identity:
        return frame, info, None
    if state.origin is None:
        raise DriftloopError(f"chain {state.chain}: stabilizer {stab.spec} needs the chain's frame 0")
    stabilized = np.ascontiguousarray(stab.apply(frame, state.origin))
    return stabilized, {**(info or {}), "stabilizer": stab.spec}, frame if settings.keep_raw else None


class FrameSink(Protocol):
    """Where the engine sends what it makes. The engine knows no SQL and no files: the local engine's sink
    is the store's :class:`driftloop.store.FrameWriter` (PNG, then row, on a background thread); the Ray
    engine's driver writes what its workers send through the same writer."""

    def write_frames(self, items: list[NewFrame]) -> None:
        """Store these frames (one step of some chains), in order."""

    def set_status(self, chain: int, status: str, reason: str | None = None) -> None:
        """Record that a chain ended (done, fixed_point, refused, error)."""

    def add_event(self, chain: int, step: int, kind: str, message: str) -> None:
        """Record something that happened to a chain at a step (a refusal, an error)."""


def batches(items: Sequence[ChainState], size: int | None) -> Iterator[list[ChainState]]:
    size = size or len(items)
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


Checked = tuple[np.ndarray, dict[str, Any] | None] | Refusal | Failure | None


def _check_outputs(
    replicator: Replicator, inputs: list[np.ndarray], outputs: object, partial: bool = False
) -> list[Checked]:
    """The engine's contract with a replicator: per input, a uint8 H×W×3 copy of the same shape, or a
    :class:`Refusal` / :class:`Failure` for that frame alone (and, from an aborted batch, ``None``: not made).

    Copies come back as (frame, info) pairs; ``info`` is what a :class:`Copy` carried, else ``None``.
    """
    if not isinstance(outputs, list | tuple) or len(outputs) != len(inputs):
        got = len(outputs) if isinstance(outputs, list | tuple) else type(outputs).__name__
        raise DriftloopError(f"model {replicator.spec}: returned {got} frames for {len(inputs)} inputs")
    checked: list[Checked] = []
    for src, out in zip(inputs, outputs, strict=True):
        if isinstance(out, Refusal | Failure) or (partial and out is None):
            checked.append(out)
            continue
        info = out.info if isinstance(out, Copy) else None
        frame = np.asarray(out.frame if isinstance(out, Copy) else out)
        if frame.dtype != np.uint8 or frame.shape != src.shape:
            raise DriftloopError(
                f"model {replicator.spec}: returned a {frame.dtype} array of shape {frame.shape}; "
                f"expected uint8 {src.shape} (an RGB copy the size of its input)"
            )
        checked.append((np.ascontiguousarray(frame), info))
    return checked


def fixed_point_reason(patience: int) -> str:
    """Why a chain stopped early, in words stored with it."""
    return f"no pixel change for {patience} steps"


def is_fixed_point(state: ChainState, patience: int) -> bool:
    """True once the last ``patience`` steps produced no pixel change."""
    return len(state.recent) > patience and len(set(list(state.recent)[-(patience + 1) :])) == 1


class BudgetReached(DriftloopError):
    """``--max-cost`` would be exceeded by the next model call; the run stops cleanly and can be resumed."""

    exit_code = 5


def _check_budget(
    max_cost: float | None, spent: float, per_copy: float, copies: int, total: float | None = None
) -> None:
    """Raise :class:`BudgetReached` before a call whose copies would take spending past ``max_cost``
    (``total``: the call's own estimate, for a model whose price grows call by call)."""
    cost = per_copy * copies if total is None else max(total, 0.0)
    if max_cost is not None and spent + cost > max_cost + 1e-9:
        raise BudgetReached(
            f"spent ${spent:.2f}; the next {copies} copies (≈ ${cost:.2f}) would pass "
            f"--max-cost ${max_cost:.2f}. Every finished frame is stored; resume with a higher --max-cost "
            "to continue"
        )


@dataclass
class _Call:
    """One replicate() call on some chains, measured."""

    checked: list[Checked]
    seconds: float
    costs: list[dict[str, Any] | None]
    aborted: BaseException | None = None  # the batch stopped part-way; raised once its copies are stored


def _call(
    replicator: Replicator,
    batch: list[ChainState],
    step: int,
    n_steps: int,
    meters: Meters | None,
    hosted: HostedEstimate | None,
) -> _Call:
    """One measured replicate() call making ``step`` for the chains in ``batch``."""
    inputs = [s.frame for s in batch]
    seeds = [step_seed(s.seed, step) for s in batch]
    extra: dict[str, Any] = {}
    if replicator.requirements.wants_context:  # chain seeds and step numbers, for seed policies and schedules
        chains = [s.chain for s in batch]
        origins = [s.origin if s.origin is not None else s.frame for s in batch]
        memories = [s.memory for s in batch]
        extra["context"] = StepContext(
            [s.seed for s in batch], [step] * len(batch), n_steps, chains, origins, memories
        )
        for s in batch:
            s.memory = None  # handed over once: the replicator keeps its conversation from here
    with measure(meters or NO_METERS) as measurement:
        started = time.perf_counter()
        aborted: BaseException | None = None
        try:
            raw: object = replicator.replicate(inputs, seeds, **extra)
        except BatchAborted as exc:
            raw, aborted = exc.outcomes, exc.cause
        seconds = time.perf_counter() - started
    checked = _check_outputs(replicator, inputs, raw, partial=aborted is not None)
    costs: list[dict[str, Any] | None] = [None] * len(batch)
    if meters is not None or hosted is not None:
        made = [c for c in checked if isinstance(c, tuple)]
        frame_costs = iter(measurement.frame_costs(len(made), hosted=hosted) if made else [])
        for i, c in enumerate(checked):
            if isinstance(c, tuple):
                cost = next(frame_costs)
                info = c[1] or {}
                if info.get("usd") is not None:
                    source = str(info.get("usd_source") or "reported by the replicator")
                    cost = dataclasses.replace(cost, usd=float(info["usd"]), usd_source=source)
                costs[i] = cost.to_dict()
    return _Call(checked, seconds, costs, aborted)


def advance(
    replicator: Replicator,
    states: list[ChainState],
    settings: EngineSettings,
    writer: FrameSink,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    meters: Meters | None = None,
    on_frames: Callable[[list[NewFrame]], None] | None = None,
    hosted: HostedEstimate | None = None,
    spent_usd: float = 0.0,
) -> None:
    """Advance every chain to ``settings.n_steps`` (or its fixed point), writing frames as they come.

    With ``meters``, each model call is measured (wall, CPU, energy) and its cost shared among its frames;
    ``hosted`` prices the copies of a hosted model. A refused frame is asked for again up to
    ``refusal_retries`` times, then its chain ends ``refused``; a failed frame ends its chain as ``error``.
    ``on_frames`` sees every batch of new frames (the metrics recorder listens here). With a
    ``max_cost_usd`` budget, :class:`BudgetReached` is raised before a call that could exceed it.
    """
    limit = replicator.requirements.max_batch
    size = min(x for x in (settings.batch_size, limit) if x) if (settings.batch_size or limit) else None
    price = replicator.requirements.cost_per_image_usd
    frames_total = sum(max(0, settings.n_steps - s.step) for s in states if not s.stopped)
    frames_done = 0
    paid_usd, paid_copies = 0.0, 0
    for s in states:
        s.recent = deque(s.recent, maxlen=settings.patience + 1)

    def stop(state: ChainState, status: str, reason: str) -> None:
        nonlocal frames_total
        state.stopped = status
        frames_total -= settings.n_steps - state.step
        writer.set_status(state.chain, status, reason)

    while True:
        active = [s for s in states if not s.stopped and s.step < settings.n_steps]
        if not active:
            break
        low = min(s.step for s in active)
        group = [s for s in active if s.step == low]
        for batch in batches(group, size):
            # price the next call at the listed price, or at what copies really cost so far if that is more
            per_copy = max(price, paid_usd / paid_copies) if paid_copies else price
            if settings.max_cost_usd is not None:
                total = next_call_usd(replicator, [s.chain for s in batch], low + 1)
                _check_budget(settings.max_cost_usd, spent_usd, per_copy, len(batch), total)
            seeds = [step_seed(s.seed, low + 1) for s in batch]
            call = _call(replicator, batch, low + 1, settings.n_steps, meters, hosted)
            results: dict[int, tuple[Checked, dict[str, Any] | None]] = {
                s.chain: (c, cost) for s, c, cost in zip(batch, call.checked, call.costs, strict=True)
            }
            aborted = call.aborted
            for attempt in range(1, settings.refusal_retries + 1):
                refused = [
                    s for s in batch
                    if isinstance(r := results[s.chain][0], Refusal) and r.retryable
                ]  # fmt: skip
                if not refused or aborted is not None:
                    break
                for s in refused:
                    reason = results[s.chain][0].reason  # type: ignore[union-attr]
                    writer.add_event(s.chain, low + 1, "refusal", f"attempt {attempt}: {reason}")
                try:
                    retry = _call(replicator, refused, low + 1, settings.n_steps, meters, hosted)
                except BaseException as exc:  # the first call's copies are still stored, then this re-raised
                    aborted = exc
                    break
                results.update(
                    {
                        s.chain: (c, cost)
                        for s, c, cost in zip(refused, retry.checked, retry.costs, strict=True)
                    }
                )
                aborted = retry.aborted
            made: list[NewFrame] = []
            for s, seed in zip(batch, seeds, strict=True):
                outcome, cost = results[s.chain]
                if outcome is None or (aborted is not None and isinstance(outcome, Refusal)):
                    continue  # not made before the batch was aborted: a resume asks for it
                if isinstance(outcome, Refusal):
                    writer.add_event(s.chain, low + 1, "refusal", f"final: {outcome.reason}")
                    stop(s, "refused", f"refused at step {low + 1}: {outcome.reason}")
                elif isinstance(outcome, Failure):
                    writer.add_event(s.chain, low + 1, "error", outcome.message)
                    stop(s, "error", f"failed at step {low + 1}: {outcome.message}")
                else:
                    frame, info, raw = stabilize(settings, s, *outcome)
                    made.append(
                        NewFrame(
                            s.chain,
                            low + 1,
                            seed,
                            frame,
                            frame_sha256(frame),
                            call.seconds / len(batch),
                            info,
                            cost,
                            raw,
                        )
                    )
                    usd = (cost or {}).get("usd") or 0.0
                    spent_usd, paid_usd, paid_copies = spent_usd + usd, paid_usd + usd, paid_copies + 1
            if made:
                writer.write_frames(made)
                if on_frames:
                    on_frames(made)
            by_chain = {f.chain: f for f in made}
            for s in batch:
                new = by_chain.get(s.chain)
                if new is None:
                    continue
                s.frame, s.step = new.frame, new.step
                s.recent.append(new.sha256)
                if settings.stop_on_fixed_point and is_fixed_point(s, settings.patience):
                    stop(s, "fixed_point", fixed_point_reason(settings.patience))
            frames_done += len(made)
            if aborted is not None:
                raise aborted  # after the copies it made were queued for the store
            if on_progress:
                on_progress(ProgressEvent(low + 1, settings.n_steps, frames_done, frames_total, call.seconds))
    for s in states:
        if not s.stopped:
            s.stopped = "done"
            writer.set_status(s.chain, "done")
