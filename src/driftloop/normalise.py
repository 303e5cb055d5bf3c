"""Turning a decoded Pillow image into a frame: upright, 8-bit RGB, square at the model's size.

The one place a picture's geometry and colour depth are settled, for inputs (:mod:`driftloop.images`) and
for copies made elsewhere alike. Integer arithmetic throughout, so the same image and size give the same
frame everywhere. Nothing here touches a file.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from driftloop.frames import _check_int

__all__ = ["SIXTEEN_BIT_MODES", "apply_exif_orientation", "normalise", "target_size", "to_rgb8"]

# EXIF orientation value -> what exif_transpose does to put the image upright, for the user-facing note.
_ORIENTATION_NOTES = {
    2: "mirrored left-right",
    3: "rotated 180°",
    4: "mirrored top-bottom",
    5: "transposed",
    6: "rotated 90° clockwise",
    7: "transversed",
    8: "rotated 90° counter-clockwise",
}

#: Beyond this aspect ratio an input is resampled from its centre square only (see _resize_and_crop).
_EXTREME_ASPECT = 16

SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


def target_size(size: int, multiple: int) -> int:
    """Round ``size`` to the nearest multiple of ``multiple`` (ties go up), and never below ``multiple``.

    Image models usually need sides divisible by their downsampling factor (8 for most latent models);
    rounding to the *nearest* multiple keeps the requested size as close as possible, and the floor of
    one ``multiple`` keeps tiny requests from collapsing to a zero-sized frame. Integer arithmetic only,
    so there is no float rounding to disagree about.

    Raises ``ValueError`` (a programming error, not a bad input file) if either argument is below 1.
    """
    _check_int("size", size, 1)
    _check_int("multiple", multiple, 1)
    rounded = (2 * size + multiple) // (2 * multiple) * multiple
    return max(multiple, rounded)


def normalise(img: Image.Image, size: int, multiple: int) -> tuple[np.ndarray, list[str]]:
    """Turn a Pillow image into a square ``target_size(size, multiple)`` RGB frame, plus notes.

    Steps, in this order for a reason each:

    1. EXIF orientation is applied, so phone photos are upright (the crop below must see the image the
       way the user does).
    2. The pixels become 8-bit RGB: 16-bit data is scaled (``>> 8``, which is what Pillow itself does
       for 16-bit RGB PNGs, so gray and colour 16-bit inputs agree), never clipped; alpha is composited
       on white *before* resizing, so colour hidden under transparent pixels cannot bleed into the edges.
    3. Lanczos resize so the shorter side equals the target, then a centre crop of the longer side.

    Works on in-memory images too (nothing here touches a file). Raises ``ValueError`` if the image has
    no pixels or a mode that cannot be converted.
    """
    target = target_size(size, multiple)
    notes: list[str] = []
    if img.width < 1 or img.height < 1:
        raise ValueError(f"image has no pixels ({img.width}x{img.height})")

    img = apply_exif_orientation(img, notes)
    rgb = to_rgb8(img, notes)
    frame = _resize_and_crop(rgb, target, notes)
    return frame, notes


def apply_exif_orientation(img: Image.Image, notes: list[str]) -> Image.Image:
    """Rotate/mirror the image as its EXIF orientation says; a broken EXIF block is noted, not fatal."""
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # malformed EXIF raises anything; the pixels are still fine
        notes.append("EXIF data unreadable: orientation not applied")
        return img
    if orientation not in _ORIENTATION_NOTES:
        return img
    transposed = ImageOps.exif_transpose(img)
    notes.append(f"EXIF orientation applied ({_ORIENTATION_NOTES[orientation]})")
    return transposed


def _has_alpha(img: Image.Image) -> bool:
    """Alpha channel, or a tRNS-style transparent colour/palette entry in ``info``."""
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        return True
    return img.mode in ("P", "L", "RGB", "1") and img.info.get("transparency") is not None


def to_rgb8(img: Image.Image, notes: list[str]) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, scaling (never clipping) high-bit-depth data."""
    mode = img.mode
    if mode == "RGB" and not _has_alpha(img):
        return img
    if _has_alpha(img):
        return _composite_on_white(img.convert("RGBA"), notes)
    if mode in SIXTEEN_BIT_MODES:
        gray16 = np.asarray(img).astype(np.uint16)
        notes.append("16-bit image reduced to 8 bits")
        return _gray_to_rgb((gray16 >> 8).astype(np.uint8))
    if mode == "I":
        # 32-bit signed container; decoders use it for 16-bit data (PNG, PGM, TIFF), so 0-65535 is the range.
        values = np.asarray(img).astype(np.int64)
        if values.min() < 0 or values.max() > 0xFFFF:
            notes.append("32-bit integer image: values outside 0-65535 clipped")
            values = np.clip(values, 0, 0xFFFF)
        notes.append("16-bit image reduced to 8 bits")
        return _gray_to_rgb((values >> 8).astype(np.uint8))
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if values.min() >= 0.0 and values.max() <= 1.0:
            notes.append("floating-point image: values 0-1 scaled to 0-255")
            values = values * 255.0
        else:
            notes.append("floating-point image: values rounded and clipped to 0-255")
        return _gray_to_rgb(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    if mode == "CMYK":
        notes.append("CMYK image converted to RGB without colour management: colours are approximate")
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise ValueError(f"unsupported colour mode {mode}: {exc}") from exc


def _gray_to_rgb(gray: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)))


def _composite_on_white(rgba: Image.Image, notes: list[str]) -> Image.Image:
    """Composite on white with exact integer rounding: alpha 0 -> 255 exactly, alpha 255 -> unchanged.

    White, because a model asked to replicate an image with a transparent background should see the
    background most viewers show. The note is only added when some pixel is actually not opaque; many
    exporters write an all-opaque alpha channel, and telling the user about it would be noise.
    """
    arr = np.asarray(rgba, dtype=np.uint32)
    alpha = arr[:, :, 3:4]
    if np.all(alpha == 255):
        return Image.fromarray(np.ascontiguousarray(arr[:, :, :3].astype(np.uint8)))
    out = (arr[:, :, :3] * alpha + 255 * (255 - alpha) + 127) // 255
    notes.append("alpha composited on white")
    return Image.fromarray(np.ascontiguousarray(out.astype(np.uint8)))


def _resize_and_crop(img: Image.Image, target: int, notes: list[str]) -> np.ndarray:
    """Scale (Lanczos) so the shorter side is ``target``, then centre-crop the longer side to ``target``.

    Integer arithmetic for the scaled size (round half up), so the geometry is reproducible everywhere.
    An input stretched beyond ``_EXTREME_ASPECT`` (a 10000x3 strip) is resampled from its centre square
    only: scaling the whole strip first would make a huge intermediate image of pixels thrown away.
    Upscaling and a crop that drops most of the picture are said in a note with the original size.
    """
    width, height = img.size
    short, long = min(width, height), max(width, height)
    if short < target:
        notes.append(f"small image upscaled: {width}x{height} px, shorter side {short} px < {target} px")
    if long > 2 * short:
        notes.append(
            f"{width}x{height} image centre-cropped to its middle {short}x{short} px "
            f"({100 * short / long:.2g}% of its {'width' if width > height else 'height'}), "
            f"then scaled to {target}x{target}"
        )
    if width <= height:
        new_w, new_h = target, max(target, (2 * height * target + width) // (2 * width))
    else:
        new_w, new_h = max(target, (2 * width * target + height) // (2 * height)), target
    left = (new_w - target) // 2
    top = (new_h - target) // 2
    if long > _EXTREME_ASPECT * short:
        scale = short / target  # source pixels per target pixel
        box = (left * scale, top * scale, (left + target) * scale, (top + target) * scale)
        img = img.resize((target, target), Image.Resampling.LANCZOS, box=box)
        new_w = new_h = target
    elif (new_w, new_h) != (width, height):
        img = img.resize((new_w, new_h), Image.Resampling.LANCZOS)
    if (new_w, new_h) != (target, target):
        img = img.crop((left, top, left + target, top + target))
    frame = np.array(img, dtype=np.uint8)
    if frame.shape != (target, target, 3):  # pragma: no cover - guards the invariant everything relies on
        raise AssertionError(f"normalised frame has shape {frame.shape}, expected {(target, target, 3)}")
    return np.ascontiguousarray(frame)
