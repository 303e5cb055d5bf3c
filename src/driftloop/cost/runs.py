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


TURN_MARKS = (1, 2, 5, 10, 25, 50, 75, 100)


def turn_costs(run: RunView) -> list[tuple[int, int, float, float, float]]:
    """A conversation run's cost curve: (turn, copies, mean USD per copy, mean input tokens per copy,
    USD spent by then over all chains) at turns 1, 2, 5, 10, 25, 50, 75, 100 and the last; empty for a run
    whose copies are not turns of a thread. Input tokens: the mainline's (OpenAI) or the prompt's
    (Gemini), the part that grows as the thread does."""
    by_step: dict[int, list[tuple[float, float]]] = {}
    for r in run.frame_rows():
        info = r.info or {}
        if r.step <= 0 or "thread" not in info:
            continue
        usage = info.get("usage") or {}
        tokens = usage.get("input_tokens", usage.get("prompt_token_count", 0))
        by_step.setdefault(r.step, []).append((float((r.cost or {}).get("usd") or 0.0), float(tokens or 0)))
    if not by_step:
        return []
    last, spent, out = max(by_step), 0.0, []
    for step in sorted(by_step):
        usd = [u for u, _ in by_step[step]]
        spent += sum(usd)
        if step in TURN_MARKS or step == last:
            tokens = [t for _, t in by_step[step]]
            out.append((step, len(usd), sum(usd) / len(usd), sum(tokens) / len(tokens), spent))
    return out
