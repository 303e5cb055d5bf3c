"""The study planner (driftloop.analysis.plan): its variance components come back from a simulated pilot, and
the designs it plans reach the power they promise when chains with the pilot's spread are simulated step by
step and analysed as driftloop analyses them (mean_ci over images).

Monte Carlo error: with R = 1000 simulated studies a power near 0.8 has a standard error of
sqrt(0.8·0.2/1000) = 0.013, so the 75–85% band is about ±4 standard errors around 80%."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.analysis.plan import Components, design_for, pilot_components, power, simulate_power
from driftloop.errors import SpecError

TRUE = Components(image=0.15, seed=0.06, step=0.5)


def pilot(images: int, seeds: int, steps: int, c: Components, drift: float = 0.2, seed: int = 1,
          same_seeds: bool = False) -> pd.DataFrame:  # fmt: skip
    """A pilot's metrics table: chains drawn step by step under the planner's model (``same_seeds``: every
    seed of an image gives the same chain, as for a model that ignores its seed)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(images):
        a = rng.normal(0, c.image)
        base = None
        for j in range(seeds):
            if base is None or not same_seeds:
                b = rng.normal(0, c.seed)
                base = np.concatenate([[30.0], 30 + np.cumsum(drift + a + b + rng.normal(0, c.step, steps))])
            for k, v in enumerate(base):
                rows.append({"chain": f"{i}/{j}", "input": f"img{i}.png", "step": k, "lab_b_mean": v})
    return pd.DataFrame(rows)


def test_components_come_back_from_a_large_pilot() -> None:
    got = pilot_components(pilot(60, 4, 20, TRUE), "lab_b_mean")
    assert got.pilot_steps == 20 and "240 pilot chain(s) of 60 image(s)" in got.pilot
    assert got.step == pytest.approx(TRUE.step, rel=0.05)
    assert got.image == pytest.approx(TRUE.image, rel=0.3)
    assert got.seed == pytest.approx(TRUE.seed, abs=0.04)


def test_a_model_that_ignores_its_seed_gets_one_seed() -> None:
    got = pilot_components(pilot(8, 3, 15, TRUE, same_seeds=True), "lab_b_mean")
    assert got.seed == 0 and got.step == 0 and got.image > 0.1
    assert any("capped" in n for n in got.notes)
    assert design_for(0.15, got, steps=15).seeds == 1
    # asked for 4 images, more seeds cannot help: the best it can do is said, not hidden
    short = design_for(0.01, got, images=4, steps=15)
    assert short.images == 4 and short.seeds == 1 and short.power < 0.8


def test_one_pilot_image_needs_the_image_spread_stated() -> None:
    one = pilot(1, 4, 10, TRUE)
    with pytest.raises(SpecError, match=r"single image.*--sd-image"):
        pilot_components(one, "lab_b_mean")
    assert pilot_components(one, "lab_b_mean", image_sd=0.2).image == 0.2
    with pytest.raises(SpecError, match="no measure 'cct_kelvin'"):
        pilot_components(one, "cct_kelvin")


def test_power_grows_with_images_and_the_cheapest_design_is_picked() -> None:
    assert power(0.1, TRUE, 10, 1, 20) < power(0.1, TRUE, 20, 1, 20) < power(0.1, TRUE, 40, 1, 20)
    d = design_for(0.1, TRUE, steps=20)
    assert d.power >= 0.8 and power(0.1, TRUE, d.images - 1, d.seeds, d.steps) < 0.8
    # seeds never buy power cheaper than images under this model; with images fixed they are what is left
    assert d.seeds == 1
    fixed = design_for(0.1, TRUE, images=d.images - 8, steps=20)
    assert fixed.seeds > 1 and fixed.power >= 0.8
    with pytest.raises(SpecError, match="non-zero"):
        design_for(0.0, TRUE)


def test_power_far_out_where_the_noncentral_t_needs_help() -> None:
    # 2 images, noncentrality 42: the t statistic misses only when √(χ²₁) > 42.4 / t_crit(1 df), i.e.
    # when a standard normal is beyond ±3.34, which happens 0.084% of the time
    tight = Components(image=0.01, seed=0.0, step=0.0)
    assert power(0.3, tight, 2, 1, 20) == pytest.approx(0.99916, abs=2e-4)
    assert power(0.3, tight, 3, 1, 20) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("effect", "images"),
    [(0.06, None), (0.1, None), (-0.15, None), (0.1, 30)],
    ids=["0.06", "0.10", "-0.15", "0.10 on 30 images"],
)
def test_planned_designs_reach_their_power_on_simulated_chains(effect: float, images: int | None) -> None:
    components = pilot_components(pilot(10, 3, 20, TRUE, seed=7), "lab_b_mean")
    design = design_for(effect, components, images=images, steps=20)
    assert 0.8 <= design.power < 0.86 and (images is None or design.seeds > 1)
    achieved = simulate_power(design, components, reps=1000, rng=np.random.default_rng(11))
    assert 0.75 <= achieved <= 0.85, (design, achieved)
    assert abs(achieved - design.power) < 0.045
