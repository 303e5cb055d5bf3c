"""Intervals for the mean of per-chain values when chains are clustered by source image.

Chains of one source image are not independent samples (they share the picture), so the image is the unit:
each image's chains are averaged first, the estimate is the mean of the image means (every image weighs the
same), and the interval rests on the spread *between* images. With G images it is Student's t interval on
the G image means, df = G − 1: exact when image means are normal, whatever the number of chains per image,
and it is the small-sample (CR2) cluster-robust interval of the mean. ``benchmarks/coverage.py`` measured it
against the percentile bootstrap over images that the bias card used before (too narrow with few images:
72%, 84%, 89% coverage of a "95%" interval at 3, 5, 10 normal images, where the t interval gives 95–96%),
a BCa and a studentized cluster bootstrap; see that script for the tables. Like every method tried, it
falls short when image effects are strongly skewed (84–90% with log-normal σ = 1 effects).

Seeds crossed over images (the same chain seeds run on every image) can add a shared effect: chains with
seed s on different images get the same model noise. When ``seeds`` are given and crossed, the variance is
the two-way (image × seed) decomposition ``V = V_image + V_seed − V_chain`` (Cameron, Gelbach & Miller 2011),
with the chain-level part taken from the residuals of the additive image + seed fit (so that, in a balanced
design, it is the unbiased ANOVA estimate ``(MS_image + MS_seed − MS_error) / N``), and Satterthwaite's
degrees of freedom. When the seeds add nothing measurable (``V_seed ≤ V_chain``) it is the image t interval.

Paired differences (a model against the control, a stabilizer arm against none) are the same interval on
per-image differences (model mean − control mean of each image both have; per image × seed cell when seeds
are given). :func:`sign_flip_test` is the paired permutation test on those differences (exact over all 2^G
sign patterns when there are few images). Two sets of chains with no source image in common cannot be
paired: :func:`unpaired_diff_ci` is then the difference of their :func:`mean_ci` estimates with Welch's
standard error and Welch–Satterthwaite degrees of freedom.

This module is the public home of these statistics: a researcher applies them to their own table with
``from driftloop import mean_ci, paired_diff_ci`` (or from this module), one value per chain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import linalg, sparse, stats
from scipy.sparse import csgraph

from driftloop.errors import DriftloopError

__all__ = [
    "CHAIN_RATE_MIN_STEPS",
    "METHOD_CONSTANT",
    "METHOD_EXACT_LINE",
    "METHOD_NOISE",
    "METHOD_NONE",
    "METHOD_POOLED",
    "METHOD_RANDOM_WALK",
    "METHOD_T",
    "METHOD_TWO_WAY",
    "METHOD_WELCH",
    "Interval",
    "SignFlipResult",
    "chain_rate_ci",
    "image_differences",
    "mean_ci",
    "paired_diff_ci",
    "paired_permutation_test",
    "rate_over_chains_ci",
    "sign_flip_test",
    "unpaired_diff_ci",
]

METHOD_T = "t over images"
METHOD_TWO_WAY = "t over images and seeds"
METHOD_WELCH = "Welch t over images (unpaired)"
METHOD_CONSTANT = "all values equal"
METHOD_NONE = "none"
METHOD_RANDOM_WALK = "t on increments (random walk)"
METHOD_NOISE = "random walk + noise (REML)"
METHOD_EXACT_LINE = "exact line"
METHOD_POOLED = "pooled chains of one image"
# The fewest steps (increments) a chain needs for a rate interval that held in the coverage benchmark.
CHAIN_RATE_MIN_STEPS = 50


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval and how it was made: driftloop's one type for a mean (or a
    rate, or a difference) with its interval. The bias card stores these and writes them to its JSON as
    ``mean``, ``ci_low``, ``ci_high``, ``n_chains`` (= ``n_values``), ``n_images``, ``method``.

    ``mean``: the mean of per-image means (for a paired difference: of per-image differences; for
    :func:`chain_rate_ci`: the chain's average change per step). ``ci_low`` and ``ci_high`` are None when
    there is no interval; ``note`` then says why. ``se`` and ``df`` are the standard error and the t
    distribution's degrees of freedom behind the interval (None without one). ``n_values``: finite values
    used (chains; for one chain's rate, its points); ``n_dropped``: non-finite values left out;
    ``n_left_out``: finite values on images the other side of a paired comparison does not have.
    """

    mean: float
    ci_low: float | None
    ci_high: float | None
    level: float
    method: str
    n_images: int
    n_values: int
    n_dropped: int = 0
    n_left_out: int = 0
    se: float | None = None
    df: float | None = None
    n_seeds: int = 0  # seeds the two-way variance used (0: one-way)
    note: str = ""

    @property
    def has_ci(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly on one side of 0 (``[0, 0]`` does not)."""
        return self.has_ci and (self.ci_low > 0 or self.ci_high < 0)  # type: ignore[operator]


@dataclass(frozen=True)
class SignFlipResult:
    """A paired permutation test: T = mean of the differences; relabellings flip the sign of each.

    ``exact``: all 2^G patterns enumerated (p = share with |T*| ≥ |T|); else ``n_relabelings`` random
    ones and p = (1 + count) / (n + 1). ``min_p``: the smallest p the test could give; ``at_floor``: no
    random relabelling reached |T| (p is then that floor).
    """

    statistic: float
    p_value: float
    exact: bool
    n_relabelings: int
    n_units: int
    at_floor: bool
    min_p: float


# ------------------------------------------------------------------------------------------------ input


def _labels(values: Any, n: int, what: str) -> np.ndarray:
    labels = [str(v) for v in np.asarray(values, dtype=object).ravel()]
    if len(labels) != n:
        raise DriftloopError(f"{what}: {len(labels)} labels for {n} values; give one label per value")
    return np.asarray(labels, dtype=str)


def _floats(values: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DriftloopError(f"{what}: values must be numbers ({exc})") from None
    if arr.ndim != 1:
        raise DriftloopError(f"{what}: values must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_level(level: float) -> float:
    level = float(level)
    if not 0 < level < 1:
        raise DriftloopError(f"confidence level {level!r} must be between 0 and 1 (e.g. 0.95)")
    return level


def _clean(
    values: Any, images: Any, seeds: Any | None, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """(finite values, their images, their seeds or None, how many non-finite values were dropped)."""
    vals = _floats(values, what)
    imgs = _labels(images, vals.size, f"{what} images")
    sds = None if seeds is None else _labels(seeds, vals.size, f"{what} seeds")
    ok = np.isfinite(vals)
    return vals[ok], imgs[ok], None if sds is None else sds[ok], int((~ok).sum())


def _crossed(img: np.ndarray, sd: np.ndarray) -> bool:
    """≥ 2 seed values, one of them on ≥ 2 images (integer codes): chains of different images share seeds."""
    n_seed = int(sd.max()) + 1
    per_seed = np.bincount(np.unique(img * n_seed + sd) % n_seed, minlength=n_seed)
    return n_seed >= 2 and int(per_seed.max()) >= 2


# ----------------------------------------------------------------------------------------- the interval


def _t_bounds(mean: float, se: float, df: float, level: float) -> tuple[float, float]:
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return mean - half, mean + half


def _additive_fit(vals: np.ndarray, img: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, int]:
    """(residuals, rank) of the least-squares fit ``value ≈ image effect + seed effect`` (integer codes,
    every code present): the projection onto the image and seed indicator columns, computed without the
    chains × (images + seeds) design matrix. The factor with more levels is eliminated (its effects are
    its cells' means given the other's), leaving a small system in the other factor's effects (a graph
    Laplacian: singular once per connected group of images and seeds, solved by least squares, which the
    fitted values do not depend on). Rank = images + seeds − connected groups. Linear in the chains."""
    big, small = (img, sd) if int(img.max()) >= int(sd.max()) else (sd, img)
    p, q = int(big.max()) + 1, int(small.max()) + 1
    n_big, n_small = np.bincount(big, minlength=p).astype(float), np.bincount(small, minlength=q)
    cells = sparse.csr_matrix((np.ones(vals.size), (big, small)), shape=(p, q))  # chains per cell
    sum_big = np.bincount(big, weights=vals, minlength=p)
    scaled = sparse.diags(1.0 / n_big) @ cells
    system = np.diag(n_small.astype(float)) - (cells.T @ scaled).toarray()
    rhs = np.bincount(small, weights=vals, minlength=q) - scaled.T @ sum_big
    small_effect = np.linalg.lstsq(system, rhs, rcond=None)[0]
    big_effect = (sum_big - cells @ small_effect) / n_big
    resid = vals - big_effect[big] - small_effect[small]
    graph = sparse.bmat([[None, cells], [cells.T, None]])
    groups = int(csgraph.connected_components(graph, directed=False)[0])
    return resid, p + q - groups


def _two_way(
    vals: np.ndarray, img: np.ndarray, sd: np.ndarray, theta: float, v_image: float
) -> tuple[float, float, int] | None:
    """(variance, Satterthwaite df, number of seeds) of the mean of image means with crossed seeds (integer
    codes ``img``, ``sd``), or None when the seeds add nothing measurable (the one-way variance stands)."""
    n_img = int(img.max()) + 1
    n_seed = int(sd.max()) + 1
    w = 1.0 / (n_img * np.bincount(img)[img])  # each image weighs 1/G, shared by its chains
    score_seed = np.bincount(sd, weights=w * (vals - theta), minlength=n_seed)
    v_seed = n_seed / (n_seed - 1) * float(score_seed @ score_seed)
    # Chain-level part from the additive image + seed fit: what is left once both effects are removed.
    resid, rank = _additive_fit(vals, img, sd)
    df_error = vals.size - rank
    if df_error < 1:
        return None
    v_error = vals.size / df_error * float(np.sum((w * resid) ** 2))
    # Rounding: chains that agree exactly within each image (a deterministic model run with several seeds)
    # leave both parts at ~1e-30, and which of the two is larger is then noise, not a seed effect.
    if v_seed - v_error <= 1e-9 * v_image:
        return None
    var = v_image + v_seed - v_error
    denom = v_image**2 / (n_img - 1) + v_seed**2 / (n_seed - 1) + v_error**2 / df_error
    return var, var**2 / denom, n_seed


def mean_ci(
    values: Sequence[float] | np.ndarray,
    images: Sequence[Any] | np.ndarray,
    seeds: Sequence[Any] | np.ndarray | None = None,
    level: float = 0.95,
) -> Interval:
    """The mean of per-chain ``values`` clustered by source image, with a ``level`` confidence interval.

    ``images[k]`` (any labels; compared as strings) is the source image of ``values[k]``; ``seeds[k]``
    optionally its chain seed. The estimate is the mean of the per-image means. The interval is Student's t
    on the image means (df = G − 1, method ``t over images``); when ``seeds`` are given and reused across
    images and their shared effect is measurable, the two-way image × seed variance with Satterthwaite df
    (``t over images and seeds``). Non-finite values are dropped (``n_dropped``).

    No interval (None bounds, ``note`` says why) with one source image: its chains say nothing about other
    images. A zero-width interval only when every value is exactly equal (method ``all values equal``).
    If the image means agree exactly while chains within images differ, the spread between images is 0 by
    coincidence, so there is no interval either.
    """
    level = _check_level(level)
    vals, imgs, sds, dropped = _clean(values, images, seeds, "mean_ci")
    return _interval(vals, imgs, sds, level, dropped)


def _interval(
    vals: np.ndarray, imgs: np.ndarray, sds: np.ndarray | None, level: float, dropped: int, left_out: int = 0
) -> Interval:
    n = int(vals.size)
    if n == 0:
        return Interval(math.nan, None, None, level, METHOD_NONE, 0, 0, dropped, left_out,
                        note="no finite values")  # fmt: skip
    uniq, img = np.unique(imgs, return_inverse=True)
    g = int(uniq.size)
    if np.ptp(vals) == 0:
        # Every chain agrees exactly: any sample of these images gives this value, and no rounding residue.
        mean = float(vals[0])
        if g == 1:
            note = "one source image: no interval (its chains say nothing about other images)"
            return Interval(mean, None, None, level, METHOD_NONE, 1, n, dropped, left_out, note=note)
        return Interval(mean, mean, mean, level, METHOD_CONSTANT, g, n, dropped, left_out, 0.0, float(g - 1),
                        note="every value is exactly equal: zero width")  # fmt: skip
    means = np.bincount(img, weights=vals) / np.bincount(img)
    theta = float(means.mean())
    if g == 1:
        note = "one source image: no interval (its chains say nothing about other images)"
        return Interval(theta, None, None, level, METHOD_NONE, 1, n, dropped, left_out, note=note)
    sd = float(means.std(ddof=1))
    if sd <= 1e-12 * max(float(np.abs(means).max()), 1e-300):
        note = "the image means agree exactly while chains differ: no spread between images to rest on"
        return Interval(theta, None, None, level, METHOD_NONE, g, n, dropped, left_out, note=note)
    var, df, method, n_seeds = sd**2 / g, float(g - 1), METHOD_T, 0
    sd_codes = None if sds is None else np.unique(sds, return_inverse=True)[1]
    if sd_codes is not None and _crossed(img, sd_codes):
        two = _two_way(vals, img, sd_codes, theta, var)
        if two is not None:
            var, df, n_seeds = two
            method = METHOD_TWO_WAY
    se = math.sqrt(var)
    low, high = _t_bounds(theta, se, df, level)
    return Interval(theta, low, high, level, method, g, n, dropped, left_out, se, df, n_seeds)


# --------------------------------------------------------------------------------------- a chain's rate

# The increments' MA parameter θ on a grid over [0, 1] (0: a random walk with drift; 1: a line plus
# independent noise). θ is a ratio λ = θ / (1 − θ)² of noise variance to random-walk variance per step.
_THETA = np.linspace(0.0, 1.0, 51)
_RHO = np.array([1.0 if t == 1 else (t / (1 - t) ** 2) / (1 + t / (1 - t) ** 2) for t in _THETA])
# Above this REML estimate of θ the noise part is used; at or below it, the random-walk interval (chosen in
# benchmarks/chain_rate_coverage.py: random walks keep 94–95% from 50 steps, lines with noise 96–97%).
_NOISE_THETA = 0.7


def _chain_points(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """(steps, values) of the finite points, sorted by step, and how many points were dropped."""
    xs, ys = _floats(x, "chain_rate_ci steps"), _floats(y, "chain_rate_ci values")
    if xs.size != ys.size:
        raise DriftloopError(f"chain_rate_ci: {xs.size} steps for {ys.size} values; give one step per value")
    ok = np.isfinite(xs) & np.isfinite(ys)
    order = np.argsort(xs[ok], kind="stable")
    xs, ys = xs[ok][order], ys[ok][order]
    twice = xs[1:][np.diff(xs) == 0]
    if twice.size:
        raise DriftloopError(f"chain_rate_ci: step {twice[0]:g} has two values; give one value per step")
    return xs, ys, int((~ok).sum())


def _reml_theta(gaps: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    """(θ, variance of Σd) of the best REML fit of ``y = μ·step + random walk + independent noise`` to the
    increments ``d`` over ``gaps`` steps: Var(d) ∝ (1 − ρ)·diag(gaps) + ρ·T, T the tridiagonal (2, −1)
    matrix of differenced noise, so Var(Σd) ∝ (1 − ρ)·Σgaps + 2ρ."""
    m = d.size
    best, var, theta = -math.inf, math.nan, 0.0
    for t, rho in zip(_THETA, _RHO, strict=True):
        band = np.zeros((2, m))
        band[0, 1:] = -rho
        band[1] = (1 - rho) * gaps + 2 * rho
        chol = linalg.cholesky_banded(band)
        solved = linalg.cho_solve_banded((chol, False), np.column_stack([d, gaps]))
        zsz = float(gaps @ solved[:, 1])
        q = float(d @ solved[:, 0]) - float(gaps @ solved[:, 0]) ** 2 / zsz
        if q <= 0:
            continue
        s2 = q / (m - 1)
        ll = -(m - 1) / 2 * math.log(s2) - float(np.log(chol[1]).sum()) - math.log(zsz) / 2
        if ll > best:
            best, theta, var = ll, float(t), s2 * ((1 - rho) * float(gaps.sum()) + 2 * rho)
    return theta, var


def chain_rate_ci(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, level: float = 0.95
) -> Interval:
    """One chain's average change per step, with a ``level`` confidence interval that holds whether the
    measure wanders like a random walk or scatters around a line.

    ``x``: the step numbers (gaps allowed: steps 0, 1, 2, 3, 10 give four increments, the last over 7
    steps); ``y``: the measure at those steps. Points with a non-finite step or value are dropped
    (``n_dropped``).

    **Estimand**: the average change per step over the chain, ``(y_last − y_first) / (x_last − x_first)``
    in expectation: the mean of the expected per-step increments. Its estimate is that difference quotient
    itself (not an OLS slope, which weighs steps differently and is not this quantity when the measure
    saturates or jumps).

    **Interval**: the increments ``d_i = y_i − y_(i−1)`` over ``g_i`` steps are fitted by restricted maximum
    likelihood with the model ``y = μ·step + random walk + independent noise`` (an IMA(1,1) with drift: MA
    parameter θ = 0 a random walk, θ = 1 a line plus noise). A copy chain adds each copy's error to the last,
    so by default the interval is Student's t on the increments (variance Σ(d_i − μ̂g_i)²/g_i/(m − 1) per
    step, df = m − 1, method ``t on increments (random walk)``); when the REML θ exceeds 0.7 (the points
    scatter around a line more than they wander) the variance of ``Σd`` under the fitted model, df = m − 2
    (method ``random walk + noise (REML)``). Coverage measured by ``benchmarks/chain_rate_coverage.py`` (the
    README has the table), from 50 steps on: 94–95% for random walks, walks that stop and walks that stop
    and jitter, 96–97% for lines with noise; conservative (98–100%, wider than needed) when the measure
    reverts towards a level (AR(1) noise, a saturating curve), jumps once, or is a random walk seen through
    independent noise, which one chain of 50–200 steps cannot tell from a random walk.

    No interval (None bounds, ``note`` says why) with fewer than :data:`CHAIN_RATE_MIN_STEPS` increments:
    at 20–24 the benchmark's random walks, walks that stop and noisy walks were covered 91.6–93.7% of the
    time, under the 95% promised. An exactly straight
    chain (every increment exactly μ per step, e.g. constant) has a zero-width interval (``exact line``).
    """
    level = _check_level(level)
    xs, ys, dropped = _chain_points(x, y)
    n = int(xs.size)
    if n < 2:
        return Interval(math.nan, None, None, level, METHOD_NONE, 1, n, dropped,
                        note="fewer than two steps with a value: no rate")  # fmt: skip
    gaps, d = np.diff(xs), np.diff(ys)
    span = float(gaps.sum())
    est = float(d.sum() / span)
    m = int(d.size)
    resid = (d - est * gaps) / np.sqrt(gaps)
    rw_var = float(resid @ resid) / (m - 1) / span if m > 1 else math.nan
    scale = float(np.abs(d / gaps).max())
    if (m > 1 and math.sqrt(rw_var * span) <= 1e-9 * max(scale, 1e-300)) or np.ptp(ys) == 0:
        est = 0.0 if np.ptp(ys) == 0 else est
        return Interval(est, est, est, level, METHOD_EXACT_LINE, 1, n, dropped, 0, 0.0, float(max(m - 1, 1)),
                        note="every increment is exactly the same per step: zero width")  # fmt: skip
    if m < CHAIN_RATE_MIN_STEPS:
        note = (
            f"{m} step{'s' if m != 1 else ''} with a value: too short for an interval that holds "
            f"(it needs {CHAIN_RATE_MIN_STEPS})"
        )
        return Interval(est, None, None, level, METHOD_NONE, 1, n, dropped, note=note)
    theta, var_sum = _reml_theta(gaps, d)
    if theta > _NOISE_THETA and math.isfinite(var_sum):
        var, df, method = var_sum / span**2, float(m - 2), METHOD_NOISE
    else:
        var, df, method = rw_var, float(m - 1), METHOD_RANDOM_WALK
    se = math.sqrt(var)
    low, high = _t_bounds(est, se, df, level)
    return Interval(est, low, high, level, method, 1, n, dropped, 0, se, df)


def rate_over_chains_ci(
    rates: Sequence[Interval],
    images: Sequence[Any] | np.ndarray,
    seeds: Sequence[Any] | np.ndarray | None = None,
    level: float = 0.95,
) -> Interval:
    """The mean rate of several chains (each a :func:`chain_rate_ci` result) with its interval.

    From two source images on: :func:`mean_ci` of the chains' estimates (the images are the units).
    All chains of one image: the interval is about that image. Its chains are pooled: the mean of their
    estimates with variance Σse²/k² and Welch–Satterthwaite df (chains with identical numbers, as a
    deterministic model gives for every seed, count once); no interval if any chain has none.
    One chain: its own interval. ``n_values`` counts chains here (as for :func:`mean_ci`), not points.
    """
    level = _check_level(level)
    keep = [i for i, r in enumerate(rates) if math.isfinite(r.mean)]
    labels = _labels(images, len(rates), "rate_over_chains_ci images")[keep]
    chains = [rates[i] for i in keep]
    if not chains:
        return Interval(math.nan, None, None, level, METHOD_NONE, 0, 0, note="no chain has a rate")
    if np.unique(labels).size > 1:
        sds = None if seeds is None else _labels(seeds, len(rates), "rate_over_chains_ci seeds")[keep]
        return _interval(np.array([r.mean for r in chains]), labels, sds, level, 0)
    distinct = list({(r.mean, r.ci_low, r.ci_high): r for r in chains}.values())
    n_values = len(chains)
    if len(distinct) == 1:
        return replace(distinct[0], n_values=n_values)
    mean = float(np.mean([r.mean for r in distinct]))
    missing = [r for r in distinct if r.se is None or r.df is None]
    if missing:
        note = f"{len(missing)} of {len(distinct)} chains have no interval ({missing[0].note})"
        return Interval(mean, None, None, level, METHOD_NONE, 1, n_values, note=note)
    k = len(distinct)
    parts = np.array([(r.se / k) ** 2 for r in distinct])  # type: ignore[operator]
    var = float(parts.sum())
    if var == 0:
        note = "the chains are exact lines with different rates: no spread to rest on"
        return Interval(mean, None, None, level, METHOD_NONE, 1, n_values, note=note)
    df = var**2 / float(np.sum(parts**2 / np.array([r.df for r in distinct])))
    low, high = _t_bounds(mean, math.sqrt(var), df, level)
    return Interval(mean, low, high, level, METHOD_POOLED, 1, n_values, 0, 0, math.sqrt(var), df)


# ------------------------------------------------------------------------------------ paired differences


def image_differences(
    model_values: Sequence[float] | np.ndarray,
    control_values: Sequence[float] | np.ndarray,
    images: Sequence[Any] | np.ndarray,
    control_images: Sequence[Any] | np.ndarray | None = None,
    seeds: Sequence[Any] | np.ndarray | None = None,
    control_seeds: Sequence[Any] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int, int]:
    """Model mean − control mean per pairing unit both sides have finite values for.

    The unit is the source image, or the (image, seed) cell when ``seeds`` are given (``control_seeds``
    defaults to ``seeds``, ``control_images`` to ``images``; then the two value lists are aligned chain by
    chain). Returns (differences, their images, their seeds or None, non-finite values dropped, finite values
    on units only one side has).
    """
    m_vals = _floats(model_values, "paired difference (model)")
    c_vals = _floats(control_values, "paired difference (control)")
    c_images = images if control_images is None else control_images
    c_seeds = seeds if control_seeds is None else control_seeds
    if (seeds is None) != (c_seeds is None):
        raise DriftloopError("paired difference: give seeds for both the model and the control, or neither")
    mv, mi, ms, m_drop = _clean(m_vals, images, seeds, "paired difference (model)")
    cv, ci, cs, c_drop = _clean(c_vals, c_images, c_seeds, "paired difference (control)")
    m_key = mi if ms is None else np.char.add(np.char.add(mi, "\x1f"), ms)
    c_key = ci if cs is None else np.char.add(np.char.add(ci, "\x1f"), cs)
    shared = np.intersect1d(m_key, c_key)
    m_in, c_in = np.isin(m_key, shared), np.isin(c_key, shared)
    m_pos = np.searchsorted(shared, m_key[m_in])
    c_pos = np.searchsorted(shared, c_key[c_in])
    k = shared.size
    diff = np.bincount(m_pos, weights=mv[m_in], minlength=k) / np.maximum(np.bincount(m_pos, minlength=k), 1)
    diff -= np.bincount(c_pos, weights=cv[c_in], minlength=k) / np.maximum(np.bincount(c_pos, minlength=k), 1)
    unit_images = np.empty(k, dtype=mi.dtype)
    unit_images[m_pos] = mi[m_in]
    unit_seeds = None
    if ms is not None:
        unit_seeds = np.empty(k, dtype=ms.dtype)
        unit_seeds[m_pos] = ms[m_in]
    left_out = int((~m_in).sum() + (~c_in).sum())
    return diff, unit_images, unit_seeds, m_drop + c_drop, left_out


def paired_diff_ci(
    model_values: Sequence[float] | np.ndarray,
    control_values: Sequence[float] | np.ndarray,
    images: Sequence[Any] | np.ndarray,
    control_images: Sequence[Any] | np.ndarray | None = None,
    seeds: Sequence[Any] | np.ndarray | None = None,
    control_seeds: Sequence[Any] | np.ndarray | None = None,
    level: float = 0.95,
) -> Interval:
    """Model − control, paired at the image level, with a ``level`` confidence interval.

    Per source image both sides have (per image × seed cell when ``seeds`` are given): the mean of the
    model's values minus the mean of the control's; then :func:`mean_ci` of those differences (so: the t
    interval on per-image differences, two-way when seeds are crossed and matter). Values on images only one
    side has are left out (``n_left_out``). ``control_images`` defaults to ``images`` (the two lists aligned
    chain by chain), ``control_seeds`` to ``seeds``.
    """
    level = _check_level(level)
    diff, imgs, sds, dropped, left_out = image_differences(
        model_values, control_values, images, control_images, seeds, control_seeds
    )
    return _interval(diff, imgs, sds, level, dropped, left_out)


def unpaired_diff_ci(
    model_values: Sequence[float] | np.ndarray,
    control_values: Sequence[float] | np.ndarray,
    images: Sequence[Any] | np.ndarray,
    control_images: Sequence[Any] | np.ndarray,
    seeds: Sequence[Any] | np.ndarray | None = None,
    control_seeds: Sequence[Any] | np.ndarray | None = None,
    level: float = 0.95,
) -> Interval:
    """Model − control when the two sides share no source image (nothing to pair), with a ``level`` interval.

    The difference of the two :func:`mean_ci` estimates; standard error sqrt(se₁² + se₂²) and the
    Welch–Satterthwaite df ``(se₁² + se₂²)² / (se₁⁴/df₁ + se₂⁴/df₂)`` (method ``Welch t over images
    (unpaired)``). Zero width when both sides are constant; no interval when either side has none (e.g. one
    source image). Prefer :func:`paired_diff_ci` whenever the sides share images: pairing removes the
    image-to-image spread the two sides have in common.
    """
    level = _check_level(level)
    a = mean_ci(model_values, images, seeds, level)
    b = mean_ci(control_values, control_images, control_seeds, level)
    diff = a.mean - b.mean
    n_images, n_values, n_dropped = (
        a.n_images + b.n_images,
        a.n_values + b.n_values,
        a.n_dropped + b.n_dropped,
    )
    if a.method == METHOD_CONSTANT and b.method == METHOD_CONSTANT:
        return Interval(diff, diff, diff, level, METHOD_CONSTANT, n_images, n_values, n_dropped, 0, 0.0,
                        note="both sides are constant: zero width")  # fmt: skip
    if a.se is None or b.se is None or a.df is None or b.df is None:
        note = "; ".join(f"{side}: {x.note}" for side, x in (("model", a), ("control", b)) if x.note)
        return Interval(diff, None, None, level, METHOD_NONE, n_images, n_values, n_dropped, note=note)
    var = a.se**2 + b.se**2
    terms = [x.se**4 / x.df for x in (a, b) if x.se and x.df]  # type: ignore[operator]
    df = var**2 / sum(terms) if terms and sum(terms) > 0 else float(min(a.df, b.df))
    low, high = _t_bounds(diff, math.sqrt(var), df, level)
    return Interval(
        diff, low, high, level, METHOD_WELCH, n_images, n_values, n_dropped, 0, math.sqrt(var), df
    )


# ------------------------------------------------------------------------------------- permutation test


def _sign_patterns(n_units: int, n_perm: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """±1 relabelling matrix: all 2^n patterns when that is at most ``n_perm`` (exact), else ``n_perm``
    random ones."""
    if n_units <= 20 and 2**n_units <= n_perm:
        codes = np.arange(2**n_units)[:, None] >> np.arange(n_units)[None, :]
        return (codes & 1) * 2.0 - 1.0, True
    return rng.choice(np.array([-1.0, 1.0]), size=(n_perm, n_units)), False


def sign_flip_test(
    differences: Sequence[float] | np.ndarray, n_perm: int = 5000, rng: np.random.Generator | None = None
) -> SignFlipResult | None:
    """Two-sided paired permutation test of "no difference" on per-unit (per-image) differences.

    Under the null the sign of each unit's difference is arbitrary; T = mean of the differences, and p is
    the share of sign patterns with |T*| ≥ |T| (a 1e-9 relative tolerance counts ties). All 2^G patterns
    are enumerated when 2^G ≤ ``n_perm`` (exact; the smallest possible p is 2/2^G, so p < 0.05 needs ≥ 6
    units), else ``n_perm`` random ones with p = (1 + count) / (n_perm + 1). Non-finite differences are
    dropped; None when none is left.
    """
    d = _floats(differences, "sign_flip_test")
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None
    signs, exact = _sign_patterns(d.size, n_perm, rng or np.random.default_rng(0))
    g = d.size
    observed = float(d.mean())
    stat = np.abs(signs @ d) / g
    tol = 1e-9 * float(np.abs(d).max())
    count = int(np.sum(stat >= abs(observed) - tol))
    rows = signs.shape[0]
    if exact:
        floor = float(np.sum(stat >= stat.max() - tol)) / rows
        return SignFlipResult(observed, count / rows, True, rows, g, False, floor)
    return SignFlipResult(observed, (1 + count) / (rows + 1), False, rows, g, count == 0, 1 / (rows + 1))


def paired_permutation_test(
    model_values: Sequence[float] | np.ndarray,
    control_values: Sequence[float] | np.ndarray,
    images: Sequence[Any] | np.ndarray,
    control_images: Sequence[Any] | np.ndarray | None = None,
    n_perm: int = 5000,
    rng: np.random.Generator | None = None,
) -> SignFlipResult | None:
    """:func:`sign_flip_test` on the per-image differences (model mean − control mean of each shared image),
    as the bias card tests a model against the control. None when no image has values on both sides."""
    diff, *_ = image_differences(model_values, control_values, images, control_images)
    return sign_flip_test(diff, n_perm, rng)
