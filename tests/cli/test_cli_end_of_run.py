"""The end of a run leads with the result (the drift, the report's path, then the cost on one line); without
a terminal the progress is plain lines at a steady interval, and the render and report steps say what
they do."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli
from driftloop.analysis.chains import summarize_run
from driftloop.analysis.text import headline
from driftloop.cli.progress import plain_line


@pytest.fixture
def picture(sample_images: dict[str, Path]) -> Path:
    return sample_images["chelsea.jpg"]


def test_run_without_a_terminal_prints_progress_then_the_result_first(picture: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    res = run_cli("run", str(picture), "-m", "jpeg:quality=20", "-n", "6", "--size", "32", "-w", str(ws),
                  env={"DRIFTLOOP_PROGRESS_INTERVAL": "0", "COLUMNS": "60"})  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    progress = [line for line in lines if line.startswith("replicating: ")]
    assert progress and progress[-1].startswith("replicating: 6/6 copies (100%)")
    assert any(
        re.search(r"\d/6 copies \(\d+%\) · [\d.]+ copies/s · about [\d.]+ (s|min) left", p) for p in progress
    )
    assert len(progress) == len(set(progress))  # no line said twice
    rendering = lines.index(next(line for line in lines if line.startswith("rendering: ")))
    writing = lines.index("writing report.html and summary.json …")
    head = next(i for i, line in enumerate(lines) if line.startswith("run "))
    assert rendering < writing < head
    tail = [line.strip() for line in lines[head + 1 :]]
    (run_dir,) = (ws / "runs").iterdir()
    assert tail[0].startswith("SSIM to the original ") and " at step 6" in tail[0]
    assert "colour change" in tail[1]
    assert tail[2] == f"report: {run_dir / 'report.html'}"  # whole, though the terminal is 60 wide
    assert tail[3].startswith("cost: 6 copies, ") and "$0.00" in tail[3]
    assert "phone charge" not in res.stderr  # the cost in one line; the report has the rest


def test_quiet_prints_nothing(picture: Path, tmp_path: Path) -> None:
    res = run_cli("run", str(picture), "-m", "jpeg", "-n", "2", "--size", "32", "-q", "--no-render",
                  "-w", str(tmp_path / "ws"), env={"DRIFTLOOP_PROGRESS_INTERVAL": "0"})  # fmt: skip
    assert res.returncode == 0 and res.stderr == "" and res.stdout == ""


def test_plain_line_counts_only_this_sessions_copies() -> None:
    # a resumed run: 50 of 100 were there; 10 made in 20 s → 0.5 copies/s, 40 left → 80 s
    assert plain_line("replicating", 60, 100, 10, 20.0) == (
        "replicating: 60/100 copies (60%) · 0.50 copies/s · about 80 s left"
    )
    assert plain_line("sweep", 0, 10, 0, 0.0) == "sweep: 0/10 copies (0%)"


def _chain(lightness: list[float], ssim: list[float]) -> pd.DataFrame:
    n = len(lightness)
    b = [10.0 - 0.5 * i for i in range(n)]
    return pd.DataFrame({"chain": 0, "step": range(n), "lab_l_mean": lightness, "lab_a_mean": [2.0] * n,
                         "lab_b_mean": b, "ssim_to_origin": ssim})  # fmt: skip


def test_headline_says_the_drift_in_two_lines() -> None:
    df = _chain([50 + 3 * i for i in range(11)], [1 / (1 + i / 3) for i in range(11)])
    first, colour = headline(summarize_run(df))
    assert first == "SSIM to the original 0.23 at step 10, below 0.5 from step 4 (the half-life)"
    assert colour.startswith("largest colour change: ") and "L* +30" in colour  # L* beats b* −5
    steady = _chain([50.0] * 5, [1.0, 0.99, 0.98, 0.97, 0.96])
    steady["lab_b_mean"] = 10.0
    first, colour = headline(summarize_run(steady))
    assert "never below 0.5" in first and colour.startswith("no visible colour change by step 4")
