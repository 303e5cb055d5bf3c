"""One chain's rate: the average change per step, and an interval that holds however the measure moves.

A copy adds its error to the last, so a measure often wanders like a random walk: the error of the total
change grows with the chain (variance m·σ² over m steps). But a measure can also scatter around a line,
revert towards a level (AR noise, a curve that saturates), jump once, or stop changing, and then the error of
the total change stays bounded. One interval for all would be far too wide for the second kind or far too
narrow for the first, so :func:`chain_rate_ci` reads which kind a chain is, by a rule fixed in advance:

1. the copies stop changing (the last 3 increments exactly 0, or the second half's increments spread less
   than a quarter as much as the first half's, robustly): a walk that stops, Student's t on the increments;
2. a unit-root test rejects the random walk: the augmented Dickey–Fuller regression with a trend, its lags
   chosen by the modified AIC of Ng & Perron (2001), up to 4 per 100 steps (so that a walk seen through
   noise, whose increments are negatively correlated, is not taken for a measure that reverts), the Φ3 F
   test at 5%: the variance of the total change under the fitted autoregression around a line;
3. one increment more than 6 robust SDs from the median, and 3 times as far out as any other, is a jump:
   part of the rate, not of its error;
4. otherwise a random walk + independent noise fitted by REML (the IMA(1,1) with drift), with its
   critical value widened by :data:`WALK_WIDEN` so that the whole rule still covers random walks 95% of the
   time: the test in 2 calls about 1 walk in 25 reverting, and those get a too-narrow interval.

``benchmarks/chain_rate_coverage.py`` measures the rule against simulated chains with a known rate in eight
ways a measure moves (``--calibrate`` re-derives :data:`WALK_WIDEN`); the README has the table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from scipy import linalg, signal

from driftloop.analysis.intervals import (
    METHOD_NONE,
    Interval,
    _check_level,
    _floats,
    _interval,
    _labels,
    _t_bounds,
)
from driftloop.errors import DriftloopError

__all__ = [
    "CHAIN_RATE_MIN_STEPS",
    "METHOD_EXACT_LINE",
    "METHOD_JUMP",
    "METHOD_NOISE",
    "METHOD_POOLED",
    "METHOD_RANDOM_WALK",
    "METHOD_REVERTING",
    "METHOD_SPREAD",
    "WALK_WIDEN",
    "chain_rate_ci",
    "rate_over_chains_ci",
]

METHOD_RANDOM_WALK = "t on increments (random walk)"
METHOD_NOISE = "random walk + noise (REML)"
METHOD_REVERTING = "reverting (autoregression around a line)"
METHOD_JUMP = "random walk with one jump"
METHOD_EXACT_LINE = "exact line"
METHOD_POOLED = "pooled chains of one image"
METHOD_SPREAD = "t over chains of one image"

# The fewest steps (increments) for an interval: below 100 one chain cannot tell a measure that reverts
# (AR(1) noise, φ = 0.8) from one that wanders often enough. With this rule at 50 and 75 steps (1,000 chains
# each), AR(1) noise was covered 98.2% and 97.6%, lines with noise 97.7% and a noisy walk 92.5% at 50.
CHAIN_RATE_MIN_STEPS = 100
# The default branch's critical value is this × Student's t: with it the rule covers a random walk 95% of the
# time although the unit-root test calls about 4% of walks reverting (simulated, 20,000 walks per length:
# 1.213, 1.227, 1.171, 1.188 needed at 100, 150, 200, 400 steps; ``chain_rate_coverage.py --calibrate``).
WALK_WIDEN = 1.22
_STOP_RATIO = 4.0  # first half's robust SD of increments over the second half's: the copies stopped changing
_FIXED_POINT_STEPS = 3  # the last this many increments exactly 0: a fixed point
_JUMP_Z = 6.0  # an increment this many robust SDs from the median is one jump ...
_JUMP_ALONE = 3.0  # ... when it is this many times as far out as the next one
_START_SDS = 4.0  # a start this many stationary SDs from the fitted line is a transient, not a draw

# The increments' MA parameter θ on a grid over [0, 1] (0: a random walk with drift; 1: a line plus
# independent noise). θ is a ratio λ = θ / (1 − θ)² of noise variance to random-walk variance per step.
_THETA = np.linspace(0.0, 1.0, 51)
_RHO = np.array([1.0 if t == 1 else (t / (1 - t) ** 2) / (1 + t / (1 - t) ** 2) for t in _THETA])


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


def _reml_variance(gaps: np.ndarray, d: np.ndarray) -> float:
    """The variance of Σd under the best REML fit of ``y = μ·step + random walk + independent noise`` to the
    increments ``d`` over ``gaps`` steps: Var(d) ∝ (1 − ρ)·diag(gaps) + ρ·T, T the tridiagonal (2, −1)
    matrix of differenced noise, so Var(Σd) ∝ (1 − ρ)·Σgaps + 2ρ."""
    m = d.size
    best, var = -math.inf, math.nan
    for rho in _RHO:
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
            best, var = ll, s2 * ((1 - rho) * float(gaps.sum()) + 2 * rho)
    return var


def _robust_sd(x: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(x - np.median(x))))


def _adf_design(ys: np.ndarray, k: int, first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(design, response, steps) of ``y_t = c + b·(t − t̄) + ρ·y_(t−1) + Σ_(i≤k) γ_i·Δy_(t−i)`` for the
    increments ``first..m−1`` (so that regressions with different k share their sample)."""
    d = np.diff(ys)
    rows = np.arange(first, d.size)
    t = (rows + 1).astype(float)
    lagged = [d[rows - i] for i in range(1, k + 1)]
    design = np.column_stack([np.ones(rows.size), t - t.mean(), ys[rows], *lagged])
    return design, ys[rows + 1], t


def _max_lags(m: int) -> int:
    """The most lagged increments the unit-root regression may use: 4 per 100 steps, at most 12. A walk seen
    through much noise needs many (at 200 steps and noise 3 times the step, 4 lags let the test call 22% of
    such walks reverting, 8 lags 7%), but each lag costs power against a measure that reverts, which 100
    steps cannot spare (AR(1) noise at 101 frames: 97.0% coverage with 4, 97.1–97.5% with 8–12)."""
    return min(12, 4 * m // 100)


def _adf_fit(ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(design, response, coefficients, rank) of the unit-root regression with its lagged increments chosen
    by Ng & Perron's modified AIC (0 to :func:`_max_lags`, common sample): the plain AIC picks too few lags
    when a walk is seen through noise, and the test then rejects it."""
    best, most, chosen = math.inf, _max_lags(ys.size - 1), None
    for k in range(most + 1):
        design, resp, t = _adf_design(ys, k, most)
        coef, _, rank, _ = np.linalg.lstsq(design, resp, rcond=None)
        resid = resp - design @ coef
        s2 = float(resid @ resid) / resp.size
        if s2 <= 0:
            return design, resp, coef, rank
        level = design[:, 2]
        detrended = level - np.polyval(np.polyfit(t, level, 1), t)
        tau = (float(coef[2]) - 1) ** 2 * float(detrended @ detrended) / s2
        crit = math.log(s2) + 2 * (tau + k) / resp.size
        if chosen is None or crit < best:
            best, chosen = crit, (design, resp, coef, rank)
    return chosen  # type: ignore[return-value]  # set at k = 0


def _reverting_variance(ys: np.ndarray) -> tuple[float, float] | None:
    """(variance of y_last − y_first, df) under the fitted autoregression around a line when the unit-root
    test rejects a random walk, else None.

    The augmented Dickey–Fuller regression with a trend nests a random walk with drift (ρ = 1), a line with
    AR noise and a curve that saturates towards a level (an AR started away from its level). The walk is
    kept unless Φ3 (the F test of ρ = 1, b = 0) exceeds its 95% point, 6.25 + 26/m (Dickey & Fuller 1981,
    Table VI, with a small-sample term fitted to simulated walks). Then, with ψ the fitted AR's impulse
    response and σ² its residual variance: Var(y_m − y_0 | y_0) = σ²·Σ_(j<m) ψ_j² when the start is a
    transient far from the fitted line (a saturating curve, where the start is part of the expected path),
    2·(γ₀ − γ_m) when it is a draw from the stationary spread (within 4 γ₀^½ of the line: noise around it)."""
    m = ys.size - 1
    design, resp, coef, rank = _adf_fit(ys)
    n, p = design.shape
    if rank < p or n - p < 10:
        return None
    resid = resp - design @ coef
    ssr = float(resid @ resid)
    walk = np.column_stack([np.ones(n), design[:, 3:]])  # ρ = 1, b = 0: the increments on the lags
    dy = resp - design[:, 2]
    walk_resid = dy - walk @ np.linalg.lstsq(walk, dy, rcond=None)[0]
    if ssr <= 0:
        return None
    f_stat = (float(walk_resid @ walk_resid) - ssr) / 2 / (ssr / (n - p))
    gam = coef[3:]
    ar = np.zeros(gam.size + 1)  # the levels' AR coefficients from ρ and the γ's
    ar[0] = coef[2] + (gam[0] if gam.size else 0.0)
    ar[1:-1] = gam[1:] - gam[:-1]
    if gam.size:
        ar[-1] = -gam[-1]
    persistence = float(ar.sum())
    if f_stat <= 6.25 + 26.0 / m or not -0.95 < persistence < 0.995:
        return None
    s2 = ssr / (n - p)
    impulse = np.zeros(m + 4000)
    impulse[0] = 1.0
    psi = signal.lfilter([1.0], np.concatenate([[1.0], -ar]), impulse)
    gamma0 = s2 * float(psi @ psi)
    # The fitted line α + βt: β = b/(1 − Σa), α from the intercept at t̄ and the AR's lags.
    beta = float(coef[1]) / (1 - persistence)
    tbar = float(np.mean(np.arange(m - n + 1, m + 1)))  # the regression's steps
    lag_sum = float(np.arange(1, ar.size + 1) @ ar)
    alpha = (float(coef[0]) - float(coef[1]) * tbar - beta * lag_sum) / (1 - persistence)
    if abs(float(ys[0]) - alpha) <= _START_SDS * math.sqrt(gamma0):
        var = 2 * (gamma0 - s2 * float(psi[:-m] @ psi[m:]))
    else:
        var = s2 * float(psi[:m] @ psi[:m])
    return var, float(n - p)


def _one_jump(d: np.ndarray) -> int | None:
    """The index of the one increment that stands out as a jump (a level shift), or None."""
    med, mad = float(np.median(d)), _robust_sd(d)
    if mad <= 0:
        return None
    z = np.abs(d - med) / mad
    j = int(z.argmax())
    # Alone: 3 times the next largest too, or heavy-tailed steps (a walk of Student t₃ errors) would read as
    # jumps a third of the time, and their interval would leave out a part of the walk's spread.
    if z[j] <= _JUMP_Z or z[j] < _JUMP_ALONE * float(np.partition(z, -2)[-2]):
        return None
    return j


def chain_rate_ci(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, level: float = 0.95
) -> Interval:
    """One chain's average change per step, with a ``level`` confidence interval that holds whether the
    measure wanders like a random walk, scatters around a line, reverts towards a level, jumps once or stops.

    ``x``: the step numbers (gaps allowed: steps 0, 1, 2, 3, 10 give four increments, the last over 7
    steps); ``y``: the measure at those steps. Points with a non-finite step or value are dropped
    (``n_dropped``).

    **Estimand**: the average change per step over the chain, ``(y_last − y_first) / (x_last − x_first)``
    in expectation: the mean of the expected per-step increments. Its estimate is that difference quotient
    itself (not an OLS slope, which weighs steps differently and is not this quantity when the measure
    saturates or jumps). Its error is that of the total change, so the interval needs Var(y_last − y_first):
    m·σ² for a random walk, but bounded when the measure reverts towards a line or a level.

    **Interval**: the rule in this module's docstring, which ``method`` and ``note`` name: ``t on
    increments (random walk)`` for copies that stop changing; ``reverting (autoregression around a line)``
    where the unit-root test rejects the walk; ``random walk with one jump``; else ``random walk + noise
    (REML)`` with bounds ``mean ± 1.22·t(df)·se`` (:data:`WALK_WIDEN`; ``se`` and ``df`` are the model's,
    what :func:`rate_over_chains_ci` pools). Steps with gaps skip the unit-root test (it needs one step
    apart): REML with the plain t, wider than needed if the measure reverts. Coverage measured by
    ``benchmarks/chain_rate_coverage.py`` from 100 steps: 93–97% in all eight simulated ways (the README has
    the table). Calibrated and benchmarked at 95%; other levels widen the walk's branch in the same ratio.

    No interval (None bounds, ``note`` says why) with fewer than :data:`CHAIN_RATE_MIN_STEPS` increments:
    a shorter chain cannot tell a measure that reverts from one that wanders. An exactly straight chain
    (every increment exactly μ per step, e.g. constant) has a zero-width interval (``exact line``).
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
    widen, note = 1.0, ""
    half = m // 2
    if np.any(gaps != 1):
        var, df, method = _reml_variance(gaps, d) / span**2, float(m - 2), METHOD_NOISE
        note = "steps with gaps: no test for a measure that reverts (wider than needed if it does)"
    elif np.all(d[-_FIXED_POINT_STEPS:] == 0) or _robust_sd(d[:half]) > _STOP_RATIO * _robust_sd(d[half:]):
        var, df, method = rw_var, float(m - 1), METHOD_RANDOM_WALK
        note = "the copies stop changing: the walk's spread up to there"
    elif (rev := _reverting_variance(ys)) is not None:
        var, df, method = rev[0] / span**2, rev[1], METHOD_REVERTING
        note = "a unit-root test says the measure reverts towards a line or a level"
    elif (jump := _one_jump(d)) is not None:
        var, df, method = float(m * np.delete(d, jump).var(ddof=1)) / span**2, float(m - 2), METHOD_JUMP
        note = f"one jump at step {xs[jump + 1]:g}: part of the rate, not of its error"
    else:
        var, df, method, widen = _reml_variance(gaps, d) / span**2, float(m - 2), METHOD_NOISE, WALK_WIDEN
    se = math.sqrt(var)
    low, high = _t_bounds(est, se * widen, df, level)
    return Interval(est, low, high, level, method, 1, n, dropped, 0, se, df, note=note)


def rate_over_chains_ci(
    rates: Sequence[Interval],
    images: Sequence[Any] | np.ndarray,
    seeds: Sequence[Any] | np.ndarray | None = None,
    level: float = 0.95,
) -> Interval:
    """The mean rate of several chains (each a :func:`chain_rate_ci` result) with its interval.

    From two source images on: :func:`~driftloop.analysis.intervals.mean_ci` of the chains' estimates (the
    images are the units). All chains of one image: the interval is about that image, for the mean of its
    chains' estimates (chains with identical numbers, as a deterministic model gives for every seed, count
    once); no interval if any chain has none. When the chains read the same way (one ``method``), their
    model's variances are pooled: Σse²/k² with Welch–Satterthwaite df (``pooled chains of one image``).
    When they read differently (one reverting, another a walk), no one model fits them all, and the
    interval is Student's t on the k estimates, df = k − 1 (``t over chains of one image``): they are
    independent draws of one image's chain. Three chains of 101 frames covered 93–97% in all eight ways of
    ``benchmarks/chain_rate_coverage.py``. One chain: its own interval. ``n_values`` counts chains here (as
    for ``mean_ci``), not points.
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
    if len({r.method for r in distinct}) > 1:
        # The chains disagree on how the measure moves (one reads as reverting, another as a walk): no one
        # model's variance fits them all, but they are independent draws of one image's chain, so their
        # spread is the estimate's (Student's t on the k estimates, df = k − 1).
        estimates = np.array([r.mean for r in distinct])
        se = float(estimates.std(ddof=1)) / math.sqrt(k)
        low, high = _t_bounds(mean, se, float(k - 1), level)
        note = "its chains read differently (" + ", ".join(sorted({r.method for r in distinct})) + ")"
        return Interval(mean, low, high, level, METHOD_SPREAD, 1, n_values, 0, 0, se, float(k - 1), note=note)
    parts = np.array([(r.se / k) ** 2 for r in distinct])  # type: ignore[operator]
    var = float(parts.sum())
    if var == 0:
        note = "the chains are exact lines with different rates: no spread to rest on"
        return Interval(mean, None, None, level, METHOD_NONE, 1, n_values, note=note)
    df = var**2 / float(np.sum(parts**2 / np.array([r.df for r in distinct])))
    low, high = _t_bounds(mean, math.sqrt(var), df, level)
    return Interval(mean, low, high, level, METHOD_POOLED, 1, n_values, 0, 0, math.sqrt(var), df)
