"""The local engine: advance a run's chains in this process, under the run's lock.

Frames go to the store's writer thread (PNG, then row) and, when measuring, to the metrics thread; both
overlap the next model call. Whatever happens (done, budget, Ctrl-C, a crash in the model), the run's
status is set to what is true before the exception leaves.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from driftloop import chain as core
from driftloop.cost import HostedEstimate, Meters
from driftloop.errors import RunInterrupted
from driftloop.frames import NewFrame, frame_sha256, read_frame
from driftloop.metrics.recorder import MetricsRecorder, MetricsSettings, missing_frames
from driftloop.replicators.base import Replicator
from driftloop.store import FrameWriter, Store

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
    write_first: bool,
    meters: Meters | None = None,
    metrics: MetricsSettings | None = None,
    hosted: HostedEstimate | None = None,
) -> None:
    """Advance the chains, keeping the run's status true whatever happens (the caller holds the lock).

    Frames go to the writer thread (disk, then database) and, with ``metrics``, to the metrics thread.
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
    status, error = "done", None
    try:
        if write_first:
            first = write_frame0(states, writer)
            if on_frames:
                on_frames(first)
        spent = sum((r.cost or {}).get("usd") or 0.0 for r in store.frames(run_id))
        core.advance(replicator, states, settings, writer, progress, meters, on_frames, hosted, spent)
    except core.BudgetReached:
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
