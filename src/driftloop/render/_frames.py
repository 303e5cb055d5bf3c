"""Frame checks and resizing shared by the GIF, MP4 and contact-sheet writers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from driftloop.errors import RenderError

__all__ = ["as_rgb", "check_frames", "check_timing", "fit_size", "resized"]


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """Return ``frame`` as a C-contiguous HxWx3 uint8 array, or raise ``ValueError``.

    A wrong shape or dtype is a bug in the caller (the store only ever hands out RGB uint8 frames), so
    this is a ``ValueError`` rather than a ``DriftloopError``.
    """
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"expected an HxWx3 uint8 frame, got shape {arr.shape} dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def check_frames(frames: Sequence[tuple[int, np.ndarray]]) -> None:
    """Refuse an empty frame list up front, before any output file is created."""
    if len(frames) == 0:
        raise RenderError("nothing to render: the frame list is empty")


def check_timing(fps: float, hold_last: float) -> None:
    """Validate the timing options, which usually come straight from the command line."""
    if not (math.isfinite(fps) and fps > 0):
        raise RenderError(f"fps must be a positive number, got {fps!r}")
    if not (math.isfinite(hold_last) and hold_last >= 0):
        raise RenderError(f"hold_last must be zero or a positive number of seconds, got {hold_last!r}")


def fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Scale (width, height) down, keeping the aspect ratio, so the longer side is <= ``max_side``.

    Never scales up: enlarging adds bytes without adding information.
    """
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resized(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Return ``frame`` resized to ``size`` = (width, height) with Lanczos, or unchanged if it already fits.

    Every frame of an animation is brought to the first frame's output size, because GIF and H.264 need
    one size per file and a replicator may (rarely) change the size along a chain.
    """
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.LANCZOS))
