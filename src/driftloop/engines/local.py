"""The local engine: advance a run's chains in this process, under the run's lock.

Frames go to the store's writer thread (PNG, then row) and, when measuring, to the metrics thread; both
overlap the next model call. Whatever happens (done, budget, Ctrl-C, a crash in the model), the run's
status is set to what is true before the exception leaves.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from driftloop import chain as core
from driftloop._signals import stop_on_signals
from driftloop.cost import HostedEstimate, Meters
from driftloop.errors import RunInterrupted, RunStopped, StopRequested, storage_error
from driftloop.frames import NewFrame, frame_sha256, read_frame
from driftloop.metrics.recorder import MetricsRecorder, MetricsSettings, missing_frames
from driftloop.replicators.base import Replicator
from driftloop.store import FrameWriter, Store, mark_stopped

ProgressCallback = Callable[[core.ProgressEvent], None]


def write_frame0(states: list[core.ChainState], writer: FrameWriter) -> list[NewFrame]:
    """Store every chain's frame 0 (the normalised input)."""
    first = [NewFrame(s.chain, 0, None, s.frame, frame_sha256(s.frame)) for s in states]
    writer.write_frames(first)
    return first


def execute(
    store: Store,
    run_id: str,
    replicator: Replicator,
    states: list[core.ChainState],
    settings: core.EngineSettings,
    progress: ProgressCallback | None,
    write_first: bool | list[core.ChainState],
    meters: Meters | None = None,
    metrics: MetricsSettings | None = None,
    hosted: HostedEstimate | None = None,
) -> None:
    """Advance the chains, keeping the run's status true whatever happens (the caller holds the lock).

    Frames go to the writer thread (disk, then database) and, with ``metrics``, to the metrics thread.
    ``write_first`` stores frame 0 first: of every chain (``True``) or of the chains listed.
    """
    store.set_run_status(run_id, "running", pid=os.getpid())
    writer = FrameWriter(store, run_id)
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
    outcome = _Outcome()
    with stop_on_signals():
        try:
            if (
                write_first
            ):  # True: every chain's frame 0; a list: those chains' (resumed before it was stored)
                first = write_frame0(states if write_first is True else write_first, writer)
                if on_frames:
                    on_frames(first)
            spent = sum((r.cost or {}).get("usd") or 0.0 for r in store.frames(run_id))
            core.advance(replicator, states, settings, writer, progress, meters, on_frames, hosted, spent)
        except BaseException as exc:
            outcome.failed(exc, store, run_id)
        finally:
            try:
                writer.close()
                if recorder is not None:
                    recorder.close()
            except BaseException as exc:
                outcome.failed(exc, store, run_id, writing=True)
    _settle(store, run_id, outcome)


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
        stored = storage_error(exc, store.root, _frames_stored(store, run_id), run_id)
        raise stored from None
    if exc is not None:
        raise exc


def _frames_stored(store: Store, run_id: str) -> int:
    with contextlib.suppress(Exception):
        return len(store.frames(run_id))
    return 0
