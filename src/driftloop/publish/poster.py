"""A chain's poster: the original, a few steps, the last copy and the headline numbers, as a JPEG at a social
media size (1200×630 for link previews, 1080×1080 for square posts).

JPEG, not PNG: the frames on a poster are photographs, which PNG stores at 1.5–2× the bytes (posters were
most of a published site), and every network re-encodes an upload as JPEG anyway. Quality 85 with
4:2:0 chroma keeps the dark text sharp (its edges are in luminance)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZES = {"wide": (1200, 630), "square": (1080, 1080)}
BACKGROUND = (250, 250, 248)
INK = (25, 25, 25)
MUTED = (110, 110, 110)
QUALITY = 85


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def poster(
    frames: Sequence[tuple[int, np.ndarray]], title: str, lines: Sequence[str], kind: str = "wide"
) -> bytes:
    """JPEG bytes: ``frames`` ((step, RGB array); the first is the original, the last the last copy) in a row,
    each labelled with its step, under ``title`` and over the headline ``lines``."""
    width, height = SIZES[kind]
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    margin = width // 30
    draw.text((margin, margin), title, fill=INK, font=_font(width // 26))
    n = max(1, len(frames))
    gap = margin // 2
    side = min((width - 2 * margin - (n - 1) * gap) // n, int(height * (0.36 if kind == "wide" else 0.3)))
    top = margin * 2 + width // 26
    for i, (step, frame) in enumerate(frames):
        tile = Image.fromarray(frame).convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
        x = margin + i * (side + gap)
        canvas.paste(tile, (x, top))
        label = "original" if i == 0 else f"copy {step}"
        draw.text((x, top + side + gap // 2), label, fill=MUTED, font=_font(max(12, width // 60)))
    y = top + side + margin * 2
    size = max(14, width // 44)
    for line in lines:  # the default font has no typographic minus: an ASCII one reads the same
        draw.text((margin, y), line.replace("−", "-"), fill=INK, font=_font(size))
        y += size + gap // 2
    small = _font(max(12, width // 60))
    draw.text((width - margin, margin), "made with driftloop", fill=MUTED, font=small, anchor="ra")
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=QUALITY, optimize=True, progressive=True)
    return out.getvalue()
