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
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse, stats
from scipy.sparse import csgraph

from driftloop.errors import DriftloopError

__all__ = [
    "METHOD_CONSTANT",
    "METHOD_NONE",
    "METHOD_T",
    "METHOD_TWO_WAY",
    "METHOD_WELCH",
    "Interval",
    "SignFlipResult",
    "image_differences",
    "mean_ci",
    "paired_diff_ci",
    "paired_permutation_test",
    "sign_flip_test",
    "unpaired_diff_ci",
]

METHOD_T = "t over images"
METHOD_TWO_WAY = "t over images and seeds"
METHOD_WELCH = "Welch t over images (unpaired)"
METHOD_CONSTANT = "all values equal"
METHOD_NONE = "none"


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval and how it was made: driftloop's one type for a mean (or a
    rate, or a difference) with its interval. The bias card stores these and writes them to its JSON as
    ``mean``, ``ci_low``, ``ci_high``, ``n_chains`` (= ``n_values``), ``n_images``, ``method``.

    ``mean``: the mean of per-image means (for a paired difference: of per-image differences; for
    :func:`~driftloop.analysis.chain_rate.chain_rate_ci`: the chain's average change per step). ``ci_low``
    and ``ci_high`` are None when there is no interval; ``note`` then says why. ``se`` and ``df`` are the
    standard error and the t distribution's degrees of freedom behind the interval (None without one).
    ``n_values``: finite values used (chains; for one chain's rate, its points); ``n_dropped``: non-finite
    values left out; ``n_left_out``: finite values on images the other side of a paired comparison does not
    have.
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
