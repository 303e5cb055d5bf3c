"""Tests for driftloop.images: input normalisation, input errors, and atomic frame writing.

Test images are built in ``tmp_path`` with Pillow (or by hand, for PNG variants Pillow cannot write), and
most use ``size`` equal to the image's shorter side so no resampling happens and pixel values can be
checked exactly.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from driftloop import images
from driftloop.errors import DriftloopError, InputError
from driftloop.frames import frame_sha256, is_temp_file, read_frame, write_png_atomic
from driftloop.images import (
    AnimatedImageWarning,
    LoadedImage,
    load_image,
    load_images,
    normalise,
    target_size,
)

WHITE = (255, 255, 255)
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
YELLOW = (255, 255, 0)


# --------------------------------------------------------------------------------------------------
# helpers


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_bytes(width: int, height: int, bit_depth: int, color_type: int, rows: list[bytes]) -> bytes:
    """A minimal PNG written by hand, for variants Pillow cannot save (48-bit RGB, absurd sizes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _solid(mode: str, size: tuple[int, int], colour: object) -> Image.Image:
    return Image.new(mode, size, colour)  # type: ignore[arg-type]


def _px(frame: np.ndarray, row: int, col: int) -> tuple[int, ...]:
    return tuple(int(v) for v in frame[row, col])


def _open_fds_to(path: Path) -> list[str]:
    """File descriptors of this process that point at ``path`` (Linux only)."""
    fd_dir = Path("/proc/self/fd")
    found = []
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd) == str(path.resolve()):
                found.append(fd.name)
        except OSError:
            continue
    return found


def _astronaut_jpeg(tmp_path: Path) -> Path:
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(skdata.astronaut()).save(path, quality=92)
    return path


# --------------------------------------------------------------------------------------------------
# target_size


@pytest.mark.parametrize(
    ("size", "multiple", "expected"),
    [
        (512, 8, 512),
        (500, 8, 504),  # 62.5 multiples: tie goes up
        (499, 8, 496),
        (503, 8, 504),
        (12, 8, 16),  # tie goes up
        (11, 8, 8),
        (4, 8, 8),  # tie at half a multiple goes up
        (3, 8, 8),  # rounds to 0, clamped to one multiple
        (1, 8, 8),
        (7, 1, 7),
        (10, 3, 9),
        (11, 3, 12),
        (20, 4, 20),
    ],
)
def test_target_size_rounds_to_nearest_multiple(size: int, multiple: int, expected: int) -> None:
    assert target_size(size, multiple) == expected
    assert target_size(size, multiple) % multiple == 0


@pytest.mark.parametrize(("size", "multiple"), [(0, 8), (-5, 8), (8, 0), (8, -1), (512.0, 8), (True, 8)])
def test_target_size_rejects_bad_arguments(size: object, multiple: object) -> None:
    with pytest.raises(ValueError):
        target_size(size, multiple)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# colour modes


def test_rgb_png_passes_through_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    path = tmp_path / "rgb.png"
    Image.fromarray(pixels).save(path)

    loaded = load_image(path, size=16, multiple=8)

    assert isinstance(loaded, LoadedImage)
    assert loaded.path == path
    assert loaded.frame.dtype == np.uint8
    assert loaded.frame.flags.c_contiguous
    np.testing.assert_array_equal(loaded.frame, pixels)
    assert loaded.notes == ()
    assert loaded.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_rgba_alpha_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[:, :8] = (255, 0, 0, 0)  # fully transparent red
    rgba[:, 8:] = (0, 0, 255, 255)  # opaque blue
    rgba[0, 15] = (0, 0, 0, 128)  # half-transparent black
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(path)

    loaded = load_image(path, size=16)

    assert _px(loaded.frame, 5, 2) == WHITE
    assert _px(loaded.frame, 5, 12) == BLUE
    assert _px(loaded.frame, 0, 15) == (127, 127, 127)  # 255 * (255 - 128) / 255 = 127
    assert any("alpha composited on white" in note for note in loaded.notes)


def test_fully_opaque_alpha_is_dropped_without_a_note(tmp_path: Path) -> None:
    path = tmp_path / "opaque.png"
    _solid("RGBA", (16, 16), (10, 20, 30, 255)).save(path)

    loaded = load_image(path, size=16)

    assert _px(loaded.frame, 3, 3) == (10, 20, 30)
    assert loaded.notes == ()


def test_la_alpha_is_composited_on_white(tmp_path: Path) -> None:
    la = np.zeros((16, 16, 2), dtype=np.uint8)
    la[:, :8] = (100, 0)
    la[:, 8:] = (100, 255)
    path = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(path)

    loaded = load_image(path, size=16)

    assert _px(loaded.frame, 0, 0) == WHITE
    assert _px(loaded.frame, 0, 15) == (100, 100, 100)
    assert any("alpha" in note for note in loaded.notes)


def test_palette_with_transparency_is_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([255, 0, 0, 0, 255, 0])  # index 0 red, index 1 green
    img.paste(1, (8, 0, 16, 16))
    path = tmp_path / "palette.png"
    img.save(path, transparency=0)

    loaded = load_image(path, size=16)

    assert _px(loaded.frame, 4, 4) == WHITE  # transparent index 0 (red underneath)
    assert _px(loaded.frame, 4, 12) == GREEN
    assert any("alpha composited on white" in note for note in loaded.notes)


def test_palette_without_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (16, 16), 1)
    img.putpalette([255, 0, 0, 0, 0, 255])
    path = tmp_path / "palette.gif"
    img.save(path)

    loaded = load_image(path, size=16)

    assert _px(loaded.frame, 7, 7) == BLUE
    assert loaded.notes == ()


def test_pa_image_in_memory() -> None:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([255, 0, 0, 0, 0, 255])
    pa = img.convert("PA")
    alpha = Image.new("L", (16, 16), 255)
    alpha.paste(0, (0, 0, 8, 16))
    pa.putalpha(alpha)
    assert pa.mode == "PA"

    frame, notes = normalise(pa, 16, 8)

    assert _px(frame, 0, 0) == WHITE
    assert _px(frame, 0, 15) == RED
    assert "alpha composited on white" in notes


def test_grayscale_l_becomes_equal_rgb_channels(tmp_path: Path) -> None:
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)

    loaded = load_image(path, size=16)

    for channel in range(3):
        np.testing.assert_array_equal(loaded.frame[:, :, channel], gray)


def test_bilevel_mode_1_in_memory() -> None:
    img = Image.new("1", (8, 8), 0)
    img.paste(1, (4, 0, 8, 8))

    frame, _ = normalise(img, 8, 8)

    assert _px(frame, 0, 0) == (0, 0, 0)
    assert _px(frame, 0, 7) == WHITE


def test_16_bit_gray_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    gray16 = np.zeros((16, 16), dtype=np.uint16)
    gray16[0, :4] = (65535, 32768, 255, 257 * 200)
    path = tmp_path / "gray16.png"
    Image.fromarray(gray16).save(path)
    with Image.open(path) as check:
        assert check.mode in ("I;16", "I")  # really a 16-bit file

    loaded = load_image(path, size=16)

    assert [_px(loaded.frame, 0, c)[0] for c in range(4)] == [255, 128, 0, 200]
    assert _px(loaded.frame, 0, 1) == (128, 128, 128)
    assert "16-bit image reduced to 8 bits" in loaded.notes
    assert loaded.notes.count("16-bit image reduced to 8 bits") == 1


def test_48_bit_rgb_png_is_reduced_to_8_bits(tmp_path: Path) -> None:
    pixels = np.zeros((8, 8, 3), dtype=np.uint16)
    pixels[0, 0] = (0xFFFF, 0x8080, 0x00FF)
    path = tmp_path / "rgb48.png"
    path.write_bytes(_png_bytes(8, 8, 16, 2, [row.astype(">u2").tobytes() for row in pixels]))

    loaded = load_image(path, size=8)

    assert _px(loaded.frame, 0, 0) == (255, 128, 0)
    assert _px(loaded.frame, 1, 1) == (0, 0, 0)
    assert "16-bit image reduced to 8 bits" in loaded.notes


def test_32_bit_integer_mode_i_in_memory() -> None:
    values = np.zeros((8, 8), dtype=np.int32)
    values[0, :4] = (65535, 32768, 70_000, -5)
    img = Image.fromarray(values)
    assert img.mode == "I"

    frame, notes = normalise(img, 8, 8)

    assert [_px(frame, 0, c)[0] for c in range(4)] == [255, 128, 255, 0]
    assert any("clipped" in note for note in notes)


def test_float_mode_f_in_unit_range_is_scaled() -> None:
    values = np.zeros((8, 8), dtype=np.float32)
    values[0, :3] = (1.0, 0.5, 0.0)
    img = Image.fromarray(values)
    assert img.mode == "F"

    frame, notes = normalise(img, 8, 8)

    assert [_px(frame, 0, c)[0] for c in range(3)] == [255, 128, 0]
    assert any("floating-point" in note for note in notes)


def test_float_mode_f_outside_unit_range_is_clipped() -> None:
    values = np.full((8, 8), 100.0, dtype=np.float32)
    values[0, 0] = 300.0
    values[0, 1] = -3.0
    values[0, 2] = np.nan

    frame, _ = normalise(Image.fromarray(values), 8, 8)

    assert [_px(frame, 0, c)[0] for c in range(4)] == [255, 0, 0, 100]


def test_cmyk_is_converted_with_a_note(tmp_path: Path) -> None:
    img = Image.new("CMYK", (16, 16), (0, 0, 0, 0))  # no ink: white
    img.paste((0, 255, 255, 0), (8, 0, 16, 16))  # magenta + yellow: red
    path = tmp_path / "cmyk.tif"
    img.save(path)

    loaded = load_image(path, size=16)

    assert _px(loaded.frame, 0, 0) == WHITE
    assert _px(loaded.frame, 0, 15) == RED
    assert any("CMYK" in note for note in loaded.notes)


# --------------------------------------------------------------------------------------------------
# EXIF orientation


def _quadrants_40x20() -> Image.Image:
    """40 wide, 20 high: red top-left, green top-right, blue bottom-left, yellow bottom-right."""
    img = Image.new("RGB", (40, 20))
    img.paste(RED, (0, 0, 20, 10))
    img.paste(GREEN, (20, 0, 40, 10))
    img.paste(BLUE, (0, 10, 20, 20))
    img.paste(YELLOW, (20, 10, 40, 20))
    return img


def test_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.png"
    _quadrants_40x20().save(path, exif=exif)

    # size 20 = shorter side of the upright 20x40 image: no resampling, crop keeps rows 10..30.
    loaded = load_image(path, size=20, multiple=4)

    # Upright (20 wide, 40 high): blue | red on top, yellow | green below. The crop keeps the middle.
    assert loaded.frame.shape == (20, 20, 3)
    assert _px(loaded.frame, 0, 0) == BLUE
    assert _px(loaded.frame, 0, 19) == RED
    assert _px(loaded.frame, 19, 0) == YELLOW
    assert _px(loaded.frame, 19, 19) == GREEN
    assert any(note.startswith("EXIF orientation applied") and "90" in note for note in loaded.notes)


@pytest.mark.parametrize(
    ("orientation", "upright"),
    [
        (1, lambda a: a),
        (2, lambda a: a[:, ::-1]),
        (3, lambda a: np.rot90(a, 2)),
        (4, lambda a: a[::-1]),
        (5, lambda a: np.transpose(a, (1, 0, 2))),
        (6, lambda a: np.rot90(a, -1)),
        (7, lambda a: np.transpose(a[::-1, ::-1], (1, 0, 2))),  # anti-diagonal
        (8, lambda a: np.rot90(a, 1)),
    ],
)
def test_every_exif_orientation_matches_numpy(
    tmp_path: Path, orientation: int, upright: Callable[[np.ndarray], np.ndarray]
) -> None:
    stored = np.asarray(_quadrants_40x20())
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(stored).save(path, exif=exif)

    loaded = load_image(path, size=20, multiple=4)

    expected = upright(stored)
    h, w = expected.shape[:2]
    top, left = (h - 20) // 2, (w - 20) // 2
    np.testing.assert_array_equal(loaded.frame, expected[top : top + 20, left : left + 20])
    assert any(n.startswith("EXIF orientation") for n in loaded.notes) == (orientation != 1)


def test_exif_orientation_in_jpeg(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise
    path = tmp_path / "rotated.jpg"
    _quadrants_40x20().resize((400, 200), Image.Resampling.NEAREST).save(path, exif=exif, quality=95)

    loaded = load_image(path, size=200, multiple=8)

    # Upright: green | yellow on top, red | blue below; crop keeps the middle 200 rows.
    assert loaded.frame.shape == (200, 200, 3)
    assert np.abs(loaded.frame[20, 20].astype(int) - GREEN).max() < 12
    assert np.abs(loaded.frame[20, 180].astype(int) - YELLOW).max() < 12
    assert np.abs(loaded.frame[180, 20].astype(int) - RED).max() < 12
    assert np.abs(loaded.frame[180, 180].astype(int) - BLUE).max() < 12


# --------------------------------------------------------------------------------------------------
# geometry


def _three_bands(width: int, height: int, vertical: bool) -> Image.Image:
    """Green | red | blue bands (left to right if vertical, else top to bottom); red is the middle third."""
    img = Image.new("RGB", (width, height), RED)
    if vertical:
        third = width // 3
        img.paste(GREEN, (0, 0, third, height))
        img.paste(BLUE, (width - third, 0, width, height))
    else:
        third = height // 3
        img.paste(GREEN, (0, 0, width, third))
        img.paste(BLUE, (0, height - third, width, height))
    return img


@pytest.mark.parametrize(("width", "height", "vertical"), [(300, 100, True), (100, 300, False)])
def test_resize_shorter_side_then_centre_crop(
    tmp_path: Path, width: int, height: int, vertical: bool
) -> None:
    path = tmp_path / "bands.png"
    _three_bands(width, height, vertical).save(path)

    loaded = load_image(path, size=60, multiple=4)

    # Scaled to 180x60 (or 60x180); the centre 60 is exactly the red band. Lanczos rings a little
    # at the band edges, so only the interior is checked exactly.
    assert loaded.frame.shape == (60, 60, 3)
    assert np.abs(loaded.frame[5:-5, 5:-5].astype(int) - RED).max() <= 2
    assert not any("upscaled" in note for note in loaded.notes)


def test_crop_is_centred_to_the_pixel(tmp_path: Path) -> None:
    # 30 wide, 20 high, size 20: no scaling; crop of 10 extra columns must drop 5 from each side.
    pixels = np.zeros((20, 30, 3), dtype=np.uint8)
    pixels[:, :, 0] = np.arange(30, dtype=np.uint8)[None, :]
    path = tmp_path / "ramp.png"
    Image.fromarray(pixels).save(path)

    loaded = load_image(path, size=20, multiple=4)

    np.testing.assert_array_equal(loaded.frame[0, :, 0], np.arange(5, 25))


def test_size_is_rounded_to_multiple_and_small_images_are_upscaled(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    Image.new("RGB", (50, 30), (40, 80, 120)).save(path)

    loaded = load_image(path, size=100, multiple=8)  # 100 -> 104 (12.5 multiples, tie up)

    assert loaded.frame.shape == (104, 104, 3)
    assert np.abs(loaded.frame.astype(int) - (40, 80, 120)).max() <= 1
    assert any("upscaled" in note for note in loaded.notes)


def test_loading_is_deterministic(tmp_path: Path) -> None:
    path = _astronaut_jpeg(tmp_path)

    first = load_image(path, size=200, multiple=8)
    second = load_image(path, size=200, multiple=8)

    assert frame_sha256(first.frame) == frame_sha256(second.frame)
    assert first.source_sha256 == second.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_astronaut_jpeg_realistic_input(tmp_path: Path) -> None:
    original = skdata.astronaut()  # 512x512 RGB
    path = _astronaut_jpeg(tmp_path)

    loaded = load_image(path)  # default 512 / 8: no resize
    assert loaded.frame.shape == (512, 512, 3)
    assert loaded.notes == ()
    # JPEG is lossy but colours must be close (catches channel swaps, flips, wrong crops).
    assert np.abs(loaded.frame.astype(int) - original).mean() < 4

    half = load_image(path, size=256)
    expected = np.asarray(Image.fromarray(original).resize((256, 256), Image.Resampling.LANCZOS))
    assert half.frame.shape == (256, 256, 3)
    assert np.abs(half.frame.astype(int) - expected).mean() < 4


def test_astronaut_non_square_crop(tmp_path: Path) -> None:
    original = skdata.astronaut()[:, 100:400]  # 512 high, 300 wide
    path = tmp_path / "astronaut_tall.jpg"
    Image.fromarray(original).save(path, quality=95)

    loaded = load_image(path, size=150, multiple=10)  # scaled to 150x256, rows 53..203 kept

    expected_full = np.asarray(Image.fromarray(original).resize((150, 256), Image.Resampling.LANCZOS))
    assert loaded.frame.shape == (150, 150, 3)
    assert np.abs(loaded.frame.astype(int) - expected_full[53:203]).mean() < 4


def test_normalise_in_memory_does_not_need_a_file() -> None:
    img = Image.new("RGB", (64, 32), (1, 2, 3))

    frame, notes = normalise(img, 16, 8)

    assert frame.shape == (16, 16, 3)
    assert _px(frame, 8, 8) == (1, 2, 3)
    assert notes == []


# --------------------------------------------------------------------------------------------------
# animated images


def _animated(path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, GREEN, BLUE)]
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, **kwargs)


@pytest.mark.parametrize(("fmt", "suffix"), [("GIF", "gif"), ("PNG", "png"), ("WEBP", "webp")])
def test_animated_image_warns_and_uses_frame_0(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = tmp_path / f"anim.{suffix}"
    _animated(path, fmt)

    with pytest.warns(AnimatedImageWarning, match="3 frames"):
        loaded = load_image(path, size=16)

    assert _px(loaded.frame, 8, 8) == RED
    assert "animated image: using the first of 3 frames" in loaded.notes


def test_still_image_does_not_warn(tmp_path: Path) -> None:
    path = tmp_path / "still.gif"
    Image.new("RGB", (16, 16), RED).save(path)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(path, size=16)


# --------------------------------------------------------------------------------------------------
# input errors


def _assert_input_error(exc: pytest.ExceptionInfo[InputError], path: Path, *words: str) -> None:
    error = exc.value
    assert isinstance(error, InputError)
    assert isinstance(error, DriftloopError)
    assert error.exit_code == 2
    message = str(error)
    assert message.startswith(str(path)), message
    for word in words:
        assert word in message.lower(), message


def _make_missing(tmp_path: Path) -> Path:
    return tmp_path / "nope" / "missing.png"


def _make_directory(tmp_path: Path) -> Path:
    path = tmp_path / "adir.png"
    path.mkdir()
    return path


def _make_empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.png"
    path.touch()
    return path


def _make_text(tmp_path: Path) -> Path:
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n" * 20)
    return path


def _make_truncated_jpeg(tmp_path: Path) -> Path:
    source = _astronaut_jpeg(tmp_path).read_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(source[: len(source) // 2])
    return path


def _make_truncated_png(tmp_path: Path) -> Path:
    buffer = tmp_path / "full.png"
    Image.fromarray(skdata.astronaut()).save(buffer)
    source = buffer.read_bytes()
    path = tmp_path / "half.png"
    path.write_bytes(source[: len(source) // 2])
    return path


def _make_corrupt_png(tmp_path: Path) -> Path:
    buffer = tmp_path / "full.png"
    Image.fromarray(skdata.astronaut()).save(buffer)
    source = bytearray(buffer.read_bytes())
    middle = len(source) // 2
    source[middle : middle + 200] = b"\x00" * 200
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(source))
    return path


def _make_corrupt_header(tmp_path: Path) -> Path:
    source = bytearray(_astronaut_jpeg(tmp_path).read_bytes())
    source[2:64] = b"\x00" * 62
    path = tmp_path / "badheader.jpg"
    path.write_bytes(bytes(source))
    return path


def _make_bomb_header(tmp_path: Path) -> Path:
    # 30000 x 30000 8-bit gray declared, a few bytes of data: Pillow refuses it in Image.open.
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bytes(30_000, 30_000, 8, 0, [b"\x00" * 10]))
    return path


def _make_bomb_warning_range(tmp_path: Path) -> Path:
    # 10000 x 10000 = 1e8 pixels: above Pillow's warning threshold, below its error threshold.
    path = tmp_path / "bomb2.png"
    path.write_bytes(_png_bytes(10_000, 10_000, 8, 0, [b"\x00" * 10]))
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_make_missing, ("does not exist",)),
        (_make_directory, ("directory",)),
        (_make_empty, ("empty", "0 bytes")),
        (_make_text, ("not an image",)),
        (_make_truncated_jpeg, ("truncated",)),
        (_make_truncated_png, ("truncated",)),
        (_make_corrupt_png, ("corrupt",)),
        (_make_corrupt_header, ("not an image",)),
        (_make_bomb_header, ("too large", "decompression bomb")),
        (_make_bomb_warning_range, ("too large", "decompression bomb")),
    ],
)
def test_bad_inputs_raise_input_error(
    tmp_path: Path, make: Callable[[Path], Path], words: tuple[str, ...]
) -> None:
    path = make(tmp_path)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. no DecompressionBombWarning may leak out
        with pytest.raises(InputError) as exc:
            load_image(path)

    _assert_input_error(exc, path, *words)
    if sys.platform == "linux" and path.exists():
        assert _open_fds_to(path) == []


def test_broken_symlink_is_reported_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "link.png"
    path.symlink_to(tmp_path / "gone.png")

    with pytest.raises(InputError) as exc:
        load_image(path)

    _assert_input_error(exc, path, "does not exist", "symlink")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_rejected_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "pipe.png"
    os.mkfifo(path)

    with pytest.raises(InputError) as exc:
        load_image(path)

    _assert_input_error(exc, path, "not a regular file")


def test_max_pixels_is_checked_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)

    def no_decoding(self: Image.Image) -> None:
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    with pytest.raises(InputError) as exc:
        load_image(path, size=16, max_pixels=9_999)

    _assert_input_error(exc, path, "too large", "10000 pixels")


def test_max_pixels_boundary_is_inclusive(tmp_path: Path) -> None:
    path = tmp_path / "exact.png"
    Image.new("RGB", (100, 100)).save(path)

    assert load_image(path, size=16, max_pixels=10_000).frame.shape == (16, 16, 3)


def test_pillow_global_limit_is_respected_and_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    path = tmp_path / "2500px.png"
    Image.new("RGB", (50, 50), GREEN).save(path)

    # Our max_pixels allows it although Pillow's global alone would refuse it (2500 > 2 * 1000) ...
    loaded = load_image(path, size=8, max_pixels=10_000)
    assert _px(loaded.frame, 4, 4) == GREEN
    assert Image.MAX_IMAGE_PIXELS == 1_000  # ... and the global is put back.

    with pytest.raises(InputError) as exc:
        load_image(path, size=8, max_pixels=2_000)
    _assert_input_error(exc, path, "too large")
    assert Image.MAX_IMAGE_PIXELS == 1_000


def test_default_limit_does_not_touch_pillow_global(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ok.png"
    Image.new("RGB", (16, 16)).save(path)
    seen: list[int | None] = []
    real_open = Image.open

    def spying_open(*args: object, **kwargs: object) -> Image.Image:
        seen.append(Image.MAX_IMAGE_PIXELS)
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image, "open", spying_open)
    before = Image.MAX_IMAGE_PIXELS
    load_image(path, size=16)

    assert seen == [before]
    assert before == Image.MAX_IMAGE_PIXELS


def test_unreadable_file_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated, because root (as in CI containers) can read a chmod 000 file; see the next test too.
    path = tmp_path / "secret.png"
    Image.new("RGB", (16, 16)).save(path)
    real_open = Path.open

    def denying_open(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", denying_open)
    with pytest.raises(InputError) as exc:
        load_image(path)

    _assert_input_error(exc, path, "permission denied")


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc/self/fd")
def test_no_file_handles_left_open(tmp_path: Path) -> None:
    good = _astronaut_jpeg(tmp_path)
    anim = tmp_path / "anim.gif"
    _animated(anim, "GIF")

    load_image(good)
    with pytest.warns(AnimatedImageWarning):
        load_image(anim, size=16)

    assert _open_fds_to(good) == []
    assert _open_fds_to(anim) == []


def test_bad_arguments_are_value_errors_not_input_errors(tmp_path: Path) -> None:
    path = tmp_path / "ok.png"
    Image.new("RGB", (16, 16)).save(path)

    with pytest.raises(ValueError):
        load_image(path, size=0)
    with pytest.raises(ValueError):
        load_image(path, max_pixels=0)


# --------------------------------------------------------------------------------------------------
# load_images


def test_load_images_returns_all_in_order(tmp_path: Path) -> None:
    paths = []
    for i, colour in enumerate((RED, GREEN, BLUE)):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (16, 16), colour).save(path)
        paths.append(path)

    loaded = load_images(iter(paths), size=16)  # any iterable, even a one-shot generator

    assert [item.path for item in loaded] == paths
    assert [_px(item.frame, 0, 0) for item in loaded] == [RED, GREEN, BLUE]


def test_load_images_validates_everything_and_reports_first_bad(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.new("RGB", (16, 16)).save(good)
    empty = _make_empty(tmp_path)
    missing = tmp_path / "missing.png"

    with pytest.raises(InputError) as exc:
        load_images([good, empty, good, missing], size=16)

    _assert_input_error(exc, empty, "empty")
    assert str(missing) in str(exc.value)  # the second bad input is listed too
    assert str(good) not in str(exc.value).replace(str(tmp_path), "")  # good ones are not blamed


def test_load_images_empty_list() -> None:
    assert load_images([]) == []


# --------------------------------------------------------------------------------------------------
# frame identity


def test_frame_sha256_is_sha256_of_pixel_bytes() -> None:
    frame = np.random.default_rng(1).integers(0, 256, size=(8, 9, 3), dtype=np.uint8)

    assert frame_sha256(frame) == hashlib.sha256(frame.tobytes()).hexdigest()


def test_frame_sha256_changes_when_one_pixel_changes() -> None:
    frame = np.zeros((32, 32, 3), dtype=np.uint8)
    before = frame_sha256(frame)
    changed = frame.copy()
    changed[17, 3, 1] = 1

    assert frame_sha256(changed) != before
    assert frame_sha256(frame.copy()) == before


def test_frame_sha256_ignores_memory_layout() -> None:
    frame = np.random.default_rng(2).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    view = frame[:, ::-1]
    assert not view.flags.c_contiguous

    assert frame_sha256(view) == frame_sha256(np.ascontiguousarray(view))


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4, 3), dtype=np.float32), np.zeros((4, 4), dtype=np.uint8), np.zeros((4, 4, 4), np.uint8)],
)
def test_frame_sha256_rejects_non_frames(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        frame_sha256(bad)


# --------------------------------------------------------------------------------------------------
# writing and reading frames


def _random_frame(seed: int = 3, shape: tuple[int, int] = (24, 40)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def test_write_png_atomic_round_trip_is_lossless(tmp_path: Path) -> None:
    frame = _random_frame()
    path = tmp_path / "frame.png"

    write_png_atomic(path, frame)
    back = read_frame(path)

    assert back.dtype == np.uint8
    assert back.shape == frame.shape
    np.testing.assert_array_equal(back, frame)
    assert frame_sha256(back) == frame_sha256(frame)
    assert sorted(os.listdir(tmp_path)) == ["frame.png"]  # no temp file left behind


@pytest.mark.parametrize("level", [0, 1, 9])
def test_write_png_atomic_is_byte_deterministic(tmp_path: Path, level: int) -> None:
    frame = _random_frame()
    a, b = tmp_path / "a.png", tmp_path / "b.png"

    write_png_atomic(a, frame, compress_level=level)
    write_png_atomic(b, frame.copy(), compress_level=level)

    assert a.read_bytes() == b.read_bytes()


def test_write_png_atomic_overwrites_and_accepts_non_contiguous(tmp_path: Path) -> None:
    path = tmp_path / "frame.png"
    write_png_atomic(path, _random_frame(seed=4))
    frame = _random_frame(seed=5)[:, ::-1]

    write_png_atomic(path, frame)

    np.testing.assert_array_equal(read_frame(path), frame)
    assert sorted(os.listdir(tmp_path)) == ["frame.png"]


def test_failed_write_leaves_no_temp_file_and_no_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp_names: list[str] = []

    def failing_replace(src: str, dst: object) -> None:
        temp_names.append(os.path.basename(src))
        assert os.path.exists(src)  # the temp file did exist, fully written, until the failure
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    path = tmp_path / "frame.png"

    with pytest.raises(OSError, match="No space left"):
        write_png_atomic(path, _random_frame())

    assert os.listdir(tmp_path) == []
    assert len(temp_names) == 1
    assert is_temp_file(temp_names[0])


def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "frame.png"
    old = _random_frame(seed=6)
    write_png_atomic(path, old)
    old_bytes = path.read_bytes()

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output"):
        write_png_atomic(path, _random_frame(seed=7))

    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["frame.png"]


def test_interrupt_during_write_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted_save(self: Image.Image, *args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        write_png_atomic(tmp_path / "frame.png", _random_frame())

    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_written_file_gets_normal_permissions(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "frame.png"
        write_png_atomic(path, _random_frame())
    finally:
        os.umask(old_umask)

    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0o600


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4, 3), dtype=np.float64),
        np.zeros((4, 4, 3), dtype=np.uint16),
        np.zeros((4, 4), dtype=np.uint8),
        np.zeros((4, 4, 4), dtype=np.uint8),
        np.zeros((0, 4, 3), dtype=np.uint8),
    ],
)
def test_write_png_atomic_rejects_bad_frames(tmp_path: Path, bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        write_png_atomic(tmp_path / "frame.png", bad)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("level", [-1, 10, 1.5])
def test_write_png_atomic_rejects_bad_compress_level(tmp_path: Path, level: object) -> None:
    with pytest.raises(ValueError):
        write_png_atomic(tmp_path / "frame.png", _random_frame(), compress_level=level)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_read_frame_rejects_non_rgb_png(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.new("L", (4, 4)).save(path)

    with pytest.raises(ValueError, match="RGB"):
        read_frame(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (".tmp-0123456789abcdef.png.part", True),
        (".tmp-x.png.part", True),
        ("/some/dir/.tmp-abc.png.part", True),
        ("frame.png", False),
        (".tmp-abc.png", False),
        ("abc.png.part", False),
        (".tmp-.png.part", False),
        ("tmp-abc.png.part", False),
    ],
)
def test_is_temp_file(name: str, expected: bool) -> None:
    assert is_temp_file(name) is expected


def test_module_exports() -> None:
    for name in images.__all__:
        assert hasattr(images, name)


@pytest.mark.parametrize(
    ("make", "pixels"), [(_make_bomb_header, 900_000_000), (_make_bomb_warning_range, 10**8)]
)
def test_bomb_message_quotes_the_limit_that_applies(
    tmp_path: Path, make: Callable[[Path], Path], pixels: int
) -> None:
    """Pillow refuses these at open quoting its own (doubled) limit; the user must see ours and the flag."""
    path = make(tmp_path)
    with pytest.raises(InputError) as exc:
        load_image(path, size=16)
    message = str(exc.value)
    _assert_input_error(exc, path, "too large", "decompression bomb")
    assert f"limit is {images.DEFAULT_MAX_PIXELS} pixels" in message
    assert str(2 * images.DEFAULT_MAX_PIXELS) not in message and "178956970" not in message
    assert f"{pixels} pixels" in message and f"--max-pixels {pixels}" in message


def test_header_limit_message_says_how_to_raise_it(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    with pytest.raises(InputError) as exc:
        load_image(path, size=16, max_pixels=9_999)
    assert "100x100 = 10000 pixels; the limit is 9999 pixels" in str(exc.value)
    assert "--max-pixels 10000" in str(exc.value)


@pytest.mark.parametrize(("width", "height"), [(1, 1), (7, 300), (300, 7)])
def test_inputs_below_the_callers_minimum_are_refused(tmp_path: Path, width: int, height: int) -> None:
    path = tmp_path / f"{width}x{height}.png"
    Image.new("RGB", (width, height), GREEN).save(path)
    with pytest.raises(InputError) as exc:
        load_images([path], size=64, multiple=8, min_side=8)
    _assert_input_error(exc, path, "too small", f"{width}x{height}", "at least 8 px")
    assert load_image(path, size=64, multiple=8).frame.shape == (64, 64, 3)  # the default minimum is 1 px


def test_tiny_and_extreme_inputs_say_their_size_and_the_crop(tmp_path: Path) -> None:
    tiny = tmp_path / "1x1.png"
    Image.new("RGB", (1, 1), GREEN).save(tiny)
    (note,) = load_image(tiny, size=64, multiple=1).notes
    assert "upscaled" in note and "1x1" in note and "64 px" in note

    strip = tmp_path / "strip.png"
    Image.new("RGB", (10_000, 3), GREEN).save(strip)
    notes = load_image(strip, size=64, multiple=1).notes
    assert any("10000x3" in n and "centre-cropped" in n and "3x3" in n and "64x64" in n for n in notes), notes

    photo = tmp_path / "photo.png"
    Image.new("RGB", (640, 480), GREEN).save(photo)
    assert load_image(photo, size=64, multiple=1).notes == ()  # an ordinary 4:3 crop is not worth a word


def test_extreme_aspect_is_resampled_from_its_centre_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 100000x8 strip must not be scaled whole (a 6.4 M x 64 intermediate) before the crop."""
    path = tmp_path / "strip.png"
    pixels = np.zeros((8, 100_000, 3), np.uint8)
    pixels[:, 49_996:50_004] = GREEN  # the centre square is green, the rest black
    Image.fromarray(pixels).save(path)
    sizes: list[tuple[int, int]] = []
    real_resize = Image.Image.resize

    def recording_resize(
        self: Image.Image, size: tuple[int, int], *args: object, **kwargs: object
    ) -> Image.Image:
        sizes.append(tuple(size))
        return real_resize(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", recording_resize)
    frame = load_image(path, size=64, multiple=1).frame
    assert sizes == [(64, 64)]
    assert _px(frame, 32, 32) == GREEN
