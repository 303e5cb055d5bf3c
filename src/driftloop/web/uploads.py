"""Images uploaded from the start-a-run form: the CLI's input checks, and nothing half-written left behind.

An upload is kept as ``WORKSPACE/uploads/<16 hex of its sha256>-<its name>.<ext>`` only once
:func:`driftloop.images.load_image` accepts it (not empty, an image, not truncated, within the pixel
limit checked before decoding, so a decompression bomb is refused without being decoded).
Same bytes, same file: uploading twice is harmless.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

from PIL import Image

from driftloop._fs import atomic_write
from driftloop.errors import InputError
from driftloop.images import DEFAULT_MAX_PIXELS, load_image

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}


def save_upload(
    data: bytes, filename: str, folder: Path, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[Path, list[str]]:
    """Check an uploaded file as the CLI checks an input and keep it; return its path and any notes.

    Raises ``InputError`` naming the uploaded file (not the temp file) and the fix.
    """
    name = Path(filename or "upload").name or "upload"
    if not data:
        raise InputError(f"{name}: file is empty (0 bytes); choose the image again")
    if len(data) > MAX_UPLOAD_BYTES:
        limit = f"{MAX_UPLOAD_BYTES // 2**20} MiB"
        raise InputError(
            f"{name}: {len(data):,} bytes is more than an upload may be ({limit}); send a smaller file"
        )
    digest = hashlib.sha256(data).hexdigest()
    existing = [p for p in folder.glob(f"{digest[:16]}-*") if p.is_file()]
    if existing:
        return existing[0], []
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).stem).strip(".-")[:60] or "upload"
    target = folder / f"{digest[:16]}-{stem}{_suffix(data)}"
    with atomic_write(target) as tmp:  # renamed into place only once the checks pass
        tmp.write_bytes(data)
        try:
            loaded = load_image(tmp, size=64, multiple=1, max_pixels=max_pixels)
        except InputError as exc:
            raise InputError(str(exc).replace(str(tmp), name)) from None
    return target, list(loaded.notes)


def _suffix(data: bytes) -> str:
    """The file name suffix of the image format the bytes start with (read from the header only)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _SUFFIX.get(img.format or "", ".img")
    except (OSError, ValueError, Image.DecompressionBombError):
        return ".img"  # not an image: load_image says so with the CLI's words
