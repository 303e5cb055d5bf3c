"""The one atomic file write, the one JSON cleaner and the one file hash of the package.

Outputs (GIFs, MP4s, contact sheets, reports, JSON, exports) take time to produce and are often watched
by a file browser, a web server or a notebook while they are being written. Writing to a temporary
file in the *same* folder
(so ``os.replace`` is a rename on one file system, never a copy) and renaming it over the target once
it is complete means a reader sees either the old file or the new one, never a truncated one, and a
crash leaves no half-written target behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["JSON_DIGITS", "atomic_write", "file_sha256", "json_safe", "write_text_atomic"]

_TEMP_ATTEMPTS = 100

#: Significant digits of every float written to JSON. Far finer than any measure resolves (SSIM's fourth
#: decimal, a tenth of a kelvin), and coarser than the last-bit noise between CPUs and BLAS builds
#: (~1e-15 relative), which the 17 digits of a float's ``repr`` would carry into the file.
JSON_DIGITS = 12


def _reserve_temp(parent: Path, name: str) -> Path:
    """Create an empty, uniquely named temp file next to the target and return its path.

    ``os.open`` with ``O_EXCL`` and mode 0o666 (instead of ``tempfile.mkstemp``) so the final file gets
    the permissions the user's umask asks for: ``mkstemp`` creates 0o600 files, which would make
    rendered GIFs unreadable to e.g. a web server after the rename.
    """
    for _ in range(_TEMP_ATTEMPTS):
        candidate = parent / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"could not create a temporary file for {name!r} in {parent}")


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    """Flush a file (or a folder's entry list) to disk so a power cut cannot undo a completed rename."""
    flags = os.O_RDONLY
    if directory:
        # Not every platform/file system can open or fsync a directory; the rename is still atomic.
        with contextlib.suppress(OSError):
            fd = os.open(path, flags)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: Path | str) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on clean exit fsync it and rename it over ``path``.

    The writer inside the ``with`` block writes the temp path by name (Pillow and ffmpeg both want a
    file name). The temp name does not keep the target's suffix, so writers must name their format
    explicitly. On any exception, including ``KeyboardInterrupt``, the temp file is removed and the
    existing target, if any, is left untouched. The parent folder is created if needed.
    """
    target = Path(path)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = _reserve_temp(parent, target.name)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_path(parent, directory=True)


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write UTF-8 text to ``path`` atomically (see :func:`atomic_write`); return the path."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_safe(value: Any) -> Any:
    """A value JSON can hold exactly: NaN and infinities become null, NumPy scalars Python numbers,
    tuples lists, and mapping keys strings (recursively); floats are rounded to :data:`JSON_DIGITS`
    significant digits. JSON has no infinity, and a NaN written as ``NaN`` is not JSON at all, so every
    file the package writes goes through this first."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.{JSON_DIGITS}g}") if math.isfinite(value) else None
    return value


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes, read in chunks (a huge file does not have to fit in memory)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
