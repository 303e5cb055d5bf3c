"""The intervals of driftloop.analysis.intervals: calibration by simulation with a known truth, the degenerate
cases, and a hand-computable example checked against scipy directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from driftloop.analysis.intervals import (
    METHOD_CONSTANT,
    METHOD_NONE,
    METHOD_T,
    METHOD_TWO_WAY,
    METHOD_WELCH,
    image_differences,
    mean_ci,
    paired_diff_ci,
    paired_permutation_test,
    sign_flip_test,
    unpaired_diff_ci,
)
from driftloop.errors import DriftloopError

TRUE_MEAN = 0.3
SEEDS = 3
REPS = 2000
# Monte Carlo SE of a coverage of 0.95 over REPS replications: sqrt(0.95 · 0.05 / 2000) = 0.0049, so the
# band 0.93–0.97 is ±4 SE: a calibrated method fails it about once in 16,000 runs; the percentile bootstrap
# the card used before (0.83–0.87 at 5–10 images) fails it every time.
BAND = (0.93, 0.97)


def _chains(
    rng: np.random.Generator, g: int, seed_sd: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """REPS replications of G images × 3 seeds: 0.3 + image effect (sd 0.2) + seed effect + noise (0.05)."""
    y = TRUE_MEAN + rng.normal(0, 0.2, (REPS, g, 1)) + rng.normal(0, 0.05, (REPS, g, SEEDS))
    y = y + rng.normal(0, seed_sd, (REPS, 1, SEEDS))
    return y.reshape(REPS, -1), np.repeat(np.arange(g), SEEDS), np.tile(np.arange(SEEDS), g)


def _coverage(y: np.ndarray, images: np.ndarray, seeds: np.ndarray | None) -> float:
    hits = 0
    for rep in y:
        res = mean_ci(rep, images, seeds)
        hits += res.ci_low <= TRUE_MEAN <= res.ci_high
    return hits / len(y)


@pytest.mark.parametrize("n_images", [5, 10, 30])
def test_coverage_normal_image_effects(n_images: int) -> None:
    rng = np.random.default_rng(1000 + n_images)
    y, images, _ = _chains(rng, n_images)
    cover = _coverage(y, images, None)
    assert BAND[0] <= cover <= BAND[1], f"{n_images} images: coverage {cover:.3f} outside {BAND}"


@pytest.mark.parametrize("n_images", [5, 10, 30])
def test_coverage_with_crossed_seed_effects(n_images: int) -> None:
    """The same seeds on every image, each seed shifting all its chains by a shared effect (sd 0.05): given
    the seeds, the interval stays calibrated (the image-only t interval drops to ~0.85 at 30 images)."""
    rng = np.random.default_rng(2000 + n_images)
    y, images, seeds = _chains(rng, n_images, seed_sd=0.05)
    cover = _coverage(y, images, seeds)
    assert BAND[0] <= cover <= BAND[1], f"{n_images} images: coverage {cover:.3f} outside {BAND}"


def _null_pairs(rng: np.random.Generator, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model and control chains on the same images with equal means (true null): shared image effect, an
    independent image × model effect each (sd 0.1), chain noise."""
    base = TRUE_MEAN + rng.normal(0, 0.2, (REPS, g, 1))
    model = base + rng.normal(0, 0.1, (REPS, g, 1)) + rng.normal(0, 0.05, (REPS, g, SEEDS))
    control = base + rng.normal(0, 0.1, (REPS, g, 1)) + rng.normal(0, 0.05, (REPS, g, SEEDS))
    return model.reshape(REPS, -1), control.reshape(REPS, -1), np.repeat(np.arange(g), SEEDS)


def test_paired_tests_reject_a_true_null_at_five_percent() -> None:
    """10 shared images: the exact permutation test (1024 sign patterns) and the paired interval reject about
    5% of true nulls (band 0.03–0.07 = ±4 Monte Carlo SE)."""
    rng = np.random.default_rng(77)
    model, control, images = _null_pairs(rng, 10)
    rejected_p = rejected_ci = 0
    for m, c in zip(model, control, strict=True):
        test = paired_permutation_test(m, c, images)
        assert test is not None and test.exact and test.n_relabelings == 1024
        rejected_p += test.p_value < 0.05
        rejected_ci += paired_diff_ci(m, c, images).excludes_zero
    assert 0.03 <= rejected_p / REPS <= 0.07
    assert 0.03 <= rejected_ci / REPS <= 0.07


def test_paired_interval_finds_a_real_difference() -> None:
    rng = np.random.default_rng(5)
    model, control, images = _null_pairs(rng, 10)
    shifted = model[:200] + 0.2  # about 4 standard errors of the mean of 10 per-image differences
    found = sum(
        paired_diff_ci(m, c, images).excludes_zero for m, c in zip(shifted, control[:200], strict=True)
    )
    assert found / 200 > 0.9


# ------------------------------------------------------------------------------------ by-hand examples


def test_hand_computed_t_interval() -> None:
    # Image a: chains 1, 3 → 2; image b: 4 → 4; image c: 5, 7, 9 → 7. Mean of image means 13/3; the mean of
    # all chains (29/6) would weigh image c three times.
    res = mean_ci([1, 3, 4, 5, 7, 9], ["a", "a", "b", "c", "c", "c"])
    means = np.array([2.0, 4.0, 7.0])
    se = means.std(ddof=1) / math.sqrt(3)
    half = stats.t.ppf(0.975, 2) * se
    assert res.mean == pytest.approx(13 / 3)
    assert res.se == pytest.approx(se) and res.df == 2
    assert (res.ci_low, res.ci_high) == pytest.approx((13 / 3 - half, 13 / 3 + half))
    assert (res.method, res.n_images, res.n_values, res.n_dropped) == (METHOD_T, 3, 6, 0)
    assert (res.ci_low, res.ci_high) == pytest.approx(stats.t.interval(0.95, 2, loc=means.mean(), scale=se))
    ninety = mean_ci([1, 3, 4, 5, 7, 9], ["a", "a", "b", "c", "c", "c"], level=0.9)
    assert ninety.ci_high - ninety.ci_low == pytest.approx(2 * stats.t.ppf(0.95, 2) * se)


def test_paired_difference_by_hand() -> None:
    # Per image, model mean − control mean: x → 3 − 1 = 2, y → 5 − 2 = 3, z → 10 − 6 = 4; image w has no
    # control chain and is left out.
    model = [2, 4, 5, 10, 99]
    control = [1, 2, 6, 6]
    res = paired_diff_ci(model, control, ["x", "x", "y", "z", "w"], control_images=["x", "y", "z", "z"])
    se = 1 / math.sqrt(3)  # sd of (2, 3, 4) is 1
    assert res.mean == pytest.approx(3.0)
    half = stats.t.ppf(0.975, 2) * se
    assert (res.ci_low, res.ci_high) == pytest.approx((3 - half, 3 + half))
    assert (res.n_images, res.n_left_out) == (3, 1)


def test_unpaired_difference_is_welch_on_image_means() -> None:
    # No image in common: model image means 2, 4, 7 (as above), control image means 1, 2 (chains 0, 2 → 1;
    # 2 → 2). Difference 13/3 − 3/2; se² = s₁²/3 + s₂²/2; Welch–Satterthwaite df.
    res = unpaired_diff_ci([1, 3, 4, 5, 7, 9], [0, 2, 2], ["a", "a", "b", "c", "c", "c"], ["p", "p", "q"])
    v1, v2 = np.var([2.0, 4.0, 7.0], ddof=1) / 3, np.var([1.0, 2.0], ddof=1) / 2
    df = (v1 + v2) ** 2 / (v1**2 / 2 + v2**2 / 1)
    half = stats.t.ppf(0.975, df) * math.sqrt(v1 + v2)
    assert res.method == METHOD_WELCH and res.df == pytest.approx(df) and res.n_images == 5
    assert res.mean == pytest.approx(13 / 3 - 1.5)
    assert (res.ci_low, res.ci_high) == pytest.approx((13 / 3 - 1.5 - half, 13 / 3 - 1.5 + half))
    # Both sides constant: the difference is known exactly; one side on a single image: no interval.
    same = unpaired_diff_ci([2, 2, 2], [1, 1], ["a", "b", "c"], ["p", "q"])
    assert (same.mean, same.ci_low, same.ci_high, same.method) == (1.0, 1.0, 1.0, METHOD_CONSTANT)
    lone = unpaired_diff_ci([1, 3, 4], [0, 2], ["a", "a", "b"], ["p", "p"])
    assert lone.mean == pytest.approx(3.0 - 1.0) and not lone.has_ci and "control" in lone.note


def test_sign_flip_exact_p_by_hand() -> None:
    # d = (1, 2, 3): T = 2; of the 8 sign patterns only (+,+,+) and (−,−,−) reach |T*| ≥ 2.
    res = sign_flip_test([1.0, 2.0, 3.0])
    assert res is not None
    assert (res.statistic, res.p_value, res.exact, res.n_relabelings) == (2.0, 0.25, True, 8)
    assert res.min_p == 0.25
    # (1, −1, 2): T = 2/3; |T*| ≥ 2/3 for (±)(1, −1, 2), (±)(−1, 1, 2) and (±)(1, 1, 2) → 6 of 8.
    assert sign_flip_test([1.0, -1.0, 2.0]).p_value == pytest.approx(6 / 8)  # type: ignore[union-attr]


def test_sign_flip_random_relabellings_when_many_images() -> None:
    d = np.linspace(0.5, 1.5, 16)  # all positive: no random pattern but the all-plus one reaches T
    res = sign_flip_test(d, n_perm=999, rng=np.random.default_rng(0))
    assert res is not None and not res.exact and res.n_relabelings == 999
    assert res.at_floor and res.p_value == pytest.approx(1 / 1000)


def test_two_way_when_seeds_shift_every_image() -> None:
    # Image effects 0, 1, 2, 3 and seed effects −0.5, 0, +0.5 crossed, plus a little noise: the seeds matter.
    rng = np.random.default_rng(3)
    y = np.arange(4)[:, None] + np.array([-0.5, 0.0, 0.5])[None, :] + rng.normal(0, 0.01, (4, 3))
    images, seeds = np.repeat(np.arange(4), 3), np.tile(["s1", "s2", "s3"], 4)
    one = mean_ci(y.ravel(), images)
    two = mean_ci(y.ravel(), images, seeds)
    assert one.method == METHOD_T and two.method == METHOD_TWO_WAY and two.n_seeds == 3
    assert two.mean == one.mean
    assert two.se > one.se  # type: ignore[operator]
    # Balanced design: V = (MS_image + MS_seed − MS_error) / N, the unbiased ANOVA estimate.
    n, g, s = 12, 4, 3
    grand = y.mean()
    ms_i = s * ((y.mean(axis=1) - grand) ** 2).sum() / (g - 1)
    ms_s = g * ((y.mean(axis=0) - grand) ** 2).sum() / (s - 1)
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + grand
    ms_e = (resid**2).sum() / ((g - 1) * (s - 1))
    assert two.se == pytest.approx(math.sqrt((ms_i + ms_s - ms_e) / n))


def test_seeds_that_change_nothing_leave_the_t_interval() -> None:
    # A deterministic model: every seed gives the same chain. Seeds are crossed but carry no effect.
    y = np.repeat([0.1, 0.4, 0.2, 0.5], 3)
    res = mean_ci(y, np.repeat(np.arange(4), 3), np.tile([0, 1, 2], 4))
    assert res.method == METHOD_T and res.n_seeds == 0
    assert res == mean_ci(y, np.repeat(np.arange(4), 3))
    # Seeds nested in images (each image its own seeds) are not crossed: one-way as well.
    nested = mean_ci([0.1, 0.2, 0.4, 0.6], [0, 0, 1, 1], [10, 11, 12, 13])
    assert nested.method == METHOD_T


def test_identical_chains_per_image_stay_one_way() -> None:
    # A deterministic model run with three seeds: every image's chains agree exactly, so the seeds have no
    # effect to measure; rounding must not switch the method to the two-way variance.
    # Rows in a shuffled order, as a metrics table may give them: the rounding residue then varies.
    rng = np.random.default_rng(0)
    for _ in range(300):
        means = rng.normal(0.3, 0.2, 10)
        order = rng.permutation(30)
        values, images = np.repeat(means, 3)[order], np.repeat(np.arange(10), 3)[order]
        res = mean_ci(values, images, np.tile(np.arange(3), 10)[order])
        assert res.method == METHOD_T and res.df == 9
        assert res.se == pytest.approx(means.std(ddof=1) / math.sqrt(10))


def test_paired_difference_per_image_and_seed_cell() -> None:
    images, seeds = np.repeat([0, 1, 2], 2), np.tile([7, 8], 3)
    model = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    control = model - np.array([0.5, 0.7, 0.4, 0.6, 0.5, 0.9])
    diff, diff_images, diff_seeds, dropped, left_out = image_differences(
        model, control[::-1], images, images[::-1], seeds, seeds[::-1]
    )
    assert diff == pytest.approx([0.5, 0.7, 0.4, 0.6, 0.5, 0.9])
    assert diff_images.tolist() == ["0", "0", "1", "1", "2", "2"]
    assert diff_seeds is not None and diff_seeds.tolist() == ["7", "8"] * 3
    assert (dropped, left_out) == (0, 0)
    res = paired_diff_ci(model, control, images, seeds=seeds)
    assert res.mean == pytest.approx(np.mean([0.6, 0.5, 0.7]))


# ------------------------------------------------------------------------------------- degenerate cases


def test_one_image_has_no_interval() -> None:
    res = mean_ci([0.1, 0.2, 0.4], ["a", "a", "a"])
    assert res.mean == pytest.approx(0.7 / 3)
    assert (res.ci_low, res.ci_high, res.method, res.n_images) == (None, None, METHOD_NONE, 1)
    assert not res.has_ci and not res.excludes_zero
    assert "one source image" in res.note


def test_all_equal_values_give_an_exact_zero_width_interval() -> None:
    res = mean_ci([0.1] * 6, [0, 0, 1, 1, 2, 2])
    assert (res.mean, res.ci_low, res.ci_high) == (
        0.1,
        0.1,
        0.1,
    )  # exactly, no rounding residue of 0.1 + 0.1 …
    assert res.method == METHOD_CONSTANT and "exactly equal" in res.note
    assert res.excludes_zero
    zero = mean_ci([0.0] * 4, [0, 0, 1, 1])
    assert (zero.ci_low, zero.ci_high) == (0.0, 0.0) and not zero.excludes_zero


def test_equal_image_means_with_varying_chains_have_no_interval() -> None:
    res = mean_ci([1.0, 3.0, 2.0, 2.0], ["a", "a", "b", "b"])
    assert res.mean == 2.0 and not res.has_ci
    assert "agree exactly" in res.note


def test_nans_are_dropped_and_counted() -> None:
    res = mean_ci([1.0, np.nan, 3.0, 5.0, math.inf], [0, 0, 1, 2, 2])
    assert (res.n_values, res.n_dropped, res.n_images) == (3, 2, 3)
    assert res.mean == pytest.approx(3.0)
    clean = mean_ci([1.0, 3.0, 5.0], [0, 1, 2])
    assert (res.ci_low, res.ci_high) == (clean.ci_low, clean.ci_high)
    # An image whose values are all NaN disappears: here that leaves one image.
    only = mean_ci([np.nan, np.nan, 2.0, 4.0], ["a", "a", "b", "b"])
    assert (only.n_images, only.n_dropped, only.has_ci) == (1, 2, False)


def test_no_finite_values() -> None:
    res = mean_ci([np.nan, np.nan], [0, 1])
    assert math.isnan(res.mean) and not res.has_ci and res.n_dropped == 2
    assert sign_flip_test([np.nan]) is None
    assert paired_permutation_test([1.0], [2.0], ["a"], control_images=["b"]) is None


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(DriftloopError, match="2 labels for 3 values"):
        mean_ci([1, 2, 3], ["a", "b"])
    with pytest.raises(DriftloopError, match="between 0 and 1"):
        mean_ci([1, 2], ["a", "b"], level=95)
    with pytest.raises(DriftloopError, match="numbers"):
        mean_ci(["x", "y"], ["a", "b"])
    with pytest.raises(DriftloopError, match="seeds for both"):
        paired_diff_ci([1.0], [2.0], ["a"], control_seeds=[1])


def test_two_way_with_a_missing_chain() -> None:
    # The seed design with one chain missing (NaN): still two-way, from the additive image + seed fit.
    rng = np.random.default_rng(4)
    y = np.arange(5)[:, None] + np.array([-0.5, 0.0, 0.5])[None, :] + rng.normal(0, 0.01, (5, 3))
    y[2, 1] = np.nan
    res = mean_ci(y.ravel(), np.repeat(np.arange(5), 3), np.tile([0, 1, 2], 5))
    assert res.method == METHOD_TWO_WAY and res.n_dropped == 1 and res.n_values == 14
    assert res.mean == pytest.approx(np.mean([np.nanmean(row) for row in y]))
    assert res.ci_low < res.mean < res.ci_high  # type: ignore[operator]
    assert 2 <= res.df <= 4 + 2  # Satterthwaite: between the seed df and the sum of both  # type: ignore[operator]
