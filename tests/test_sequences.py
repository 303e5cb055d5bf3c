"""Reading copy sequences made by other tools: folders, order files, GIF/WebP animations, MP4 videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from driftloop.errors import InputError
from driftloop.sequences import find_copies, natural_key, read_sequence
from sequence_fixtures import (
    N_COPIES,
    SIZE,
    generation_loss,
    held,
    palette_frames,
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
    assert seq.settings["threshold"] == 1.0 and seq.settings["fps"] == 10.0


def test_every_seconds_picks_the_middle_of_each_window(made: dict[str, Path]) -> None:
    seq = read_sequence([made["mp4"]], every=0.5)
    assert [m.info["video_frame"] for m in seq.members] == [5 * k + 2 for k in range(N_COPIES)]
    assert seq.settings["every"] == 0.5 and seq.settings["threshold"] is None
    assert len(read_sequence([made["mp4"]], every=1.0).members) == N_COPIES // 2


def test_a_running_timer_hides_the_cuts_until_cropped_out(made: dict[str, Path], chain) -> None:
    with pytest.raises(InputError, match=r"timer\.mp4: no detectable cuts.*--every"):
        read_sequence([made["timer"]])
    seq = read_sequence([made["timer"]], crop=(0, 16, SIZE, SIZE))
    assert len(seq.members) == N_COPIES
    assert seq.members[0].frame.shape == (SIZE, SIZE, 3)
    assert _mean_abs(seq.members[5].frame, chain[5]) < 4


def test_threshold_and_min_duration_are_settable(made: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="no detectable cuts"):  # every cut is below a huge threshold
        read_sequence([made["mp4"]], threshold=100.0)
    with pytest.raises(InputError, match="no detectable cuts"):  # no copy is shown for 1 s
        read_sequence([made["mp4"]], min_duration=1.0)


def test_find_copies_drops_fades_and_short_stretches() -> None:
    a, b, c = (np.full((8, 8, 3), v, np.uint8) for v in (0, 100, 200))
    fade = np.full((8, 8, 3), 50, np.uint8)
    frames = [a, a, a, fade, b, b, b, c, a, a, a]  # a fade frame, and a one-frame flash of c
    picked = find_copies(list(enumerate(frames)), fps=10, threshold=1.0, min_duration=0.2)
    assert [(index, start, end) for index, start, end, _ in picked] == [(1, 0, 2), (5, 4, 6), (9, 8, 10)]
    assert [int(f[0, 0, 0]) for *_, f in picked] == [0, 100, 0]
    picked = find_copies(list(enumerate(frames)), fps=10, threshold=1.0, min_duration=0.3)
    assert len(picked) == 3
    assert find_copies(list(enumerate(frames)), fps=10, threshold=1.0, min_duration=0.4) == []


def test_a_long_still_stretch_keeps_bounded_memory_and_picks_near_its_middle() -> None:
    frames = [(i, np.full((4, 4, 3), 7, np.uint8)) for i in range(1000)]
    ((index, start, end, _),) = find_copies(frames, fps=30)
    assert (start, end) == (0, 999) and abs(index - 499.5) <= 16


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
        ({"threshold": -1}, "--threshold must be 0 or more"),
        ({"min_duration": float("nan")}, "--min-duration must be 0 or more"),
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
