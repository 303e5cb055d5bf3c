"""Frames on disk: their identity (sha256 of the pixels), and writing and reading them as PNG.

A *frame* is an ``H x W x 3`` ``uint8`` C-contiguous numpy array in RGB order. Between steps every frame
is stored as a lossless PNG, exactly what a person saving and re-uploading would do, and what makes a
resumed chain bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from driftloop._fs import atomic_write

__all__ = ["NewFrame", "encode_png", "frame_sha256", "is_temp_file", "read_frame", "write_png_atomic"]

TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")  # what driftloop._fs.atomic_write names a temp file
LEGACY_TEMP_PREFIX = ".tmp-"
LEGACY_TEMP_SUFFIX = ".png.part"


@dataclass(frozen=True)
class NewFrame:
    """A frame a model made, with what is recorded about it: the unit the engine hands to the store."""

    chain: int
    step: int
    seed: int | None
    frame: np.ndarray
    sha256: str
    model_seconds: float | None = None
    info: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None
    raw: np.ndarray | None = None  # the model's own copy, when a stabilizer changed it and it is kept


def frame_sha256(frame: np.ndarray) -> str:
    """Return the sha256 hex digest of a frame's raw pixel bytes: the identity of a frame.

    Only the bytes are hashed (not the shape), so two frames of different shape but identical bytes
    would collide; callers that mix sizes should key on ``(shape, hash)``. The frame is validated first
    so that a float or int16 array is rejected instead of being silently cast to a different identity.
    """
    _check_frame(frame)
    return hashlib.sha256(np.ascontiguousarray(frame, dtype=np.uint8).tobytes()).hexdigest()


def is_temp_file(name: str) -> bool:
    """Tell whether ``name`` (a file name or path) is a leftover temp file of :func:`write_png_atomic`
    (or of an older release's).

    A crash between creating the temp file and renaming it leaves one behind; a resume uses this to find
    and delete them without touching anything else in the directory.
    """
    base = os.path.basename(os.fspath(name))
    legacy = (  # driftloop 0.1.0's own temp names
        len(base) > len(LEGACY_TEMP_PREFIX) + len(LEGACY_TEMP_SUFFIX)
        and base.startswith(LEGACY_TEMP_PREFIX)
        and base.endswith(LEGACY_TEMP_SUFFIX)
    )
    return legacy or TEMP_NAME.fullmatch(base) is not None


def write_png_atomic(path: Path, frame: np.ndarray, compress_level: int = 1) -> None:
    """Write ``frame`` to ``path`` as a PNG so that ``path`` is either the old file or the complete new one.

    Runs are long and get interrupted; a half-written frame that looks like a real one would poison a
    resume. So the PNG goes through the package's one atomic write (:func:`driftloop._fs.atomic_write`:
    a temp file in the same folder, fsynced, renamed over ``path``, the folder fsynced). Any failure
    removes the temp file and leaves ``path`` untouched.

    PNG is lossless, and Pillow writes no timestamps or other varying chunks, so the same frame and
    ``compress_level`` give byte-identical files (with the same zlib). Level 1 is the default because
    frames are written on every step and size matters less than time.

    Raises ``ValueError`` for a frame that is not ``H x W x 3 uint8`` or a level outside 0-9.
    """
    write_png_bytes_atomic(path, encode_png(frame, compress_level))


def encode_png(frame: np.ndarray, compress_level: int = 1) -> bytes:
    """The PNG file :func:`write_png_atomic` writes for ``frame``, as bytes: what a Ray worker encodes, so
    the driver that stores every frame only writes files (encoding is most of the cost of storing one)."""
    _check_frame(frame)
    _check_int("compress_level", compress_level, 0, 9)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(out, format="PNG", compress_level=compress_level,
                                                      optimize=False)  # fmt: skip
    return out.getvalue()


def write_png_bytes_atomic(path: Path, png: bytes) -> None:
    """Write an encoded frame (from :func:`encode_png`) atomically, as :func:`write_png_atomic` does."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(png)


def read_frame(path: Path) -> np.ndarray:
    """Read a PNG written by :func:`write_png_atomic` back into an ``H x W x 3 uint8`` frame.

    Only PNG is accepted and only RGB: a frame file that is anything else was not written by us, and
    converting it silently would give it a different identity than the one recorded for it. Pillow's
    ``OSError``/``ValueError`` propagate unchanged; the store decides what a damaged frame file means.
    """
    with Image.open(path, formats=["PNG"]) as img:
        img.load()
        if img.mode != "RGB":
            raise ValueError(f"{path}: expected an RGB PNG frame, found mode {img.mode}")
        return np.array(img, dtype=np.uint8)


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    """Reject non-integers (bool and float included: ``size=512.0`` hides a bug upstream) and out-of-range."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {bounds}, got {value!r}")


def _check_frame(frame: np.ndarray) -> None:
    """Frames are ``H x W x 3 uint8``; anything else here is a programming error."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must have dtype uint8, got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"frame must have shape (H, W, 3) with H, W >= 1, got {frame.shape}")
