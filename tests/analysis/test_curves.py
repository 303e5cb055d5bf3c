"""The mean and 95% band of a measure's curves: across source images, each image's chains averaged first."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from driftloop.analysis.curves import long_values, mean_band, table_band


def test_band_counts_images_not_chains() -> None:
    # four images; image "a" has two chains (seeds), the others one; step 2 is missing for image "d"
    rows = [("a", 0, 0, 1.0), ("a", 0, 1, 2.0), ("a", 0, 2, 3.0), ("a", 1, 0, 3.0), ("a", 1, 1, 4.0),
            ("a", 1, 2, 5.0), ("b", 2, 0, 1.5), ("b", 2, 1, 2.5), ("b", 2, 2, 2.0), ("c", 3, 0, 0.5),
            ("c", 3, 1, 1.0), ("c", 3, 2, 1.5), ("d", 4, 0, 1.0), ("d", 4, 1, np.inf)]  # fmt: skip
    df = pd.DataFrame(rows, columns=["input", "chain", "step", "x"])
    data, infinite = long_values(df, "x")
    assert infinite == 1 and len(data) == 13
    band = mean_band(data)
    # by hand: step 0 images a=2.0 (its two chains averaged), b=1.5, c=0.5, d=1.0 -> n=4
    means = np.array([2.0, 1.5, 0.5, 1.0])
    half = stats.t.ppf(0.975, 3) * means.std(ddof=1) / 2
    assert band["step"].tolist() == [0, 1, 2]
    assert np.isclose(band["mean"][0], means.mean()) and np.isclose(band["half"][0], half)
    # step 1: d is ∞ (dropped) -> three images; step 2: a=4, b=2, c=1.5
    assert np.isclose(band["mean"][2], (4 + 2 + 1.5) / 3) and np.isfinite(band["half"][2])
    # the table form gives the same numbers (what the report's charts use)
    table = data.pivot_table(index="step", columns="chain", values="value").to_numpy()
    mean, half_t = table_band(table, ["a", "a", "b", "c", "d"])
    assert np.allclose(mean, band["mean"]) and np.allclose(half_t, band["half"], equal_nan=True)


def test_no_band_below_three_images() -> None:
    table = np.array([[1.0, 2.0, 3.0], [2.0, np.nan, 4.0]])
    mean, half = table_band(table, ["a", "b", "b"])  # two images
    assert np.allclose(mean, [(1 + 2.5) / 2, (2 + 4) / 2]) and np.isnan(half).all()


def test_hue_is_unwrapped_for_every_plot() -> None:
    """Hue angles are drawn as one continuous drift (the report's charts and the static figures alike):
    no 0° ↔ 355° jumps, and each chain within half a turn of the first at its start."""
    df = pd.DataFrame(
        {"chain": [0, 0, 0, 1, 1, 1], "step": [0, 1, 2] * 2, "lab_hue_deg": [350, 358, 5, 10, 3, 355]}
    )
    data, _ = long_values(df, "lab_hue_deg")
    assert data["value"].tolist() == [350.0, 358.0, 365.0, 370.0, 363.0, 355.0]
    plain, _ = long_values(df.rename(columns={"lab_hue_deg": "lab_l_mean"}), "lab_l_mean")
    assert plain["value"].tolist() == [350.0, 358.0, 5.0, 10.0, 3.0, 355.0]  # any other measure as it is
