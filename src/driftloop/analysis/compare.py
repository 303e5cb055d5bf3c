"""A model against the control: paired differences with calibrated intervals, Hedges' g, permutation tests.

The definitions are in :mod:`driftloop.analysis.bias` (the card's module docstring); the intervals and the
paired test come from :mod:`driftloop.analysis.intervals`, the other numbers from
:mod:`driftloop.analysis.stats`. Every column (statistic) is compared on its own, its random relabellings
(when there are too many to enumerate) drawn from a generator seeded by the column's name, so a column's
result does not depend on which other columns exist.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from driftloop import fmt
from driftloop.analysis.card import Comparison
from driftloop.analysis.intervals import (
    METHOD_TWO_WAY,
    Interval,
    image_differences,
    paired_diff_ci,
    sign_flip_test,
    unpaired_diff_ci,
)
from driftloop.analysis.stats import ALPHA, column_rng, hedges_g, stratified_permutation_test

__all__ = ["Group", "compare_all"]

Group = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]  # (chains × statistics values, images, seeds)

PAIRED_TEST = "paired image-level permutation"


def _cells_match(mi: np.ndarray, ms: np.ndarray | None, ci: np.ndarray, cs: np.ndarray | None) -> bool:
    """True when both sides give seeds and, on every image they share, ran the same seeds: then the pairing
    unit is the (image, seed) cell, which lets the interval see seed effects shared across images."""
    if ms is None or cs is None:
        return False
    shared = np.intersect1d(mi, ci)
    in_m, in_c = np.isin(mi, shared), np.isin(ci, shared)
    cells_m = set(zip(mi[in_m].tolist(), ms[in_m].tolist(), strict=True))
    cells_c = set(zip(ci[in_c].tolist(), cs[in_c].tolist(), strict=True))
    return cells_m == cells_c


def _difference(
    mv: np.ndarray,
    mi: np.ndarray,
    ms: np.ndarray | None,
    cv: np.ndarray,
    ci: np.ndarray,
    cs: np.ndarray | None,
) -> Interval:
    """Model − control: paired at the image level when they share an image (per (image, seed) cell when the
    seeds match), else unpaired (Welch)."""
    if np.intersect1d(mi, ci).size == 0:
        return unpaired_diff_ci(mv, cv, mi, ci, ms, cs)
    if _cells_match(mi, ms, ci, cs):
        return paired_diff_ci(mv, cv, mi, ci, ms, cs)
    return paired_diff_ci(mv, cv, mi, ci)


def compare_all(
    m: Group, c: Group, names: Sequence[str], control: str, n_perm: int, rng: np.random.Generator
) -> list[Comparison | None]:
    """Model vs control for every column (statistic); None for a column one side has no value for."""
    (vm, im, sm), (vc, ic, sc) = m, c
    fm, fc = np.isfinite(vm), np.isfinite(vc)
    base = int(rng.integers(0, 2**63))
    out: list[Comparison | None] = []
    for j in range(vm.shape[1]):
        okm, okc = fm[:, j], fc[:, j]
        mv, mi, cv, ci = vm[okm, j], im[okm], vc[okc, j], ic[okc]
        ms = None if sm is None else sm[okm]
        cs = None if sc is None else sc[okc]
        if mv.size == 0 or cv.size == 0:
            out.append(None)
            continue
        diff = _difference(mv, mi, ms, cv, ci, cs)

        notes = []
        shared = np.intersect1d(mi, ci)
        n_units: int
        if shared.size >= 2:
            # Paired at the image level: per shared image the mean of its chains for each model; a
            # relabelling swaps the two means of an image, i.e. flips the sign of its difference.
            test = PAIRED_TEST
            d, _, _, _, left_out = image_differences(mv, cv, mi, ci)
            result = sign_flip_test(d, n_perm, column_rng(base, names, j))
            n_units, n_tested = 2 * int(d.size), int(d.size)
            if left_out:
                notes.append(
                    f"{left_out} chain(s) on images only one model has are left out of the comparison"
                )
            if diff.method == METHOD_TWO_WAY:
                notes.append(
                    "the same seeds run on every image and move the chains alike, so images are not fully "
                    "independent: the p-value may be too small; the interval accounts for the seeds as well"
                )
        else:
            if shared.size == 1:
                test = "within-image permutation (1 shared image)"
                notes.append("one shared source image: the test compares the chains of that image only")
                in_m, in_c = mi == shared[0], ci == shared[0]
                values = np.concatenate([mv[in_m], cv[in_c]])
                labels = np.concatenate([np.ones(in_m.sum(), bool), np.zeros(in_c.sum(), bool)])
            else:
                test = "image-level permutation (no shared image)"
                um, uc = np.unique(mi), np.unique(ci)
                values = np.array([mv[mi == i].mean() for i in um] + [cv[ci == i].mean() for i in uc])
                labels = np.array([True] * um.size + [False] * uc.size)
            strat = stratified_permutation_test(
                values, labels, [0] * values.size, n_perm, column_rng(base, names, j)
            )
            result = strat
            n_units = 0 if strat is None else strat.n_model + strat.n_control
            n_tested = 0 if strat is None else strat.n_strata
        if result is not None and result.exact and result.min_p >= ALPHA:
            images_text = f"{n_tested} shared image{'s' if n_tested != 1 else ''}"
            notes.append(
                f"with {images_text} no outcome can reach p < {ALPHA:g} (smallest possible p = "
                f"{fmt.probability(result.min_p)})"
            )
        out.append(
            Comparison(
                control=control,
                difference=diff.mean,
                ci_low=diff.ci_low,
                ci_high=diff.ci_high,
                ci_method=diff.method,
                hedges_g=hedges_g(mv, cv),
                p_value=None if result is None else result.p_value,
                p_text="p n/a" if result is None else fmt.p_value(result.p_value, result.at_floor),
                test=test if result is not None else "none",
                exact=bool(result and result.exact),
                n_relabelings=0 if result is None else result.n_relabelings,
                n_units=n_units,
                n_model_chains=int(mv.size),
                n_control_chains=int(cv.size),
                statistic=None if result is None else result.statistic,
                min_p=None if result is None else result.min_p,
                notes=tuple(notes),
            )
        )
    return out
