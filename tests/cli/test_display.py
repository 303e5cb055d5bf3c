"""What the command line, the gallery and the cards show: models by their full spec (``webp`` is
``webp:quality=80``), readable run ids that name the stabilizer, whole paths on one line, runs newest first,
and a plain "nothing to do" when resuming a finished run."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import run_cli
from driftloop import api
from driftloop.engines.start import new_run_id
from driftloop.web.app import create_app


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, sample_images: dict[str, Path]) -> Path:
    """A jpeg run at its default quality, then a stabilized webp run at its default one (32 px, 2 steps)."""
    folder = tmp_path_factory.mktemp("display") / "ws"
    image = sample_images["chelsea.jpg"]
    api.run(image, "jpeg", n=2, size=32, workspace=folder, render=False)
    time.sleep(0.01)  # a later created_at: the webp run is the newest
    api.run(image, "webp:quality=80", n=2, size=32, workspace=folder, render=False, stabilize="colour:lab")
    return folder


def test_runs_are_listed_newest_first_by_full_spec_and_stabilizer(ws: Path) -> None:
    webp, jpeg = api.runs(ws)  # newest first
    assert (webp.model, jpeg.model) == ("webp", "jpeg")  # stored as canonical specs, unchanged
    out = run_cli("runs", "-w", str(ws))
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.strip()][1:]
    assert [line.split()[0] for line in lines] == [webp.id, jpeg.id]
    assert "webp:quality=80 + stabilize=colour:lab" in lines[0]
    assert "jpeg:quality=75" in lines[1]


def test_run_ids_name_the_model_its_parameters_and_the_stabilizer(ws: Path) -> None:
    webp, jpeg = api.runs(ws)
    assert re.fullmatch(r"\d{8}-\d{6}-webp-quality-80-stabilize-colour-lab-[0-9a-f]{4}", webp.id)
    assert re.fullmatch(r"\d{8}-\d{6}-jpeg-quality-75-[0-9a-f]{4}", jpeg.id)
    long = new_run_id("sd-turbo:strength=0.35,steps=2,prompt=auto,captioner=Salesforce/blip", "colour:hsv")
    words = long.split("-")[2:-1]
    assert "-".join(words).startswith("sd-turbo-strength-0.35-steps-2")  # whole words, decimals kept
    assert words[-3:] == ["stabilize", "colour", "hsv"]
    assert len(long) <= 80


def test_gallery_and_card_show_the_full_spec(ws: Path) -> None:
    webp, _ = api.runs(ws)
    client = TestClient(create_app(ws, extra_hosts=("testserver",)))
    assert "webp:quality=80 + stabilize=colour:lab" in client.get("/").text  # the arm, as in `runs`
    assert "webp:quality=80" in client.get(f"/runs/{webp.id}").text
    html, _json = api.bias(webp.id, ws)
    assert "webp:quality=80 + stabilize=colour:lab" in html.read_text()
    assert "webp:quality=80" in api.open_run(webp.id, ws).report().read_text()


def test_paths_are_printed_whole_when_not_in_a_terminal(ws: Path, tmp_path: Path) -> None:
    _, jpeg = api.runs(ws)
    target = (
        tmp_path / ("a-folder-with-a-rather-long-name-" * 3) / "export-of-the-jpeg-run-with-a-long-name.csv"
    )
    target.parent.mkdir(parents=True)
    out = run_cli("export", jpeg.id, "-o", str(target), "-w", str(ws))
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{target}\n"  # one line: not wrapped at 80 columns


def test_resuming_a_finished_run_says_there_is_nothing_to_do(ws: Path) -> None:
    _, jpeg = api.runs(ws)
    report = api.open_run(jpeg.id, ws).path / "report.html"
    before = report.stat().st_mtime_ns
    out = run_cli("resume", jpeg.id, "-w", str(ws))
    assert out.returncode == 0, out.stderr
    assert f"run {jpeg.id} is already complete (2/2 steps); nothing to do" in out.stderr
    assert "Money" not in out.stderr and "frames and outputs" not in out.stderr  # no summary re-printed
    assert report.stat().st_mtime_ns == before  # nothing written again
