"""A model against the control: differences with bootstrap intervals, Hedges' g and permutation tests.

The definitions are in :mod:`driftloop.analysis.bias` (the card's module docstring); the numbers come from
:mod:`driftloop.analysis.stats`. One call compares every statistic (column) of a model at once, with one set
of bootstrap draws and relabellings, so a column's result does not depend on which other columns exist.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from driftloop.analysis.card import Comparison
from driftloop.analysis.stats import (
    ALPHA,
    PermutationResult,
    column_rng,
    draw_weights,
    hedges_g,
    joint_draws,
    percentile_ci,
    safe_ratio,
    seeds_crossed,
    sign_flip_test,
    sign_patterns,
    stratified_permutation_test,
    varies_within_image,
)
from driftloop.analysis.text import format_p

__all__ = ["Group", "compare_all"]

Group = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]  # (chains × statistics values, images, seeds)


def compare_all(
    m: Group, c: Group, names: Sequence[str], control: str, n_boot: int, n_perm: int, rng: np.random.Generator
) -> list[Comparison | None]:
    """Model vs control for every column (statistic) at once; one set of bootstrap draws and relabellings."""
    (vm, im, sm), (vc, ic, sc) = m, c
    fm, fc = np.isfinite(vm), np.isfinite(vc)
    crossed_m, crossed_c = seeds_crossed(im, sm), seeds_crossed(ic, sc)
    base = int(rng.integers(0, 2**63))
    boot_one = boot_two = None
    if n_boot > 0 and np.unique(im).size >= 2 and np.unique(ic).size >= 2:
        wm, wc = joint_draws(rng, im, ic, n_boot)
        vm0, vc0 = np.where(fm, vm, 0.0), np.where(fc, vc, 0.0)
        boot_one = safe_ratio(wm @ vm0, wm @ fm) - safe_ratio(wc @ vc0, wc @ fc)
        if (crossed_m or crossed_c) and sm is not None and sc is not None:
            xm, xc = joint_draws(rng, sm, sc, n_boot)
            wm, wc = wm * xm, wc * xc
            boot_two = safe_ratio(wm @ vm0, wm @ fm) - safe_ratio(wc @ vc0, wc @ fc)
    shared_all = np.array(sorted(set(im.tolist()) & set(ic.tolist())))
    signs, exact = sign_patterns(shared_all.size, n_perm, rng) if shared_all.size >= 2 else (None, False)

    out: list[Comparison | None] = []
    for j in range(vm.shape[1]):
        okm, okc = fm[:, j], fc[:, j]
        mv, mi, cv, ci = vm[okm, j], im[okm], vc[okc, j], ic[okc]
        if mv.size == 0 or cv.size == 0:
            out.append(None)
            continue
        diff = float(mv.mean() - cv.mean())
        seeds_matter = (crossed_m and varies_within_image(mv, mi)) or (
            crossed_c and varies_within_image(cv, ci)
        )
        many = np.unique(mi).size >= 2 and np.unique(ci).size >= 2
        lo = hi = None
        ci_method = "none"
        if n_boot > 0 and (mv.size >= 2 or cv.size >= 2) and np.ptp(mv) == 0 and np.ptp(cv) == 0:
            lo = hi = float(mv[0] - cv[0])  # both constant: every resample gives this difference
            ci_method = "image bootstrap" if many else "chain bootstrap"
        elif many and boot_one is not None:
            two = boot_two is not None and seeds_matter
            lo, hi = percentile_ci((boot_two if two else boot_one)[:, j])  # type: ignore[index]
            ci_method = "image×seed bootstrap" if two else "image bootstrap"
        elif n_boot > 0 and mv.size >= 2 and cv.size >= 2:
            crng = column_rng(base, names, j)
            w_m, w_c = draw_weights(crng, mv.size, n_boot), draw_weights(crng, cv.size, n_boot)
            lo, hi = percentile_ci(w_m @ mv / mv.size - w_c @ cv / cv.size)
            ci_method = "chain bootstrap"

        notes = []
        shared = sorted(set(mi.tolist()) & set(ci.tolist()))
        result: PermutationResult | None
        if len(shared) >= 2 and signs is not None:
            # Paired at the image level: per shared image the mean of its chains for each model; a
            # relabelling swaps the two means of an image, i.e. flips the sign of its difference.
            test = "paired image-level permutation"
            d = np.array([mv[mi == s].mean() - cv[ci == s].mean() for s in shared])
            result = sign_flip_test(d, signs[:, np.searchsorted(shared_all, shared)], exact)
            left_out = int((~np.isin(mi, shared)).sum() + (~np.isin(ci, shared)).sum())
            if left_out:
                notes.append(f"{left_out} chain(s) on images only one model has are left out of the test")
            if seeds_matter:
                notes.append(
                    "the same seeds run on every image and the chains depend on them, so images are not "
                    "fully independent: the p-value may be too small; the interval resamples seeds as well"
                )
        elif len(shared) == 1:
            test = "within-image permutation (1 shared image)"
            notes.append("one shared source image: the test compares the chains of that image only")
            in_m, in_c = mi == shared[0], ci == shared[0]
            values = np.concatenate([mv[in_m], cv[in_c]])
            labels = np.concatenate([np.ones(in_m.sum(), bool), np.zeros(in_c.sum(), bool)])
            result = stratified_permutation_test(
                values, labels, [0] * values.size, n_perm, column_rng(base, names, j)
            )
        else:
            test = "image-level permutation (no shared image)"
            um, uc = np.unique(mi), np.unique(ci)
            units = [mv[mi == i].mean() for i in um] + [cv[ci == i].mean() for i in uc]
            labels = np.array([True] * um.size + [False] * uc.size)
            result = stratified_permutation_test(
                units, labels, [0] * len(units), n_perm, column_rng(base, names, j)
            )
        if result is not None and result.exact and result.min_p >= ALPHA:
            images_text = f"{result.n_strata} shared image{'s' if result.n_strata != 1 else ''}"
            notes.append(
                f"with {images_text} no outcome can reach p < {ALPHA:g} (smallest possible p = "
                f"{result.min_p:.2g})"
            )
        out.append(
            Comparison(
                control=control,
                difference=diff,
                ci_low=lo,
                ci_high=hi,
                ci_method=ci_method,
                hedges_g=hedges_g(mv, cv),
                p_value=None if result is None else result.p_value,
                p_text="p n/a" if result is None else format_p(result.p_value, result.at_floor),
                test=test if result is not None else "none",
                exact=bool(result and result.exact),
                n_relabelings=0 if result is None else result.n_relabelings,
                n_units=0 if result is None else result.n_model + result.n_control,
                n_model_chains=int(mv.size),
                n_control_chains=int(cv.size),
                statistic=None if result is None else result.statistic,
                min_p=None if result is None else result.min_p,
                notes=tuple(notes),
            )
        )
    return out
