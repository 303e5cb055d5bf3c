"""The frame writer: makes frames durable, then commits their rows, on a background thread.

A frame exists iff its row exists: the PNG is written atomically first, its row committed after, in
submission order, on a thread that overlaps the next model call (at a lower priority, so it yields to the
model's compute threads). It is the engine's :class:`driftloop.chain.FrameSink` for the local engine, and
the Ray engine's driver writes what its workers send through it too.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

from driftloop.background import yield_to_model
from driftloop.frames import NewFrame, frame_sha256, write_png_atomic, write_png_bytes_atomic
from driftloop.store.db import FrameRow, Store

__all__ = ["FrameWriter"]


class FrameWriter:
    """Background thread that makes frames durable, then commits their rows, in submission order."""

    _STOP = object()

    def __init__(self, store: Store, run_id: str, depth: int = 2) -> None:
        self.store = store
        self.run_id = run_id
        self.error: BaseException | None = None
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._work, name="driftloop-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        yield_to_model()
        while (item := self._queue.get()) is not self._STOP:
            if self.error is None:
                try:
                    item()  # type: ignore[operator]
                except BaseException as exc:
                    self.error = exc

    def submit(self, job: Callable[[], None]) -> None:
        self.check()
        self._queue.put(job)

    def write_frames(self, items: list[NewFrame], encoded: Sequence[bytes] | None = None,
                     metrics: list[tuple[int, int, dict[str, float]]] | None = None) -> None:  # fmt: skip
        """Queue frames to write and commit as one transaction. ``encoded``: their PNG files, already
        encoded (by :func:`driftloop.frames.encode_png`, e.g. on a Ray worker), written as they are;
        ``metrics``: their metrics rows, measured where they were made, committed with them."""

        def job() -> None:
            rows = []
            for i, f in enumerate(items):
                path = self.store.frame_path(self.run_id, f.chain, f.step)
                path.parent.mkdir(parents=True, exist_ok=True)
                info = f.info
                if f.raw is not None:  # the model's copy before the stabilizer: durable before its row too
                    raw_rel = self.store.raw_relpath(f.chain, f.step)
                    write_png_atomic(self.store.run_dir(self.run_id) / raw_rel, f.raw)
                    info = {**(info or {}), "raw_path": raw_rel, "raw_sha256": frame_sha256(f.raw)}
                if encoded is not None:
                    write_png_bytes_atomic(path, encoded[i])
                else:
                    write_png_atomic(path, f.frame)
                relpath = self.store.frame_relpath(f.chain, f.step)
                rows.append(
                    FrameRow(self.run_id, f.chain, f.step, f.seed, f.sha256, relpath, f.model_seconds,
                             time.time(), info, f.cost)
                )  # fmt: skip
            self.store.add_frames(rows, metrics)

        self.submit(job)

    def add_metrics(self, rows: list[tuple[int, int, dict[str, float]]]) -> None:
        """Queue metrics rows measured elsewhere (on a Ray worker), stored after the frames queued before."""
        if rows:
            self.submit(lambda: self.store.add_metrics(self.run_id, rows))

    def set_status(self, chain: int, status: str, reason: str | None = None) -> None:
        self.submit(lambda: self.store.set_chain_status(self.run_id, chain, status, reason))

    def add_event(self, chain: int, step: int, kind: str, message: str) -> None:
        self.submit(lambda: self.store.add_event(self.run_id, kind, message, chain=chain, step=step))

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Flush everything queued, stop the thread, and re-raise a write error if there was one."""
        self._queue.put(self._STOP)
        self._thread.join()
        self.check()
