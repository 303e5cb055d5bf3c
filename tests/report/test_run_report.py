"""A run's report at the end of every run (``--no-render`` skips only GIF, MP4 and the contact sheet), and the
``driftloop plots`` verb that writes the static figures on request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import driftloop
from conftest import run_cli
from driftloop import api
from driftloop.errors import RenderError


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pic") / "gradient.png"
    Image.radial_gradient("L").convert("RGB").resize((48, 48)).save(path)
    return path


def test_no_render_still_writes_report_and_summary(picture: Path, tmp_path: Path) -> None:
    run = driftloop.run(picture, model="jpeg:quality=40", n=3, seeds=[0, 1], size=32,
                        workspace=tmp_path / "ws", render=False)  # fmt: skip
    names = {p.name for p in run.path.iterdir()}
    assert {"report.html", "summary.json"} <= names
    assert not names & {"chain000.gif", "chain000.mp4", "contact_sheet.png", "plots"}
    summary = json.loads((run.path / "summary.json").read_text())
    assert [c["chain"] for c in summary["chains"]] == [0, 1]
    text = (run.path / "report.html").read_text(encoding="utf-8")
    assert 'id="chart-data"' in text and "<h2>Animation</h2>" not in text  # charts, no GIF to show
    resumed = driftloop.resume(run.id, workspace=tmp_path / "ws", render=False)
    assert (resumed.path / "report.html").stat().st_mtime_ns >= (run.path / "summary.json").stat().st_mtime_ns


def test_cli_no_render_help_and_files_agree(picture: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    res = run_cli(
        "run", str(picture), "-m", "jpeg", "-n", "2", "--size", "32", "--no-render", "-q", "-w", str(ws)
    )
    assert res.returncode == 0, res.stderr
    (folder,) = (ws / "runs").iterdir()
    assert (folder / "report.html").is_file() and (folder / "summary.json").is_file()
    assert not (folder / "chain000.gif").exists() and not (folder / "contact_sheet.png").exists()
    help_text = " ".join(run_cli("run", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "report.html and summary.json: always" in help_text


def test_plots_verb_writes_static_figures(picture: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run = driftloop.run(picture, model="jpeg:quality=40", n=4, size=32, workspace=ws, render=False)
    assert not (run.path / "plots").exists()  # the report does not draw them any more
    res = run_cli("plots", run.id[:12], "-w", str(ws))
    assert res.returncode == 0, res.stderr
    written = sorted(p.name for p in (run.path / "plots").iterdir())
    assert {"fidelity_log.png", "fidelity_log.svg", "metric_lab_b_mean.svg", "all_metrics.png"} <= set(
        written
    )
    assert sorted(Path(line).name for line in res.stdout.split()) == written  # it says what it wrote
    other = tmp_path / "figures"
    assert {p.name for p in api.open_run(run.id, ws).plots(other)} == set(written)


def test_plots_of_a_run_without_metrics_is_a_clear_error(picture: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run = driftloop.run(picture, model="jpeg", n=2, size=32, workspace=ws, render=False, metrics=False)
    with pytest.raises(RenderError, match=r"no metric rows.*driftloop metrics"):
        run.plots()
    res = run_cli("plots", run.id, "-w", str(ws))
    assert res.returncode != 0 and "no metric rows" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr
