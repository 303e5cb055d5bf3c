"""Metrics recorded as the chain runs, backfilled after an interruption, recomputed, exported, reported."""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import driftloop
from conftest import run_cli
from driftloop.cost import chain_cost_line, cost_rows_for_report
from driftloop.errors import RunInterrupted
from driftloop.metrics import COLUMNS
from driftloop.metrics.recorder import missing_frames


def _tint(frames, seeds):
    """Adds +2 to blue every step: a known, steady cooling drift."""
    out = []
    for f in frames:
        g = f.astype(np.int16)
        g[..., 2] += 2
        out.append(np.clip(g, 0, 255).astype(np.uint8))
    return out


def test_every_frame_is_measured_during_the_run(sample_images, tmp_path: Path) -> None:
    run = driftloop.run(sample_images["chelsea.jpg"], model=_tint, n=6, seeds=[1, 2], size=48,
                        workspace=tmp_path / "ws", render=False)  # fmt: skip
    df = run.dataframe()
    assert len(df) == 2 * 7
    assert set(COLUMNS) - {"psnr_to_prev", "ssim_to_prev", "mae_to_prev", "phash_to_prev"} <= set(df.columns)
    first = df[df.step == 0].iloc[0]
    assert first.ssim_to_origin == pytest.approx(1.0) and math.isinf(first.psnr_to_origin)
    assert pd.isna(first.ssim_to_prev)  # frame 0 has no previous frame
    chain0 = df[df.chain == 0].sort_values("step")
    assert chain0.lab_b_mean.is_monotonic_decreasing  # bluer each step
    assert (chain0.ssim_to_origin.iloc[1:] < 1).all()
    assert missing_frames(run.store, run.id) == []


def test_interrupted_metrics_are_backfilled_on_resume(sample_images, tmp_path: Path, monkeypatch) -> None:
    calls = {"n": 0}

    def flaky(frames, seeds):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return _tint(frames, seeds)

    ws = tmp_path / "ws"
    with pytest.raises(RunInterrupted):
        driftloop.run(sample_images["chelsea.jpg"], model=flaky, n=6, size=48, workspace=ws, render=False)
    (summary,) = driftloop.runs(ws)
    handle = driftloop.open_run(summary.id, ws)
    handle.store.delete_metrics(handle.id)  # as if the process died before the metrics thread stored them
    assert len(missing_frames(handle.store, handle.id)) == 4
    done = driftloop.resume(summary.id, workspace=ws, model=_tint, render=False)
    assert missing_frames(done.store, done.id) == []
    image = sample_images["chelsea.jpg"]
    reference = driftloop.run(
        image, model=_tint, n=6, size=48, workspace=tmp_path / "ref", render=False
    ).dataframe()
    cols = ["step", "ssim_to_origin", "ssim_to_prev", "lab_b_mean", "sharpness"]
    pd.testing.assert_frame_equal(done.dataframe()[cols], reference[cols])


def test_recompute_and_export(sample_images, tmp_path: Path) -> None:
    run = driftloop.run(sample_images["chelsea.jpg"], model=_tint, n=3, size=32, workspace=tmp_path / "ws",
                        render=False, metrics=False)  # fmt: skip
    assert run.store.metrics(run.id) == {}
    assert run.recompute_metrics() == 4
    assert len(run.store.metrics(run.id)) == 4
    csv = pd.read_csv(run.export("csv"))
    assert list(csv.step) == [0, 1, 2, 3] and "lab_b_mean" in csv
    parquet = pd.read_parquet(run.export("parquet", tmp_path / "out.parquet"))
    assert parquet.shape == csv.shape
    records = json.loads(run.export("json").read_text())
    assert records[0]["psnr_to_origin"] is None  # inf has no JSON form
    assert records[1]["ssim_to_origin"] < 1


def test_cli_report_metrics_export(sample_images, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    image = str(sample_images["astronaut.png"])
    res = run_cli(
        "run", image, "-m", "jpeg:quality=40", "-n", "4", "--size", "48", "--seeds", "1,2", "-w", str(ws)
    )
    assert res.returncode == 0, res.stderr
    (run_dir,) = (ws / "runs").iterdir()
    html = (run_dir / "report.html").read_text()
    assert "SSIM to the original" in html and "Cost" in html and "estimated" in html
    # nothing links out: the one URL is the banner comment of the inlined chart library (never fetched)
    assert "http://" not in html
    assert html.count("https://") == html.count("/*! https://github.com/leeoniya/uPlot (v1.6.32) */") == 1
    # the totals in the summary and the report are the run's own numbers
    run = driftloop.open_run(run_dir.name, ws)
    _, total = run.cost_totals()
    for label, value, _ in cost_rows_for_report(total):
        assert f"<td>{escape(value)}</td>" in html, (label, value)
    assert "Cost per chain" in html
    said = " ".join(res.stderr.split())  # the summary goes to stderr; the console may wrap lines
    # the end of a run gives the cost in one line (the report has it per chain, checked above)
    assert f"cost: {chain_cost_line(total)}" in said
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [c["chain"] for c in summary["chains"]] == [0, 1]
    assert summary["chains"][0]["rates"]["lab_b_mean"]["n"] == 5 and "half_life" in summary["chains"][0]
    # two seeds of a deterministic codec on one image: one source image behind the interval
    assert summary["overview"]["rates"]["lab_b_mean"]["images"] == 1
    assert "Drift rate per step, per chain" in html
    (run_dir / "report.html").unlink()
    assert run_cli("report", run_dir.name, "-w", str(ws)).returncode == 0
    assert (run_dir / "report.html").is_file()
    again = run_cli("metrics", run_dir.name, "--recompute", "-w", str(ws))
    assert again.returncode == 0 and "10 of 10 frames measured" in again.stdout
    out = tmp_path / "t.json"
    assert run_cli("export", run_dir.name, "-f", "json", "-o", str(out), "-w", str(ws)).returncode == 0
    assert len(json.loads(out.read_text())) == 10
    bad = run_cli("export", run_dir.name, "-f", "xlsx", "-w", str(ws))
    assert bad.returncode == 1 and "not one of csv, parquet, json" in bad.stderr


def test_faces_are_measured_when_asked(sample_images, tmp_path: Path) -> None:
    run = driftloop.run(sample_images["astronaut.png"], model="jpeg:quality=60", n=2, size=256,
                        workspace=tmp_path / "ws", render=False, faces=True)  # fmt: skip
    df = run.dataframe()
    assert list(df.face_found) == [1.0, 1.0, 1.0]
    assert 0.5 < df.face_mouth_width.iloc[0] < 1.5 and 1.0 < df.face_aspect.iloc[0] < 1.8
    plain = driftloop.run(sample_images["astronaut.png"], model="jpeg:quality=60", n=1, size=64,
                          workspace=tmp_path / "ws2", render=False)  # fmt: skip
    assert "face_found" not in plain.dataframe()  # off unless asked: it needs MediaPipe and a portrait
