"""Time, energy, CO2, water and money of a run, each number labelled measured or estimated.

Three modules, one concern each:
- :mod:`~driftloop.cost.meters`: what is measured around a model call (wall and CPU time; energy from RAPL,
  NVML, or an estimate) and the per-frame :class:`FrameCost` record.
- :mod:`~driftloop.cost.factors`: the documented factor table (``driftloop/cost_factors.toml``) and its
  per-workspace and per-run overrides.
- :mod:`~driftloop.cost.accounting`: conversions (CO2e, water, phone charges, glasses), totals per chain and
  per run, and the sentences and report rows that show them.
- :mod:`~driftloop.cost.runs`: a stored run's totals, from its frame rows.

The engine's use::

    meters = pick_meters(replicator.requirements.device, factors)
    with measure(meters) as m:
        copies = replicator.replicate(frames, seeds)
    costs = m.frame_costs(len(copies))            # or hosted=hosted_estimate(factors, "openai:gpt-image-1")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_names

if TYPE_CHECKING:
    from driftloop.cost.accounting import (
        COST_BY_HEADERS,
        Missing,
        SourceShare,
        Totals,
        chain_cost_line,
        co2_g,
        combine,
        cost_rows_by,
        cost_rows_for_report,
        energy_label,
        glasses,
        joules_to_wh,
        phone_charges,
        summary_lines,
        totals,
        water_ml,
    )
    from driftloop.cost.factors import (
        CostConfigError,
        Factor,
        Factors,
        Price,
        apply_overrides,
        default_factors,
        load_factors,
    )
    from driftloop.cost.meters import (
        SOURCE_CPU_ESTIMATE,
        SOURCE_NVML,
        SOURCE_PER_IMAGE,
        SOURCE_RAPL,
        CpuTimeEstimateMeter,
        EnergyMeter,
        EnergyReading,
        FrameCost,
        HostedEstimate,
        Measurement,
        Meters,
        NvmlMeter,
        RaplMeter,
        UnavailableMeter,
        hosted_estimate,
        measure,
        pick_meters,
    )
    from driftloop.cost.runs import run_factors, run_totals, turn_costs

_WHERE = {
    "COST_BY_HEADERS": "driftloop.cost.accounting",
    "Missing": "driftloop.cost.accounting",
    "SourceShare": "driftloop.cost.accounting",
    "Totals": "driftloop.cost.accounting",
    "chain_cost_line": "driftloop.cost.accounting",
    "co2_g": "driftloop.cost.accounting",
    "combine": "driftloop.cost.accounting",
    "cost_rows_by": "driftloop.cost.accounting",
    "cost_rows_for_report": "driftloop.cost.accounting",
    "energy_label": "driftloop.cost.accounting",
    "glasses": "driftloop.cost.accounting",
    "joules_to_wh": "driftloop.cost.accounting",
    "phone_charges": "driftloop.cost.accounting",
    "summary_lines": "driftloop.cost.accounting",
    "totals": "driftloop.cost.accounting",
    "water_ml": "driftloop.cost.accounting",
    "CostConfigError": "driftloop.cost.factors",
    "Factor": "driftloop.cost.factors",
    "Factors": "driftloop.cost.factors",
    "Price": "driftloop.cost.factors",
    "apply_overrides": "driftloop.cost.factors",
    "default_factors": "driftloop.cost.factors",
    "load_factors": "driftloop.cost.factors",
    "SOURCE_CPU_ESTIMATE": "driftloop.cost.meters",
    "SOURCE_NVML": "driftloop.cost.meters",
    "SOURCE_PER_IMAGE": "driftloop.cost.meters",
    "SOURCE_RAPL": "driftloop.cost.meters",
    "CpuTimeEstimateMeter": "driftloop.cost.meters",
    "EnergyMeter": "driftloop.cost.meters",
    "EnergyReading": "driftloop.cost.meters",
    "FrameCost": "driftloop.cost.meters",
    "HostedEstimate": "driftloop.cost.meters",
    "Measurement": "driftloop.cost.meters",
    "Meters": "driftloop.cost.meters",
    "NvmlMeter": "driftloop.cost.meters",
    "RaplMeter": "driftloop.cost.meters",
    "UnavailableMeter": "driftloop.cost.meters",
    "hosted_estimate": "driftloop.cost.meters",
    "measure": "driftloop.cost.meters",
    "pick_meters": "driftloop.cost.meters",
    "run_factors": "driftloop.cost.runs",
    "run_totals": "driftloop.cost.runs",
    "turn_costs": "driftloop.cost.runs",
}
__getattr__ = lazy_names(__name__, _WHERE)  # the price tables without the run store: `driftloop models`

__all__ = [
    "COST_BY_HEADERS",
    "SOURCE_CPU_ESTIMATE",
    "SOURCE_NVML",
    "SOURCE_PER_IMAGE",
    "SOURCE_RAPL",
    "CostConfigError",
    "CpuTimeEstimateMeter",
    "EnergyMeter",
    "EnergyReading",
    "Factor",
    "Factors",
    "FrameCost",
    "HostedEstimate",
    "Measurement",
    "Meters",
    "Missing",
    "NvmlMeter",
    "Price",
    "RaplMeter",
    "SourceShare",
    "Totals",
    "UnavailableMeter",
    "apply_overrides",
    "chain_cost_line",
    "co2_g",
    "combine",
    "cost_rows_by",
    "cost_rows_for_report",
    "default_factors",
    "energy_label",
    "glasses",
    "hosted_estimate",
    "joules_to_wh",
    "load_factors",
    "measure",
    "phone_charges",
    "pick_meters",
    "run_factors",
    "run_totals",
    "summary_lines",
    "totals",
    "turn_costs",
    "water_ml",
]
