"""Planning a study from a sweep's pilot chains (driftloop.sweep.study): one arm at a time, with its cost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import driftloop
from driftloop.errors import SpecError
from driftloop.sweep import load_sweep, run_sweep


def test_plan_from_a_sweep_picks_one_arm(sample_images: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "study"
    (folder / "pics").mkdir(parents=True)
    for p in sample_images.values():
        shutil.copy(p, folder / "pics" / p.name)
    spec = folder / "sweep.toml"
    spec.write_text('name = "pilot"\nimages = ["pics/"]\nseeds = [1, 2]\nsteps = 5\nsize = 32\n'
                    'models = ["webp:quality=30"]\ncontrol = "jpeg:quality=90"\n')  # fmt: skip
    ws = tmp_path / "ws"
    run_sweep(load_sweep(spec), ws, render=False)
    with pytest.raises(SpecError, match=r"several models.*--model"):
        driftloop.plan("lab_l_mean", 0.5, ["pilot"], ws)
    with pytest.raises(SpecError, match="no chains of 'taef2'"):
        driftloop.plan("lab_l_mean", 0.5, ["pilot"], ws, model="taef2")
    answer = driftloop.plan("lab_l_mean", -0.5, ["pilot"], ws, model="webp:quality=30")
    assert answer.components.pilot == "4 pilot chain(s) of 2 image(s), steps 0–5"
    assert answer.cost.model == "webp:quality=30" and answer.design.steps == 5
    assert answer.cost.calls == answer.design.calls and answer.cost.energy_wh is not None
    assert any("per copy as in 20 earlier copies" in line for line in answer.cost.detail)
