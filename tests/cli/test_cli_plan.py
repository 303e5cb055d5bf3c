"""``driftloop plan``, driven as a user would: from a pilot run in the workspace, from stated assumptions, and
with the mistakes a user makes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import driftloop
from conftest import run_cli
from driftloop.cli.planning import parse_steps
from driftloop.errors import SpecError


@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory, sample_images: dict[str, Path]) -> tuple[Path, str]:
    """A small pilot: two pictures × two seeds × 6 JPEG copies at 32 px."""
    ws = tmp_path_factory.mktemp("plan") / "ws"
    run = driftloop.run(list(sample_images.values()), model="jpeg:quality=40", n=6, seeds=(0, 1), size=32,
                        workspace=ws, render=False)  # fmt: skip
    return ws, run.id


def test_plan_from_a_pilot_run(pilot: tuple[Path, str]) -> None:
    ws, run_id = pilot
    res = run_cli(
        "plan", run_id[:15], "--measure", "lab_chroma_mean", "--effect", "-2", "--by-step", "6", "-w", str(ws)
    )
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "detect ΔC* −0.33 per step (−2.0 by step 6) in C* (chroma) with 80% power at α = 0.05" in out
    assert f"4 pilot chain(s) of 2 image(s), steps 0–6; runs {run_id}" in out
    design = re.search(r"design: (\d+) images × (\d+) seed\(s\) × 6 steps = (\d+) chains, (\d+) copies", out)
    assert design, out
    images, seeds, chains, copies = (int(g) for g in design.groups())
    assert chains == images * seeds and copies == chains * 6
    power = int(re.search(r"power (\d+)% \(t test over image means, df (\d+)\)", out)[1])
    assert power >= 80
    cost = re.search(r"cost of jpeg:quality=40 at 32 px \(dry run, nothing called\): ([\d,]+) calls, "
                     r"\$0\.00, time ≈ [\d.]+ (s|min), energy [\d.]+ (Wh|kWh), water [\d.]+ (ml|L)",
                     out)  # fmt: skip
    assert cost and int(cost[1].replace(",", "")) == copies, out
    # the same answer from the library
    answer = driftloop.plan("lab_chroma_mean", -2, [run_id], ws, by_step=6)
    assert (answer.design.images, answer.design.seeds, answer.design.calls) == (images, seeds, copies)


def test_plan_from_assumptions_costs_a_hosted_model(tmp_path: Path) -> None:
    res = run_cli("plan", "--measure", "lab_b_mean", "--effect", "0.2", "--sd-image", "0.3",
                  "--sd-step", "0.8", "--steps", "10", "--model", "openai:gpt-image-2", "--size", "256",
                  "-w", str(tmp_path / "ws"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "spread (assumed)" in out and "between images 0.300" in out
    match = re.search(r"design: (\d+) images × 1 seed\(s\) × 10 steps", out)
    assert match and int(match[1]) > 10, out
    cost = re.search(r"openai:gpt-image-2 at 256 px \(dry run, nothing called\): ([\d,]+) calls, "
                     r"\$([\d,.]+), time ≈ .+, energy .+ (Wh|kWh), water .+", out)  # fmt: skip
    assert cost and float(cost[2].replace(",", "")) > 0, out
    assert not (tmp_path / "ws").exists()  # planning writes nothing


def test_plan_mistakes_are_one_clear_line(tmp_path: Path, pilot: tuple[Path, str]) -> None:
    ws, _ = pilot
    nothing = run_cli("plan", "--effect", "0.1", "-w", str(tmp_path / "ws"))
    assert nothing.returncode == 2 and "--sd-image and --sd-step" in nothing.stderr
    assert "Traceback" not in nothing.stderr
    unknown = run_cli("plan", "no-such-run", "--effect", "0.1", "-w", str(ws))
    assert unknown.returncode == 2 and "no-such-run" in unknown.stderr
    measure = run_cli("plan", "--effect", "0.1", "--measure", "lab_q", "--sd-image", "1", "--sd-step", "1")
    assert measure.returncode == 2 and "unknown measure 'lab_q'" in measure.stderr


def test_steps_are_a_number_or_a_range() -> None:
    assert parse_steps(None) is None and parse_steps("20") == 20 and parse_steps("10-50") == (10, 50)
    with pytest.raises(SpecError, match="a number like 20 or a range like 10-50"):
        parse_steps("ten")
    with pytest.raises(SpecError, match="steps must be at least 1"):
        driftloop.plan("lab_b_mean", 0.1, sd_image=0.1, sd_step=0.1, steps=(50, 10))
