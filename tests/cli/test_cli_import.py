"""``driftloop import`` as a user runs it: folders, GIFs and videos become runs; bad input exits 2 and
writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import driftloop
from conftest import run_cli
from driftloop.cli import parse_crop
from driftloop.errors import SpecError
from sequence_fixtures import generation_loss, held, write_gif, write_mp4, write_pngs


@pytest.fixture(scope="module")
def chain() -> list[np.ndarray]:
    return generation_loss(n=5, size=64)


def _nothing_written(ws: Path) -> bool:
    return not ws.exists() or (not driftloop.runs(ws) and not any((ws / "runs").glob("*")))


def test_import_a_folder_as_a_run(chain, tmp_path: Path) -> None:
    write_pngs(tmp_path / "copies", chain)
    ws = tmp_path / "ws"
    out = run_cli("import", str(tmp_path / "copies"), "--label", "chatgpt by hand", "--model", "gpt-image-1",
                  "--no-render", "-w", str(ws))  # fmt: skip
    assert out.returncode == 0, out.stderr
    (summary,) = driftloop.runs(ws)
    assert summary.model == "imported:chatgpt by hand" and summary.steps_done == 4
    assert f"run {summary.id}" in out.stderr and "imported 5 frames (images)" in out.stderr
    run = driftloop.open_run(summary.id, ws)
    assert run.config["import"]["model"] == "gpt-image-1"
    assert np.array_equal(run.frame(0, 4), chain[4])
    assert (0, 4) in run.metric_rows()
    assert not (run.path / "contact_sheet.png").exists()  # --no-render


def test_import_a_gif_and_a_video_with_crop_and_every(chain, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    gif = write_gif(tmp_path / "loop.gif", chain)
    assert run_cli("import", str(gif), "--no-render", "-q", "-w", str(ws)).returncode == 0
    video = write_mp4(tmp_path / "loop.mp4", held(chain, 10), fps=10)
    out = run_cli("import", str(video), "--every", "1", "--crop", "8,8,48,48", "--size", "32", "--no-render",
                  "-q", "-w", str(ws))  # fmt: skip
    assert out.returncode == 0, out.stderr
    mp4_run, gif_run = (driftloop.open_run(r.id, ws) for r in driftloop.runs(ws))  # newest first
    assert gif_run.row.model == "imported:loop" and len(gif_run.frame_rows()) == 5
    assert len(mp4_run.frame_rows()) == 5 and mp4_run.frame(0, 0).shape == (32, 32, 3)
    assert mp4_run.config["import"]["crop"] == [8, 8, 48, 48]


def test_import_by_an_order_file_alone(chain, tmp_path: Path) -> None:
    write_pngs(tmp_path / "copies", chain)
    order = tmp_path / "copies" / "order.txt"
    order.write_text("# newest last\n1.png\n3.png\n2.png\n")
    ws = tmp_path / "ws"
    out = run_cli("import", "--order", str(order), "--label", "three", "--no-render", "-q", "-w", str(ws))
    assert out.returncode == 0, out.stderr
    (summary,) = driftloop.runs(ws)
    run = driftloop.open_run(summary.id, ws)
    assert [np.array_equal(run.frame(0, s), chain[i]) for s, i in ((0, 0), (1, 2), (2, 1))] == [True] * 3
    nothing = run_cli("import", "-w", str(tmp_path / "none"))
    assert nothing.returncode == 2 and "no sources given" in nothing.stderr


def test_frames_of_mixed_sizes_are_brought_to_frame_0s_size_and_said(chain, tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "copies", chain)
    Image.fromarray(chain[2]).resize((96, 80)).save(paths[2])
    ws = tmp_path / "ws"
    out = run_cli("import", str(tmp_path / "copies"), "--no-render", "-w", str(ws))
    assert out.returncode == 0, out.stderr
    assert "1 frame(s) brought to frame 0's size 64x64" in out.stderr
    (summary,) = driftloop.runs(ws)
    rows = driftloop.open_run(summary.id, ws).frame_rows()
    assert rows[2].info["resized"]["from"] == [96, 80] and "no stretch" in rows[2].info["resized"]["as"]


def _bad(tmp_path: Path, chain, case: str) -> tuple[list[str], str]:
    if case == "empty folder":
        (tmp_path / "empty").mkdir()
        return [str(tmp_path / "empty")], "empty: holds no image files"
    if case == "one image":
        write_pngs(tmp_path / "one", chain[:1])
        return [str(tmp_path / "one")], "1.png: a chain needs at least two images"
    if case == "video without cuts":
        still = write_mp4(tmp_path / "still.mp4", held(chain[:1], 20))
        return [str(still)], "still.mp4: no detectable cuts"
    if case == "corrupt member":
        paths = write_pngs(tmp_path / "broken", chain)
        paths[3].write_bytes(b"not a png")
        return [str(tmp_path / "broken")], "4.png (image 4 of 5): is not an image"
    if case == "bad crop":
        write_pngs(tmp_path / "copies", chain)
        return [str(tmp_path / "copies"), "--crop", "0,0,64"], "--crop '0,0,64': expected X,Y,W,H"
    if case == "crop outside":
        write_pngs(tmp_path / "copies", chain)
        return [str(tmp_path / "copies"), "--crop", "0,0,640,64"], "crop"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["empty folder", "one image", "video without cuts", "corrupt member", "bad crop", "crop outside"],
)
def test_bad_input_exits_2_names_the_file_and_writes_nothing(chain, tmp_path: Path, case: str) -> None:
    args, message = _bad(tmp_path, chain, case)
    ws = tmp_path / "ws"
    out = run_cli("import", *args, "-w", str(ws))
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: ") and message in out.stderr and "Traceback" not in out.stderr
    assert _nothing_written(ws)


def test_parse_crop() -> None:
    assert parse_crop("1,2,30,40") == (1, 2, 30, 40) and parse_crop(None) is None
    for bad in ("1,2,3", "a,b,c,d", "1,2,-3,4", ""):
        with pytest.raises(SpecError, match="--crop"):
            parse_crop(bad)


@pytest.mark.slow
def test_the_readme_example_driftloops_own_mp4_imports_back(tmp_path: Path) -> None:
    """The README's posted-video example: a run's own MP4 (0.1 s per copy, counter, last frame held) is
    imported with every copy, its report names the model given, its card says the cost is unknown."""
    made = tmp_path / "scratch"
    src = tmp_path / "photo.png"
    Image.fromarray(generation_loss(n=1, size=64)[0]).save(src)
    assert run_cli("run", str(src), "-m", "jpeg:quality=20", "-n", "7", "--size", "64", "-q",
                   "-w", str(made)).returncode == 0  # fmt: skip
    (video,) = (made / "runs").glob("*/chain000.mp4")
    ws = tmp_path / "posted-ws"
    out = run_cli("import", str(video), "--label", "posted", "--model", "JPEG q20, re-posted", "-w", str(ws))
    assert out.returncode == 0, out.stderr
    assert "8 copies found (each held 0.10 s" in out.stderr and "unknown" in out.stderr
    (summary,) = driftloop.runs(ws)
    assert summary.steps_done == 7
    assert run_cli("report", summary.id, "-w", str(ws)).returncode == 0
    assert (
        "imported:posted (made by JPEG q20, re-posted)"
        in (ws / "runs" / summary.id / "report.html").read_text()
    )
    assert run_cli("bias", summary.id, "-w", str(ws)).returncode == 0
    card = (ws / "runs" / summary.id / "bias_card.json").read_text()
    assert '"cost": "unknown"' in card
    again = run_cli("import", str(video), "-w", str(made))  # the same chain as the run that made it
    assert again.returncode == 2 and "already stored as run" in again.stderr
