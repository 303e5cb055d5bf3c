"""Step counters burnt into frames, so a GIF or video shows how many copies deep each frame is."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from driftloop.render._fonts import Font, font
from driftloop.render._frames import as_rgb

__all__ = ["draw_step_label", "label_box", "label_text"]

# Font height as a fraction of the frame height: about 1/22 keeps the counter readable without
# covering the picture (46 px at 1024, 23 px at 512); below ~200 px the minimum takes over.
_FONT_FRACTION = 0.045
# Smallest size at which the bundled font's digits stay distinguishable on a 64 px frame.
_MIN_FONT_PX = 10
# Below this size antialiasing turns thin strokes grey and mushy; crisp 1-bit glyphs read better.
_ANTIALIAS_FROM_PX = 14
# The box may shrink below _MIN_FONT_PX only to fit a very narrow frame.
_ABSOLUTE_MIN_FONT_PX = 6
# Opacity of the dark box: dark enough for white text on a white frame, light enough to see through.
_BOX_ALPHA = 0.7


def label_text(step: int, total: int | None = None) -> str:
    """The counter text: ``"step 17"``, or ``"17 / 101"`` when the chain length is known."""
    return f"step {step}" if total is None else f"{step} / {total}"


def _layout(height: int, width: int, text: str) -> tuple[Font, tuple[int, int, int, int], tuple[int, int]]:
    """Choose the font size and place the box in the top-left corner: (font, box, text origin).

    The box is (x0, y0, x1, y1) with exclusive x1/y1 and may extend past a tiny frame; callers clip.
    """
    size = max(_MIN_FONT_PX, round(height * _FONT_FRACTION))
    while True:
        f = font(size)
        left, top, right, bottom = f.getbbox(text)
        pad = max(2, round(size * 0.35))
        margin = max(1, round(size * 0.3))
        box_w = (right - left) + 2 * pad
        box_h = (bottom - top) + 2 * pad
        fits = margin + box_w + margin <= width
        if fits or size <= _ABSOLUTE_MIN_FONT_PX:
            break
        # Shrink in proportion first (one step usually suffices), then by one pixel at a time.
        size = max(_ABSOLUTE_MIN_FONT_PX, min(size - 1, math.floor(size * (width - 2 * margin) / box_w)))
    box = (margin, margin, margin + box_w, margin + box_h)
    return f, box, (margin + pad - left, margin + pad - top)


def label_box(height: int, width: int, step: int, total: int | None = None) -> tuple[int, int, int, int]:
    """The region (x0, y0, x1, y1), exclusive ends, clipped to the frame, that ``draw_step_label`` changes.

    Exposed so callers and tests can know what part of a frame the counter covers.
    """
    _, (x0, y0, x1, y1), _ = _layout(height, width, label_text(step, total))
    return min(x0, width), min(y0, height), min(x1, width), min(y1, height)


def draw_step_label(frame: np.ndarray, step: int, total: int | None = None) -> np.ndarray:
    """Return a copy of ``frame`` with a step counter (white on a semi-opaque dark box) in the top-left.

    The font scales with the frame height so the counter is legible both on 64 px thumbnails and on
    1024 px frames, and shrinks further if the frame is too narrow for it. Only the box region changes,
    so measurements on the rest of a labelled frame stay valid; the input array is never modified.
    """
    src = as_rgb(frame)
    out = src.copy()
    height, width = src.shape[:2]
    text = label_text(step, total)
    f, (x0, y0, x1, y1), (tx, ty) = _layout(height, width, text)
    cx1, cy1 = min(x1, width), min(y1, height)
    if x0 >= cx1 or y0 >= cy1:
        return out  # frame smaller than the margin: nothing sensible to draw
    # Darken just the box, then draw the text on that crop: antialiased white text blends against the
    # darkened pixels, and nothing outside the box is touched.
    region = out[y0:cy1, x0:cx1].astype(np.float32) * (1.0 - _BOX_ALPHA)
    crop = Image.fromarray(np.rint(region).astype(np.uint8))
    draw = ImageDraw.Draw(crop)
    if getattr(f, "size", _ANTIALIAS_FROM_PX) < _ANTIALIAS_FROM_PX:
        draw.fontmode = "1"
    draw.text((tx - x0, ty - y0), text, font=f, fill=(255, 255, 255))
    out[y0:cy1, x0:cx1] = np.asarray(crop)
    return out
