"""Chains in groups: what every engine advances, a group at a time, so memory is bounded in the chain count.

A run's unfinished chains are listed as light :class:`Pending` records (no pixels). An engine takes them in
groups of the batch size the model wants (:func:`group_size`), loads a group's frames only when the group
starts (:func:`load_group`: the last stored frame, or frame 0 from the input for a chain not started yet),
advances the group with :func:`driftloop.chain.advance` exactly as a single lockstep run of those chains
would, and lets the frames go once they are stored. The same batch composition gives the same frames, on
any engine and after any resume.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftloop import chain as core
from driftloop.errors import DriftloopError
from driftloop.frames import NewFrame, frame_sha256, read_frame
from driftloop.replicators.base import Memory, Replicator
from driftloop.store import Store

DEFAULT_GROUP = 64
"""Chains per group when neither ``--batch-size`` nor the model sets a batch size."""

Origin = Callable[[int], np.ndarray]  # chain number -> its frame 0 (the normalised input)


@dataclass(frozen=True)
class Pending:
    """An unfinished chain, without pixels: its number, seed and last stored step (-1: nothing stored)."""

    chain: int
    seed: int
    step: int


def group_size(replicator: Replicator, settings: core.EngineSettings) -> int:
    """Chains per group: the batch size asked for, else the model's batch limit, else :data:`DEFAULT_GROUP`.

    The same number is the engine's batch size inside a group, so a group is exactly one batch per step.
    """
    limit = replicator.requirements.max_batch
    given = [x for x in (settings.batch_size, limit) if x]
    return min(given) if given else DEFAULT_GROUP


def groups(pending: Sequence[Pending], size: int) -> Iterator[list[Pending]]:
    """The pending chains in chain order, ``size`` at a time."""
    ordered = sorted(pending, key=lambda p: p.chain)
    for i in range(0, len(ordered), size):
        yield ordered[i : i + size]


def frames_left(pending: Sequence[Pending], n_steps: int) -> int:
    """Copies still to make for these chains (a chain with nothing stored still needs ``n_steps``)."""
    return sum(max(0, n_steps - max(p.step, 0)) for p in pending)


@dataclass
class Loaded:
    """A group ready to advance: its states, the frame-0 records to store first, and the chains that turned
    out to be finished (a fixed point reached before an interruption, its status not yet committed)."""

    states: list[core.ChainState]
    first: list[NewFrame]
    finished: list[int]


def load_group(
    store: Store,
    run_id: str,
    group: Sequence[Pending],
    origin: Origin,
    settings: core.EngineSettings,
    wants_origin: bool,
    memory: int = 0,
) -> Loaded:
    """Read a group's chains back: the last stored frame (checked against its sha256) and the hashes of
    the recent ones; a chain with nothing stored starts from ``origin(chain)``, stored as its frame 0.
    ``memory``: how many stored frames a conversation model needs (-1: all; see ``Requirements.memory``)."""
    states: list[core.ChainState] = []
    first: list[NewFrame] = []
    finished: list[int] = []
    keep = settings.patience + 1
    for p in group:
        if p.step < 0:
            frame = origin(p.chain)
            sha = frame_sha256(frame)
            first.append(NewFrame(p.chain, 0, None, frame, sha))
            states.append(core.ChainState(p.chain, p.seed, 0, frame, recent=[sha], origin=frame))
            continue
        rows = store.frames(run_id, p.chain)
        if not rows:
            raise DriftloopError(f"run {run_id}: chain {p.chain} has no stored frame 0; start a new run")
        last = rows[-1]
        frame = read_frame(store.run_dir(run_id) / last.path)
        if frame_sha256(frame) != last.sha256:
            raise DriftloopError(
                f"run {run_id}: {store.run_dir(run_id) / last.path} does not match its recorded sha256; "
                "the file was changed after it was written"
            )
        first_frame = None  # frame 0, read back only for a replicator that looks at it (``prompt=auto``)
        if wants_origin:
            first_frame = frame if last.step == 0 else read_frame(store.run_dir(run_id) / rows[0].path)
        state = core.ChainState(
            p.chain, p.seed, last.step, frame, recent=[r.sha256 for r in rows[-keep:]], origin=first_frame
        )
        if memory:
            state.memory = _memory(store, run_id, rows, frame, memory, settings.restart_thread)
        if settings.stop_on_fixed_point and core.is_fixed_point(state, settings.patience):
            store.set_chain_status(run_id, p.chain, "fixed_point", core.fixed_point_reason(settings.patience))
            finished.append(p.chain)
            continue
        states.append(state)
    return Loaded(states, first, finished)


def _memory(
    store: Store, run_id: str, rows: Sequence[Any], last: np.ndarray, depth: int, restart: bool
) -> Memory:
    """A chain's last ``depth`` stored frames (all for -1; only the last when the thread restarts) with
    their info, oldest first: what a conversation model rebuilds its thread from."""
    wanted = rows[-1:] if restart else (list(rows) if depth < 0 else list(rows[-depth:]))
    frames = [
        (r.step, last if r is rows[-1] else read_frame(store.run_dir(run_id) / r.path), r.info)
        for r in wanted
    ]
    return Memory(frames, restart)


class RunProgress:
    """Turns each group's progress events into one run-wide event: copies done of all still to make,
    chains finished, copies per second and money spent so far (what the progress bar shows)."""

    def __init__(
        self,
        pending: Sequence[Pending],
        n_steps: int,
        on_progress: Callable[[core.ProgressEvent], None] | None,
        spent_usd: float = 0.0,
    ) -> None:
        self.frames_total = frames_left(pending, n_steps)
        self.chains_total = len(pending)
        self.n_steps = n_steps
        self.frames_done = 0
        self.chains_done = 0
        self.spent_usd = spent_usd
        self.on_progress = on_progress
        self.started = time.perf_counter()
        self._last = (0, 0.0)  # step and model seconds of the latest event
        self._groups: dict[int, tuple[int, int]] = {}  # group -> (its copies planned, done) at its last event

    def start_group(self, key: int, group: Sequence[Pending]) -> None:
        self._groups[key] = (frames_left(group, self.n_steps), 0)

    def frames(self, made: Sequence[NewFrame]) -> None:
        """Count the money of copies as they are stored."""
        self.spent_usd += sum((f.cost or {}).get("usd") or 0.0 for f in made if f.step > 0)

    def group_event(self, key: int, event: core.ProgressEvent) -> None:
        """A group's own progress event (its copies done and still planned) folded into the run's."""
        total, done = self._groups[key]
        self.frames_total += event.frames_total - total  # a chain that stops early leaves the total
        self.frames_done += event.frames_done - done
        self._groups[key] = (event.frames_total, event.frames_done)
        self._last = (event.step, event.model_seconds)
        self.emit(*self._last)

    def end_group(self, key: int, chains: int) -> None:
        """A group is over (or given up, for ``chains`` of its chains): they count as done."""
        self._groups.pop(key, None)
        self.chains_done += chains
        self.emit(*self._last)

    def emit(self, step: int, model_seconds: float) -> None:
        if self.on_progress is None:
            return
        self.on_progress(
            core.ProgressEvent(
                step, self.n_steps, self.frames_done, max(self.frames_total, self.frames_done), model_seconds,
                chains_done=self.chains_done, chains_total=self.chains_total, usd=self.spent_usd,
                seconds=time.perf_counter() - self.started,
            )
        )  # fmt: skip


def needs_origin(replicator: Replicator, settings: core.EngineSettings) -> bool:
    """Whether chains carry their frame 0 along: a replicator that looks at it (``prompt=auto``), or a
    stabilizer, which matches each copy to it."""
    return replicator.requirements.wants_context or settings.stabilizer is not None
