"""One chain's rate and its interval: the estimand, reasons for no interval, coverage with a known truth.

The coverage tests are a fast version of ``benchmarks/chain_rate_coverage.py`` (2,000 chains per cell there):
R = 500 simulated chains per case. The Monte Carlo standard error of a coverage near 95% is
sqrt(0.95·0.05/500) = 0.0097, so the target band 93–97% is widened by 2.58 SE (a 1% chance of a false
alarm per case) to 90.5–99.5%. The interval printed before (OLS on the steps) covers a random walk's rate
18–28% of the time, far outside it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftloop.analysis.bias import bias_card
from driftloop.analysis.chains import run_overview, summarize_run
from driftloop.analysis.intervals import (
    CHAIN_RATE_MIN_STEPS,
    METHOD_EXACT_LINE,
    METHOD_NOISE,
    METHOD_RANDOM_WALK,
    chain_rate_ci,
)
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
    assert walk.method == METHOD_RANDOM_WALK and walk.df == 99
    assert line.method == METHOD_NOISE and line.df == 98
    # Around a line the rate is known far better than on a walk of the same noise.
    assert (line.ci_high - line.ci_low) < (walk.ci_high - walk.ci_low) / 3  # type: ignore[operator]


# -------------------------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("frames", [51, 101])
def test_random_walk_coverage(frames: int) -> None:
    rng = np.random.default_rng(frames)
    chains = np.array([_walk(rng, frames) for _ in range(REPS)])
    covered, given = _coverage(chains, 0.3)
    assert given == REPS
    assert LOW <= covered <= HIGH


@pytest.mark.parametrize("frames", [51, 101])
def test_line_with_noise_coverage(frames: int) -> None:
    rng = np.random.default_rng(100 + frames)
    chains = 0.3 * np.arange(frames) + rng.standard_normal((REPS, frames))
    covered, given = _coverage(chains, 0.3)
    assert given == REPS
    assert LOW <= covered <= HIGH


@pytest.mark.parametrize("jitter", [0.0, 0.05])
def test_a_walk_that_stops_halfway_is_covered_from_the_least_length(jitter: float) -> None:
    """Copies that stop changing (a fixed point), exactly or with a little jitter: at 20–24 steps these were
    covered 91.6–92.8%, which is why no interval is given below CHAIN_RATE_MIN_STEPS."""
    rng = np.random.default_rng(7)
    frames = CHAIN_RATE_MIN_STEPS + 1
    half = (frames - 1) // 2
    d = 0.3 + rng.standard_normal((REPS, frames - 1))
    d[:, half:] = 0.0
    chains = np.column_stack([np.zeros(REPS), np.cumsum(d, axis=1)])
    chains[:, half + 1 :] += jitter * rng.standard_normal((REPS, frames - half - 1))
    covered, given = _coverage(chains, 0.3 * half / (frames - 1))
    assert given == REPS
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
