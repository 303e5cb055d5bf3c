"""Planning a study: how many images, seeds and steps detect a drift of a given size with 80% power.

**The estimand and the model.** A chain's rate is its average change per step over steps 0..N,
``(y_N − y_0) / N``; the study's estimate is the mean over images of each image's mean chain rate, and its
95% interval is Student's t over the image means (df = images − 1), exactly what the bias card and the run
overview print (:func:`driftloop.analysis.intervals.mean_ci`). A chain of image *i* with seed *j* moves by

    y_k − y_{k−1} = μ + a_i + b_ij + e_ijk,  a_i ~ N(0, σ_image²), b_ij ~ N(0, σ_seed²), e_ijk ~ N(0, σ_step²)

(each step adds its own error to the last: a random walk around the chain's drift), so a chain's rate over
N steps is μ + a_i + b_ij + ē_ij with Var(ē_ij) = σ_step² / N, and the study's estimate has

    Var = σ_image² / I + σ_seed² / (I·S) + σ_step² / (I·S·N)

for I images, S seeds each and N steps. The **design effect** is that variance over the variance of the
mean of I·S independent chains: 1 + (S − 1)·ρ with ρ the share of a chain's rate variance that its image
explains; seeds help only as far as ρ is small.

**Power** of the two-sided t test at level α with df = I − 1 and noncentrality δ / SE (δ: the drift per step
to detect): P(|T| > t_{1−α/2}) for T noncentral t, from scipy. The planner picks, among designs with
power ≥ the target, the one with the fewest model calls I·S·N (then the fewest images, then the fewest
steps); images, seeds or steps the user fixes are kept. The expected 95% interval half-width is
t_{0.975, I−1}·SE.

**From a pilot** (:func:`pilot_components`), per chain over steps 0..N of the pilot: its rate, and the
variance of its step-to-step changes (which estimates σ_step² if changes are independent). Between chains
of one image (seeds): the pooled within-image variance W of the rates estimates σ_seed² + σ_step²/N; the
step part is capped at W (a deterministic model, whose chains of one image are identical, has no noise a
seed could average away) and the rest is σ_seed². Between images: the variance B of image means estimates
σ_image² + mean(1/S_i)·W. With one chain per image seeds cannot be told from steps (σ_seed is then taken as
0 and said); with one pilot image σ_image is unknown and must be given.

**Validated by simulation** (:func:`simulate_power`, ``benchmarks/plan_power.py``): chains are simulated
step by step under the model with the pilot's components and the planned design, each simulated study is
analysed with :func:`~driftloop.analysis.intervals.mean_ci`, and the share of studies whose interval
excludes 0 is the achieved power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import integrate, stats

from driftloop.analysis.chains import chain_rows, numeric_column
from driftloop.analysis.intervals import mean_ci
from driftloop.analysis.stats import ALPHA
from driftloop.errors import SpecError

__all__ = [
    "POWER",
    "Components",
    "Design",
    "design_for",
    "pilot_components",
    "power",
    "simulate_power",
]

POWER = 0.8
MAX_IMAGES = 1000
MAX_SEEDS = 32


@dataclass(frozen=True)
class Components:
    """The standard deviations of a chain's rate (measure units per step) by source: between images, between
    seeds of one image, and one step's change (see the module). ``pilot`` describes where they came from;
    ``notes`` say what had to be assumed."""

    image: float
    seed: float
    step: float
    pilot: str = "assumed"
    pilot_steps: int | None = None
    notes: tuple[str, ...] = ()

    def variance(self, images: int, seeds: int, steps: int) -> float:
        """Variance of the study's estimate (mean over images of the image means of chain rates)."""
        return (
            self.image**2 / images + self.seed**2 / (images * seeds) + self.step**2 / (images * seeds * steps)
        )

    def design_effect(self, seeds: int, steps: int) -> float:
        """Var of the design's estimate over Var of the mean of as many independent chains."""
        chain = self.image**2 + self.seed**2 + self.step**2 / steps
        return 1.0 if chain == 0 else 1.0 + (seeds - 1) * self.image**2 / chain


@dataclass(frozen=True)
class Design:
    """A study design and what it is expected to give for a drift of ``effect`` per step."""

    images: int
    seeds: int
    steps: int
    effect: float
    power: float
    se: float
    df: int
    half_width: float  # expected half-width of the 95% interval of the rate
    design_effect: float
    alpha: float = ALPHA

    @property
    def chains(self) -> int:
        return self.images * self.seeds

    @property
    def calls(self) -> int:
        return self.images * self.seeds * self.steps


def power(
    effect: float, components: Components, images: int, seeds: int, steps: int, alpha: float = ALPHA
) -> float:
    """Power of the two-sided t test over images (df = images − 1) to find a drift of ``effect`` per step."""
    if images < 2:
        return 0.0
    se = math.sqrt(components.variance(images, seeds, steps))
    df = images - 1
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    if se == 0:
        return 1.0 if effect != 0 else alpha
    nc = abs(effect) / se
    upper = float(stats.nct.sf(crit, df, nc))
    if not math.isfinite(upper):  # scipy's noncentral t gives NaN far out: integrate over the χ² instead

        def given(v: float) -> float:  # P(T > crit | χ²_df = v)
            return float(stats.norm.sf(crit * math.sqrt(v / df) - nc) * stats.chi2.pdf(v, df))

        upper = integrate.quad(given, 0, math.inf)[0]
    lower = float(stats.nct.cdf(-crit, df, nc))  # the wrong sign: negligible wherever scipy fails
    return min(1.0, upper + (lower if math.isfinite(lower) else 0.0))


def _design(effect: float, c: Components, images: int, seeds: int, steps: int, alpha: float) -> Design:
    se = math.sqrt(c.variance(images, seeds, steps))
    df = images - 1
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    got = power(effect, c, images, seeds, steps, alpha)
    return Design(images, seeds, steps, effect, got, se, df, half, c.design_effect(seeds, steps), alpha)


def _normal_images(effect: float, c: Components, seeds: int, steps: int, target: float, alpha: float) -> int:
    """Images a z test would need: a lower bound for the t test's (whose df only add to it)."""
    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target))
    per_image = c.image**2 + c.seed**2 / seeds + c.step**2 / (seeds * steps)
    return max(2, math.ceil(per_image * (z / effect) ** 2 - 1e-9))


def _fewest_images(effect: float, c: Components, seeds: int, steps: int, target: float, alpha: float,
                   most: int) -> int | None:  # fmt: skip
    """The fewest images (2..most) reaching ``target`` power: up from the z test's count (power grows with
    images, and the t test needs at most a few more)."""
    i = _normal_images(effect, c, seeds, steps, target, alpha)
    while i <= most:
        if power(effect, c, i, seeds, steps, alpha) >= target:
            return i
        i += 1
    return None


def design_for(
    effect: float,
    components: Components,
    images: int | None = None,
    seeds: int | None = None,
    steps: tuple[int, int] | int = 20,
    target: float = POWER,
    alpha: float = ALPHA,
    max_images: int = MAX_IMAGES,
    max_seeds: int = MAX_SEEDS,
) -> Design:
    """The cheapest design (fewest model calls) with at least ``target`` power to find ``effect`` per step.

    ``images`` / ``seeds`` fix those numbers; ``steps`` is a number, or a (lowest, highest) range to choose
    from. With fixed images, when no choice of seeds and steps reaches the target, the most powerful one is
    returned (its ``power`` says it falls short). Raises :class:`~driftloop.errors.SpecError` when no
    design in range reaches the target.
    """
    if not math.isfinite(effect) or effect == 0:
        raise SpecError(f"the drift to detect must be a non-zero number (got {effect})")
    lo, hi = (steps, steps) if isinstance(steps, int) else steps
    if lo < 1 or hi < lo:
        raise SpecError(f"steps must be at least 1 (got {lo}–{hi})")
    if images is not None and images < 2:
        raise SpecError("a study needs at least 2 images for an interval across images")
    if seeds is not None and seeds < 1:
        raise SpecError("seeds must be at least 1")
    noisy_chains = components.seed > 0 or components.step > 0
    seed_choices = [seeds] if seeds is not None else (range(1, max_seeds + 1) if noisy_chains else [1])
    best: Design | None = None
    strongest: Design | None = None  # with fixed images: the most powerful design, if none reaches the target
    for n in range(lo, hi + 1):
        for s in seed_choices:
            if images is not None:
                candidate = _design(effect, components, images, s, n, alpha)
                if strongest is None or candidate.power > strongest.power + 1e-12:
                    strongest = candidate
                if candidate.power < target:
                    continue
            else:
                least = _normal_images(effect, components, s, n, target, alpha)
                if best is not None and least * s * n > best.calls:
                    continue  # cannot beat the best design so far
                i = _fewest_images(effect, components, s, n, target, alpha, max_images)
                if i is None:
                    continue
                candidate = _design(effect, components, i, s, n, alpha)
            key = (candidate.calls, candidate.images, candidate.steps)
            if best is None or key < (best.calls, best.images, best.steps):
                best = candidate
    if best is None and strongest is not None:
        return strongest
    if best is None:
        raise SpecError(
            f"no design with at most {max_images} images × {max(seed_choices)} seed(s) × {hi} steps reaches "
            f"{target:.0%} power for a drift of {effect:g} per step; the drift is small against the spread "
            f"between images (SD {components.image:.3g} per step): study a larger drift"
        )
    return best


# ---------------------------------------------------------------------------------------------- pilot


def _chain_table(df: pd.DataFrame, measure: str, steps: int | None) -> tuple[pd.DataFrame, int]:
    """Per pilot chain: image, rate over steps 0..N and the variance of its step changes; and N."""
    if measure not in df.columns:
        raise SpecError(
            f"the pilot runs have no measure {measure!r}; measure their frames with "
            "`driftloop metrics RUN_ID --recompute` (or pick a measured column)"
        )
    image_col = "image" if "image" in df.columns else "input"
    if image_col not in df.columns or "chain" not in df.columns:
        raise SpecError("the pilot table needs 'chain', 'step' and 'image' (or 'input') columns")
    chains = []
    for chain, g in df.groupby("chain", sort=True):
        rows = chain_rows(g)
        st = rows["step"].to_numpy()
        v = numeric_column(rows, measure)
        if not (st.size and st[0] == 0 and np.isfinite(v[0])):
            continue
        chains.append((str(chain), str(rows[image_col].iloc[0]), st, v))
    if not chains:
        raise SpecError(f"no pilot chain has {measure!r} measured at step 0")
    horizon = min(int(st[-1]) for _, _, st, _ in chains) if steps is None else steps
    if horizon < 2:
        raise SpecError(f"the pilot chains are too short to plan from: {horizon} step(s); run at least 2")
    out = []
    for chain, image, st, v in chains:
        keep = st <= horizon
        st, v = st[keep], v[keep]
        if st[-1] != horizon or not np.isfinite(v[-1]):
            continue  # shorter than the horizon, or its last value missing
        changes = np.diff(v)[np.diff(st) == 1]
        changes = changes[np.isfinite(changes)]
        var = float(np.var(changes, ddof=1)) if changes.size > 1 else math.nan
        out.append({"chain": chain, "image": image, "rate": (v[-1] - v[0]) / horizon, "step_var": var})
    table = pd.DataFrame(out)
    if table.empty:
        raise SpecError(f"no pilot chain reaches step {horizon} with {measure!r} measured")
    return table, horizon


def pilot_components(
    df: pd.DataFrame, measure: str, steps: int | None = None, image_sd: float | None = None
) -> Components:
    """Variance components of ``measure``'s chain rate from a pilot's metrics table (columns ``chain``,
    ``step``, ``image`` or ``input``, and the measure) over steps 0..``steps`` (default: the shortest
    chain's last step); see the module. ``image_sd`` replaces the between-image estimate (needed with a
    single pilot image)."""
    table, horizon = _chain_table(df, measure, steps)
    notes: list[str] = []
    step_var = float(np.nanmean(table["step_var"])) if table["step_var"].notna().any() else 0.0
    groups = [g["rate"].to_numpy() for _, g in table.groupby("image", sort=True)]
    within = [g for g in groups if g.size > 1]
    if within:
        dof = sum(g.size - 1 for g in within)
        w = float(sum(((g - g.mean()) ** 2).sum() for g in within) / dof)
        if w <= 1e-12 * max(step_var / horizon, float(np.var(table["rate"])), 1e-300):
            w = 0.0  # identical chains, up to rounding
        step_part = min(step_var / horizon, w)
        if step_part < step_var / horizon:
            notes.append("chains of one image differ less than their step changes suggest: the step noise "
                         "is capped at what seeds show (a model that ignores its seed has none)")  # fmt: skip
        step_var = step_part * horizon
        seed_var = w - step_part
    else:
        w = step_var / horizon
        seed_var = 0.0
        notes.append("one chain per pilot image: seeds cannot be told from step noise (seed SD taken as 0)")
    if image_sd is not None:
        image_var = image_sd**2
        notes.append("the spread between images is assumed (--sd-image), not estimated")
    elif len(groups) < 2:
        raise SpecError(
            "the pilot has chains of a single image, so the spread between images is unknown: pilot on "
            "at least 2 images (better 5+), or state it with --sd-image"
        )
    else:
        means = np.array([g.mean() for g in groups])
        inv = float(np.mean([1.0 / g.size for g in groups]))
        image_var = max(0.0, float(np.var(means, ddof=1)) - inv * w)
        if len(groups) < 5:
            notes.append(f"the spread between images rests on {len(groups)} pilot images: a rough guide")
    pilot = f"{len(table)} pilot chain(s) of {len(groups)} image(s), steps 0–{horizon}"
    return Components(math.sqrt(image_var), math.sqrt(max(seed_var, 0.0)), math.sqrt(max(step_var, 0.0)),
                      pilot, horizon, tuple(notes))  # fmt: skip


# --------------------------------------------------------------------------------------------- checking


def simulate_power(
    design: Design, components: Components, reps: int = 2000, rng: np.random.Generator | None = None
) -> float:
    """The share of simulated studies whose 95% interval (:func:`mean_ci` over images) excludes 0.

    Each study draws the design's chains step by step under the module's model (image and seed effects on
    the drift, an independent error every step), takes each chain's rate (y_N − y_0)/N and analyses the
    rates exactly as driftloop does."""
    rng = rng or np.random.default_rng(0)
    i, s, n = design.images, design.seeds, design.steps
    labels = np.repeat(np.arange(i), s).astype(str)
    hits = 0
    for _ in range(reps):
        drift = (
            design.effect + rng.normal(0, components.image, (i, 1)) + rng.normal(0, components.seed, (i, s))
        )
        walk = np.cumsum(drift[..., None] + rng.normal(0, components.step, (i, s, n)), axis=-1)
        rates = walk[..., -1] / n  # y_0 = 0
        iv = mean_ci(rates.ravel(), labels)
        hits += bool(iv.has_ci and (iv.ci_low > 0 or iv.ci_high < 0))  # type: ignore[operator]
    return hits / reps
