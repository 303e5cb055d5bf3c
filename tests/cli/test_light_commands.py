"""``driftloop models`` and ``driftloop runs`` answer at once: they describe backends and list runs without
importing what only a run, a model or the analysis needs (``-X importtime`` lists every module a command
imported). How fast they answer is measured by ``benchmarks/bench_cli.py``; this holds the cause."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.store import Store

#: Heavy libraries neither command may import.
HEAVY = ("numpy", "PIL", "pandas", "scipy", "matplotlib", "torch", "diffusers", "transformers", "openai",
         "google.genai", "httpx", "fastapi")  # fmt: skip
#: driftloop's own modules that only making frames, reading them or analysing them needs.
LIBRARY = (
    "driftloop.api",
    "driftloop.analysis",
    "driftloop.render",
    "driftloop.report",
    "driftloop.metrics",
    "driftloop.chain",
    "driftloop.engines",
    "driftloop.frames",
    "driftloop.images",
    "driftloop.store.workspace",
    "driftloop.replicators.codec",
    "driftloop.replicators.tae_runtime",
    "driftloop.replicators.diffusers.img2img",
    "driftloop.replicators.diffusers.instruct",
    "driftloop.replicators.diffusers.vae",
    "driftloop.replicators.diffusers.caption_redraw",
    "driftloop.replicators.diffusers.pipeline",
    "driftloop.replicators.hosted.replicator",
    "driftloop.replicators.hosted.openai_images",
    "driftloop.replicators.hosted.gemini",
    "driftloop.replicators.hosted.bfl",
)


def imported(*args: str) -> tuple[set[str], str]:
    """Every module ``driftloop ARGS`` imported (from ``-X importtime``), and its standard output."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "driftloop", *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = {
        line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    return names, done.stdout


def too_heavy(names: set[str]) -> list[str]:
    return sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in (*HEAVY, *LIBRARY)))


def test_models_describes_every_backend_without_importing_one() -> None:
    names, out = imported("models")
    assert {"taef2", "jpeg", "webp", "sd-turbo", "blip+sd-turbo", "openai", "gemini", "bfl"} <= {
        line.split()[0] for line in out.splitlines() if line.strip()
    }
    assert "openai:gpt-image-2" in out
    assert too_heavy(names) == []


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace with two runs (rows only: listing reads no frame)."""
    store = Store(tmp_path / "ws")
    for i, model in enumerate(("jpeg", "webp:quality=50")):
        run_id = f"2026010{i + 1}-000000-run{i}"
        store.create_run(run_id, model, 3, {"model": model}, {}, {}, {}, [("a.png", "0" * 64, 0)])
    store.close()
    return tmp_path / "ws"


def test_runs_lists_runs_without_the_library(workspace: Path) -> None:
    names, out = imported("runs", "-w", str(workspace))
    assert "run0" in out and "run1" in out
    assert too_heavy(names) == []
