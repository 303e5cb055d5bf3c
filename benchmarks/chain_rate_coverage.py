"""Does one chain's "95%" rate interval cover 95%? Coverage by simulation with a known truth.

    python benchmarks/chain_rate_coverage.py               # 2000 chains per cell, about 6 minutes
    python benchmarks/chain_rate_coverage.py --reps 500
    python benchmarks/chain_rate_coverage.py --calibrate   # re-derive chain_rate.WALK_WIDEN

Each simulated chain has ``n`` frames (steps 0..n−1) of one measure that moves at 0.3 per step on average,
with standard normal errors, in eight ways (:func:`simulate`):

* ``line + noise``: 0.3·step + independent noise (a measurement that scatters around a line);
* ``random walk``: each step adds 0.3 + an independent error (a copy adds its error to the last);
* ``line + AR(1) φ=0.8``: 0.3·step + stationary AR(1) noise with φ = 0.8;
* ``saturating``: the measure relaxes towards a level c from 0, ``y_t = c + 0.9·(y_(t−1) − c) + error``,
  with c chosen so that the expected change over the chain is 0.3 per step (the curve flattens out);
* ``step change``: a random walk with no drift that jumps by 0.3·(n − 1) once, halfway;
* ``fixed point``: a random walk with drift that stops halfway (the copies stop changing);
* ``walk that stops``: the same, then jitters by 0.05 around where it stopped;
* ``random walk + noise``: a random walk with drift seen through independent noise of the same size (a copy
  keeps part of its error and the next copy undoes the rest).

The truth is the estimand of :func:`driftloop.analysis.chain_rate.chain_rate_ci`: the expected
``(y_last − y_first) / (steps between them)``. Columns: the coverage of ``ols_rate``'s interval (OLS of the
measure on the step with a t interval, what driftloop printed before 0.2; reimplemented here, vectorised;
its truth is the same 0.3 for the three regimes where the OLS slope and the estimand agree, and it is shown
for the others against the estimand too), the coverage of ``chain_rate_ci`` where it gives an interval, the
share of chains it gives one for, the share that took each branch of its rule (w: walk + noise, r: reverting,
s: stops, j: one jump), and the median width of each interval.

Last, the pooled interval of three chains of one image (:func:`rate_over_chains_ci`, independent seeds, 101
frames each) in the eight ways.

``--calibrate``: on simulated random walks, the factor on the walk branch's critical value that makes the
whole rule cover 95% (the test calls some walks reverting, and those miss more often), per length.

Monte Carlo standard error of a coverage near 0.95 with R chains: sqrt(0.95·0.05/R) (0.005 at 2000).
Fixed seed: the same numbers every run.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from typing import Any

import numpy as np
from scipy import stats

from driftloop.analysis.chain_rate import (
    METHOD_JUMP,
    METHOD_NOISE,
    METHOD_RANDOM_WALK,
    METHOD_REVERTING,
    WALK_WIDEN,
    chain_rate_ci,
    rate_over_chains_ci,
)

RATE = 0.3
PHI_AR = 0.8
PHI_SATURATING = 0.9
LENGTHS = (10, 25, 51, 101, 201, 401)  # frames; 101: 100 increments, the least with an interval
REGIMES = ("line + noise", "random walk", "line + AR(1) φ=0.8", "saturating", "step change", "fixed point",
           "walk that stops", "random walk + noise")  # fmt: skip


def simulate(rng: np.random.Generator, regime: str, reps: int, n: int) -> tuple[np.ndarray, float]:
    """(reps × n values at steps 0..n−1, the true average change per step)."""
    steps = n - 1
    t = np.arange(n, dtype=float)
    eps = rng.standard_normal((reps, n))
    if regime == "line + noise":
        return RATE * t + eps, RATE
    if regime == "random walk":
        walk = np.cumsum(RATE + eps[:, 1:], axis=1)
        return np.column_stack([np.zeros(reps), walk]), RATE
    if regime == "line + AR(1) φ=0.8":
        e = np.empty_like(eps)
        e[:, 0] = eps[:, 0] / math.sqrt(1 - PHI_AR**2)
        for i in range(1, n):
            e[:, i] = PHI_AR * e[:, i - 1] + eps[:, i]
        return RATE * t + e, RATE
    if regime == "saturating":
        level = RATE * steps / (1 - PHI_SATURATING**steps)
        y = np.zeros((reps, n))
        for i in range(1, n):
            y[:, i] = level + PHI_SATURATING * (y[:, i - 1] - level) + eps[:, i]
        return y, level * (1 - PHI_SATURATING**steps) / steps
    if regime in ("fixed point", "walk that stops"):
        half = steps // 2
        d = RATE + eps[:, 1:]
        d[:, half:] = 0.0
        y = np.column_stack([np.zeros(reps), np.cumsum(d, axis=1)])
        if regime == "walk that stops":
            y[:, half + 1 :] += 0.05 * rng.standard_normal((reps, n - half - 1))
        return y, RATE * half / steps
    if regime == "random walk + noise":
        walk = np.column_stack([np.zeros(reps), np.cumsum(RATE + eps[:, 1:], axis=1)])
        return walk + rng.standard_normal((reps, n)), RATE
    if regime == "step change":
        d = eps[:, 1:].copy()
        d[:, steps // 2] += RATE * steps
        return np.column_stack([np.zeros(reps), np.cumsum(d, axis=1)]), RATE
    raise ValueError(regime)


def ols_intervals(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The old per-chain interval: OLS slope on the step with a 95% t interval (df = n − 2), vectorised."""
    n = y.shape[1]
    tc = np.arange(n) - (n - 1) / 2
    sxx = float(tc @ tc)
    yc = y - y.mean(axis=1, keepdims=True)
    slope = yc @ tc / sxx
    resid = yc - slope[:, None] * tc
    half = stats.t.ppf(0.975, n - 2) * np.sqrt((resid**2).sum(axis=1) / (n - 2) / sxx)
    return slope - half, slope + half


_BRANCH = {METHOD_NOISE: "w", METHOD_REVERTING: "r", METHOD_RANDOM_WALK: "s", METHOD_JUMP: "j"}


def cell(rng: np.random.Generator, regime: str, reps: int, n: int) -> dict[str, Any]:
    """Coverage of the old and the new interval for one regime and length."""
    y, truth = simulate(rng, regime, reps, n)
    lo, hi = ols_intervals(y)
    steps = np.arange(n)
    found = [chain_rate_ci(steps, row) for row in y]
    given = [iv for iv in found if iv.has_ci]
    covered = sum(iv.ci_low <= truth <= iv.ci_high for iv in given)  # type: ignore[operator]
    branches = Counter(_BRANCH.get(iv.method, "?") for iv in given)
    return {
        "ols": float(np.mean((lo <= truth) & (truth <= hi))),
        "ols_width": float(np.median(hi - lo)),
        "new": covered / len(given) if given else math.nan,
        "given": len(given) / reps,
        "branches": " ".join(f"{b} {k / len(given):.0%}" for b, k in sorted(branches.items())),
        "new_width": float(np.median([iv.ci_high - iv.ci_low for iv in given])) if given else math.nan,  # type: ignore[operator]
    }


def pooled_cell(rng: np.random.Generator, regime: str, reps: int, n: int, k: int) -> float:
    """Coverage of :func:`rate_over_chains_ci` for ``k`` chains of one image (independent seeds)."""
    y, truth = simulate(rng, regime, reps * k, n)
    steps = np.arange(n)
    found = [chain_rate_ci(steps, row) for row in y]
    covered = 0
    for r in range(reps):
        iv = rate_over_chains_ci(found[r * k : (r + 1) * k], ["image"] * k)
        covered += iv.ci_low <= truth <= iv.ci_high  # type: ignore[operator]
    return covered / reps


def calibrate(rng: np.random.Generator, reps: int, n: int) -> tuple[float, float]:
    """(the factor on the walk branch's critical value that makes the rule cover random walks 95%, the share
    of walks the unit-root test calls reverting) at ``n`` frames."""
    y, truth = simulate(rng, "random walk", reps, n)
    found = [chain_rate_ci(np.arange(n), row) for row in y]
    ratios, other_covered, reverting = [], 0, 0
    for iv in found:
        if iv.method == METHOD_NOISE:  # |error| over the plain t half-width
            ratios.append(abs(iv.mean - truth) / (stats.t.ppf(0.975, iv.df) * iv.se))  # type: ignore[arg-type,operator]
        else:
            other_covered += iv.ci_low <= truth <= iv.ci_high  # type: ignore[operator]
            reverting += iv.method == METHOD_REVERTING
    needed = math.ceil(0.95 * reps) - other_covered  # walk-branch chains that must be covered
    return float(np.sort(ratios)[needed - 1]), reverting / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=2000, help="simulated chains per cell (default 2000)")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--calibrate", action="store_true", help="re-derive WALK_WIDEN on random walks")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    if args.calibrate:
        print(f"WALK_WIDEN is {WALK_WIDEN}; needed on {args.reps} random walks per length:")
        for n in (101, 151, 201, 401):
            factor, reverting = calibrate(rng, args.reps, n)
            print(f"  {n} frames: {factor:.3f} (the test called {reverting:.1%} of the walks reverting)",
                  flush=True)  # fmt: skip
        print(f"\n{time.perf_counter() - start:.0f} s")
        return
    print(f"{args.reps} chains per cell; true rate 0.3 per step; Monte Carlo SE of a 95% coverage: "
          f"{math.sqrt(0.95 * 0.05 / args.reps):.3f}")  # fmt: skip
    print()
    print(
        "| how the measure moves | frames | ols_rate covers | chain_rate_ci covers | given | branches "
        "| width old → new |"
    )
    print("|---|---|---|---|---|---|---|")
    for regime in REGIMES:
        for n in LENGTHS:
            c = cell(rng, regime, args.reps, n)
            new = "no interval" if c["given"] == 0 else f"{c['new']:.1%}"
            width = f"{c['ols_width']:.3g} → " + ("–" if c["given"] == 0 else f"{c['new_width']:.3g}")
            cov = f"{c['ols']:.1%} | {new} | {c['given']:.0%} | {c['branches']}"
            print(f"| {regime} | {n} | {cov} | {width} |", flush=True)
    print()
    print("Chains of one image pooled (rate_over_chains_ci), 3 chains of 101 frames:")
    for regime in REGIMES:
        print(f"  {regime}: {pooled_cell(rng, regime, args.reps, 101, 3):.1%}", flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
