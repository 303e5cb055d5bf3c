"""The statistics of driftloop's analyses: rates, their intervals, bootstraps and permutation tests.

Every number with an uncertainty in a chain summary or on the bias card comes from here:

* :func:`ols_rate` / :func:`ols_slope`: the per-step drift rate, the OLS slope of a measure against the
  step (with its 95% t-interval for a chain summary; the slope alone for the bias card, exactly 0 for an
  exactly constant series);
* :func:`mean_rate`: the mean of per-chain rates with a 95% t-interval across source images;
* :func:`cluster_bootstrap` (and :func:`estimates`, many columns at once): a mean with a 95% percentile
  bootstrap interval that resamples source images (and seeds, when a sweep reuses them), see
  :mod:`driftloop.analysis.bias` for why;
* :func:`stratified_permutation_test` and :func:`sign_flip_test`: two-sided permutation tests;
* :func:`hedges_g`: a standardised, small-sample corrected effect size.

All randomness comes from generators made by :func:`seeded_rng` / :func:`column_rng`, which depend only on
a seed and names, so the same data give the same numbers whatever the row order.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "ALPHA",
    "CONFIDENCE",
    "Estimate",
    "PermutationResult",
    "Rate",
    "as_labels",
    "cluster_bootstrap",
    "column_rng",
    "draw_weights",
    "estimates",
    "hedges_g",
    "joint_draws",
    "mean_rate",
    "ols_rate",
    "ols_slope",
    "percentile_ci",
    "safe_ratio",
    "seeded_rng",
    "seeds_crossed",
    "sign_flip_test",
    "sign_patterns",
    "stratified_permutation_test",
    "varies_within_image",
]

CONFIDENCE = 0.95
ALPHA = 0.05


@dataclass(frozen=True)
class Rate:
    """Per-step drift rate: OLS slope of a measure against the step, with its 95% confidence interval.

    ``n`` points (steps) went into the fit, the last of them at step ``max_step``. For an overview across
    chains (``chains`` > 1) the slope is the mean of the chains' slopes and the interval is across chains.
    The interval is NaN when it cannot be computed (fewer than 3 points, or fewer than 2 chains with a
    slope); a constant series has slope 0 and a zero-width interval.
    """

    slope: float
    ci_low: float
    ci_high: float
    n: int
    max_step: int = 0
    chains: int = 1
    images: int = 1  # independent units behind an across-chain interval (source images)

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.ci_low) and math.isfinite(self.ci_high)

    @property
    def clear(self) -> bool:
        """True when the interval excludes 0: the measure clearly drifts, in the direction of ``slope``."""
        return self.has_ci and (self.ci_low > 0 or self.ci_high < 0)


@dataclass(frozen=True)
class Estimate:
    """Mean of per-chain values with a 95% interval (None when there is none) and how it was made.

    ``method``: ``image bootstrap`` (cluster bootstrap over source images), ``chain bootstrap`` (all chains
    from one image: chains resampled), ``none`` (a single chain).
    """

    mean: float
    ci_low: float | None
    ci_high: float | None
    n_chains: int
    n_images: int
    method: str

    @property
    def has_ci(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly on one side of 0 (``[0, 0]`` does not)."""
        return self.has_ci and (self.ci_low > 0 or self.ci_high < 0)  # type: ignore[operator]


@dataclass(frozen=True)
class PermutationResult:
    """A permutation test's outcome: statistic, two-sided p, and what was enumerated or sampled."""

    statistic: float
    p_value: float
    exact: bool
    n_relabelings: int  # relabellings evaluated (all of them when exact)
    n_strata: int
    n_model: int  # chains (or image means) of each group that took part
    n_control: int
    at_floor: bool  # no random relabelling reached |T|: p is the smallest value this n_perm can give
    min_p: float  # the smallest p this test could give (exact: share of the most extreme relabellings)


# ------------------------------------------------------------------------------------------------ rates


def _centred_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """The finite points' centred x and y, Σ(x − x̄)² and the OLS slope; None when fewer than 2 finite
    points or a single x."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2:
        return None
    xc = x - x.mean()
    sxx = float(np.dot(xc, xc))
    if sxx == 0.0:
        return None
    yc = y - y.mean()
    return xc, yc, sxx, float(np.dot(xc, yc) / sxx)


def ols_rate(x: np.ndarray, y: np.ndarray) -> Rate | None:
    """OLS slope of y on x with a 95% t-interval; None when fewer than 2 finite points or one x."""
    fit = _centred_fit(x, y)
    if fit is None:
        return None
    xc, yc, sxx, slope = fit
    n = int(xc.size)
    last = int(x[np.isfinite(x) & np.isfinite(y)].max())
    if n < 3:
        return Rate(slope, math.nan, math.nan, n, last)
    resid = yc - slope * xc
    sse = float(np.dot(resid, resid))
    # Rounding leaves ~1e-30 residuals on exact lines; treat anything that small as exact.
    scale = float(np.dot(yc, yc))
    if sse <= 1e-24 * max(scale, 1.0):
        sse = 0.0
    se = math.sqrt(sse / (n - 2) / sxx)
    half = float(stats.t.ppf(0.975, n - 2)) * se
    return Rate(slope, slope - half, slope + half, n, last)


def ols_slope(x: np.ndarray, y: np.ndarray) -> float:
    """The OLS slope alone; NaN when there is no fit, exactly 0 for an exactly constant series (not a
    rounding residue that would "exclude 0")."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() >= 2 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) == 0:
        return 0.0
    fit = _centred_fit(x, y)
    return math.nan if fit is None else fit[3]


def mean_rate(rates: Sequence[Rate], sources: Sequence[str] | None = None) -> Rate | None:
    """Mean of per-chain slopes with a 95% t-interval across source images (one chain: that chain's rate).

    Chains of one source image (several seeds) are not independent samples, so each image's chains are
    averaged first and the interval is across images; with a single image it is the mean of its chains' own
    intervals (identical chains of a deterministic model then count as one chain, not as proof).
    """
    keep = [i for i, r in enumerate(rates) if math.isfinite(r.slope)]
    if not keep:
        return None
    rates = [rates[i] for i in keep]
    labels = [sources[i] for i in keep] if sources is not None else [str(i) for i in range(len(rates))]
    if len(rates) == 1:
        return rates[0]
    n = sum(r.n for r in rates)
    max_step = max(r.max_step for r in rates)
    mean = float(np.mean([r.slope for r in rates]))
    groups: dict[str, list[float]] = {}
    for r, label in zip(rates, labels, strict=True):
        groups.setdefault(label, []).append(r.slope)
    if len(groups) == 1:
        low = float(np.mean([r.ci_low for r in rates]))
        high = float(np.mean([r.ci_high for r in rates]))
        return Rate(mean, low, high, n=n, max_step=max_step, chains=len(rates), images=1)
    units = np.array([np.mean(v) for v in groups.values()])
    m = len(units)
    sd = float(units.std(ddof=1))
    if sd <= 1e-12 * max(abs(float(units.mean())), 1.0):
        sd = 0.0
    centre = float(units.mean())
    half = float(stats.t.ppf(0.975, m - 1)) * sd / math.sqrt(m)
    return Rate(centre, centre - half, centre + half, n=n, max_step=max_step, chains=len(rates), images=m)


# ------------------------------------------------------------------------------------------- bootstrap


def seeded_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the names (stable across runs and row orders)."""
    words = [int(seed) & 0xFFFFFFFFFFFFFFFF] + [zlib.crc32(n.encode("utf-8")) for n in names]
    return np.random.default_rng(words)


def column_rng(base: int, names: Sequence[str] | None, j: int) -> np.random.Generator:
    name = names[j] if names is not None else str(j)
    return np.random.default_rng([base, zlib.crc32(name.encode("utf-8"))])


def as_labels(values: Any) -> np.ndarray:
    return np.asarray([str(v) for v in values], dtype=object).astype(str)


def draw_weights(rng: np.random.Generator, n_units: int, n_boot: int) -> np.ndarray:
    """(n_boot, n_units): how often each unit is drawn in each bootstrap replicate (n_units draws each)."""
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot).astype(float)


def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def percentile_ci(replicates: np.ndarray) -> tuple[float | None, float | None]:
    ok = replicates[np.isfinite(replicates)]
    if ok.size < 2:
        return None, None
    lo, hi = np.quantile(ok, [(1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2])
    return float(lo), float(hi)


def seeds_crossed(images: Sequence[Any], seeds: Sequence[Any] | None) -> bool:
    """True when the design reuses seeds across images: ≥ 2 seed values, one of them on ≥ 2 images.

    Step seeds derive from (chain seed, step), so chains with the same seed on different images get the
    same model noise; if that noise moves a measure the same way on every image, those chains are not
    independent and seeds must be resampled too.
    """
    if seeds is None:
        return False
    per_seed: dict[str, set[str]] = {}
    for s, i in zip(as_labels(seeds), as_labels(images), strict=True):
        per_seed.setdefault(s, set()).add(i)
    return len(per_seed) >= 2 and max(len(v) for v in per_seed.values()) >= 2


def varies_within_image(values: np.ndarray, images: np.ndarray) -> bool:
    """True when two chains of one image differ: the model's output depends on the seed."""
    ok = np.isfinite(values)
    values, images = values[ok], images[ok]
    for image in np.unique(images):
        v = values[images == image]
        if v.size > 1 and np.ptp(v) > 0:
            return True
    return False


def joint_draws(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, n_boot: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-item bootstrap weights (n_boot × len) for two labelled sets: one draw over the union when they
    share a label (shared units stay paired), independent draws when they do not."""
    if set(a.tolist()) & set(b.tolist()):
        universe = np.unique(np.concatenate([a, b]))
        w = draw_weights(rng, universe.size, n_boot)
        return w[:, np.searchsorted(universe, a)], w[:, np.searchsorted(universe, b)]
    ua, ub = np.unique(a), np.unique(b)
    wa = draw_weights(rng, ua.size, n_boot)
    wb = draw_weights(rng, ub.size, n_boot)
    return wa[:, np.searchsorted(ua, a)], wb[:, np.searchsorted(ub, b)]


def cluster_bootstrap(
    values: Sequence[float],
    images: Sequence[Any],
    seeds: Sequence[Any] | None = None,
    n_boot: int = 2000,
    rng: np.random.Generator | None = None,
) -> Estimate | None:
    """Mean of ``values`` (NaN ignored) with a 95% percentile cluster-bootstrap interval.

    Source images are resampled with replacement, all chains of a drawn image kept. When ``seeds`` are
    reused across images (:func:`seeds_crossed`) and chains of one image differ, seeds are resampled too
    (two-way "pigeonhole" bootstrap: a chain's weight is its image's count times its seed's count). One
    image: chains resampled (``chain bootstrap``); one value: no interval. None when no value is finite.
    """
    vals = np.asarray(values, dtype=float)
    return estimates(
        vals[:, None], as_labels(images), None if seeds is None else as_labels(seeds), n_boot,
        rng or np.random.default_rng(0),
    )[0]  # fmt: skip


def estimates(
    values: np.ndarray,
    images: np.ndarray,
    seeds: np.ndarray | None,
    n_boot: int,
    rng: np.random.Generator,
    names: Sequence[str] | None = None,
) -> list[Estimate | None]:
    """One :class:`Estimate` per column of ``values`` (chains × statistics); one set of draws for all.

    The rare per-column fallback (chain bootstrap) draws from a generator of its own, seeded from ``rng``'s
    first draw and the column's name, so a column's interval does not depend on which other columns exist.
    """
    base = int(rng.integers(0, 2**63))
    img_u = np.unique(images)
    crossed = seeds_crossed(images, seeds)
    finite = np.isfinite(values)
    v0 = np.where(finite, values, 0.0)
    boot_img = boot_two = None
    if img_u.size >= 2 and n_boot > 0:
        w_img = draw_weights(rng, img_u.size, n_boot)[:, np.searchsorted(img_u, images)]
        boot_img = safe_ratio(w_img @ v0, w_img @ finite)
        if crossed and seeds is not None:
            seed_u = np.unique(seeds)
            w_two = w_img * draw_weights(rng, seed_u.size, n_boot)[:, np.searchsorted(seed_u, seeds)]
            boot_two = safe_ratio(w_two @ v0, w_two @ finite)
    out: list[Estimate | None] = []
    for j in range(values.shape[1]):
        col = values[:, j]
        ok = finite[:, j]
        n = int(ok.sum())
        if n == 0:
            out.append(None)
            continue
        n_img = int(np.unique(images[ok]).size)
        vals = col[ok]
        mean = float(vals.mean())
        if np.ptp(vals) == 0:
            # Every chain agrees exactly: any resample gives this value (and no rounding residue).
            mean = float(vals[0])
            ci: tuple[float | None, float | None] = (mean, mean) if n >= 2 else (None, None)
            method = ("image bootstrap" if n_img >= 2 else "chain bootstrap") if n >= 2 else "none"
        elif n_img >= 2 and boot_img is not None:
            two_way = boot_two is not None and varies_within_image(col, images)
            ci = percentile_ci((boot_two if two_way else boot_img)[:, j])  # type: ignore[index]
            method = "image×seed bootstrap" if two_way else "image bootstrap"
        elif n >= 2 and n_boot > 0:
            w = draw_weights(column_rng(base, names, j), n, n_boot)
            ci, method = percentile_ci(w @ vals / n), "chain bootstrap"
        else:
            ci, method = (None, None), "none"
        out.append(Estimate(mean, ci[0], ci[1], n, n_img, method))
    return out


# ---------------------------------------------------------------------------------- comparison numbers


def hedges_g(a: np.ndarray, b: np.ndarray) -> float | None:
    """Hedges' g of mean(a) − mean(b): pooled-SD standardised, small-sample corrected.

    0 when both groups are constant and equal; None when undefined (fewer than 2 per group, or constant
    groups that differ: an infinite effect).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    n1, n2 = a.size, b.size
    if n1 < 2 or n2 < 2:
        return None
    diff = float(a.mean() - b.mean())
    pooled = ((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2)
    sd = math.sqrt(max(pooled, 0.0))
    if sd <= 1e-12 * max(abs(diff), abs(float(a.mean())), abs(float(b.mean())), 1e-300):
        return 0.0 if diff == 0 else None
    correction = 1 - 3 / (4 * (n1 + n2) - 9)
    return diff / sd * correction


def stratified_permutation_test(
    values: Sequence[float],
    is_model: Sequence[bool],
    strata: Sequence[Any],
    n_perm: int = 5000,
    rng: np.random.Generator | None = None,
) -> PermutationResult | None:
    """Two-sided permutation test of "the label makes no difference", labels shuffled within strata.

    Strata holding only one label are dropped. Statistic: ``T = Σ_s (sum_model_s − m_s·mean_s) / Σ_s w_s``
    with ``w_s = m_s·c_s/(m_s+c_s)``, which equals the weighted mean over strata of (mean model − mean
    control) with weights ``w_s``; with one model and one control unit per stratum it is the mean paired
    difference and the relabellings are sign flips. Exact enumeration of all relabellings when there are at
    most ``n_perm``, p = #{|T*| ≥ |T|} / N; else ``n_perm`` random relabellings and
    p = (1 + #{|T*| ≥ |T|}) / (n_perm + 1). None when no stratum holds both labels.
    """
    values = np.asarray(values, dtype=float)
    is_model = np.asarray(is_model, dtype=bool)
    keep = np.isfinite(values)
    values, is_model = values[keep], is_model[keep]
    codes = np.unique(as_labels(strata)[keep], return_inverse=True)[1] if keep.any() else np.zeros(0, int)
    groups = []
    for s in range(int(codes.max()) + 1 if codes.size else 0):
        idx = np.flatnonzero(codes == s)
        m = int(is_model[idx].sum())
        if 0 < m < idx.size:
            groups.append((values[idx], is_model[idx], m))
    if not groups:
        return None
    weight = sum(m * (x.size - m) / x.size for x, _, m in groups)
    offset = sum(m * x.mean() for x, _, m in groups)
    observed = (sum(x[lab].sum() for x, lab, _ in groups) - offset) / weight
    tol = 1e-9 * max(float(np.abs(x).max()) for x, _, _ in groups)
    total = math.prod(math.comb(x.size, m) for x, _, m in groups)
    n_model = sum(m for _, _, m in groups)
    n_ctrl = sum(x.size - m for x, _, m in groups)
    if total <= n_perm:
        sums = np.zeros(1)
        for x, _, m in groups:
            combos = np.array([x[list(c)].sum() for c in itertools.combinations(range(x.size), m)])
            sums = (sums[:, None] + combos[None, :]).ravel()
        stats = np.abs((sums - offset) / weight)
        count = int(np.sum(stats >= abs(observed) - tol))
        floor = int(np.sum(stats >= stats.max() - tol)) / total
        return PermutationResult(float(observed), count / total, True, total, len(groups), n_model, n_ctrl,
                                 False, floor)  # fmt: skip
    rng = rng or np.random.default_rng(0)
    sums = np.zeros(n_perm)
    for x, _, m in groups:
        shuffled = rng.permuted(np.broadcast_to(x, (n_perm, x.size)), axis=1)
        sums += shuffled[:, :m].sum(axis=1)
    count = int(np.sum(np.abs((sums - offset) / weight) >= abs(observed) - tol))
    return PermutationResult(float(observed), (1 + count) / (n_perm + 1), False, n_perm, len(groups),
                             n_model, n_ctrl, count == 0, 1 / (n_perm + 1))  # fmt: skip


def sign_patterns(n_units: int, n_perm: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """±1 relabelling matrix for a paired test: all 2^n patterns when that is at most ``n_perm`` (exact),
    else ``n_perm`` random ones."""
    if n_units <= 20 and 2**n_units <= n_perm:
        codes = np.arange(2**n_units)[:, None] >> np.arange(n_units)[None, :]
        return (codes & 1) * 2.0 - 1.0, True
    return rng.choice(np.array([-1.0, 1.0]), size=(n_perm, n_units)), False


def sign_flip_test(d: np.ndarray, signs: np.ndarray, exact: bool) -> PermutationResult:
    """Paired permutation test: T = mean(d); relabellings flip the signs of the d_i (rows of ``signs``)."""
    g = d.size
    observed = float(d.mean())
    stats = np.abs(signs @ d) / g
    tol = 1e-9 * float(np.abs(d).max()) if g else 0.0
    count = int(np.sum(stats >= abs(observed) - tol))
    rows = signs.shape[0]
    if exact:
        floor = float(np.sum(stats >= stats.max() - tol)) / rows
        return PermutationResult(observed, count / rows, True, 2**g, g, g, g, False, floor)
    return PermutationResult(
        observed, (1 + count) / (rows + 1), False, rows, g, g, g, count == 0, 1 / (rows + 1)
    )
