"""What a planned study would cost before it is run: model calls, money, time, energy and water.

The same estimates as ``sweep --dry-run`` and ``run --dry-run``: a hosted model's price per call (input
tokens included where the provider's rules are known) and its typical latency under its concurrency and
requests-per-minute limits (:func:`driftloop.sweep.plan.hosted_call`), the factor table's price for a
listed model, and the factor table's energy per hosted image. Where pilot runs of the model exist, their
measured (or estimated) time and energy per copy are scaled to the design's calls. Water is the energy ×
the factor table's water intensity (:func:`driftloop.cost.water_ml`). Nothing is called or written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from driftloop.cost import Factors, Totals, combine, water_ml
from driftloop.sweep.plan import hosted_call, price_per_copy

__all__ = ["DesignCost", "design_cost"]


@dataclass(frozen=True)
class DesignCost:
    """The cost of ``chains`` chains of ``steps`` copies of ``model``; None where it is not known."""

    model: str
    chains: int
    steps: int
    usd: float | None
    seconds: float | None
    energy_wh: float | None
    water_ml: float | None
    detail: tuple[str, ...] = ()  # how each number was reached

    @property
    def calls(self) -> int:
        return self.chains * self.steps


def design_cost(
    model: str, size: int, chains: int, steps: int, factors: Factors, pilot: Sequence[Totals] = ()
) -> DesignCost:
    """The dry run of a design: ``chains`` × ``steps`` copies of ``model`` at ``size`` px (see the module).

    ``pilot``: cost totals of earlier runs of the same model and size, whose time and energy per copy are
    used when nothing better is known."""
    calls = chains * steps
    detail: list[str] = []
    call = hosted_call(model, factors, size)
    seen = combine(pilot) if pilot else None
    if call is not None:
        usd: float | None = call.usd * calls
        seconds = call.duration(chains, steps)
        wh = factors.hosted_wh_per_image
        energy: float | None = wh.value * calls
        known = "the provider's typical latency, an assumption" if seconds is not None else "no latency known"
        detail += [
            f"price: {call.detail}",
            f"time: {known}",
            f"energy: {wh.value:g} Wh per image, the factor table's estimate for hosted models",
        ]
    else:
        usd = price_per_copy(model, factors, size) * calls
        detail.append("price: the factor table's price per copy" if usd else "price: local model, no fee")
        seconds = energy = None
        if seen is not None and seen.frames > 0:
            seconds = seen.wall_s / seen.frames * calls
            energy = seen.energy_wh / seen.frames * calls
            kind = "measured" if seen.measured else "estimated"
            detail.append(f"time and energy: per copy as in {seen.frames} earlier copies ({kind} energy)")
        else:
            detail.append("time and energy: unknown without an earlier run of this model at this size")
    water = water_ml(energy, factors) if energy is not None else None
    return DesignCost(model, chains, steps, usd, seconds, energy, water, tuple(detail))
