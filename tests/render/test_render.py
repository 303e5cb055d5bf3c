"""Tests for driftloop.render: labels, GIF, MP4, contact sheets and the atomic writes behind them."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from driftloop._fs import atomic_write
from driftloop.errors import DriftloopError
from driftloop.render import (
    DEFAULT_SHEET_STEPS,
    RenderError,
    contact_sheet,
    draw_step_label,
    hold_frame_count,
    label_box,
    pick_steps,
    webp_animation,
    write_gif,
    write_mp4,
)
from driftloop.render._fonts import displayable
from driftloop.render.contact_sheet import sheet_layout


def smooth(height: int, width: int, k: int = 0) -> np.ndarray:
    """A smooth gradient frame (GIF and H.264 handle these well, so errors measure the writer, not noise)."""
    y, x = np.mgrid[0:height, 0:width]
    blue = np.full(x.shape, (40 + 50 * k) % 256)
    return np.stack([x * 255 / (width - 1), y * 255 / (height - 1), blue], axis=-1).astype(np.uint8)


def solid(height: int, width: int, colour: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (height, width, 3)).copy()


def chain(n: int, height: int = 48, width: int = 40) -> list[tuple[int, np.ndarray]]:
    return [(k, smooth(height, width, k)) for k in range(n)]


def only_file(folder: Path, name: str) -> None:
    """The folder holds exactly ``name``: no temp files (they are dot-files, so list everything)."""
    assert sorted(os.listdir(folder)) == [name]


# --------------------------------------------------------------------------------------------- labels


@pytest.mark.parametrize("size", [64, 512])
@pytest.mark.parametrize("total", [None, 101])
def test_label_changes_only_the_corner(size: int, total: int | None) -> None:
    frame = smooth(size, size)
    before = frame.copy()
    out = draw_step_label(frame, 100, total)

    np.testing.assert_array_equal(frame, before)  # input untouched
    assert out.shape == frame.shape and out.dtype == np.uint8
    changed = np.any(out != frame, axis=2)
    assert changed.any()
    x0, y0, x1, y1 = label_box(size, size, 100, total)
    outside = changed.copy()
    outside[y0:y1, x0:x1] = False
    assert not outside.any()
    # A corner: the box starts near the top-left and covers a small part of the frame.
    assert x0 <= size * 0.05 and y0 <= size * 0.05
    assert x1 <= size * 0.9 and y1 <= size * 0.35
    assert (x1 - x0) * (y1 - y0) <= 0.25 * size * size


def test_label_is_white_text_on_dark_box() -> None:
    frame = solid(256, 256, (255, 255, 255))
    out = draw_step_label(frame, 17)
    x0, y0, x1, y1 = label_box(256, 256, 17)
    box = out[y0:y1, x0:x1].astype(int)
    assert box.mean() < 150  # darkened even on a white frame
    assert (box.min(axis=2) >= 250).sum() >= 10  # white glyph pixels
    assert (box.max(axis=2) <= 100).sum() >= box.shape[0] * box.shape[1] // 3  # dark background


def test_label_scales_with_height_and_fits_narrow_frames() -> None:
    small = label_box(64, 64, 100, 101)
    large = label_box(1024, 1024, 100, 101)
    assert (large[3] - large[1]) >= 3 * (small[3] - small[1])
    assert label_box(64, 64, 100, 101)[2] <= 64
    narrow = label_box(200, 40, 100, 101)
    assert narrow[2] <= 40


def test_label_on_a_tiny_frame_does_not_fail() -> None:
    out = draw_step_label(smooth(4, 4), 100, 101)
    assert out.shape == (4, 4, 3)


def test_label_rejects_non_rgb() -> None:
    with pytest.raises(ValueError):
        draw_step_label(np.zeros((8, 8), dtype=np.uint8), 1)
    with pytest.raises(ValueError):
        draw_step_label(np.zeros((8, 8, 3), dtype=np.float32), 1)


# ------------------------------------------------------------------------------------------------ GIF


def test_gif_frames_loop_and_hold(tmp_path: Path) -> None:
    frames = chain(4)
    path = write_gif(frames, tmp_path / "chain.gif", fps=10, hold_last=1.5, total=4)
    assert path == tmp_path / "chain.gif"
    only_file(tmp_path, "chain.gif")
    with Image.open(path) as im:
        assert im.format == "GIF"
        assert im.n_frames == len(frames)
        assert im.info["loop"] == 0
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert durations[:-1] == [100] * (len(frames) - 1)
    assert abs(durations[-1] - durations[0] - 1500) <= 10


def test_gif_respects_max_side(tmp_path: Path) -> None:
    frames = [(k, smooth(60, 100, k)) for k in range(2)]
    path = write_gif(frames, tmp_path / "small.gif", max_side=50)
    with Image.open(path) as im:
        assert im.size == (50, 30)
    path = write_gif(frames, tmp_path / "full.gif", max_side=None)
    with Image.open(path) as im:
        assert im.size == (100, 60)


def test_gif_preserves_colours(tmp_path: Path) -> None:
    frames = chain(3, 64, 64)
    path = write_gif(frames, tmp_path / "c.gif", label=False)
    with Image.open(path) as im:
        for i, (_, src) in enumerate(frames):
            im.seek(i)
            got = np.asarray(im.convert("RGB")).astype(int)
            assert np.abs(got - src).mean() < 6


def test_gif_labels_frames(tmp_path: Path) -> None:
    frames = chain(2, 64, 64)
    path = write_gif(frames, tmp_path / "l.gif", label=True)
    with Image.open(path) as im:
        got = np.asarray(im.convert("RGB")).astype(int)
    x0, y0, x1, y1 = label_box(64, 64, 0)
    src = frames[0][1].astype(int)
    assert np.abs(got[y0:y1, x0:x1] - src[y0:y1, x0:x1]).mean() > 40
    assert np.abs(got[y1:, :] - src[y1:, :]).mean() < 6


def test_gif_brings_frames_to_one_size(tmp_path: Path) -> None:
    frames = [(0, smooth(40, 40)), (1, smooth(80, 80, 1))]  # a replicator that changed the size
    path = write_gif(frames, tmp_path / "mixed.gif")
    with Image.open(path) as im:
        assert im.n_frames == 2 and im.size == (40, 40)


def test_gif_rejects_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(RenderError):
        write_gif([], tmp_path / "e.gif")
    with pytest.raises(DriftloopError):
        write_gif(chain(2), tmp_path / "e.gif", fps=0)
    with pytest.raises(DriftloopError):
        write_gif(chain(2), tmp_path / "e.gif", hold_last=-1)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------- WebP


def test_webp_animation_loops_holds_shrinks_and_keeps_colour() -> None:
    frames = [(k, smooth(60, 100, k)) for k in range(4)]
    data = webp_animation(frames, fps=5, hold_last=1.0, label=False, max_side=50, quality=90)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "WEBP" and im.n_frames == 4 and im.size == (50, 30) and im.info["loop"] == 0
        durations, shown = [], []
        for i in range(im.n_frames):
            im.seek(i)
            shown.append(np.asarray(im.convert("RGB")).astype(int))
            durations.append(im.info["duration"])  # read with the frame
    assert durations[:-1] == [200] * 3 and durations[-1] == 1200
    want = np.asarray(Image.fromarray(frames[2][1]).resize((50, 30), Image.Resampling.LANCZOS)).astype(int)
    assert np.abs(shown[2] - want).mean() < 6  # full colour, not a 256-colour palette
    labelled = webp_animation(chain(2, 64, 64), quality=90)
    with Image.open(io.BytesIO(labelled)) as im:
        got = np.asarray(im.convert("RGB")).astype(int)
    x0, y0, x1, y1 = label_box(64, 64, 0)
    assert np.abs(got[y0:y1, x0:x1] - chain(1, 64, 64)[0][1][y0:y1, x0:x1]).mean() > 40
    with pytest.raises(RenderError):
        webp_animation([])
    with pytest.raises(DriftloopError):
        webp_animation(chain(2), max_side=0)


# ------------------------------------------------------------------------------------------------ MP4


def test_mp4_is_h264_even_sized_with_hold_frames(tmp_path: Path) -> None:
    frames = [(k, smooth(63, 65, k)) for k in range(4)]  # odd on both axes
    path = write_mp4(frames, tmp_path / "chain.mp4", fps=10, hold_last=0.5, label=False)
    only_file(tmp_path, "chain.mp4")

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    decoded = [np.frombuffer(buf, dtype=np.uint8).reshape(64, 66, 3) for buf in reader]
    assert meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    assert meta["size"] == (66, 64)
    assert len(decoded) == len(frames) + hold_frame_count(10, 0.5) == len(frames) + 5
    n_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert n_frames == len(decoded)
    for (_, src), got in zip(frames, decoded, strict=False):
        assert np.abs(got[:63, :65].astype(int) - src).mean() < 6
    # The hold repeats the last frame (up to lossy coding, which keeps refining a still picture).
    assert np.abs(decoded[-1].astype(int) - decoded[len(frames) - 1]).mean() < 2
    data = path.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # +faststart


def test_mp4_without_ffmpeg_is_a_clear_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ffmpeg() -> str:
        raise RuntimeError("No ffmpeg exe could be found.")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", no_ffmpeg)
    with pytest.raises(DriftloopError, match="ffmpeg"):
        write_mp4(chain(2), tmp_path / "v.mp4")
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: str(tmp_path / "missing-ffmpeg"))
    with pytest.raises(DriftloopError, match="ffmpeg"):
        write_mp4(chain(2), tmp_path / "v.mp4")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="uses a shell script as a stand-in ffmpeg")
def test_mp4_reports_ffmpeg_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho \"Unknown encoder 'libx264'\" >&2\nexit 8\n")
    fake.chmod(0o755)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: str(fake))
    out = tmp_path / "out"
    with pytest.raises(RenderError, match="libx264") as info:
        write_mp4(chain(30, 64, 64), out / "v.mp4")
    assert "exit status 8" in str(info.value)
    assert os.listdir(out) == []


def test_mp4_rejects_bad_crf(tmp_path: Path) -> None:
    with pytest.raises(RenderError):
        write_mp4(chain(2), tmp_path / "v.mp4", crf=60)


class FailingFrames(Sequence[tuple[int, np.ndarray]]):
    """A frame list whose ``fail_at``-th frame cannot be loaded, like a frame file vanishing mid-render."""

    def __init__(self, frames: list[tuple[int, np.ndarray]], fail_at: int) -> None:
        self.frames = frames
        self.fail_at = fail_at

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray]:  # type: ignore[override]
        if index == self.fail_at:
            raise OSError("frame file vanished")
        return self.frames[index]


def test_mp4_failure_midway_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "v.mp4"
    target.write_bytes(b"previous video")
    with pytest.raises(OSError, match="vanished"):
        write_mp4(FailingFrames(chain(4), fail_at=2), target)
    only_file(tmp_path, "v.mp4")
    assert target.read_bytes() == b"previous video"


# ------------------------------------------------------------------------------------- contact sheet


def test_pick_steps() -> None:
    assert pick_steps(range(37)) == [0, 1, 2, 5, 10, 25, 36]
    assert pick_steps(range(101)) == [0, 1, 2, 5, 10, 25, 50, 75, 100]
    assert pick_steps(range(101)) == list(DEFAULT_SHEET_STEPS)
    assert pick_steps([7, 3, 0, 3]) == [0, 7]
    assert pick_steps(range(37), include_last=False) == [0, 1, 2, 5, 10, 25]
    assert pick_steps([]) == []


def colour_of(row: int, step: int) -> tuple[int, int, int]:
    return (40 * row + 20, (7 * step) % 256, 200 - 40 * row)


def test_contact_sheet_layout_and_colours(tmp_path: Path) -> None:
    steps = pick_steps(range(11), wanted=(0, 1, 5))  # [0, 1, 5, 10]
    rows = [
        (f"astronaut.png · seed {r}", [(s, solid(32, 32, colour_of(r, s))) for s in steps]) for r in range(2)
    ]
    thumb = 48
    path = contact_sheet(rows, tmp_path / "sheet.png", thumb=thumb)
    only_file(tmp_path, "sheet.png")
    layout = sheet_layout(2, len(steps), thumb)
    with Image.open(path) as im:
        assert im.format == "PNG"
        sheet = np.asarray(im.convert("RGB"))
    assert sheet.shape == (layout.height, layout.width, 3)
    assert layout.width == 2 * layout.margin + len(steps) * thumb + (len(steps) - 1) * layout.gap
    assert len(steps) * thumb < layout.width < len(steps) * thumb * 1.5
    assert 2 * thumb < layout.height < 2 * thumb * 2.2
    assert tuple(sheet[0, 0]) == (255, 255, 255)  # white background
    for r in range(2):
        for c, step in enumerate(steps):
            x0, y0, x1, y1 = layout.cell(r, c)
            assert tuple(sheet[(y0 + y1) // 2, (x0 + x1) // 2]) == colour_of(r, step)
            assert tuple(sheet[y0 + 2, x0 + 2]) == colour_of(r, step)  # square frame fills its cell


def test_contact_sheet_aligns_steps_and_title(tmp_path: Path) -> None:
    short = [(s, solid(20, 40, (200, 0, 0))) for s in pick_steps(range(37), wanted=(0, 25))]  # [0, 25, 36]
    long_ = [(s, solid(20, 40, (0, 0, 200))) for s in pick_steps(range(101), wanted=(0, 25))]  # [0, 25, 100]
    path = contact_sheet([("short", short), ("long", long_)], tmp_path / "s.png", thumb=40, title="demo")
    layout = sheet_layout(2, 4, 40, title=True)  # columns 0, 25, 36, 100
    assert layout.height > sheet_layout(2, 4, 40).height
    with Image.open(path) as im:
        sheet = np.asarray(im.convert("RGB"))
    assert sheet.shape == (layout.height, layout.width, 3)

    def centre(r: int, c: int) -> tuple[int, ...]:
        x0, y0, x1, y1 = layout.cell(r, c)
        return tuple(sheet[(y0 + y1) // 2, (x0 + x1) // 2])

    assert centre(0, 2) == (200, 0, 0) and centre(0, 3) == (255, 255, 255)  # short chain: no step 100
    assert centre(1, 2) == (255, 255, 255) and centre(1, 3) == (0, 0, 200)  # long chain: no step 36
    x0, y0, _, _ = layout.cell(0, 0)
    assert tuple(sheet[y0 + 2, x0 + 2]) == (255, 255, 255)  # 2:1 frame is letterboxed in its square


def test_text_the_bundled_font_lacks_is_replaced(tmp_path: Path) -> None:
    assert displayable("café.png — seed 1 · ×2") == "cafe.png - seed 1 · x2"
    assert displayable("日") == "?"
    rows = [("café.png — seed 1", [(0, solid(16, 16, (1, 2, 3)))])]
    contact_sheet(rows, tmp_path / "s.png", thumb=32, title="a very long title " * 10)
    only_file(tmp_path, "s.png")


def test_contact_sheet_rejects_empty(tmp_path: Path) -> None:
    with pytest.raises(RenderError):
        contact_sheet([], tmp_path / "s.png")


# --------------------------------------------------------------------------------------------- atomic


def test_failed_save_leaves_no_partial_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_gif(chain(2), tmp_path / "new.gif")
    assert os.listdir(tmp_path) == []

    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"old sheet")
    with pytest.raises(OSError, match="disk full"):
        contact_sheet([("row", chain(2))], sheet, thumb=32)
    only_file(tmp_path, "sheet.png")
    assert sheet.read_bytes() == b"old sheet"


def test_atomic_write_replaces_and_respects_umask(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"one")
    with atomic_write(target) as tmp:
        tmp.write_bytes(b"two")
    assert target.read_bytes() == b"two"
    only_file(target.parent, "out.bin")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_cleans_up_on_interrupt(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_write(tmp_path / "x.png") as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
