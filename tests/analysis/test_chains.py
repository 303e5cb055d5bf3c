"""Tests for driftloop.analysis.chains (chain summaries, drift rates with confidence intervals) and the
sentences and numbers of driftloop.analysis.text."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from driftloop.analysis.chain_rate import chain_rate_ci
from driftloop.analysis.chains import ChainSummary, run_overview, summarize_chain, summarize_run
from driftloop.analysis.stats import Rate
from driftloop.analysis.text import sentences


def chain_df(
    n_steps: int = 40,
    chain: int = 0,
    b_slope: float = -0.24,
    noise: float = 0.05,
    half_life: int | None = 9,
    **extra: np.ndarray,
) -> pd.DataFrame:
    """One chain, steps 0..n_steps: b* = 50 + b_slope·step + deterministic noise, SSIM crossing 0.5 at
    ``half_life`` (never when None), PSNR ∞ at step 0, every frame different from the previous one."""
    step = np.arange(n_steps + 1)
    wiggle = noise * np.sin(1.3 * step + chain)
    if half_life is None:
        ssim = 1 - 0.4 * step / max(n_steps, 1)
    else:
        ssim = np.where(step < half_life, 1 - 0.45 * step / max(half_life, 1), 0.49 - 0.001 * step)
    data = {
        "chain": chain,
        "step": step,
        "ssim_to_origin": ssim,
        "psnr_to_origin": np.where(step == 0, np.inf, 40 - 0.3 * step),
        "psnr_to_prev": np.where(step == 0, np.inf, 35.0),
        "mae_to_prev": np.where(step == 0, 0.0, 1.5),
        "lab_l_mean": np.full(step.shape, 60.0),
        "lab_a_mean": np.full(step.shape, 2.0),
        "lab_b_mean": 50 + b_slope * step + wiggle,
    }
    data.update(extra)
    return pd.DataFrame(data)


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    """No NaN/empty-slice/divide warnings anywhere in the analysis."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ------------------------------------------------------------------------------------------------ rates


def test_b_star_slope_ci_covers_truth_and_excludes_zero() -> None:
    summary = summarize_chain(chain_df(n_steps=140), rate_steps=100)
    rate = summary.rates["lab_b_mean"]
    assert rate.n == 101 and rate.max_step == 100
    assert rate.ci_low < -0.24 < rate.ci_high
    assert rate.ci_high < 0
    assert rate.clear
    assert rate.slope == pytest.approx(-0.24, abs=0.01)


def test_rate_is_the_average_change_per_step_with_chain_rate_ci() -> None:
    df = chain_df(n_steps=120, noise=0.4)
    rate = summarize_chain(df).rates["lab_b_mean"]  # the whole chain by default
    b = df["lab_b_mean"].to_numpy()
    assert rate.slope == pytest.approx((b[-1] - b[0]) / 120) and rate.has_ci
    iv = chain_rate_ci(df["step"], b)
    assert (rate.ci_low, rate.ci_high, rate.method) == (iv.ci_low, iv.ci_high, iv.method)


def test_sentences_say_cooler_with_the_rate() -> None:
    df = chain_df(n_steps=100)
    text = " | ".join(sentences([summarize_chain(df)], df))
    assert "cooler" in text
    assert "−0.24" in text or "-0.24" in text
    assert "over the first 100 steps" in text
    assert "warmer" not in text


def test_positive_drift_words() -> None:
    step = np.arange(101)
    df = chain_df(n_steps=100, b_slope=0.09, lab_l_mean=40 + 0.24 * step, lab_a_mean=5 - 0.06 * step)
    text = " | ".join(sentences([summarize_chain(df)], df))
    assert "warmer (yellower)" in text
    assert "brighter" in text
    assert "greener" in text
    # Total change by the last step: L* +24, a* −6, b* +9.
    assert "brighter: ΔL* +24 by step 100" in text
    assert "greener: Δa* −6.0 by step 100" in text


def test_constant_series_is_no_clear_change_without_nan() -> None:
    df = chain_df(n_steps=25, b_slope=0.0, noise=0.0)
    summary = summarize_chain(df)
    rate = summary.rates["lab_b_mean"]
    assert (rate.slope, rate.ci_low, rate.ci_high) == (0.0, 0.0, 0.0)
    assert not rate.clear
    text = sentences([summary], df)
    b_lines = [s for s in text if s.startswith("b*")]
    assert b_lines and "no clear change" in b_lines[0]
    assert not any("cooler" in s or "warmer" in s for s in text)


def test_noise_only_is_no_clear_change() -> None:
    df = chain_df(n_steps=100, b_slope=0.0, noise=0.5)
    summary = summarize_chain(df)
    assert summary.rates["lab_b_mean"].ci_low < 0 < summary.rates["lab_b_mean"].ci_high
    b_lines = [s for s in sentences([summary], df) if s.startswith("b*")]
    assert "no clear change" in b_lines[0]


def test_rate_window_longer_than_chain_uses_what_exists() -> None:
    df = chain_df(n_steps=10)
    rate = summarize_chain(df, rate_steps=50).rates["lab_b_mean"]
    assert rate.n == 11 and rate.max_step == 10
    assert any("over the first 10 steps" in s for s in sentences([summarize_chain(df, rate_steps=50)], df))


def test_two_points_give_a_slope_without_interval() -> None:
    df = chain_df(n_steps=1)
    rate = summarize_chain(df).rates["lab_b_mean"]
    assert rate.n == 2 and math.isnan(rate.ci_low) and not rate.clear
    assert any(
        "no interval: 1 step with a value: too short" in s for s in sentences([summarize_chain(df)], df)
    )


def test_nan_and_missing_values_are_skipped() -> None:
    df = chain_df(n_steps=20)
    df.loc[[3, 7], "lab_b_mean"] = np.nan
    rate = summarize_chain(df).rates["lab_b_mean"]
    assert rate.n == 19 and rate.slope < 0
    # 18 increments are too few for an interval that holds: none, and the record says why.
    assert not rate.has_ci and "too short" in rate.note
    longer = chain_df(n_steps=120)
    longer.loc[[3, 7], "lab_b_mean"] = np.nan
    rate = summarize_chain(longer).rates["lab_b_mean"]
    assert rate.n == 119 and rate.clear and rate.slope < 0


# ------------------------------------------------------------------------------------ half-life, fixed point


@pytest.mark.parametrize("crossing", [1, 7, 15])
def test_half_life_is_first_step_below_half(crossing: int) -> None:
    summary = summarize_chain(chain_df(n_steps=20, half_life=crossing))
    assert summary.half_life == crossing


def test_half_life_not_reached() -> None:
    df = chain_df(n_steps=20, half_life=None)
    summary = summarize_chain(df)
    assert summary.half_life is None
    assert any("stays above 0.5" in s for s in sentences([summary], df))


def test_fixed_point_from_mae_with_k() -> None:
    step = np.arange(21)
    mae = np.where(step >= 11, 0.0, 2.0)
    mae[0] = 0.0  # step 0 has nothing before it: never counts
    df = chain_df(n_steps=20, mae_to_prev=mae)
    assert summarize_chain(df, fixed_point_k=3).fixed_point_step == 10
    assert summarize_chain(df, fixed_point_k=10).fixed_point_step == 10
    assert summarize_chain(df, fixed_point_k=11).fixed_point_step is None
    text = sentences([summarize_chain(df, fixed_point_k=3)], df)
    assert any("fixed point at step 10" in s for s in text)


def test_a_short_pause_is_not_a_fixed_point() -> None:
    mae = np.full(21, 2.0)
    mae[5:7] = 0.0  # two unchanged steps, then changes again
    df = chain_df(n_steps=20, mae_to_prev=mae)
    summary = summarize_chain(df, fixed_point_k=3)
    assert summary.fixed_point_step is None and summary.fixed_point_checked
    assert "no chain reached a fixed point" in sentences([summary], df)


def test_fixed_point_prefers_sha256_and_needs_consecutive_steps() -> None:
    hashes = [f"h{i}" for i in range(8)] + ["same"] * 5
    df = chain_df(n_steps=12, sha256=np.array(hashes, dtype=object))  # mae_to_prev says "always changes"
    assert summarize_chain(df, fixed_point_k=3).fixed_point_step == 8
    gappy = df[df["step"] != 10]  # steps 9 -> 11: a gap is not "unchanged"
    assert summarize_chain(gappy, fixed_point_k=3).fixed_point_step is None


def test_fixed_point_unknown_without_pixel_change_columns() -> None:
    df = chain_df(n_steps=5).drop(columns=["mae_to_prev", "psnr_to_prev"])
    summary = summarize_chain(df)
    assert summary.fixed_point_step is None and not summary.fixed_point_checked
    assert any("fixed points unknown" in s for s in sentences([summary], df))


def test_fixed_point_from_infinite_psnr_to_prev() -> None:
    psnr = np.where(np.arange(11) >= 4, np.inf, 30.0)
    df = chain_df(n_steps=10, psnr_to_prev=psnr).drop(columns=["mae_to_prev"])
    assert summarize_chain(df, fixed_point_k=3).fixed_point_step == 3


# --------------------------------------------------------------------------------------------- drift


def test_drift_at_chosen_steps_and_last_step() -> None:
    df = chain_df(n_steps=30, noise=0.0)
    summary = summarize_chain(df, drift_steps=(1, 10, 25, 50, 100))
    assert sorted(summary.drift) == [1, 10, 25, 30]
    assert summary.drift[10]["lab_b_mean"] == pytest.approx(-2.4)
    assert summary.drift[30]["lab_b_mean"] == pytest.approx(-7.2)
    assert summary.drift[30]["lab_l_mean"] == 0.0
    assert summary.last_step == 30 and summary.n_frames == 31


def test_optional_colour_measures_are_summarised_when_present() -> None:
    step = np.arange(21)
    df = chain_df(n_steps=20, white_cast=10 + 1.0 * step, cct_kelvin=6500 - 20.0 * step)
    summary = summarize_chain(df)
    assert summary.drift[20]["white_cast"] == pytest.approx(20)
    assert summary.rates["cct_kelvin"].slope == pytest.approx(-20)
    text = " | ".join(sentences([summary], df))
    assert "whites turn yellower" in text
    assert "colour temperature falls" in text
    assert "white cast at step 20: 30.0, above the ~25" in text


def test_white_cast_without_neutral_pixels_is_not_a_reading() -> None:
    step = np.arange(21)
    pixels = np.where(step >= 15, 0.0, 0.2)  # the bright neutrals are gone from step 15 on
    cast = np.where(step >= 15, 0.0, 30.0 + 0.1 * step)
    df = chain_df(n_steps=20, white_cast=cast, white_cast_pixels=pixels)
    summary = summarize_chain(df, rate_steps=20)
    assert summary.rates["white_cast"].n == 15  # steps 15..20 are not measurements
    assert summary.rates["white_cast"].slope == pytest.approx(0.1)
    assert 20 not in summary.drift or "white_cast" not in summary.drift[20]
    assert not any(s.startswith("white cast at") for s in sentences([summary], df))


# --------------------------------------------------------------------------------------- several chains


def many_chains(n: int = 5) -> pd.DataFrame:
    return pd.concat(
        [chain_df(n_steps=30, chain=c, half_life=7 + c, b_slope=-0.24 + 0.002 * c) for c in range(n)],
        ignore_index=True,
    )


def test_summarize_run_one_per_chain_sorted() -> None:
    df = many_chains(5).sample(frac=1.0, random_state=1)  # shuffled rows
    summaries = summarize_run(df)
    assert [s.chain for s in summaries] == [0, 1, 2, 3, 4]
    assert [s.half_life for s in summaries] == [7, 8, 9, 10, 11]


def test_overview_and_sentences_across_chains() -> None:
    df = many_chains(5)
    summaries = summarize_run(df)
    ov = run_overview(summaries)
    assert ov["n_chains"] == 5
    assert ov["half_life"]["mean"] == 9 and ov["half_life"]["n_reached"] == 5
    rate = ov["rates"]["lab_b_mean"]
    assert isinstance(rate, Rate) and rate.chains == 5 and rate.clear
    assert rate.ci_low < np.mean([-0.24 + 0.002 * c for c in range(5)]) < rate.ci_high
    text = sentences(summaries, df)
    assert text[0] == "5 chains, 30 copies each (steps 0–30)"
    assert "SSIM to the original halves by step 9 on average (chains: 7–11)" in text
    assert "no chain reached a fixed point" in text
    assert any("cooler" in s and "mean of 5 chains" in s for s in text)


def test_some_chains_without_half_life() -> None:
    df = pd.concat(
        [chain_df(n_steps=20, chain=0, half_life=5), chain_df(n_steps=20, chain=1, half_life=None)]
    )
    text = " | ".join(sentences(summarize_run(df), df))
    assert "in 1 of 2 chains" in text
    assert "1 chain stays above SSIM 0.5" in text


def test_one_chain_without_chain_column() -> None:
    df = chain_df(n_steps=15).drop(columns=["chain"])
    summaries = summarize_run(df)
    assert len(summaries) == 1 and summaries[0].chain == 0
    text = sentences(summaries, df)
    assert text[0] == "1 chain, 15 copies (steps 0–15)"
    assert "SSIM to the original halves by step 9" in text
    assert not any("chains:" in s for s in text)


# ------------------------------------------------------------------------------------------ edge cases


def test_empty_frame() -> None:
    empty = chain_df(n_steps=3).iloc[0:0]
    assert summarize_run(empty) == []
    assert sentences([], empty) == ["no frames to summarise"]
    summary = summarize_chain(empty)
    assert summary.n_frames == 0 and summary.half_life is None and summary.rates == {}
    assert run_overview([])["n_chains"] == 0


def test_only_the_original_frame() -> None:
    df = chain_df(n_steps=0)
    summaries = summarize_run(df)
    assert summaries[0].last_step == 0 and summaries[0].rates == {} and summaries[0].drift == {}
    assert sentences(summaries, df) == ["1 chain, only the original frame (step 0): nothing to compare yet"]


def test_only_chain_and_step_columns() -> None:
    df = pd.DataFrame({"chain": [0, 0, 0, 1, 1], "step": [0, 1, 2, 0, 1]})
    summaries = summarize_run(df)
    assert [s.last_step for s in summaries] == [2, 1]
    text = sentences(summaries, df)
    assert text[0] == "2 chains, 1–2 copies each"
    assert any("fixed points unknown" in s for s in text)


def test_non_numeric_and_extra_columns_are_ignored() -> None:
    df = chain_df(n_steps=10).assign(path="frames/x.png", info=None)
    df["lab_b_mean"] = df["lab_b_mean"].astype(object)
    df.loc[2, "lab_b_mean"] = "n/a"
    summary = summarize_chain(df)
    assert summary.rates["lab_b_mean"].n == 10


def test_summary_to_dict_is_strict_json() -> None:
    summary = summarize_chain(chain_df(n_steps=1))  # NaN interval, inf PSNR at step 0
    data = summary.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["rates"]["lab_b_mean"]["ci_low"] is None
    assert isinstance(summary, ChainSummary)


def test_identical_chains_of_one_image_are_one_chain_not_proof() -> None:
    """Seeds of a deterministic model on one image give identical chains: the across-chain interval must not
    collapse to zero width (it is the chains' own interval), and the words say how many images there are."""
    one = summarize_chain(chain_df(n_steps=100, chain=0, input="a.png"))
    same_b = chain_df(n_steps=100)["lab_b_mean"]
    copies = pd.concat(
        [chain_df(n_steps=100, chain=c, input="a.png").assign(lab_b_mean=same_b) for c in range(3)]
    )
    rate = run_overview(summarize_run(copies))["rates"]["lab_b_mean"]
    own = one.rates["lab_b_mean"]
    assert rate.chains == 3 and rate.images == 1
    assert rate.ci_low == pytest.approx(own.ci_low) and rate.ci_high == pytest.approx(own.ci_high)
    assert rate.ci_high - rate.ci_low > 0
    assert any("mean of 3 chains from 1 image" in s for s in sentences(summarize_run(copies)))


def test_interval_across_images_averages_each_images_chains_first() -> None:
    chains = [("a", -0.2), ("a", -0.2), ("a", -0.2), ("b", -0.4)]
    frames = [chain_df(chain=c, b_slope=slope, input=image) for c, (image, slope) in enumerate(chains)]
    rate = run_overview(summarize_run(pd.concat(frames)))["rates"]["lab_b_mean"]
    assert rate.images == 2 and rate.chains == 4
    assert rate.slope == pytest.approx(-0.3, abs=0.01)  # the mean of the two images, not of four chains
    assert rate.ci_low < -0.4 and rate.ci_high > -0.2  # t(0.975, 1) across two images is wide


def test_face_lost_step_in_summary_and_words() -> None:
    found = np.where(np.arange(41) < 7, 1.0, 0.0)
    summary = summarize_chain(chain_df(face_found=found))
    assert summary.face_at_start is True and summary.face_lost_step == 7
    assert "the face is lost at step 7" in sentences([summary])
    kept = summarize_chain(chain_df(face_found=np.ones(41)))
    assert kept.face_lost_step is None and "the face is still found at step 40" in sentences([kept])
    assert summarize_chain(chain_df()).face_at_start is None
