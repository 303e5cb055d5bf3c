"""The statistics of driftloop's analyses besides the intervals: rates, effect sizes, permutation tests.

Intervals (of means over chains, of one chain's rate) are in :mod:`driftloop.analysis.intervals`; this
module holds the rest:

* :func:`stratified_permutation_test`: a two-sided permutation test with labels shuffled within strata (the
  bias card's fallback when a model and the control share fewer than two source images; the paired test
  is :func:`driftloop.analysis.intervals.sign_flip_test`);
* :func:`hedges_g`: a standardised, small-sample corrected effect size;
* :class:`Rate`: the record a chain summary keeps of a rate and its interval (the bias card keeps
  :class:`driftloop.analysis.intervals.Interval` itself).

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

__all__ = [
    "ALPHA",
    "CONFIDENCE",
    "PermutationResult",
    "Rate",
    "as_labels",
    "column_rng",
    "hedges_g",
    "seeded_rng",
    "stratified_permutation_test",
]

CONFIDENCE = 0.95
ALPHA = 0.05


@dataclass(frozen=True)
class Rate:
    """Per-step drift rate of a measure with its 95% confidence interval: a chain summary's record of a
    :func:`driftloop.analysis.chain_rate.chain_rate_ci` interval (the average change per step over steps
    0..``max_step``), or, across chains (``chains`` > 1), of
    :func:`driftloop.analysis.chain_rate.rate_over_chains_ci`.

    ``n`` points (frames) went into it. The interval is NaN when there is none; ``note`` then says why.
    ``method``, ``se`` and ``df``: how the interval was made (see :mod:`driftloop.analysis.intervals`).
    An exactly straight series (e.g. constant) has a zero-width interval.
    """

    slope: float
    ci_low: float
    ci_high: float
    n: int
    max_step: int = 0
    chains: int = 1
    images: int = 1  # independent units behind an across-chain interval (source images)
    method: str = ""
    se: float | None = None
    df: float | None = None
    note: str = ""

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.ci_low) and math.isfinite(self.ci_high)

    @property
    def clear(self) -> bool:
        """True when the interval excludes 0: the measure clearly drifts, in the direction of ``slope``."""
        return self.has_ci and (self.ci_low > 0 or self.ci_high < 0)


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


# ------------------------------------------------------------------------------------------ randomness


def seeded_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the names (stable across runs and row orders)."""
    words = [int(seed) & 0xFFFFFFFFFFFFFFFF] + [zlib.crc32(n.encode("utf-8")) for n in names]
    return np.random.default_rng(words)


def column_rng(base: int, names: Sequence[str] | None, j: int) -> np.random.Generator:
    name = names[j] if names is not None else str(j)
    return np.random.default_rng([base, zlib.crc32(name.encode("utf-8"))])


def as_labels(values: Any) -> np.ndarray:
    return np.asarray([str(v) for v in values], dtype=object).astype(str)


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
