"""A small workspace for the gallery tests: two JPEG runs and a two-model sweep with its bias card."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from conftest import run_cli
from driftloop import api

SWEEP = """
name = "tiny"
images = ["{image}"]
seeds = [0, 1]
steps = 6
size = 64
control = "jpeg:quality=90"

[[models]]
spec = "jpeg"
grid = {{ quality = [50] }}
"""


@pytest.fixture(scope="session")
def gallery_template(tmp_path_factory: pytest.TempPathFactory, sample_images: dict[str, Path]) -> Path:
    """Built once: a sweep (jpeg q50 + its q90 control, 2 seeds, 6 steps) with its bias card, and a
    10-step run of two chains made outside the sweep."""
    root = tmp_path_factory.mktemp("gallery")
    ws = root / "ws"
    spec = root / "tiny.toml"
    spec.write_text(SWEEP.format(image=sample_images["astronaut.png"]))
    for args in (("sweep", str(spec), "--no-render", "-q"), ("bias", "tiny")):
        done = run_cli(*args, "-w", str(ws))
        assert done.returncode == 0, done.stderr
    time.sleep(0.01)  # the next run is the newest by its creation time
    api.run(sample_images["chelsea.jpg"], model="jpeg:quality=70", n=10, seeds=(0, 1), size=64,
            workspace=ws, render=False)  # fmt: skip
    return ws


@pytest.fixture
def gallery_ws(gallery_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the gallery workspace for one test (thumbnails and uploads land in it)."""
    ws = tmp_path / "gallery-ws"
    shutil.copytree(gallery_template, ws)
    return ws
