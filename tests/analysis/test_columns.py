"""Each chain's table columns: final values, changes from the original, rates and marked steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.analysis.chains import summarize_run
from driftloop.analysis.columns import chain_columns, column_choices


def table() -> pd.DataFrame:
    steps = np.arange(6)
    rows = []
    for chain, slope in ((0, 1.0), (1, -0.5)):
        for s in steps:
            ssim = 1.0 - 0.15 * s * (chain + 1)
            b = 10.0 + slope * s
            rows.append({"chain": chain, "step": s, "ssim_to_origin": ssim, "lab_b_mean": b})
    rows.append({"chain": 2, "step": 0, "ssim_to_origin": 1.0, "lab_b_mean": np.nan})  # unmeasured b*
    return pd.DataFrame(rows)


def test_columns_of_each_chain() -> None:
    df = table()
    got = chain_columns(df, summarize_run(df))
    assert got[0]["ssim_to_origin.final"] == pytest.approx(0.25)
    assert got[0]["lab_b_mean.change"] == pytest.approx(5.0)
    assert got[1]["lab_b_mean.change"] == pytest.approx(-2.5)
    assert got[0]["lab_b_mean.rate"] == pytest.approx(1.0)
    assert got[1]["lab_b_mean.rate"] == pytest.approx(-0.5)
    assert got[0]["half_life"] == 4 and got[1]["half_life"] == 2  # first step with SSIM < 0.5
    assert got[0]["last_step"] == 5 and got[2]["last_step"] == 0
    assert got[2]["lab_b_mean.final"] is None and got[2]["lab_b_mean.change"] is None


def test_the_choices_name_every_stored_column_in_the_vocabularys_words() -> None:
    choices = column_choices()
    df = table()
    stored = {k for v in chain_columns(df, summarize_run(df)).values() for k in v}
    assert stored <= set(choices)
    assert choices["ssim_to_origin.final"].startswith("SSIM") and "ssim_to_origin.rate" not in choices
