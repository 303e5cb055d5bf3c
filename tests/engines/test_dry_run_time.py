"""``run --dry-run`` times a local model from its stored runs of the same size (it said "time: unknown")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import driftloop
from conftest import run_cli
from driftloop import api
from driftloop.store import Store


@pytest.fixture
def picture(sample_images: dict[str, Path]) -> Path:
    return sample_images["chelsea.jpg"]


def test_local_time_comes_from_stored_runs_of_the_same_model_and_size(picture: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    before = api.estimate(picture, model="jpeg:quality=50", n=10, seeds=[0, 1], size=32, workspace=ws)
    assert before.seconds is None and "no stored run of jpeg:quality=50 at 32 px" in before.seconds_detail
    driftloop.run(picture, model="jpeg:quality=50", n=4, size=32, workspace=ws, render=False)
    driftloop.run(picture, model="jpeg:quality=90", n=4, size=32, workspace=ws, render=False)  # another
    driftloop.run(picture, model="jpeg:quality=50", n=4, size=48, workspace=ws, render=False)  # another size
    store = Store(ws)
    seconds, runs = store.copy_seconds("jpeg:quality=50", 32)
    assert runs == 1 and len(seconds) == 4 and all(s >= 0 for s in seconds)
    after = api.estimate(picture, model="jpeg:quality=50", n=10, seeds=[0, 1], size=32, workspace=ws)
    assert after.seconds == pytest.approx(np.mean(seconds) * 20)  # 2 chains × 10 copies
    assert "the mean of 4 copies in 1 stored run of jpeg:quality=50 at 32 px" in after.seconds_detail
    res = run_cli("run", str(picture), "-m", "jpeg:quality=50", "-n", "10", "--size", "32", "--dry-run",
                  "-w", str(ws))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "time: ≈ " in res.stdout and "time: unknown" not in res.stdout
    other = api.estimate(picture, model="jpeg:quality=50", n=10, size=64, workspace=ws)
    assert other.seconds is None  # no run at 64 px: no guess from another size
