"""Shared fixtures: the real TAEF2 weights, small test images, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"


def model_dir() -> Path:
    """Where the pretrained weights are: DRIFTLOOP_MODEL_DIR, else the shared folder beside the checkout."""
    return Path(os.environ.get("DRIFTLOOP_MODEL_DIR") or SHARED_MODELS)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    folder = model_dir()
    if not (folder / "taef2" / "taef2_encoder.pth").is_file():
        pytest.fail(
            f"TAEF2 weights not found under {folder}; set DRIFTLOOP_MODEL_DIR to a folder holding "
            "taef2/taef2_encoder.pth and taef2/taef2_decoder.pth"
        )
    return folder


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test sees the weights folder, no download cache of the user's, and no network downloads."""
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(model_dir()))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("DRIFTLOOP_OFFLINE", "1")


@pytest.fixture(scope="session")
def sample_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """skimage sample pictures saved as an ordinary user would have them (PNG and JPEG)."""
    from skimage import data

    folder = tmp_path_factory.mktemp("samples")
    out = {}
    for name, array, fmt in (
        ("astronaut.png", data.astronaut(), "PNG"),
        ("chelsea.jpg", data.chelsea(), "JPEG"),
    ):
        path = folder / name
        Image.fromarray(array).save(path, fmt)
        out[name] = path
    return out


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "ws"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300):
    """Run ``python -m driftloop`` as a subprocess, as a user would, capturing its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "driftloop", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def noise_frame(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
