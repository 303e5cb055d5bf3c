"""Stabilizer arms: each stabilized arm against its model's plain arm, paired by source image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.analysis.arms import stabilizer_arms
from driftloop.analysis.intervals import paired_diff_ci, paired_permutation_test

N_IMAGES, N_STEPS = 8, 10


def _table(arms: dict[str, tuple[float, float, float]], seed: int = 0) -> pd.DataFrame:
    """Chains per arm and image; per arm (b* drift per step, SSIM loss per step, histogram gaps per step),
    each image with its own offset so images differ, plus a little noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, (b_rate, ssim_rate, gaps_rate) in arms.items():
        for i in range(N_IMAGES):
            wobble = rng.normal(0, 0.05, 3)
            for step in range(N_STEPS + 1):
                rows.append({
                    "model": model, "image": f"img{i}", "chain_seed": 1, "run_id": model, "chain": i,
                    "step": step,
                    "lab_b_mean": 10 + i + step * (b_rate + wobble[0]),
                    "ssim_to_origin": 1 - step * (ssim_rate + wobble[1] / 100),
                    "histogram_gaps": 0.1 + step * (gaps_rate + wobble[2] / 100),
                    "entropy_bits": 7.0,
                })  # fmt: skip
    return pd.DataFrame(rows)


def test_colour_drift_removed_structure_kept_posterisation_found() -> None:
    df = _table({"taef2": (1.0, 0.02, 0.0), "taef2 + stabilize=colour:lab": (0.0, 0.02, 0.01),
                 "jpeg:quality=90": (0.1, 0.01, 0.0)})  # fmt: skip
    (arm,) = stabilizer_arms(df)
    assert (arm.model, arm.stabilizer, arm.arm) == ("taef2", "colour:lab", "taef2 + stabilize=colour:lab")
    assert (arm.n_images, arm.n_chains_plain, arm.n_chains_arm) == (N_IMAGES, N_IMAGES, N_IMAGES)
    by = {m.measure: m for m in arm.measures}
    assert list(by) == ["lab_b_mean", "ssim_to_origin", "entropy_bits", "histogram_gaps"]
    b = by["lab_b_mean"]
    assert b.group == "colour" and b.reliable and b.plain == pytest.approx(10, abs=1) and abs(b.arm) < 1
    assert b.reading.startswith("removes 9") and b.test.exact and b.test.p_value == pytest.approx(2 / 2**8)
    assert not by["ssim_to_origin"].reliable and by["ssim_to_origin"].reading == "no reliable difference"
    gaps = by["histogram_gaps"]
    assert gaps.reliable and gaps.difference.ci_low > 0 and gaps.reading.startswith("adds a change the plain")
    entropy = by["entropy_bits"]  # constant in both arms: a zero difference, no reliable change
    assert entropy.difference.mean == 0 and not entropy.reliable
    summary = arm.summary()
    assert summary[0].startswith("colour: Δb* removes 9")
    assert summary[1] == "structure: no reliable difference"
    assert summary[2].startswith("posterisation: Δgaps adds a change the plain arm does not have")
    assert summary[2].endswith("no reliable difference in Δentropy")


def test_difference_is_the_image_paired_interval_and_test() -> None:
    df = _table({"m": (0.5, 0.0, 0.0), "m + stabilize=colour-stats": (0.3, 0.0, 0.0)}, seed=3)
    (arm,) = stabilizer_arms(df, n_perm=5000)
    b = next(m for m in arm.measures if m.measure == "lab_b_mean")
    last = df[df["step"] == N_STEPS].set_index(["model", "image"])["lab_b_mean"]
    first = df[df["step"] == 0].set_index(["model", "image"])["lab_b_mean"]
    change = last - first
    plain, stab = change.loc["m"], change.loc["m + stabilize=colour-stats"]
    images = (stab.index.to_numpy(), plain.index.to_numpy())
    expected = paired_diff_ci(stab.to_numpy(), plain.to_numpy(), *images)
    assert b.difference == expected
    test = paired_permutation_test(stab.to_numpy(), plain.to_numpy(), stab.index.to_numpy(),
                                   plain.index.to_numpy())  # fmt: skip
    assert b.test.p_value == test.p_value
    assert b.plain == pytest.approx(plain.mean()) and b.arm == pytest.approx(stab.mean())


def test_no_arms_without_a_plain_model_beside_a_stabilized_one() -> None:
    assert stabilizer_arms(_table({"taef2": (1, 0, 0), "jpeg": (0, 0, 0)})) == []
    assert stabilizer_arms(_table({"taef2 + stabilize=colour:lab": (1, 0, 0)})) == []
    assert stabilizer_arms(pd.DataFrame()) == []


def test_images_only_one_arm_ran_are_left_out_and_few_images_noted() -> None:
    df = _table({"m": (1.0, 0, 0), "m + stabilize=colour:lab": (0.0, 0, 0)})
    df = df[~((df["model"] == "m") & df["image"].isin([f"img{i}" for i in range(4)]))]
    (arm,) = stabilizer_arms(df)
    assert arm.n_images == 4
    assert any("4 shared source image(s)" in n for n in arm.notes)
    assert any("4 source image(s) only one arm ran are left out" in n for n in arm.notes)
    b = next(m for m in arm.measures if m.measure == "lab_b_mean")
    assert b.difference.n_left_out == 4 and not b.reliable  # 4 images cannot reach p < 0.05
    assert arm.to_dict()["summary"] == arm.summary()
