"""A sweep as one row per cell: the arms of the sweep (model, its parameters, its stabilizer) with their
runs, status, chains, headline numbers and cost, as the sweep page shows them.

The numbers are means over each cell's chains of the stored chain summaries
(:mod:`driftloop.analysis.columns`, read in one query), never recomputed per request; their intervals are
on the bias card. A cell's factors are the parts of its spec string (the model's name, its bare argument,
each ``key=value``, the stabilizer): those that differ between cells become columns, those all cells share
are said once above the table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from driftloop.config import split_arm
from driftloop.errors import SpecError
from driftloop.replicators.spec import full_spec, split_spec

HEADLINE = {  # stored summary column -> the sweep table's short header (the full words are its title)
    "ssim_to_origin.final": "SSIM at the end",
    "half_life": "half-life",
    "lab_b_mean.change": "Δb* (warmth)",
    "lab_delta_e.final": "ΔE colour shift",
}
SIGNED = frozenset({"lab_b_mean.change"})  # shown with their sign: a change
MAX_FACTOR_COLUMNS = 4  # factor columns at most: the rest share the "parameters" column
PARAMETERS = "parameters"
_STATUS_RANK = ("running", "error", "stopped", "done")  # a cell is as unfinished as its least finished run


@dataclass(frozen=True)
class CellRun:
    """One run of a cell, with the short name the page shows (its id's random tail)."""

    id: str
    short: str
    status: str


@dataclass(frozen=True)
class SweepCell:
    """One arm of a sweep: its factor values, runs, chains, mean headline numbers and what its runs cost."""

    arm: str  # the arm label as stored (the chains filter's ``model=``)
    label: str  # model name (and bare argument): the row's title
    factors: dict[str, str]
    control: bool
    runs: list[CellRun]
    status: str
    chains: int
    numbers: dict[str, float | None] = field(default_factory=dict)
    reached: dict[str, int] = field(default_factory=dict)  # chains with a number, per column
    usd: float | None = None
    link_model: str = ""  # the value of ``model=`` that selects exactly this cell's chains


@dataclass(frozen=True)
class SweepCells:
    """The cells of a sweep, the factor columns that tell them apart and the settings they share."""

    cells: list[SweepCell]
    columns: list[str]  # factor names shown as columns, in order
    shared: dict[str, str]  # factor -> value every cell has


def short_id(run_id: str) -> str:
    """A run's short name: the random tail of its id (``…-9f2c`` → ``9f2c``), else the id's last 8."""
    tail = run_id.rsplit("-", 1)[-1]
    return tail if 2 <= len(tail) <= 8 and tail != run_id else run_id[-8:]


def factors_of(arm: str) -> tuple[str, dict[str, str]]:
    """(label, factors) of an arm: ``openai:gpt-image-2,quality=low + stabilize=colour:lab`` →
    (``openai gpt-image-2``, {quality: low, stabilizer: colour:lab})."""
    model, stabilize = split_arm(arm)
    try:
        name, bare, params = split_spec(full_spec(model))
    except SpecError:  # not a spec (an imported run's label): the label as it is
        name, bare, params = model, None, {}
    label = f"{name} {bare}" if bare else name
    return label, {**params, "stabilizer": stabilize}


def _mean(count: int, total: float) -> float | None:
    return total / count if count and math.isfinite(total) else None


def sweep_cells(
    arms: Mapping[str, str],
    chains: Mapping[str, Iterable[int]],
    statuses: Mapping[str, str],
    costs: Mapping[str, float | None],
    sums: Mapping[tuple[str, str], tuple[int, float]],
    control: str | None = None,
) -> SweepCells:
    """The cells of a sweep from its runs' arms (run → arm label), its chains (run → chain numbers), each
    run's status and cost, and the sums of its chains' stored numbers ((run, name) → (count, sum): see
    :func:`driftloop.store.chain_table.summary_sums`)."""
    per_run: dict[str, list[int]] = {run: sorted(set(numbers)) for run, numbers in chains.items()}
    by_arm: dict[str, list[str]] = {}
    for run in chains:
        by_arm.setdefault(arms.get(run, "?"), []).append(run)
    got: dict[tuple[str, str], tuple[int, float]] = {}
    for (run, name), (count, total) in sums.items():
        n, t = got.get((arms.get(run, "?"), name), (0, 0.0))
        got[(arms.get(run, "?"), name)] = (n + count, t + total)
    described = {arm: factors_of(arm) for arm in by_arm}
    plain_models = {split_arm(a)[0] for a in by_arm if split_arm(a)[1] != "none"}  # models also stabilized
    cells = []
    for arm, runs in by_arm.items():
        label, factors = described[arm]
        model, stabilize = split_arm(arm)
        run_status = [statuses.get(r, "done") for r in runs]
        status = min(run_status, key=lambda s: _STATUS_RANK.index(s) if s in _STATUS_RANK else 0)
        usd = [costs.get(r) for r in runs]
        n_chains = sum(len(per_run[r]) for r in runs)
        numbers = {n: _mean(*got.get((arm, n), (0, 0.0))) for n in HEADLINE}
        reached = {n: got.get((arm, n), (0, 0.0))[0] for n in HEADLINE}
        exact = arm if stabilize != "none" or model not in plain_models else f"{model} + stabilize=none"
        cells.append(
            SweepCell(arm, label, factors, arm == control,
                      [CellRun(r, short_id(r), s) for r, s in zip(runs, run_status, strict=True)], status,
                      n_chains, numbers, reached, None if any(u is None for u in usd) else sum(usd), exact)
        )  # fmt: skip
    if not cells:
        return SweepCells([], [], {})
    cells.sort(key=lambda c: (c.control, c.label, sorted(c.factors.items())))
    names = list(dict.fromkeys(k for c in cells for k in c.factors))
    varying = [k for k in names if len({c.factors.get(k, "–") for c in cells}) > 1]
    shared = {k: cells[0].factors[k] for k in names if k not in varying and k in cells[0].factors}
    # a factor every cell has (a grid's axis, the stabilizer) is a column; a model's own parameters (quality
    # of one model, strength of another) share one "parameters" column, as key=value
    own = [k for k in varying if k != "stabilizer" and all(k in c.factors for c in cells)]
    own = own[: MAX_FACTOR_COLUMNS - 2]
    rest = [k for k in varying if k not in own and k != "stabilizer"]
    for c in cells:
        c.factors[PARAMETERS] = " · ".join(f"{k}={c.factors[k]}" for k in rest if k in c.factors) or "–"
    varying = [*own, *([PARAMETERS] if rest else []), *(["stabilizer"] if "stabilizer" in varying else [])]
    return SweepCells(cells, varying, shared)
