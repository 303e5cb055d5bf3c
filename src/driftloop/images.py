"""Loading input images into frames: validation and decoding (normalisation: :mod:`driftloop.normalise`).

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
from PIL import Image, UnidentifiedImageError

from driftloop.config import DEFAULT_MAX_PIXELS
from driftloop.errors import AnimatedImageWarning, InputError
from driftloop.frames import _check_int
from driftloop.normalise import SIXTEEN_BIT_MODES, apply_exif_orientation, normalise, target_size, to_rgb8

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

    with _opened(path, max_pixels, min_side) as (source_sha256, img, n_frames, sixteen_bit_source):
        try:
            frame, conversion_notes = normalise(img, size, multiple)
        except ValueError as exc:
            raise InputError(
                f"{path}: cannot convert this image to RGB ({exc}); re-save it as an 8-bit RGB PNG or JPEG"
            ) from exc
        mode = img.mode

    notes: list[str] = []
    if n_frames > 1:
        notes.append(f"animated image: using the first of {n_frames} frames")
        warnings.warn(
            f"{path}: animated image with {n_frames} frames; only the first is used",
            AnimatedImageWarning,
            stacklevel=2,
        )
    if sixteen_bit_source and mode not in SIXTEEN_BIT_MODES and mode != "I":
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
    frames: list[np.ndarray] = []
    durations: list[int | None] = []
    notes: list[str] = []
    with _opened(path, max_pixels) as (source_sha256, img, n_frames, _sixteen):
        for index in range(n_frames):
            where = f"{path} (frame {index + 1} of {n_frames})" if n_frames > 1 else str(path)
            try:
                if index:
                    img.seek(index)
                    img.load()
                upright = apply_exif_orientation(img, notes) if n_frames == 1 else img
                rgb = to_rgb8(upright, notes)
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
    return DecodedImage(path, tuple(frames), tuple(durations), source_sha256, tuple(dict.fromkeys(notes)))


# --------------------------------------------------------------------------------------------------
# loading helpers


@contextlib.contextmanager
def _opened(path: Path, max_pixels: int, min_side: int = 1) -> Iterator[tuple[str, Image.Image, int, bool]]:
    """An input file checked, hashed and its first frame decoded: (sha256 of the file, the image, its
    frame count, whether it holds 16-bit data). Read errors, there or in the caller's block, become one
    ``InputError`` naming the file."""
    _check_input_file(path)
    try:
        with path.open("rb") as fh:
            source_sha256 = hashlib.file_digest(fh, "sha256").hexdigest()  # in chunks: any size
            fh.seek(0)
            img, n_frames, sixteen_bit_source = _decode_first_frame(path, fh, max_pixels, min_side)
            with img:
                yield source_sha256, img, n_frames, sixteen_bit_source
    except PermissionError as exc:
        raise InputError(f"{path}: permission denied; make the file readable (e.g. chmod u+r)") from exc
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


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
