"""One chain's rate and its interval: the estimand, reasons for no interval, coverage with a known truth.

The coverage tests are a fast version of ``benchmarks/chain_rate_coverage.py`` (2,000 chains per cell there),
in the same eight ways a measure moves, at the least length with an interval: R = 500 simulated chains per
case. The Monte Carlo standard error of a coverage near 95% is
sqrt(0.95·0.05/500) = 0.0097, so the target band 93–97% is widened by 2.58 SE (a 1% chance of a false
alarm per case) to 90.5–99.5%. The interval printed before (OLS on the steps) covers a random walk's rate
18–28% of the time, far outside it.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from driftloop.analysis.bias import bias_card
from driftloop.analysis.chain_rate import (
    CHAIN_RATE_MIN_STEPS,
    METHOD_EXACT_LINE,
    METHOD_JUMP,
    METHOD_NOISE,
    METHOD_POOLED,
    METHOD_RANDOM_WALK,
    METHOD_REVERTING,
    METHOD_SPREAD,
    WALK_WIDEN,
    chain_rate_ci,
    rate_over_chains_ci,
)
from driftloop.analysis.chains import run_overview, summarize_run
from driftloop.analysis.text import sentences
from driftloop.errors import DriftloopError

REPS = 500
SE = math.sqrt(0.95 * 0.05 / REPS)
LOW, HIGH = 0.93 - 2.58 * SE, 0.97 + 2.58 * SE


def _walk(rng: np.random.Generator, n: int, rate: float = 0.3) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(rate + rng.standard_normal(n - 1))])


def _coverage(chains: np.ndarray, truth: float) -> tuple[float, int]:
    steps = np.arange(chains.shape[1])
    found = [chain_rate_ci(steps, y) for y in chains]
    given = [iv for iv in found if iv.has_ci]
    return sum(iv.ci_low <= truth <= iv.ci_high for iv in given) / len(given), len(given)  # type: ignore[operator]


# -------------------------------------------------------------------------------------------- estimand


def test_the_estimand_is_the_average_change_per_step_and_gaps_are_one_increment() -> None:
    iv = chain_rate_ci([0, 1, 2, 3, 10], [5.0, 6.0, 7.5, 8.0, 15.0])
    assert iv.mean == pytest.approx((15.0 - 5.0) / 10)
    # Unsorted input, and non-finite points dropped (a gap where they were).
    iv2 = chain_rate_ci([10, 3, 0, 2, 1, 4], [15.0, 8.0, 5.0, 7.5, 6.0, math.nan])
    assert iv2.mean == pytest.approx(1.0) and iv2.n_values == 5 and iv2.n_dropped == 1


def test_short_chains_get_no_interval_and_a_reason() -> None:
    rng = np.random.default_rng(1)
    y = _walk(rng, CHAIN_RATE_MIN_STEPS)  # one increment short
    iv = chain_rate_ci(np.arange(y.size), y)
    assert not iv.has_ci and iv.ci_low is None
    assert "too short" in iv.note and str(CHAIN_RATE_MIN_STEPS) in iv.note
    assert math.isfinite(iv.mean)
    one = chain_rate_ci([0], [1.0])
    assert math.isnan(one.mean) and "fewer than two" in one.note


def test_exact_lines_have_zero_width_and_bad_input_names_the_problem() -> None:
    steps = np.arange(30)
    iv = chain_rate_ci(steps, 2.0 - 0.5 * steps)
    assert iv.method == METHOD_EXACT_LINE and iv.ci_low == iv.ci_high == pytest.approx(-0.5)
    flat = chain_rate_ci(steps, np.full(30, 7.0))
    assert (flat.mean, flat.ci_low, flat.ci_high) == (0.0, 0.0, 0.0)
    with pytest.raises(DriftloopError, match="two values"):
        chain_rate_ci([0, 1, 1], [0.0, 1.0, 2.0])
    with pytest.raises(DriftloopError, match="one step per value"):
        chain_rate_ci([0, 1], [0.0, 1.0, 2.0])


def test_the_method_follows_the_data() -> None:
    rng = np.random.default_rng(3)
    steps = np.arange(101)
    walk = chain_rate_ci(steps, _walk(rng, 101))
    line = chain_rate_ci(steps, 0.3 * steps + rng.standard_normal(101))
    assert walk.method == METHOD_NOISE and walk.df == 98 and walk.se is not None
    # The walk's branch widens Student's t by WALK_WIDEN (the test calls some walks reverting).
    half = (walk.ci_high - walk.ci_low) / 2  # type: ignore[operator]
    assert half == pytest.approx(WALK_WIDEN * stats.t.ppf(0.975, 98) * walk.se)
    assert line.method == METHOD_REVERTING and "reverts" in line.note
    # Around a line the rate is known far better than on a walk of the same noise.
    assert (line.ci_high - line.ci_low) < (walk.ci_high - walk.ci_low) / 3  # type: ignore[operator]
    jump = _walk(rng, 101, rate=0.0)
    jump[60:] += 30.0
    iv = chain_rate_ci(steps, jump)
    assert iv.method == METHOD_JUMP and "step 60" in iv.note and iv.ci_low < 0.3 < iv.ci_high  # type: ignore[operator]
    stops = _walk(rng, 101)
    stops[50:] = stops[50]
    iv = chain_rate_ci(steps, stops)
    assert iv.method == METHOD_RANDOM_WALK and "stop" in iv.note
    gappy = chain_rate_ci(np.r_[steps[:-1], 110], _walk(rng, 101))
    assert gappy.method == METHOD_NOISE and "gaps" in gappy.note


# -------------------------------------------------------------------------------------------- coverage


def _benchmark() -> ModuleType:
    """``benchmarks/chain_rate_coverage.py``: its eight ways a measure moves are the ones tested here."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "chain_rate_coverage.py"
    spec = importlib.util.spec_from_file_location("chain_rate_coverage", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCHMARK = _benchmark()
REGIMES = BENCHMARK.REGIMES
_simulate = BENCHMARK.simulate


@pytest.mark.parametrize("regime", REGIMES)
def test_coverage_at_the_least_length_with_an_interval(regime: str) -> None:
    """93–97% (widened by the Monte Carlo error) in every way a measure moves, from 100 steps. The interval
    before this rule covered AR(1) noise, saturating curves and jumps 100% of the time (too wide), and OLS on
    the steps covered a random walk 13%."""
    rng = np.random.default_rng(REGIMES.index(regime))
    chains, truth = _simulate(rng, regime, REPS, CHAIN_RATE_MIN_STEPS + 1)
    covered, given = _coverage(chains, truth)
    assert given == REPS
    assert LOW <= covered <= HIGH


@pytest.mark.parametrize("regime", ["random walk", "line + AR(1) φ=0.8"])
def test_coverage_holds_on_longer_chains(regime: str) -> None:
    rng = np.random.default_rng(50 + REGIMES.index(regime))
    chains, truth = _simulate(rng, regime, REPS, 201)
    covered, given = _coverage(chains, truth)
    assert given == REPS
    assert LOW <= covered <= HIGH


def test_chains_of_one_image_that_read_differently_are_pooled_by_their_spread() -> None:
    rng = np.random.default_rng(11)
    steps = np.arange(101)
    walk = chain_rate_ci(steps, _walk(rng, 101))
    line = chain_rate_ci(steps, 0.3 * steps + rng.standard_normal(101))
    line2 = chain_rate_ci(steps, 0.3 * steps + rng.standard_normal(101))
    mixed = rate_over_chains_ci([walk, line, line2], ["a.png"] * 3)
    estimates = np.array([walk.mean, line.mean, line2.mean])
    assert mixed.method == METHOD_SPREAD and mixed.df == 2 and mixed.n_values == 3
    assert mixed.se == pytest.approx(estimates.std(ddof=1) / math.sqrt(3))
    assert mixed.mean == pytest.approx(estimates.mean())
    same = rate_over_chains_ci([line, line2], ["a.png"] * 2)
    assert same.method == METHOD_POOLED and same.se == pytest.approx(math.hypot(line.se, line2.se) / 2)  # type: ignore[arg-type]


def test_pooled_chains_of_one_image_cover_where_they_read_differently() -> None:
    """AR(1) noise at 101 frames reads as reverting in about a third of the chains and as a walk in the rest:
    three chains of one image mostly disagree. Pooling their models' variances covered 99.6% (too wide);
    the rule covers 93–97% (benchmark: 96.5%)."""
    rng = np.random.default_rng(12)
    chains, truth = _simulate(rng, "line + AR(1) φ=0.8", 3 * REPS, 101)
    steps = np.arange(101)
    found = [chain_rate_ci(steps, y) for y in chains]
    pooled = [rate_over_chains_ci(found[3 * r : 3 * r + 3], ["a.png"] * 3) for r in range(REPS)]
    covered = np.mean([iv.ci_low <= truth <= iv.ci_high for iv in pooled])  # type: ignore[operator]
    assert LOW <= covered <= HIGH


# ----------------------------------------------------------------------------- what users read


def _table(chains: list[np.ndarray], images: list[str]) -> pd.DataFrame:
    rows = []
    for c, (y, image) in enumerate(zip(chains, images, strict=True)):
        for step, b in enumerate(y):
            rows.append({"model": "m", "image": image, "input": image, "chain": c, "chain_seed": c,
                         "step": step, "lab_b_mean": 50 + b})  # fmt: skip
    return pd.DataFrame(rows)


def test_a_wandering_chain_is_not_called_a_drift() -> None:
    # A random walk with no drift (seed 0) that wandered up: OLS on its steps gives 0.147 [0.128, 0.166] per
    # step and would call it a drift; the interval on its increments includes 0.
    steps = np.arange(101)
    y = np.concatenate([[0.0], np.cumsum(np.random.default_rng(0).standard_normal(100))])
    df = _table([y], ["a.png"])
    text = " | ".join(sentences(summarize_run(df), df))
    iv = chain_rate_ci(steps, y)
    assert iv.ci_low < 0 < iv.ci_high  # type: ignore[operator]
    assert "no clear change over the first 100 steps" in text
    # Only the chain's realised total change may be called cooler or warmer, not its rate.
    parts = text.split(" | ")
    assert not any(("cooler" in part or "warmer" in part) and "per step" in part for part in parts)


def test_the_card_and_the_report_agree_on_one_chain() -> None:
    rng = np.random.default_rng(7)
    df = _table([_walk(rng, 101, rate=-0.8)], ["a.png"])
    report_rate = run_overview(summarize_run(df))["rates"]["lab_b_mean"]
    card_rate = bias_card(df, control=None, measures=["lab_b_mean"]).models[0].measures["lab_b_mean"].rate
    assert report_rate.has_ci and card_rate is not None and card_rate.has_ci
    assert card_rate.mean == pytest.approx(report_rate.slope)
    assert (card_rate.ci_low, card_rate.ci_high) == pytest.approx((report_rate.ci_low, report_rate.ci_high))


def test_the_card_and_the_report_agree_on_chains_of_one_image() -> None:
    rng = np.random.default_rng(8)
    df = _table([_walk(rng, 101, rate=-0.8) for _ in range(3)], ["a.png"] * 3)
    report_rate = run_overview(summarize_run(df))["rates"]["lab_b_mean"]
    card_rate = bias_card(df, control=None, measures=["lab_b_mean"]).models[0].measures["lab_b_mean"].rate
    assert report_rate.has_ci and card_rate is not None and card_rate.has_ci
    assert (card_rate.ci_low, card_rate.ci_high) == pytest.approx((report_rate.ci_low, report_rate.ci_high))
    assert card_rate.n_values == 3 and report_rate.chains == 3 and report_rate.images == 1
    # Too short for an interval: neither prints one.
    short = _table([_walk(rng, 10, rate=-0.8)], ["b.png"])
    assert not run_overview(summarize_run(short))["rates"]["lab_b_mean"].has_ci
    rate = bias_card(short, control=None, measures=["lab_b_mean"]).models[0].measures["lab_b_mean"].rate
    assert rate is not None and not rate.has_ci
