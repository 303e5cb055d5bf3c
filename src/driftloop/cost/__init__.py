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
