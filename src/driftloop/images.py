"""Loading input images into frames: validation, decoding and normalisation.

A *frame* is an ``H x W x 3`` ``uint8`` C-contiguous numpy array in RGB order. Everything downstream (the
replicators, the metrics, the store) assumes exactly that, so this module is the one place that turns
whatever a user hands us (palette GIFs, 16-bit PNGs, CMYK JPEGs, phone photos with EXIF rotation, ...)
into one, and the one place that turns a broken input into an ``InputError`` the CLI can print instead
of a traceback.

Frames are identified by the sha256 of their pixel bytes (:func:`frame_sha256`), so every step here is
deterministic: same input file and parameters, same frame, same hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import stat
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from driftloop.config import DEFAULT_MAX_PIXELS
from driftloop.errors import AnimatedImageWarning, InputError
from driftloop.frames import _check_int

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "AnimatedImageWarning",
    "DecodedImage",
    "LoadedImage",
    "decode_frames",
    "load_image",
    "load_images",
    "normalise",
    "target_size",
]


_HASH_CHUNK = 1 << 20

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

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})

# Guards the (rare) temporary raise of Pillow's global pixel limit; see _pillow_pixel_limit_at_least.
_PIXEL_LIMIT_LOCK = threading.Lock()


@dataclass(frozen=True)
class LoadedImage:
    """An input image, normalised to a square RGB frame, plus what the user should be told about it.

    ``source_sha256`` identifies the input *file* (for provenance: which file did this run start from);
    ``frame_sha256(frame)`` identifies the *pixels* the run actually starts from, which also depend on
    ``size`` and ``multiple``.
    """

    path: Path
    frame: np.ndarray
    source_sha256: str
    notes: tuple[str, ...]


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

    img = _apply_exif_orientation(img, notes)
    rgb = _to_rgb8(img, notes)
    frame = _resize_and_crop(rgb, target, notes)
    return frame, notes


def load_image(
    path: str | Path,
    size: int = 512,
    multiple: int = 8,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 1,
) -> LoadedImage:
    """Load one input image file as a normalised frame (see :func:`normalise`), or raise ``InputError``.

    Every problem a user can cause with the file (missing, a directory, empty, not an image, corrupt,
    truncated, too many pixels, unreadable) becomes an ``InputError`` whose message starts with the path,
    so the CLI can print it as is. Truncation is caught because the first frame is fully decoded here
    (Pillow is lazy, and ``ImageFile.LOAD_TRUNCATED_IMAGES`` is deliberately left off).

    ``max_pixels`` is checked against the header's size *before* any pixel is decoded. Pillow has its own
    global limit (``Image.MAX_IMAGE_PIXELS``); it is only raised, temporarily, if ``max_pixels`` asks for
    more than it allows. ``min_side`` is checked there too: an input whose shorter side is below it (the
    smallest the model can copy meaningfully; the caller knows it) is refused rather than blown up.

    An animated or multi-frame input uses its first frame, with an ``AnimatedImageWarning`` and a note.
    """
    path = Path(path)
    target_size(size, multiple)  # argument errors are programming errors: fail before touching the file
    _check_int("max_pixels", max_pixels, 1)
    _check_int("min_side", min_side, 1)

    _check_input_file(path)
    try:
        with path.open("rb") as fh:
            source_sha256 = _sha256_stream(fh)
            fh.seek(0)
            img, n_frames, sixteen_bit_source = _decode_first_frame(path, fh, max_pixels, min_side)
            with img:
                try:
                    frame, conversion_notes = normalise(img, size, multiple)
                except ValueError as exc:
                    raise InputError(
                        f"{path}: cannot convert this image to RGB ({exc}); "
                        "re-save it as an 8-bit RGB PNG or JPEG"
                    ) from exc
                mode = img.mode
    except PermissionError as exc:
        raise InputError(f"{path}: permission denied; make the file readable (e.g. chmod u+r)") from exc
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc

    notes: list[str] = []
    if n_frames > 1:
        notes.append(f"animated image: using the first of {n_frames} frames")
        warnings.warn(
            f"{path}: animated image with {n_frames} frames; only the first is used",
            AnimatedImageWarning,
            stacklevel=2,
        )
    if sixteen_bit_source and mode not in _SIXTEEN_BIT_MODES and mode != "I":
        # Pillow already reduced it (16-bit RGB/RGBA/LA); for I;16 and I, normalise says so itself.
        notes.append("16-bit image reduced to 8 bits")
    notes.extend(conversion_notes)
    return LoadedImage(path=path, frame=frame, source_sha256=source_sha256, notes=tuple(notes))


def load_images(
    paths: Iterable[str | Path],
    size: int = 512,
    multiple: int = 8,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 1,
) -> list[LoadedImage]:
    """Load several inputs, all or nothing.

    Every input is loaded before anything is returned, so a caller that writes only after this returns
    writes nothing when any input is bad. The ``InputError`` raised names the first bad input (its
    message starts with that path) and also lists any further bad ones, so the user can fix them all in
    one go instead of discovering them one run at a time. ``max_pixels`` and ``min_side``: see
    :func:`load_image`.
    """
    loaded: list[LoadedImage] = []
    errors: list[InputError] = []
    for p in paths:
        try:
            loaded.append(
                load_image(p, size=size, multiple=multiple, max_pixels=max_pixels, min_side=min_side)
            )
        except InputError as exc:
            errors.append(exc)
    if errors:
        message = str(errors[0])
        if len(errors) > 1:
            others = "\n".join(f"  {e}" for e in errors[1:])
            message += f"\n{len(errors) - 1} more bad input(s):\n{others}"
        raise InputError(message) from errors[0]
    return loaded


@dataclass(frozen=True)
class DecodedImage:
    """Every frame of an image file as RGB ``uint8`` at its own size (no resize, no crop), with durations.

    For sequences made by other tools (a folder of copies, an animated GIF/WebP), where the pixels must stay
    exactly as saved. ``durations_ms`` holds each frame's display time from the file, ``None`` if it has none.
    """

    path: Path
    frames: tuple[np.ndarray, ...]
    durations_ms: tuple[int | None, ...]
    source_sha256: str
    notes: tuple[str, ...]


def decode_frames(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode every frame of an image file with :func:`load_image`'s guards, or raise ``InputError``.

    The file checks, the decompression-bomb guard and ``max_pixels`` (from the header, before decoding) are
    :func:`load_image`'s; each frame is converted to 8-bit RGB the same way (EXIF orientation, 16-bit
    scaling, alpha on white). A frame that cannot be decoded is named by its position (``frame 3 of 12``).
    """
    path = Path(path)
    _check_int("max_pixels", max_pixels, 1)
    _check_input_file(path)
    frames: list[np.ndarray] = []
    durations: list[int | None] = []
    notes: list[str] = []
    try:
        with path.open("rb") as fh:
            source_sha256 = _sha256_stream(fh)
            fh.seek(0)
            img, n_frames, _sixteen = _decode_first_frame(path, fh, max_pixels)
            with img:
                for index in range(n_frames):
                    where = f"{path} (frame {index + 1} of {n_frames})" if n_frames > 1 else str(path)
                    try:
                        if index:
                            img.seek(index)
                            img.load()
                        upright = _apply_exif_orientation(img, notes) if n_frames == 1 else img
                        rgb = _to_rgb8(upright, notes)
                    except ValueError as exc:
                        raise InputError(f"{where}: cannot convert this frame to RGB ({exc})") from exc
                    except OSError as exc:
                        if exc.errno is not None:
                            raise
                        raise _decode_error(Path(where), exc) from exc
                    except Exception as exc:  # decoders raise a zoo of types: see _decode_first_frame
                        raise _decode_error(Path(where), exc) from exc
                    frames.append(np.ascontiguousarray(np.array(rgb, dtype=np.uint8)))
                    duration = img.info.get("duration")
                    durations.append(int(duration) if isinstance(duration, int | float) else None)
    except PermissionError as exc:
        raise InputError(f"{path}: permission denied; make the file readable (e.g. chmod u+r)") from exc
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return DecodedImage(path, tuple(frames), tuple(durations), source_sha256, tuple(dict.fromkeys(notes)))


# --------------------------------------------------------------------------------------------------
# loading helpers


def _check_input_file(path: Path) -> None:
    """Reject what ``open()`` would report badly or not at all: missing, directory, FIFO, empty file.

    A FIFO in particular must be caught before ``open()``, which would block forever on it.
    """
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        hint = " (it is a broken symlink)" if path.is_symlink() else "; check the path"
        raise InputError(f"{path}: file does not exist{hint}") from exc
    except PermissionError as exc:
        raise InputError(
            f"{path}: permission denied; check the permissions of the file and its folders"
        ) from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a directory, not an image file; pass the image files inside it")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: is not a regular file (a device, pipe or socket); pass an image file")
    if st.st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes); was it fully downloaded or copied?")


def _sha256_stream(fh: IO[bytes]) -> str:
    """Hash a file in chunks, so that a huge non-image input cannot exhaust memory before it is rejected."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _decode_first_frame(
    path: Path, fh: IO[bytes], max_pixels: int, min_side: int = 1
) -> tuple[Image.Image, int, bool]:
    """Open ``fh`` with Pillow and fully decode frame 0, turning every decoder failure into ``InputError``.

    Returns the loaded image, the number of frames the file has (MPO counts as 1: see
    :func:`_count_frames`), and whether the samples were 16-bit before Pillow decoded them.

    Decoders for untrusted files raise a zoo of exception types (``OSError``, ``SyntaxError``,
    ``struct.error``, ``EOFError``, ``ValueError``, ...), so this narrow block, which only runs Pillow on
    the file, catches ``Exception``; the original is chained for debugging.
    """
    try:
        with warnings.catch_warnings():
            # Pillow only *warns* between its limit and twice its limit; an image that large is a bomb.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _pillow_pixel_limit_at_least(max_pixels):
                img = Image.open(fh)
                try:
                    _check_pixels(path, img.size, max_pixels, min_side)
                    n_frames = _count_frames(img)
                    sixteen_bit_source = _decodes_from_16_bit(img)
                    img.load()
                except BaseException:
                    img.close()
                    raise
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refused at open, quoting its own limit (twice its MAX_IMAGE_PIXELS for the error): not the
        # one that applies here, so the message is ours, with the pixel count Pillow read from the header.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(path, None, int(found[1]) if found else None, max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise InputError(
            f"{path}: is not an image in a format Pillow can read (or its header is corrupt); "
            "convert it to PNG or JPEG"
        ) from exc
    except OSError as exc:
        if exc.errno is not None:
            raise  # a real I/O error from the OS, not a decoder complaint: reported by the caller
        raise _decode_error(path, exc) from exc
    except Exception as exc:
        raise _decode_error(path, exc) from exc
    return img, n_frames, sixteen_bit_source


def _decode_error(path: Path, exc: BaseException) -> InputError:
    """Classify a decoder failure as truncated or corrupt; the fix differs (re-copy vs. re-export)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return InputError(
            f"{path}: file is truncated, the image data stops early (decoder: {text}); "
            "copy or download it again"
        )
    return InputError(f"{path}: image file is corrupt ({type(exc).__name__}: {text}); re-export it")


def _check_pixels(path: Path, size: tuple[int, int], max_pixels: int, min_side: int = 1) -> None:
    """Reject an image by its header size, before a single pixel is decoded."""
    width, height = size
    if width < 1 or height < 1:
        raise InputError(f"{path}: image has no pixels ({width}x{height}); re-export it")
    if width * height > max_pixels:
        raise _too_large(path, (width, height), width * height, max_pixels)
    if min(width, height) < min_side:
        raise InputError(
            f"{path}: image is too small ({width}x{height} px); this model needs at least {min_side} px "
            f"on each side. Use a larger image (or scale this one up yourself, if that is what you want)"
        )


def _too_large(path: Path, size: tuple[int, int] | None, pixels: int | None, max_pixels: int) -> InputError:
    """The one "too large" message: the image's pixel count, the limit that applies, and how to raise it."""
    if size is not None:
        what = f"{size[0]}x{size[1]} = {pixels} pixels"
    else:
        what = f"{pixels} pixels" if pixels is not None else "more pixels than allowed"
    raise_to = f"--max-pixels {pixels}" if pixels is not None else "--max-pixels N"
    return InputError(
        f"{path}: image is too large ({what}; the limit is {max_pixels} pixels, set by --max-pixels); "
        f"it may be a decompression bomb. Shrink it first, or, if you trust the file, raise the limit "
        f"with {raise_to}"
    )


def _count_frames(img: Image.Image) -> int:
    """Count the frames of a multi-frame image, and rewind to the first one.

    Counting seeks through the file (GIF), which is also a cheap check that the later frames are not
    broken. MPO files (most phone JPEGs with a depth map or preview) are not animations: their first
    image is the photo, so they count as one frame and get no warning.
    """
    n_frames = getattr(img, "n_frames", 1)
    if img.tell() != 0:
        img.seek(0)
    return 1 if img.format == "MPO" else n_frames


def _decodes_from_16_bit(img: Image.Image) -> bool:
    """Tell whether Pillow will decode 16-bit samples (visible only in the tile's raw mode, pre-load).

    Pillow reduces 16-bit RGB/RGBA/LA PNGs and TIFFs to 8 bits by itself, so the mode alone does not
    reveal it; the raw mode (e.g. ``"RGB;16B"``) does.
    """
    for tile in getattr(img, "tile", None) or ():
        args = tile.args if isinstance(tile.args, tuple) else (tile.args,)
        if any(isinstance(a, str) and ";16" in a for a in args):
            return True
    return False


@contextlib.contextmanager
def _pillow_pixel_limit_at_least(limit: int) -> Iterator[None]:
    """Let Pillow decode up to ``limit`` pixels, restoring its global limit afterwards.

    The default ``max_pixels`` equals Pillow's default, so normally nothing is touched. Only when a
    caller asks for more than Pillow allows is the global raised, under a lock and for the shortest time.
    """
    if Image.MAX_IMAGE_PIXELS is None or limit <= Image.MAX_IMAGE_PIXELS:
        yield
        return
    with _PIXEL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit if saved is not None and saved < limit else saved
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


# --------------------------------------------------------------------------------------------------
# normalising helpers


def _apply_exif_orientation(img: Image.Image, notes: list[str]) -> Image.Image:
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


def _to_rgb8(img: Image.Image, notes: list[str]) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, scaling (never clipping) high-bit-depth data."""
    mode = img.mode
    if mode == "RGB" and not _has_alpha(img):
        return img
    if _has_alpha(img):
        return _composite_on_white(img.convert("RGBA"), notes)
    if mode in _SIXTEEN_BIT_MODES:
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


# --------------------------------------------------------------------------------------------------
# writing helpers
