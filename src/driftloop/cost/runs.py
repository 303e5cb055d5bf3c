"""A stored run's cost: time, energy, CO2, water and money per chain and in total, from its frame rows.

An imported run's copies were made elsewhere: they count as ``elsewhere`` (cost unknown), not as free."""

from __future__ import annotations

import dataclasses

from driftloop.cost.accounting import Totals, combine, totals
from driftloop.cost.factors import Factors
from driftloop.cost.meters import FrameCost
from driftloop.store import RunView


def run_factors(run: RunView) -> Factors:
    """The cost factors the run was made with (a snapshot, so later edits do not rewrite history)."""
    return Factors.from_dict(run.run_config.cost["factors"])


def run_totals(run: RunView) -> tuple[dict[int, Totals], Totals]:
    """Time, energy, CO2, water and money per chain and for the whole run."""
    factors = run_factors(run)
    per_chain: dict[int, list[FrameCost]] = {c.chain: [] for c in run.chains()}
    for r in run.frame_rows():
        if r.cost is not None:
            per_chain[r.chain].append(FrameCost.from_dict(r.cost))
    chains = {chain: totals(costs, factors) for chain, costs in per_chain.items()}
    if run.config.get("import"):  # step 0 is the original; every later frame is a copy made elsewhere
        made = {c.chain: sum(1 for r in run.frame_rows(c.chain) if r.step > 0) for c in run.chains()}
        chains = {c: dataclasses.replace(t, elsewhere=made[c]) for c, t in chains.items()}
    return chains, combine(chains.values()) if chains else totals([], factors)
