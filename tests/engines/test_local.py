"""The local engine's session: whatever ends a run, its background threads end with it."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import numpy as np
import pytest

import driftloop
from driftloop.errors import StorageFullError
from driftloop.frames import write_png_atomic


def _background_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("driftloop-writer", "driftloop-metrics")]


def test_a_full_disk_stops_the_writer_and_the_metrics_thread(
    sample_images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write error surfaces from the writer's close; the metrics thread must still be stopped, or it
    may be inside the FFT when the interpreter exits, which aborts the process (exit -6, not 5)."""
    written = 0

    def fills_up(path, frame, compress_level=1):
        nonlocal written
        written += 1
        if written > 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write_png_atomic(path, frame, compress_level)

    monkeypatch.setattr("driftloop.store.writer.write_png_atomic", fills_up)
    before = _background_threads()
    with pytest.raises(StorageFullError, match="3 frames are stored"):
        driftloop.run(sample_images["chelsea.jpg"], model=lambda fs, ss: [np.flipud(f) for f in fs], n=8,
                      size=32, workspace=tmp_path / "ws", render=False)  # fmt: skip
    assert _background_threads() == before
    (view,) = driftloop.runs(tmp_path / "ws")
    assert view.status == "stopped"


def test_a_model_error_stops_both_threads(sample_images, tmp_path: Path) -> None:
    def breaks(frames, seeds):
        raise RuntimeError("the model broke")

    before = _background_threads()
    with pytest.raises(RuntimeError, match="the model broke"):
        driftloop.run(sample_images["chelsea.jpg"], model=breaks, n=3, size=32, workspace=tmp_path / "ws",
                      render=False)  # fmt: skip
    assert _background_threads() == before
