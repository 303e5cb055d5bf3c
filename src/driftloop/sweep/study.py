"""A study planned before it is run (``driftloop plan``): the design that detects a drift with 80% power,
from pilot runs in the workspace or from stated assumptions, and what it would cost.

The statistics are :mod:`driftloop.analysis.plan`; the cost is :func:`driftloop.sweep.design.design_cost`.
Pilot runs are named by run id (or unique prefix) or by a sweep name (its chains); they must be of one
model (one arm) so that their spread says something about that model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from driftloop import fmt
from driftloop.analysis.plan import POWER, Components, Design, design_for, pilot_components
from driftloop.analysis.stats import ALPHA
from driftloop.config import DEFAULT_WORKSPACE, arm_label
from driftloop.cost import Totals, load_factors, run_totals
from driftloop.cost.accounting import fmt_energy, fmt_water
from driftloop.errors import SpecError
from driftloop.measures import MEASURES, Measure
from driftloop.store import RunView, Store
from driftloop.sweep.design import DesignCost, design_cost
from driftloop.sweep.run import sweep_chains

__all__ = ["DEFAULT_PLAN_STEPS", "StudyPlan", "plan_study"]

DEFAULT_PLAN_STEPS = 20  # the horizon of a rate without a pilot or --steps


@dataclass(frozen=True)
class StudyPlan:
    """The answer of ``driftloop plan``: the question, the variance components, the design and its cost."""

    measure: Measure
    effect: float  # per step
    by_step: int | None  # the effect was asked as a total change by this step
    target: float
    components: Components
    design: Design
    cost: DesignCost
    size: int
    pilot_runs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def reached(self) -> bool:
        return self.design.power >= self.target - 1e-9

    def lines(self) -> list[str]:
        """The plan in plain lines (what ``driftloop plan`` prints)."""
        d, c, cost, info = self.design, self.components, self.cost, self.measure
        unit = info.unit
        by = (
            f" ({fmt.signed(self.effect * self.by_step, unit=unit)} by step {self.by_step})"
            if self.by_step
            else ""
        )
        out = [
            f"plan: detect {info.symbol} {fmt.signed(self.effect, unit=unit)} per step{by} in "
            f"{info.name or info.column} with {self.target:.0%} power at α = {d.alpha:g}",
            f"spread ({c.pilot}{'; runs ' + ', '.join(self.pilot_runs) if self.pilot_runs else ''}), SD of a "
            f"chain's rate per step: between images {fmt.significant(c.image, 3)}, between seeds "
            f"{fmt.significant(c.seed, 3)}; one step's change {fmt.significant(c.step, 3)}",
            f"design: {d.images} images × {d.seeds} seed(s) × {d.steps} steps = {d.chains} chains, "
            f"{d.calls:,} copies",
            f"  power {d.power:.0%} (t test over image means, df {d.df}); design effect "
            f"{d.design_effect:.2f}",
            f"  expected 95% interval of the rate: ±{fmt.significant(d.half_width, 3)}{unit} per step "
            f"(±{fmt.significant(d.half_width * d.steps, 3)}{unit} by step {d.steps})",
        ]
        if not self.reached:
            out.append(f"  this fixed design falls short of {self.target:.0%} power")
        money = "unknown" if cost.usd is None else fmt.usd(cost.usd)
        when = "unknown" if cost.seconds is None else "≈ " + fmt.duration(cost.seconds)
        energy = "unknown" if cost.energy_wh is None else fmt_energy(cost.energy_wh)
        water = "unknown" if cost.water_ml is None else fmt_water(cost.water_ml)
        out.append(f"cost of {cost.model} at {self.size} px (dry run, nothing called): {cost.calls:,} calls, "
                   f"{money}, time {when}, energy {energy}, water {water}")  # fmt: skip
        out += [f"  {line}" for line in cost.detail]
        out += [f"note: {n}" for n in self.notes]
        return out


@dataclass(frozen=True)
class _Pilot:
    table: pd.DataFrame
    model: str
    size: int
    totals: list[Totals]
    runs: tuple[str, ...]


def _pilot(store: Store, workspace: str | Path, targets: Sequence[str], model: str | None) -> _Pilot:
    """The pilot chains' metrics (``chain`` = run/chain, ``image`` = input hash), model, size and costs.

    ``model`` picks one arm of a pilot holding several (a sweep's model and its control)."""
    picked: dict[str, set[int] | None] = {}
    for target in targets:
        chains, _ = sweep_chains(workspace, target)
        if chains:
            for run_id, numbers in chains.items():
                picked[run_id] = (picked.get(run_id) or set()) | numbers
        else:
            picked[store.get_run(target).id] = None  # every chain (a RunNotFoundError names the target)
    views = {run_id: RunView(store, run_id) for run_id in picked}
    arm_of = {run_id: arm_label(v.run_config.model, v.run_config.stabilize) for run_id, v in views.items()}
    if model is not None:
        if model not in arm_of.values():
            raise SpecError(
                f"the pilot has no chains of {model!r}; it has {', '.join(sorted(set(arm_of.values())))}"
            )
        views = {run_id: v for run_id, v in views.items() if arm_of[run_id] == model}
    arms = {arm_of[run_id] for run_id in views}
    sizes = {v.run_config.requested_size for v in views.values()}
    if len(arms) > 1 or len(sizes) > 1:
        raise SpecError(
            f"the pilot holds chains of several models or sizes ({', '.join(sorted(arms))}; "
            f"{', '.join(str(s) for s in sorted(sizes))} px): plan one at a time, e.g. --model "
            f"{sorted(arms)[0]!r}"
        )
    frames, totals = [], []
    for run_id, view in views.items():
        numbers = picked[run_id]
        hashes = {c.chain: c.input_sha256 for c in view.chains() if numbers is None or c.chain in numbers}
        df = view.dataframe()
        df = df[df["chain"].isin(list(hashes))].copy()
        df["image"] = df["chain"].map(hashes)
        df["chain"] = run_id + "/" + df["chain"].astype(str)
        frames.append(df)
        per_chain, _ = run_totals(view)
        totals += [t for chain, t in per_chain.items() if chain in hashes]
    return _Pilot(pd.concat(frames, ignore_index=True), arms.pop(), sizes.pop(), totals, tuple(views))


def _earlier_totals(store: Store | None, model: str, size: int) -> list[Totals]:
    """Cost totals of the workspace's runs of ``model`` at ``size`` (their time and energy per copy)."""
    if store is None:
        return []
    found = []
    for row in store.runs():
        view = RunView(store, row.id)
        cfg = view.run_config
        if arm_label(cfg.model, cfg.stabilize) == model and cfg.requested_size == size:
            found.append(run_totals(view)[1])
    return found


def _steps(
    steps: int | tuple[int, int] | None, by_step: int | None, pilot_steps: int | None
) -> tuple[int, int]:
    if by_step is not None:
        if steps is not None and steps not in (by_step, (by_step, by_step)):
            raise SpecError("give either --by-step or --steps, not both")
        return by_step, by_step
    if steps is None:
        n = pilot_steps or DEFAULT_PLAN_STEPS
        return n, n
    return (steps, steps) if isinstance(steps, int) else steps


def plan_study(
    measure: str,
    effect: float,
    pilot: Sequence[str] = (),
    workspace: str | Path = DEFAULT_WORKSPACE,
    by_step: int | None = None,
    images: int | None = None,
    seeds: int | None = None,
    steps: int | tuple[int, int] | None = None,
    sd_image: float | None = None,
    sd_seed: float | None = None,
    sd_step: float | None = None,
    model: str | None = None,
    size: int | None = None,
    power: float = POWER,
    alpha: float = ALPHA,
) -> StudyPlan:
    """How many images, seeds and steps detect a drift of ``effect`` per step (or by step ``by_step``) in
    ``measure`` with ``power`` at ``alpha``, and what that study costs (a dry run: nothing is called or
    written); this is ``driftloop.plan``. See the module and :mod:`driftloop.analysis.plan`.

    ``pilot``: run ids or sweep names to estimate the spread from; the ``sd_*`` arguments state (or
    override) it, per step.
    ``images``, ``seeds`` and ``steps`` (a number or a (lowest, highest) range) fix the design where given.
    ``model``: with a pilot, which of its models (arms) to plan for; without, the model to cost (default
    taef2). ``size``: the frame side to cost (default: the pilot's, else 512)."""
    info = MEASURES.get(measure)
    if info is None:
        known = ", ".join(m for m, i in MEASURES.items() if i.symbol)
        raise SpecError(f"unknown measure {measure!r}; one of {known}")
    if not 0.5 <= power < 1 or not 0 < alpha < 0.5:
        raise SpecError(f"power must be in [0.5, 1) and alpha in (0, 0.5) (got {power}, {alpha})")
    if by_step is not None and by_step < 1:
        raise SpecError(f"--by-step must be at least 1 (got {by_step})")
    per_step = effect / by_step if by_step else effect
    store = Store(workspace) if Store.exists(workspace) else None
    notes: list[str] = []
    if pilot:
        if store is None:
            raise SpecError(f"no workspace at {workspace} to read the pilot runs {', '.join(pilot)} from")
        found = _pilot(store, workspace, pilot, model)
        lo, hi = _steps(steps, by_step, None)
        horizon = int(found.table.groupby("chain")["step"].max().min())
        at = hi if steps is not None or by_step is not None else None
        if at is not None and at > horizon:
            notes.append(f"the design's {at} steps go past the pilot's {horizon}: the step noise is "
                         "extrapolated as a random walk")  # fmt: skip
            at = horizon
        components = pilot_components(found.table, measure, at, sd_image)
        model, size = found.model, size or found.size
        seen = found.totals if size == found.size else []
        runs = found.runs
    else:
        if sd_image is None or sd_step is None:
            raise SpecError(
                "plan needs pilot runs (run ids or a sweep name) or the spread stated: --sd-image and "
                "--sd-step (and --sd-seed), each in the measure's units per step"
            )
        components = Components(sd_image, sd_seed or 0.0, sd_step, "assumed")
        model, size = model or "taef2", size or 512
        seen = _earlier_totals(store, model, size)
        runs = ()
    if pilot and (sd_seed is not None or sd_step is not None):
        components = dataclasses.replace(
            components,
            seed=components.seed if sd_seed is None else sd_seed,
            step=components.step if sd_step is None else sd_step,
            notes=(*components.notes, "seed or step spread stated, not estimated"),
        )
    lo, hi = _steps(steps, by_step, components.pilot_steps)
    design = design_for(per_step, components, images, seeds, (lo, hi), power, alpha)
    factors = load_factors(workspace=workspace if Path(workspace).is_dir() else None)
    cost = design_cost(model, size, design.chains, design.steps, factors, seen)
    return StudyPlan(info, per_step, by_step, power, components, design, cost, size, runs,
                     (*components.notes, *notes))  # fmt: skip
