"""A small workspace for the gallery tests: two JPEG runs and a two-model sweep with its bias card."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import run_cli
from driftloop import api
from driftloop.config import InputRef, RunConfig, arm_label
from driftloop.cost import load_factors
from driftloop.store import Store

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


def synthetic_study(ws: Path, n_chains: int, n_steps: int, models: tuple[str, ...] = ("a", "b")) -> None:
    """A workspace of ``n_chains`` chains with SSIM and b* rows over ``n_steps`` steps and their stored
    summaries, written straight into the store (no frames): for views that read numbers only."""
    import numpy as np

    from driftloop.config import InputRef, RunConfig
    from driftloop.cost import load_factors
    from driftloop.store import Store

    rng = np.random.default_rng(0)
    store = Store(ws)
    per_run = max(1, n_chains // len(models))
    steps = np.arange(n_steps + 1)
    for m, model in enumerate(models):
        run = f"run-{model}"
        chains = [(f"/in/img{c % 20}.png", f"h{c % 20}", c // 20) for c in range(per_run)]
        inputs = tuple(InputRef(p, h) for p, h, _ in chains[:20])
        cost = {"factors": load_factors().to_dict()}
        config = RunConfig(
            model, inputs, tuple(range(per_run // 20)), n_steps, 32, 32, cost=cost, sweep="big"
        )
        store.create_run(run, model, n_steps, config.to_dict(), {}, {}, {}, chains)
        rates = 0.004 * (m + 1) + rng.normal(0, 0.001, per_run)
        ssim = np.clip(1 - rates[:, None] * steps[None, :] + rng.normal(0, 0.01, (per_run, steps.size)), 0, 1)
        b = (m + 1) * 0.05 * steps[None, :] + rng.normal(0, 0.3, (per_run, steps.size))
        rows = [(c, int(s), {"ssim_to_origin": float(ssim[c, s]), "lab_b_mean": float(b[c, s])})
                for c in range(per_run) for s in steps]  # fmt: skip
        store.add_metrics(run, rows)
        store.set_chain_summaries(run, {c: {"ssim_to_origin.final": float(ssim[c, -1]),
                                            "lab_b_mean.change": float(b[c, -1] - b[c, 0])}
                                        for c in range(per_run)})  # fmt: skip
        store.set_run_status(run, "done")
    store.close()


GRID_ARMS = (  # a typical sweep: hosted and local models, some parameters, with and without a stabilizer
    ("openai:gpt-image-2.6-sunburst,quality=low", "none"),
    ("openai:gpt-image-2.6-sunburst,quality=high", "none"),
    ("openai:gpt-image-2.6-sunburst,quality=low", "colour:lab"),
    ("gemini:gemini-3.1-flash-image,image_size=1K", "none"),
    ("sd-turbo:strength=0.3,steps=4", "none"),
    ("sd-turbo:strength=0.3,steps=4", "colour:lab"),
    ("taef2", "none"),
    ("taef2", "colour:lab"),
    ("jpeg:quality=90", "none"),
)


def synthetic_sweep(
    ws: Path, name: str = "grid", chains_per_arm: int = 4, n_steps: int = 12
) -> dict[str, str]:
    """A sweep of the arms of :data:`GRID_ARMS` written straight into the store (runs tagged with the sweep,
    chains with stored summaries, no frames): returns run id -> arm label. Each arm's SSIM at the end is
    0.9 − 0.05 × its index, so a cell's mean is known."""
    store = Store(ws)
    made = {}
    for i, (model, stabilize) in enumerate(GRID_ARMS):
        run = f"20261204-1200{i:02d}-{model.split(':')[0]}-synthetic-{i:04x}"
        chains = [(f"/in/img{c}.png", f"h{c}", 0) for c in range(chains_per_arm)]
        inputs = tuple(InputRef(p, h) for p, h, _ in chains)
        cost = {"factors": load_factors().to_dict()}
        config = RunConfig(model, inputs, (0,), n_steps, 32, 32, cost=cost, sweep=name, stabilize=stabilize)
        store.create_run(run, model, n_steps, config.to_dict(), {}, {}, {}, chains)
        store.set_chain_summaries(run, {c: {"ssim_to_origin.final": 0.9 - 0.05 * i + 0.01 * (c - 1.5),
                                            "lab_b_mean.change": 0.5 * i, "half_life": 6.0 if c < 2 else None}
                                        for c in range(chains_per_arm)})  # fmt: skip
        store.set_run_status(run, "done")
        made[run] = arm_label(model, stabilize)
    store.close()
    return made


def record_spawns(jobs, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The command lines of the worker processes ``jobs`` would start, recorded instead (each is job j)."""
    started: list[list[str]] = []
    monkeypatch.setattr(
        jobs, "_spawn", lambda kind, args, **kw: started.append(args) or SimpleNamespace(id="j")
    )
    return started
