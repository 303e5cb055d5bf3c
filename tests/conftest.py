"""Shared fixtures: the real TAEF2 weights, small test images, and a CLI runner.

``pytest`` needs nothing exported by hand: where the weights are (``DRIFTLOOP_MODEL_DIR``, else
``../shared/models`` beside the checkout) and how a local Ray starts (``RAY_AUTH_MODE=disabled``) are set
once for the whole session, before any fixture of any scope runs, so a module-scoped fixture finds the
weights exactly as a test does. Every ``driftloop`` a test starts gets default stop signals
(:func:`child_signals`), so the suite behaves the same under ``nohup … &``, which ignores SIGINT and SIGHUP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from driftloop._signals import handle_stop_signals

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"


def model_dir() -> Path:
    """Where the pretrained weights are: DRIFTLOOP_MODEL_DIR, else the shared folder beside the checkout."""
    return Path(os.environ.get("DRIFTLOOP_MODEL_DIR") or SHARED_MODELS)


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """For the whole session, before any module- or function-scoped fixture: the weights folder, a local
    Ray without a cluster token, no download cache of the user's and no network downloads."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRIFTLOOP_MODEL_DIR", str(model_dir()))
        mp.setenv("RAY_AUTH_MODE", os.environ.get("RAY_AUTH_MODE") or "disabled")
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        mp.setenv("DRIFTLOOP_OFFLINE", "1")
        yield


def child_signals() -> None:
    """``preexec_fn`` of every ``driftloop`` a test starts: SIGINT, SIGHUP and SIGTERM as in a terminal,
    whatever this process inherited (``nohup`` ignores SIGHUP; ``&`` in a script ignores SIGINT), so the
    signal tests test driftloop, not how the suite was started."""
    handle_stop_signals()


@contextlib.contextmanager
def as_under_nohup() -> Iterator[None]:
    """This process as ``nohup … &`` in a script starts it: SIGHUP and SIGINT ignored (restored after)."""
    before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    folder = model_dir()
    if not (folder / "taef2" / "taef2_encoder.pth").is_file():
        source = "DRIFTLOOP_MODEL_DIR" if folder != SHARED_MODELS else "../shared/models beside the checkout"
        pytest.fail(
            f"TAEF2 weights not found under {folder} ({source}); put taef2/taef2_encoder.pth and "
            "taef2/taef2_decoder.pth there, or set DRIFTLOOP_MODEL_DIR to a folder holding them"
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
        preexec_fn=child_signals,
    )


def noise_frame(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
