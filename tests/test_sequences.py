"""Reading copy sequences made by other tools: folders, order files, GIF/WebP animations, MP4 videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from driftloop.cadence import find_copies, static_border
from driftloop.errors import InputError
from driftloop.render import write_gif as write_gif_own
from driftloop.render import write_mp4 as write_mp4_own
from driftloop.render.labels import label_box
from driftloop.sequences import FindCopies, natural_key, read_sequence
from sequence_fixtures import (
    N_COPIES,
    POSTED_VIDEOS,
    SIZE,
    generation_loss,
    held,
    palette_frames,
    posted_video,
    similar_pair,
    with_timer,
    write_gif,
    write_mp4,
    write_pngs,
    write_webp,
)


@pytest.fixture(scope="module")
def chain() -> list[np.ndarray]:
    return generation_loss()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, chain: list[np.ndarray]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("made")
    return {
        "folder": write_pngs(root / "copies", chain)[0].parent,
        "gif": write_gif(root / "chain.gif", chain),
        "webp": write_webp(root / "chain.webp", chain),
        "mp4": write_mp4(root / "chain.mp4", held(chain, 5)),  # 0.5 s per copy at 10 fps
        "timer": write_mp4(root / "timer.mp4", with_timer(held(chain, 5))),
        "still": write_mp4(root / "still.mp4", held(chain[:1], 20)),
    }


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


# ---------------------------------------------------------------------------------------------- order


def test_natural_key_puts_2_before_10() -> None:
    names = ["10.png", "2.png", "1.png", "copy 10.jpg", "Copy 9.jpg", "11.png", "copy 1.jpg"]
    assert sorted(names, key=natural_key) == [
        "1.png", "2.png", "10.png", "11.png", "copy 1.jpg", "Copy 9.jpg", "copy 10.jpg",
    ]  # fmt: skip


def test_folder_is_read_in_natural_order_with_exact_pixels(made: dict[str, Path], chain) -> None:
    seq = read_sequence([made["folder"]])
    assert seq.kind == "images"
    assert [Path(m.source).name for m in seq.members] == [f"{i}.png" for i in range(1, N_COPIES + 1)]
    for member, source in zip(seq.members, chain, strict=True):
        assert np.array_equal(member.frame, source)
    assert len(seq.files) == N_COPIES and all(len(sha) == 64 for _, sha in seq.files)


def test_a_shell_glob_order_is_sorted_naturally(made: dict[str, Path], chain) -> None:
    globbed = sorted(made["folder"].glob("*.png"))  # 1, 10, 11, 12, 2, ... as a shell gives them
    assert globbed[1].name == "10.png"
    seq = read_sequence(globbed)
    assert [np.array_equal(m.frame, c) for m, c in zip(seq.members, chain, strict=True)] == [True] * N_COPIES


def test_order_file_overrides_natural_order(made: dict[str, Path], chain, tmp_path: Path) -> None:
    order = tmp_path / "order.txt"
    lines = ["# newest first", ""] + [f"{i}.png" for i in range(N_COPIES, 0, -1)]
    order.write_text("\n".join(lines))
    seq = read_sequence([made["folder"]], order_file=order)
    assert [Path(m.source).name for m in seq.members][:2] == [f"{N_COPIES}.png", f"{N_COPIES - 1}.png"]
    assert np.array_equal(seq.members[-1].frame, chain[0])


def test_order_file_paths_are_relative_to_it_without_a_folder(made: dict[str, Path], tmp_path: Path) -> None:
    order = tmp_path / "order.txt"
    order.write_text(f"{made['folder'] / '3.png'}\n{made['folder'] / '1.png'}\n")
    seq = read_sequence([], order_file=order)
    assert [Path(m.source).name for m in seq.members] == ["3.png", "1.png"]


def test_folder_skips_hidden_and_non_image_files(made: dict[str, Path], tmp_path: Path, chain) -> None:
    folder = tmp_path / "mixed"
    write_pngs(folder, chain[:3])
    (folder / "notes.txt").write_text("made with a chat app")
    (folder / ".DS_Store").write_bytes(b"\0\1")
    seq = read_sequence([folder])
    assert [Path(m.source).name for m in seq.members] == ["1.png", "2.png", "3.png"]


# ------------------------------------------------------------------------------------------ animations


def test_gif_gives_every_frame_exactly_with_its_duration(made: dict[str, Path], chain) -> None:
    seq = read_sequence([made["gif"]])
    assert seq.kind == "animation" and len(seq.members) == N_COPIES
    for member, source in zip(seq.members, palette_frames(chain), strict=True):
        assert np.array_equal(member.frame, source)
    assert {m.info["duration_ms"] for m in seq.members} == {500}
    assert seq.members[3].source.endswith(f"(frame 4 of {N_COPIES})")


def test_lossless_webp_gives_the_source_frames(made: dict[str, Path], chain) -> None:
    seq = read_sequence([made["webp"]])
    assert len(seq.members) == N_COPIES
    assert all(np.array_equal(m.frame, c) for m, c in zip(seq.members, chain, strict=True))
    assert {m.info["duration_ms"] for m in seq.members} == {400}


# ----------------------------------------------------------------------------------------------- video


def test_cut_detector_finds_every_copy_of_an_mp4(made: dict[str, Path], chain) -> None:
    seq = read_sequence([made["mp4"]])
    assert seq.kind == "video" and len(seq.members) == N_COPIES
    assert [m.info["video_frame"] for m in seq.members] == [5 * k + 2 for k in range(N_COPIES)]
    assert [m.info["shown_frames"] for m in seq.members] == [[5 * k, 5 * k + 4] for k in range(N_COPIES)]
    # the k-th copy found is the k-th copy made, not a neighbour (yuv420p H.264 at crf 18: mean |Δ| ~2.5)
    for k, member in enumerate(seq.members):
        errors = [_mean_abs(member.frame, c) for c in chain]
        assert int(np.argmin(errors)) == k and errors[k] < 4
    assert seq.settings["hold_s"] == 0.5 and seq.settings["fps"] == 10.0
    assert "12 copies found (each held 0.50 s" in seq.notes[0]


def test_every_seconds_picks_the_middle_of_each_window(made: dict[str, Path]) -> None:
    seq = read_sequence([made["mp4"]], every=0.5)
    assert [m.info["video_frame"] for m in seq.members] == [5 * k + 2 for k in range(N_COPIES)]
    assert seq.settings["every"] == 0.5 and seq.settings["threshold"] is None
    assert len(read_sequence([made["mp4"]], every=1.0).members) == N_COPIES // 2


def test_a_running_timer_is_cropped_out_by_hand(made: dict[str, Path], chain) -> None:
    seq = read_sequence([made["timer"]], crop=(0, 16, SIZE, SIZE))
    assert len(seq.members) == N_COPIES
    assert seq.members[0].frame.shape == (SIZE, SIZE, 3)
    assert _mean_abs(seq.members[5].frame, chain[5]) < 4


def test_threshold_hold_and_copies_are_settable(made: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="no detectable cuts"):  # every cut is below a huge threshold
        read_sequence([made["mp4"]], found=FindCopies(threshold=100.0))
    given = read_sequence([made["mp4"]], found=FindCopies(hold=0.5))
    assert len(given.members) == N_COPIES and "each held 0.50 s (given)" in given.notes[0]
    assert len(read_sequence([made["mp4"]], found=FindCopies(copies=N_COPIES)).members) == N_COPIES
    with pytest.raises(InputError, match="no cadence gives 40 copies"):
        read_sequence([made["mp4"]], found=FindCopies(copies=40))
    with pytest.raises(InputError, match="--every fixes the windows"):
        read_sequence([made["mp4"]], every=0.5, found=FindCopies(hold=0.5))


# ------------------------------------------------------------------------------ posted videos, own renders


@pytest.fixture(scope="module")
def small_chain() -> list[np.ndarray]:
    return generation_loss(n=12, size=96)


@pytest.mark.parametrize("case", POSTED_VIDEOS, ids=[c[0] for c in POSTED_VIDEOS])
def test_posted_videos_give_every_copy_in_order(tmp_path: Path, small_chain, case) -> None:
    """Holds of 0.25-1 s (7.5 frames included), CRF 18-35, a still letterbox and caption, two identical
    successive copies, the last copy held 1 s longer: 12 copies, each picked inside its own hold."""
    _name, hold, fps, crf, boxed, pair = case
    seq = read_sequence([posted_video(tmp_path / "posted.mp4", small_chain, case)])
    assert len(seq.members) == len(small_chain), seq.notes
    for k, member in enumerate(seq.members):  # the picked frame lies inside copy k's true hold
        assert round(k * hold) <= member.info["video_frame"] < round((k + 1) * hold), (k, member.info)
    assert seq.settings["hold_s"] == pytest.approx(hold / fps, abs=0.02)
    assert seq.settings["split_by_cadence"] == (1 if pair else 0)
    if pair:
        assert "1 merged copy split by cadence" in seq.notes[0]
    if boxed:  # the still border is cropped to within one 8-pixel codec block of the picture, and said
        x, y, w, h = seq.settings["crop"]
        assert seq.settings["crop_found"] and 0 <= x <= 6 and 6 <= y <= 12
        assert 96 <= w <= 104 and 96 <= h <= 104
        assert "still border" in seq.notes[1]
    if crf <= 28 and not boxed:  # the k-th copy found is the k-th copy made, within the codec's loss
        for k, member in enumerate(seq.members):
            errors = [_mean_abs(member.frame, c) for c in small_chain]
            assert int(np.argmin(errors)) == k or (pair and k == len(small_chain) // 2)


@pytest.mark.parametrize("fps", [10.0, 4.0])
def test_driftloops_own_mp4_and_gif_round_trip(tmp_path: Path, small_chain, fps: float) -> None:
    """The renderer's defaults (10 fps: 0.1 s per copy, a counter on every frame, the last frame held
    1.5 s) and 4 fps: every copy back, in order, within the codec's loss outside the counter."""
    frames = list(enumerate(small_chain))
    total = len(frames) - 1
    mp4 = write_mp4_own(frames, tmp_path / "own.mp4", fps=fps, total=total)
    gif = write_gif_own(frames, tmp_path / "own.gif", fps=fps, total=total)
    for path, limit in ((mp4, 6.0), (gif, 6.0)):  # mean |Δ| 4.6 at most: the GIF's palette, H.264
        seq = read_sequence([path])
        assert len(seq.members) == len(small_chain), (path.name, seq.notes)
        for k, member in enumerate(seq.members):
            if path.suffix == ".mp4":  # one video frame per copy, then the last one held
                assert member.info["video_frame"] == k and member.info["shown_frames"][0] == k
            x0, y0, x1, y1 = label_box(96, 96, k, total)
            outside = np.ones((96, 96), bool)
            outside[y0:y1, x0:x1] = False
            errors = [_mean_abs(member.frame[outside], c[outside]) for c in small_chain]
            assert errors[k] < limit, (path.name, k, errors[k])
            if path.suffix == ".gif":  # lossless but for the palette: nearest to its own copy
                assert int(np.argmin(errors)) == k


def test_find_copies_on_signals_with_known_truth() -> None:
    quiet = np.full(200, 0.02)
    cuts = [round(k * 7.5) for k in range(1, 13)]  # a 7.5-frame hold (0.25 s at 30 fps)
    d = quiet.copy()
    for c in cuts:
        d[c - 3 : c] = [0.3, 0.6, 2.0]  # a cut smeared over three frames, peaking at the cut (d[c - 1])
    d[cuts[5] - 3 : cuts[5]] = 0.02  # copies 5 and 6 identical: no cut at all
    d[40] = 0.9  # a flicker off the cadence (frame 41, between cuts at 38 and 45)
    found = find_copies(d)
    assert [s for s, _ in found.spans] == [0, *cuts], found
    assert found.split == 1 and found.ignored >= 1 and found.hold == pytest.approx(7.5, abs=0.05)
    one_frame = np.concatenate([np.full(11, 5.0), np.zeros(15)])  # driftloop's MP4: 1 frame each, held last
    assert [s for s, _ in find_copies(one_frame).spans] == list(range(12))
    assert find_copies(one_frame).spans[-1] == (11, 26)
    assert len(find_copies(np.zeros(30)).spans) == 1


# ------------------------------------------------------------------------------------------- bad input


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: holds no image files"):
        read_sequence([tmp_path / "empty"])


def test_one_image(tmp_path: Path, chain) -> None:
    (path,) = write_pngs(tmp_path / "one", chain[:1])
    with pytest.raises(InputError, match=r"1\.png: a chain needs at least two images"):
        read_sequence([tmp_path / "one"])
    with pytest.raises(InputError, match=r"1\.png: is a single image"):
        read_sequence([path])


def test_corrupt_member_is_named_with_its_position(tmp_path: Path, chain) -> None:
    paths = write_pngs(tmp_path / "broken", chain)
    data = paths[4].read_bytes()
    paths[4].write_bytes(data[: len(data) // 2])  # 5.png truncated
    paths[7].write_bytes(b"not a png at all")  # 8.png corrupt
    with pytest.raises(InputError) as info:
        read_sequence([tmp_path / "broken"])
    message = str(info.value)
    assert message.startswith(f"{paths[4]} (image 5 of {N_COPIES}): file is truncated")
    assert f"{paths[7]} (image 8 of {N_COPIES}): is not an image" in message
    assert "1 more bad member" in message


def test_truncated_animation_names_the_frame(tmp_path: Path, made: dict[str, Path]) -> None:
    data = made["gif"].read_bytes()
    broken = tmp_path / "cut.gif"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.gif \(frame \d+ of \d+\): file is truncated"):
        read_sequence([broken])


def test_animated_member_of_a_folder(tmp_path: Path, made: dict[str, Path], chain) -> None:
    folder = tmp_path / "with-gif"
    write_pngs(folder, chain[:2])
    write_gif(folder / "3.gif", chain[:3])
    with pytest.raises(InputError, match=r"3\.gif \(image 3 of 3\): is animated \(3 frames\)"):
        read_sequence([folder])


def test_every_member_passes_the_pixel_limit(made: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"1\.png \(image 1 of 12\): image is too large.*--max-pixels"):
        read_sequence([made["folder"]], max_pixels=1000)
    with pytest.raises(InputError, match=r"chain\.mp4: video frames are too large"):
        read_sequence([made["mp4"]], max_pixels=1000)


def test_video_without_cuts(made: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"still\.mp4: no detectable cuts: found 1 copy"):
        read_sequence([made["still"]])


def test_not_a_video(tmp_path: Path) -> None:
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"\0" * 1000)
    with pytest.raises(InputError, match=r"clip\.mp4: cannot be read as a video"):
        read_sequence([fake])
    with pytest.raises(InputError, match=r"gone\.mp4: file does not exist"):
        read_sequence([tmp_path / "gone.mp4"])


def test_crop_outside_the_frame_names_the_frame_size(made: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"reaches outside the 256x256 frame"):
        read_sequence([made["folder"]], crop=(200, 0, 100, 100))
    with pytest.raises(InputError, match=r"--crop X,Y,W,H needs"):
        read_sequence([made["folder"]], crop=(0, 0, 0, 10))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every": 0}, "--every must be a positive"),
        ({"found": FindCopies(threshold=-1)}, "--threshold must be 0 or more"),
        ({"found": FindCopies(hold=float("nan"))}, "--hold must be a positive"),
        ({"found": FindCopies(copies=1)}, "--copies must be 2 or more"),
    ],
)
def test_bad_settings(made: dict[str, Path], kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        read_sequence([made["mp4"]], **kwargs)


def test_bad_source_combinations(made: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no sources given"):
        read_sequence([])
    with pytest.raises(InputError, match="is a folder; pass one folder on its own"):
        read_sequence([made["folder"], made["gif"]])
    with pytest.raises(InputError, match="is a video; pass a video on its own"):
        read_sequence([made["gif"], made["mp4"]])
    order = tmp_path / "order.txt"
    order.write_text("1.png\nmissing.png\n")
    with pytest.raises(InputError, match=r"missing\.png \(image 2 of 2\): file does not exist"):
        read_sequence([made["folder"]], order_file=order)
    order.write_text("# nothing\n")
    with pytest.raises(InputError, match="lists no files"):
        read_sequence([made["folder"]], order_file=order)


def test_members_with_alpha_are_put_on_white_like_inputs(tmp_path: Path, chain) -> None:
    folder = tmp_path / "alpha"
    write_pngs(folder, chain[:2])
    rgba = np.dstack([chain[1], np.zeros(chain[1].shape[:2], np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "2.png")
    seq = read_sequence([folder])
    assert np.all(seq.members[1].frame == 255)
    assert any("alpha composited on white" in n for n in seq.notes)


def test_a_still_plain_background_is_picture_and_a_still_bar_is_border() -> None:
    activity = np.ones((100, 100))
    activity[:20] = 0  # the top 20 rows never change
    wall = np.full((100, 100, 3), 250, np.uint8)  # ... and look like the picture below them: a white wall
    wall[40:] = 90
    assert static_border(activity, wall) is None
    bar = wall.copy()
    bar[:20] = 0  # ... and are black above a white picture: a letterbox bar
    assert static_border(activity, bar) == (0, 20, 100, 80)
    assert static_border(activity) == (0, 20, 100, 80)  # without the first frame: stillness alone


def test_gifs_made_from_videos_and_merged_identical_copies(tmp_path: Path, small_chain) -> None:
    """A GIF converted from a video (one global palette, as video-to-GIF converters make) holds each copy
    over 5 frames with a little noise; a GIF writer merges two identical successive copies into one frame
    shown twice as long: 12 copies each."""
    rng = np.random.default_rng(0)
    palette = Image.fromarray(np.concatenate(small_chain[::3], axis=1)).quantize(256)
    noisy = []
    for frame in held(small_chain, 5):
        speckle = rng.integers(-2, 3, frame.shape) * (rng.random(frame.shape) < 0.1)  # ±2 levels on 10 %
        grainy = Image.fromarray(np.clip(frame.astype(np.int16) + speckle, 0, 255).astype(np.uint8))
        noisy.append(grainy.quantize(palette=palette, dither=Image.Dither.NONE))
    gif = tmp_path / "from-video.gif"
    noisy[0].save(gif, save_all=True, append_images=noisy[1:], duration=100, loop=0)
    seq = read_sequence([gif])
    assert len(seq.members) == 12 and [m.info["frame"] for m in seq.members] == [5 * k + 2 for k in range(12)]
    assert "12 copies in 60 frames (each held 0.50 s" in seq.notes[-1]
    pair = similar_pair(small_chain, 6)
    merged = write_gif(tmp_path / "merged.gif", pair, duration_ms=200)
    seq = read_sequence([merged])
    assert seq.settings["frames"] == 11  # the writer merged copies 5 and 6
    assert len(seq.members) == 12 and seq.members[5].info["frame"] == seq.members[6].info["frame"] == 5
