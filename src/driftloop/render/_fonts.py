"""The font used for every piece of text the render package draws."""

from __future__ import annotations

import functools
import unicodedata

from PIL import ImageFont

__all__ = ["Font", "displayable", "font", "line_height"]

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.lru_cache(maxsize=64)
def font(size: int) -> Font:
    """Pillow's bundled scalable font at ``size`` px, cached because loading it is slow.

    ``load_default(size=...)`` needs Pillow >= 10.1 built with FreeType; it ships inside Pillow, so no
    font file is downloaded or looked up on the system and output is identical on every machine.
    """
    return ImageFont.load_default(size=size)


def line_height(f: Font) -> int:
    """Height of a line (ascent + descent), so every caption gets the same band whatever its glyphs."""
    if isinstance(f, ImageFont.FreeTypeFont):
        ascent, descent = f.getmetrics()
        return ascent + descent
    _, top, _, bottom = f.getbbox("Ag")
    return int(bottom - top)


# Typographic characters the bundled font lacks, with look-alikes it has.
_SUBSTITUTES = {
    "—": "-",
    "–": "-",
    "−": "-",
    "×": "x",
    "→": "->",
    "←": "<-",
    "≈": "~",
    "ß": "ss",
    "ø": "o",
    "Ø": "O",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ł": "l",
    "Ł": "L",
}
# A code point no font maps: whatever it renders as is the font's "missing glyph" box.
_NOT_A_CHAR = "\U0010fffd"
_PROBE_SIZE = 16


@functools.lru_cache(maxsize=4096)
def _has_glyph(char: str) -> bool:
    """Whether the bundled font draws ``char`` as itself rather than as its missing-glyph box.

    Pillow exposes no character map, so compare against the rendering of a code point no font has.
    The map does not depend on the size, so one probe size serves every size.
    """
    if char.isspace() or char.isascii():
        return True
    f = font(_PROBE_SIZE)
    missing = f.getmask(_NOT_A_CHAR)
    mask = f.getmask(char)
    return not (mask.size == missing.size and bytes(mask) == bytes(missing))


def displayable(text: str) -> str:
    """``text`` with characters the bundled font cannot draw replaced by the nearest ones it can.

    The font Pillow bundles covers little beyond ASCII (no accented letters, no dashes), so a row label
    like "café.png — seed 1" would otherwise show boxes. Accents are dropped (é -> e), common
    punctuation gets a look-alike, anything else becomes "?".
    """
    out = []
    for char in text:
        if _has_glyph(char):
            out.append(char)
        elif char in _SUBSTITUTES:
            out.append(_SUBSTITUTES[char])
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            out.append(base if base and all(_has_glyph(c) for c in base) else "?")
    return "".join(out)
