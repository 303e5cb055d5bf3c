"""The building blocks of a report page: images embedded as ``data:`` URIs, escaped tables, numbers.

Every piece of text goes through :func:`~driftloop.report.shell.esc`; callers that build an extra section
of a report use these (and ``html.escape``) so nothing from a run reaches the page unescaped.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from driftloop.report.shell import esc as _esc

__all__ = ["created_text", "data_uri", "html_table", "img_tag", "num", "sentence", "slug", "video_tag"]

_MIME = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
_MIME_VIDEO = {".mp4": "video/mp4", ".webm": "video/webm"}
_SMALL_FRAME = 256  # frames narrower than this are scaled up with crisp (pixelated) rendering
# Stills (PNG or JPEG) above this many bytes are embedded as lossy WebP at _STILL_QUALITY: a 512² frame
# goes from ~400 KB of PNG to ~50 KB, differences a viewer cannot see; the lossless files stay in the run
# folder. Smaller ones (thumbnails, icons) are embedded as they are.
_COMPACT_ABOVE = 64_000
_STILL_QUALITY = 90


def _mime(path: Path, data: bytes) -> str:
    mime = _MIME.get(path.suffix.lower())
    if mime:
        return mime
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if b"<svg" in data[:2000]:
        return "image/svg+xml"
    raise ValueError(f"{path}: not an image type a report can embed (png, gif, jpeg, webp, svg)")


def _compact(path: Path, data: bytes, mime: str) -> tuple[str, bytes]:
    """A large PNG or JPEG still as lossy WebP (see ``_COMPACT_ABOVE``); anything else unchanged."""
    if mime not in ("image/png", "image/jpeg") or len(data) <= _COMPACT_ABOVE:
        return mime, data
    with Image.open(io.BytesIO(data)) as im:
        out = io.BytesIO()
        im.convert("RGB").save(out, format="WEBP", quality=_STILL_QUALITY, method=4)
    small = out.getvalue()
    return ("image/webp", small) if len(small) < len(data) else (mime, data)


def data_uri(path: Path | str, compact: bool = False) -> str:
    """The file as a base64 ``data:`` URI, its MIME type from the suffix (or the first bytes); with
    ``compact`` a large PNG or JPEG still is re-encoded as WebP first (an animated GIF never is)."""
    path = Path(path)
    data = path.read_bytes()
    mime = _MIME_VIDEO.get(path.suffix.lower()) or _mime(path, data)
    if compact:
        mime, data = _compact(path, data, mime)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _size(path: Path) -> tuple[int, int] | None:
    """Pixel size of a raster image, or the width/height (viewBox) of an SVG; None if unknown."""
    try:
        if path.suffix.lower() == ".svg":
            head = path.read_text(encoding="utf-8", errors="replace")[:4000]
            box = re.search(r'viewBox="\s*[-\d.]+[\s,]+[-\d.]+[\s,]+([\d.]+)[\s,]+([\d.]+)\s*"', head)
            if box:
                return round(float(box.group(1))), round(float(box.group(2)))
            return None
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError):
        return None


def img_tag(path: Path | str, alt: str, css_class: str = "") -> str:
    """An ``<img>`` with the file embedded as a data URI (a large still as WebP, see ``_COMPACT_ABOVE``)
    and its intrinsic size, or a visible placeholder when the file is missing."""
    path = Path(path)
    if not path.is_file():
        return f'<p class="missing">{_esc(alt)}: file not found ({_esc(path)})</p>'
    size = _size(path)
    classes = css_class
    if size and size[0] < _SMALL_FRAME and path.suffix.lower() != ".svg":
        classes = f"{classes} pixel".strip()
    attrs = f' width="{size[0]}" height="{size[1]}"' if size else ""
    cls = f' class="{_esc(classes)}"' if classes else ""
    return f'<img src="{data_uri(path, compact=True)}" alt="{_esc(alt)}"{attrs}{cls} loading="eager">'


def video_tag(path: Path | str, alt: str, size: tuple[int, int] | None = None) -> str:
    """A looping, muted, autoplaying ``<video>`` with the file (an MP4) embedded as a data URI, with
    controls to pause and scrub; ``alt`` is its label. A visible placeholder when the file is missing."""
    path = Path(path)
    if not path.is_file():
        return f'<p class="missing">{_esc(alt)}: file not found ({_esc(path)})</p>'
    attrs = f' width="{size[0]}" height="{size[1]}"' if size else ""
    pixel = ' class="pixel"' if size and size[0] < _SMALL_FRAME else ""
    return (
        f'<video src="{data_uri(path)}" aria-label="{_esc(alt)}" title="{_esc(alt)}"{attrs}{pixel} '
        'autoplay loop muted playsinline controls preload="auto"></video>'
    )


def html_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    text_columns: Iterable[int] = (0,),
    caption: str = "",
) -> str:
    """A simple escaped table in a horizontally scrolling wrapper; cells are str()-ed and escaped.

    Columns in ``text_columns`` are left-aligned (others are numbers, right-aligned).
    """
    text = set(text_columns)

    def cls(i: int) -> str:
        return ' class="text"' if i in text else ""

    head = "".join(f"<th{cls(i)}>{_esc(h)}</th>" for i, h in enumerate(headers))
    body = "\n".join(
        "<tr>" + "".join(f"<td{cls(i)}>{_esc(c)}</td>" for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>'
        "</table></div>"
    )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def created_text(value: str | float | datetime | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def num(value: Any, decimals: int) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "–"
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{decimals}f}".replace("-", "−")


def sentence(text: str) -> str:
    """Capitalise a sentence, unless it starts with a symbol or a name whose case matters (``a*``)."""
    text = text.strip()
    first = re.split(r"[\s:,(]", text, maxsplit=1)[0]
    if first.isalpha() and first.islower():
        return text[:1].upper() + text[1:]
    return text
