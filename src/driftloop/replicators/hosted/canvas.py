"""Size mapping: an API accepts a few canvas sizes; a frame is placed on one and read back out of the answer.

A frame is scaled by one factor to fit inside the canvas, centred, and the rest of the canvas is padded (by
default with the frame's edge pixels, else a flat grey/black/white). The answer is read back from the same box
(scaled by the answer's size if it differs from the canvas), the padding is discarded, and the box is
resampled to exactly the frame's H×W. One scale factor for both axes, so nothing is stretched; rounding the
scaled size to whole pixels is the only (sub-pixel) liberty taken. ``resample=lanczos`` (default) shows the
model a natural-looking enlargement, at the price of a small loss per round trip (≈0.8 mean |Δ| for 512 px
frames on a 1024 canvas, more on hard edges); ``resample=nearest`` enlarges by pixel replication and reduces
by box averaging, an exact round trip, so all drift is the model's, but the model sees a blocky image.

Also the image bytes of a request and an answer: PNG out, base64 and any readable image format back in.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

PadMode = Literal["edge", "grey", "black", "white"]
Resample = Literal["lanczos", "nearest"]
_PAD_COLOURS = {"grey": 128, "black": 0, "white": 255}


@dataclass(frozen=True)
class Placement:
    """Where a frame sits in the canvas sent to the API.

    ``canvas`` is (width, height) of the image sent; ``box`` is (left, top, width, height) of the scaled
    frame inside it; ``frame`` is (height, width) of the original frame, the shape a copy must come back in.
    """

    canvas: tuple[int, int]
    box: tuple[int, int, int, int]
    frame: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {"canvas": list(self.canvas), "box": list(self.box)}


def fitted(height: int, width: int, canvas: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a height×width frame scaled by one factor to fit inside ``canvas`` (w, h)."""
    cw, ch = canvas
    scale = min(cw / width, ch / height)
    return min(cw, max(1, round(width * scale))), min(ch, max(1, round(height * scale)))


def closest_canvas(height: int, width: int, canvases: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The canvas a frame fills best once fitted (least padding); ties go to the earlier canvas."""
    best, best_cover = canvases[0], -1.0
    for canvas in canvases:
        w, h = fitted(height, width, canvas)
        cover = (w * h) / (canvas[0] * canvas[1])
        if cover > best_cover + 1e-9:
            best, best_cover = canvas, cover
    return best


def native_canvas(
    height: int,
    width: int,
    multiple_of: int = 16,
    min_pixels: int = 0,
    max_pixels: int = 0,
    max_edge: int = 0,
    max_aspect: float = 0.0,
    min_edge: int = 0,
) -> tuple[int, int]:
    """The canvas (w, h) a frame is sent on to a model that takes any size within these limits.

    A frame that already fits (sides multiples of ``multiple_of``, pixel count, edges and aspect within the
    limits) is sent at its own size: no scaling, padding or crop-back. A smaller one is enlarged by the
    smallest whole factor that reaches ``min_pixels`` (512² → 1024² for gpt-image-2: a clean 2× that
    ``resample=nearest`` undoes exactly); a larger one is reduced to fit. Sides are then rounded up to the
    multiple, and an aspect beyond ``max_aspect`` is widened (padding fills the difference).
    """
    w, h = float(width), float(height)
    if min_pixels and w * h < min_pixels:
        k = math.ceil(math.sqrt(min_pixels / (w * h)) - 1e-9)
        while (k * w) * (k * h) < min_pixels:
            k += 1
        w, h = w * k, h * k
    shrink = 1.0
    if max_pixels and w * h > max_pixels:
        shrink = min(shrink, math.sqrt(max_pixels / (w * h)))
    if max_edge and max(w, h) > max_edge:
        shrink = min(shrink, max_edge / max(w, h))
    if shrink < 1.0:
        w, h = w * shrink, h * shrink
    if max_aspect:
        if w / h > max_aspect:
            h = w / max_aspect
        elif h / w > max_aspect:
            w = h / max_aspect
    m = max(1, multiple_of)

    def side(x: float, up: bool) -> int:
        n = math.ceil(x / m - 1e-9) if up else math.floor(x / m + 1e-9)
        return max(m, max(min_edge, n * m))

    cw, ch = side(w, True), side(h, True)
    # rounding up may pass the pixel or edge ceiling: round that side down instead
    if (max_pixels and cw * ch > max_pixels) or (max_edge and max(cw, ch) > max_edge):
        cw, ch = side(w, False), side(h, False)
    return cw, ch


def _filters(resample: Resample) -> tuple[Image.Resampling, Image.Resampling]:
    """(enlarging, reducing) filters: Lanczos both ways, or nearest up / box down (an exact round trip)."""
    if resample == "nearest":
        return Image.Resampling.NEAREST, Image.Resampling.BOX
    return Image.Resampling.LANCZOS, Image.Resampling.LANCZOS


def place(
    frame: np.ndarray, canvas: tuple[int, int], pad: PadMode = "edge", resample: Resample = "lanczos"
) -> tuple[np.ndarray, Placement]:
    """Scale ``frame`` (H×W×3 uint8) by one factor to fit ``canvas`` (w, h), centre it, pad the rest."""
    height, width = frame.shape[:2]
    cw, ch = canvas
    w, h = fitted(height, width, canvas)
    if (w, h) == (width, height):
        scaled = frame
    else:
        enlarge, reduce = _filters(resample)
        scaled = np.asarray(Image.fromarray(frame, "RGB").resize((w, h), enlarge if w > width else reduce))
    left, top = (cw - w) // 2, (ch - h) // 2
    widths = ((top, ch - h - top), (left, cw - w - left), (0, 0))
    if pad == "edge":
        out = np.pad(scaled, widths, mode="edge")
    else:
        out = np.pad(scaled, widths, mode="constant", constant_values=_PAD_COLOURS[pad])
    return np.ascontiguousarray(out, dtype=np.uint8), Placement((cw, ch), (left, top, w, h), (height, width))


def unplace(
    image: Image.Image | np.ndarray, placement: Placement, resample: Resample = "lanczos"
) -> np.ndarray:
    """The frame back out of an answer: the placement's box (scaled to the answer's size), padding dropped,
    resampled to exactly the original H×W."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image), "RGB")
    img = img.convert("RGB")
    sx, sy = img.width / placement.canvas[0], img.height / placement.canvas[1]
    left, top, w, h = placement.box
    box = (left * sx, top * sy, (left + w) * sx, (top + h) * sy)
    height, width = placement.frame
    # Crop to the whole pixels inside the box first: a resampling filter reaches past its box, and must see
    # only the frame's own pixels (edge-clamped), never the padding.
    inner = (
        math.ceil(box[0] - 1e-6),
        math.ceil(box[1] - 1e-6),
        math.floor(box[2] + 1e-6),
        math.floor(box[3] + 1e-6),
    )
    if inner[2] <= inner[0] or inner[3] <= inner[1]:
        inner = (math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3]))
    crop = img.crop(inner)
    if crop.size == (width, height):
        return np.asarray(crop, dtype=np.uint8).copy()
    rel = (box[0] - inner[0], box[1] - inner[1], box[2] - inner[0], box[3] - inner[1])
    rel = (
        max(0.0, rel[0]),
        max(0.0, rel[1]),
        min(float(crop.width), rel[2]),
        min(float(crop.height), rel[3]),
    )
    enlarge, reduce = _filters(resample)
    filt = reduce if (rel[2] - rel[0]) > width else enlarge
    out = crop.resize((width, height), filt, box=rel)
    return np.asarray(out, dtype=np.uint8).copy()


def encode_png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, "RGB").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def decode_b64(text: str) -> bytes:
    """Strict base64 (whitespace and a ``data:`` prefix tolerated); ValueError when it is not."""
    if "," in text[:100] and text.startswith("data:"):
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"undecodable base64 image data ({exc})") from None


def decode_image(data: bytes) -> Image.Image:
    """An RGB image from encoded bytes; ValueError when they are not a readable image."""
    if not data:
        raise ValueError("empty image data")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                flat.alpha_composite(rgba)
                return flat.convert("RGB")
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"the image data is not a readable image ({type(exc).__name__}: {exc})") from None
