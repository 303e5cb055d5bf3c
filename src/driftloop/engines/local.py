"""The local engine: advance a run's chains in this process, a group at a time, under the run's lock.

Frames go to the store's writer thread (PNG, then row) and, when measuring, to the metrics thread; both
overlap the next model call. Whatever happens (done, budget, Ctrl-C, a crash in the model), the run's
status is set to what is true before the exception leaves. :class:`Session` is that bookkeeping, shared
with the Ray engine, whose driver writes what its workers send through the same writer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from types import TracebackType

from driftloop import chain as core
from driftloop._signals import stop_on_signals
from driftloop.cost import HostedEstimate, Meters
from driftloop.engines.groups import (
    Origin,
    Pending,
    RunProgress,
    group_size,
    groups,
    load_group,
    needs_origin,
)
from driftloop.errors import RunInterrupted, RunStopped, StopRequested, storage_error
from driftloop.frames import NewFrame, read_frame
from driftloop.metrics.recorder import MetricsRecorder, MetricsSettings, missing_frames
from driftloop.replicators.base import Replicator
from driftloop.store import FrameWriter, Store, mark_stopped

ProgressCallback = Callable[[core.ProgressEvent], None]


class Session:
    """One engine's time on a run: the writer and metrics threads, and the run's status kept true.

    ``with Session(...) as s:`` sets the run ``running``; on leaving it flushes the writer and the metrics,
    then sets ``done``, ``budget``, ``interrupted`` (Ctrl-C, re-raised as :class:`RunInterrupted`),
    ``stopped`` (SIGTERM/SIGHUP, re-raised as :class:`RunStopped`; a full or read-only disk, re-raised as
    the :class:`~driftloop.errors.StorageError` that says how to resume) or ``failed``.
    """

    def __init__(self, store: Store, run_id: str, metrics: MetricsSettings | None) -> None:
        self.store, self.run_id = store, run_id
        store.set_run_status(run_id, "running", pid=os.getpid())
        self.writer = FrameWriter(store, run_id)
        self.recorder = (
            MetricsRecorder(store, run_id, metrics, on_error=lambda m: store.add_event(run_id, "metrics", m))
            if metrics is not None
            else None
        )
        if self.recorder is not None:
            self.recorder.submit_many(
                (c, s, read_frame(store.frame_path(run_id, c, s))) for c, s in missing_frames(store, run_id)
            )

    def on_frames(self, made: Sequence[NewFrame]) -> None:
        """Frames just queued for the store, for the metrics thread."""
        if self.recorder is not None:
            self.recorder.submit_many((f.chain, f.step, f.frame) for f in made)

    def store_frames(self, made: list[NewFrame], encoded: Sequence[bytes] | None = None) -> None:
        """Queue frames for the store (atomic PNG, then row) and for the metrics thread; ``encoded``: their
        PNG files, when a worker already encoded them."""
        self.writer.write_frames(made, encoded)
        self.on_frames(made)

    def done_with(self, chains: Sequence[int]) -> None:
        """A group left memory: drop its chains' cached metric features."""
        if self.recorder is not None:
            self.recorder.forget(chains)

    def flush(self) -> None:
        """Wait until everything queued so far is stored (before re-reading chains from the store)."""
        stored = threading.Event()
        self.writer.submit(stored.set)
        while not stored.wait(0.05):
            self.writer.check()
        self.writer.check()

    def spent_usd(self) -> float:
        return sum((r.cost or {}).get("usd") or 0.0 for r in self.store.frames(self.run_id))

    def __enter__(self) -> Session:
        self._signals = stop_on_signals()  # SIGTERM/SIGHUP stop the run like Ctrl-C, from here on
        self._signals.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        outcome = _Outcome()
        if exc is not None:
            outcome.failed(exc, self.store, self.run_id)
        # Both threads are stopped whatever happens: a worker thread left running inside C++ code (the
        # metrics' FFT) when the interpreter exits is killed mid-call, and the process aborts.
        closers = [self.writer.close] + ([self.recorder.close] if self.recorder is not None else [])
        for close in closers:
            try:
                close()
            except BaseException as failure:
                outcome.failed(failure, self.store, self.run_id, writing=True)
        self._signals.__exit__(None, None, None)
        _settle(self.store, self.run_id, outcome)


def execute(
    store: Store,
    run_id: str,
    replicator: Replicator,
    pending: list[Pending],
    settings: core.EngineSettings,
    progress: ProgressCallback | None,
    origin: Origin,
    meters: Meters | None = None,
    metrics: MetricsSettings | None = None,
    hosted: HostedEstimate | None = None,
) -> None:
    """Advance the chains a group at a time, keeping the run's status true whatever happens (the caller
    holds the lock). A group's frames are loaded when it starts and leave memory once it is done."""
    size = group_size(replicator, settings)
    inner = dataclasses.replace(settings, batch_size=size)
    wants_origin = needs_origin(replicator, settings)
    with Session(store, run_id, metrics) as session:
        tracker = RunProgress(pending, settings.n_steps, progress, session.spent_usd())

        def on_frames(made: list[NewFrame]) -> None:
            session.on_frames(made)
            tracker.frames(made)

        for key, group in enumerate(groups(pending, size)):
            loaded = load_group(
                store, run_id, group, origin, settings, wants_origin, replicator.requirements.memory
            )
            tracker.start_group(key, [p for p in group if p.chain not in loaded.finished])
            if loaded.first:
                session.store_frames(loaded.first)
            core.advance(
                replicator, loaded.states, inner, session.writer,
                lambda event, key=key: tracker.group_event(key, event), meters, on_frames, hosted,
                tracker.spent_usd,
            )  # fmt: skip
            tracker.end_group(key, len(group))
            session.done_with([p.chain for p in group])


class _Outcome:
    """How an advance ended, and the one error to raise once the run's status is stored."""

    def __init__(self) -> None:
        self.status: str = "done"
        self.error: str | None = None
        self.raise_: BaseException | None = None

    def failed(self, exc: BaseException, store: Store, run_id: str, writing: bool = False) -> None:
        if self.raise_ is not None and self.status != "failed":
            return  # already stopping (a signal, Ctrl-C, a full disk): later errors are its consequences
        if isinstance(exc, core.BudgetReached):
            self.status, self.raise_ = "budget", exc
        elif isinstance(exc, KeyboardInterrupt):
            self.status, self.raise_ = "interrupted", RunInterrupted(run_id, str(store.root))
        elif isinstance(exc, RunInterrupted):
            self.status, self.raise_ = "interrupted", exc
        elif isinstance(exc, StopRequested):
            self.status, self.raise_ = "stopped", RunStopped(run_id, store.root, exc.signum)
        elif storage_error(exc, store.root, 0, run_id) is not None:
            self.status, self.raise_ = "stopped", exc  # the frame count is known once the writer is done
        elif self.raise_ is None:
            self.status, self.raise_ = "failed", exc
            self.error = f"writing frames: {exc}" if writing else str(exc)


def _settle(store: Store, run_id: str, outcome: _Outcome) -> None:
    """Store the run's final status, then raise what ended it (once, with a message that says what to do).

    When the disk is full, the status itself may not fit: an empty marker file (no data block) says
    "stopped" instead, and the store folds it in when the run is next opened for writing.
    """
    exc = outcome.raise_
    full = exc is not None and storage_error(exc, store.root, 0, run_id) is not None
    if full:
        with contextlib.suppress(Exception):
            store.clean_orphans(run_id)  # only deletes: needs no space
    try:
        store.set_run_status(run_id, outcome.status, error=outcome.error)
        if outcome.error:
            store.add_event(run_id, "error", outcome.error)
    except BaseException as status_exc:
        if storage_error(status_exc, store.root, 0, run_id) is None:
            raise
        mark_stopped(store.run_dir(run_id))
    if full:
        assert exc is not None
        stored = storage_error(exc, store.root, frames_stored(store, run_id), run_id)
        raise stored from None
    if exc is not None:
        raise exc


def frames_stored(store: Store, run_id: str) -> int:
    """How many frames a run has stored, for a message about a run the disk stopped (0 if unreadable)."""
    with contextlib.suppress(Exception):
        return len(store.frames(run_id))
    return 0
