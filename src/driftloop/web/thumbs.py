"""Thumbnails of frames, made once and kept in the workspace (``WORKSPACE/.thumbs/<sha256>-<size>.webp``).

A frame never changes (it is named by the sha256 of its pixels), so neither does its thumbnail: the
runs page of a thousand runs makes each thumbnail the first time it is shown and reads it from disk after.
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from driftloop._fs import atomic_write

THUMB_SIZES = (64, 128, 256)
_SHA = re.compile(r"[0-9a-f]{64}")


def thumb_path(folder: Path, sha256: str, size: int) -> Path:
    """Where the thumbnail of a frame lives; ``sha256`` and ``size`` are checked, never taken as a path."""
    if not _SHA.fullmatch(sha256) or size not in THUMB_SIZES:
        raise ValueError(f"not a frame id and thumbnail size: {sha256!r}, {size!r}")
    return folder / f"{sha256}-{size}.webp"


def thumbnail(folder: Path, frame_file: Path, sha256: str, size: int) -> Path:
    """The thumbnail of a stored frame (longest side ``size``), made and written atomically if missing."""
    target = thumb_path(folder, sha256, size)
    if target.is_file():
        return target
    with Image.open(frame_file) as img:
        img = img.convert("RGB")
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
        with atomic_write(target) as tmp:
            img.save(tmp, format="WEBP", quality=82, method=4)
    return target
