"""From per-frame cost records to totals a person can feel: Wh, grams of CO2e, ml of water, money.

The arithmetic (E is the energy at the chips, in Wh; every factor comes with its source):
    CO2e (g)     = E / 1000 × PUE × grid intensity (g/kWh)          facility energy × grid
    water (ml)   = E / 1000 × (WUE on-site + PUE × grid water) × 1000   Li et al., "Making AI Less Thirsty"
    phone charges = E / Wh per charge;  glasses = water / ml per glass
Energy may be measured; CO2e, water and the comparisons are always estimates made from it, and say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from driftloop import fmt
from driftloop.cost.factors import Factors, default_factors
from driftloop.cost.meters import (
    SOURCE_CPU_ESTIMATE,
    SOURCE_NVML,
    SOURCE_PER_IMAGE,
    SOURCE_RAPL,
    FrameCost,
)

J_PER_WH = 3600.0

# How each energy source reads in a sentence.
_SHORT = {
    SOURCE_RAPL: "measured by RAPL (CPU package)",
    SOURCE_NVML: "measured by NVML (GPU)",
    SOURCE_CPU_ESTIMATE: "estimated from CPU time",
    SOURCE_PER_IMAGE: "estimated per image",
}


# ----------------------------------------------------------------------------------------- conversions


def joules_to_wh(joules: float) -> float:
    return joules / J_PER_WH


def co2_g(energy_wh: float, factors: Factors, country: str | None = None) -> float:
    """Grams of CO2e for ``energy_wh`` at the chips: facility energy (× PUE) × the grid's intensity."""
    _, intensity = factors.grid(country)
    return energy_wh / 1000.0 * factors.pue.value * intensity.value


def water_ml(energy_wh: float, factors: Factors) -> float:
    """Millilitres of water consumed: kWh × (on-site WUE + PUE × grid water intensity) L/kWh × 1000 ml/L."""
    litres_per_kwh = factors.wue_onsite.value + factors.pue.value * factors.grid_water.value
    return energy_wh / 1000.0 * litres_per_kwh * 1000.0


def phone_charges(energy_wh: float, factors: Factors | None = None) -> float:
    return energy_wh / (factors or default_factors()).phone_charge_wh.value


def glasses(water_ml: float, factors: Factors | None = None) -> float:
    return water_ml / (factors or default_factors()).glass_ml.value


# -------------------------------------------------------------------------------------------- totals


@dataclass(frozen=True)
class SourceShare:
    """The energy one source accounts for: how many frames it covered and how many joules it gave."""

    source: str
    detail: str
    measured: bool
    frames: int
    joules: float


@dataclass(frozen=True)
class Missing:
    """A metered component that could not be read for some frames (e.g. a GPU without an energy counter)."""

    source: str
    reason: str
    frames: int


@dataclass(frozen=True)
class Totals:
    """Sums over frames (a chain, or a whole run). The derived figures use ``factors`` and ``country``."""

    frames: int
    wall_s: float
    cpu_s: float
    shares: tuple[SourceShare, ...]
    missing: tuple[Missing, ...]
    usd: float
    usd_unpriced: int
    usd_sources: tuple[str, ...]
    factors: Factors
    country: str
    #: Copies made elsewhere (an imported chain): they exist, but their energy, CO2e, water and money were
    #: never measured or priced, so they are unknown, never zero.
    elsewhere: int = 0

    @property
    def unknown(self) -> bool:
        """True when some copies' cost is unknown (made elsewhere): no total may be read as complete."""
        return self.elsewhere > 0

    @property
    def energy_j(self) -> float:
        return sum(s.joules for s in self.shares)

    @property
    def energy_wh(self) -> float:
        return joules_to_wh(self.energy_j)

    @property
    def measured(self) -> bool:
        """True only when every frame's energy was measured in full (nothing estimated, nothing missing)."""
        return self.frames > 0 and not self.missing and all(s.measured for s in self.shares)

    @property
    def co2_g(self) -> float:
        return co2_g(self.energy_wh, self.factors, self.country)

    @property
    def water_ml(self) -> float:
        return water_ml(self.energy_wh, self.factors)

    @property
    def phone_charges(self) -> float:
        return phone_charges(self.energy_wh, self.factors)

    @property
    def glasses(self) -> float:
        return glasses(self.water_ml, self.factors)

    def __add__(self, other: Totals) -> Totals:
        return combine([self, other])

    def to_dict(self) -> dict[str, Any]:
        """The numbers and their labels, JSON-able (for an export or the web gallery). With copies made
        elsewhere and none made here, the cost figures are None ("unknown"), never 0."""
        if self.unknown and self.frames == 0:
            return {"frames": 0, "copies_made_elsewhere": self.elsewhere, "cost": "unknown",
                    "wall_s": None, "cpu_s": None, "energy_wh": None, "energy_measured": False,
                    "energy_label": "unknown", "co2_g": None, "water_ml": None, "phone_charges": None,
                    "glasses": None, "usd": None, "usd_unpriced_frames": None, "country": self.country,
                    "shares": [], "missing": []}  # fmt: skip
        return {
            "copies_made_elsewhere": self.elsewhere,
            "frames": self.frames,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "energy_wh": self.energy_wh,
            "energy_measured": self.measured,
            "energy_label": energy_label(self),
            "co2_g": self.co2_g,
            "water_ml": self.water_ml,
            "phone_charges": self.phone_charges,
            "glasses": self.glasses,
            "usd": self.usd,
            "usd_unpriced_frames": self.usd_unpriced,
            "country": self.country,
            "shares": [s.__dict__ for s in self.shares],
            "missing": [m.__dict__ for m in self.missing],
        }


def totals(costs: Iterable[FrameCost], factors: Factors, country: str | None = None) -> Totals:
    """Add up frame cost records (one chain's, or a run's). ``country`` defaults to ``factors.country``."""
    code, _ = factors.grid(country)
    frames = 0
    wall = cpu = usd = 0.0
    unpriced = 0
    usd_sources: dict[str, None] = {}
    shares: dict[str, list[Any]] = {}
    missing: dict[tuple[str, str], int] = {}
    for cost in costs:
        frames += 1
        wall += cost.wall_s
        cpu += cost.cpu_s
        if cost.usd is None:
            unpriced += 1
        else:
            usd += cost.usd
        if cost.usd_source:
            usd_sources.setdefault(cost.usd_source)
        for part in cost.parts:
            if part.joules is None:
                key = (part.source, part.detail)
                missing[key] = missing.get(key, 0) + 1
                continue
            share = shares.setdefault(part.source, [part.detail, True, 0, 0.0])
            share[1] = share[1] and part.measured
            share[2] += 1
            share[3] += part.joules
    return Totals(
        frames=frames,
        wall_s=wall,
        cpu_s=cpu,
        shares=tuple(SourceShare(src, d, m, n, j) for src, (d, m, n, j) in shares.items()),
        missing=tuple(Missing(src, reason, n) for (src, reason), n in missing.items()),
        usd=usd,
        usd_unpriced=unpriced,
        usd_sources=tuple(usd_sources),
        factors=factors,
        country=code,
    )


def combine(parts: Iterable[Totals]) -> Totals:
    """One total from several (chains → run). They must share factors; the first one's are kept."""
    parts = list(parts)
    if not parts:
        raise ValueError("combine() needs at least one Totals")
    shares: dict[str, SourceShare] = {}
    missing: dict[tuple[str, str], int] = {}
    sources: dict[str, None] = {}
    for t in parts:
        for s in t.shares:
            old = shares.get(s.source)
            shares[s.source] = (
                s
                if old is None
                else SourceShare(
                    s.source,
                    old.detail,
                    old.measured and s.measured,
                    old.frames + s.frames,
                    old.joules + s.joules,
                )
            )
        for m in t.missing:
            missing[(m.source, m.reason)] = missing.get((m.source, m.reason), 0) + m.frames
        for src in t.usd_sources:
            sources.setdefault(src)
    first = parts[0]
    return Totals(
        frames=sum(t.frames for t in parts),
        wall_s=sum(t.wall_s for t in parts),
        cpu_s=sum(t.cpu_s for t in parts),
        shares=tuple(shares.values()),
        missing=tuple(Missing(src, reason, n) for (src, reason), n in missing.items()),
        usd=sum(t.usd for t in parts),
        usd_unpriced=sum(t.usd_unpriced for t in parts),
        usd_sources=tuple(sources),
        factors=first.factors,
        country=first.country,
        elsewhere=sum(t.elsewhere for t in parts),
    )


# ------------------------------------------------------------------------------------------ wording


def fmt_fraction(x: float) -> str:
    """A comparison count: "2.6", "0.38", or "1/1,500" (of one) when below a tenth."""
    if 0 < x < 0.1:
        return f"1/{fmt.significant(1 / x)}"
    return fmt.significant(x)


def fmt_count(x: float, one: str, many: str) -> str:
    """A comparison a person feels: "24 phone charges", "0.38 of a phone charge", "1/1,500 of a glass";
    below a millionth, "under a millionth of a glass" (a fraction that long says nothing)."""
    if x >= 1:
        return f"{fmt.significant(x)} {many}"
    if 0 < x < 1e-6:
        return f"under a millionth of {one}"
    return f"{fmt_fraction(x)} of {one}"


def _money_short(t: Totals, unknown: str = "unknown") -> str:
    """The money in a table cell: the sum, or ``unknown`` when no copy had a price."""
    return fmt.usd(t.usd) if t.usd_unpriced < t.frames else unknown


def cost_rows_by(groups: dict[str, Totals]) -> list[list[str]]:
    """One row per group (a chain, a model): copies, energy, CO2e, water, money; labelled like the totals
    (``estimated`` unless every frame's energy was measured)."""
    rows = []
    for label, t in groups.items():
        if t.unknown and t.frames == 0:
            rows.append([label, str(t.elsewhere), *["unknown"] * 4, "unknown (made elsewhere)"])
            continue
        money = _money_short(t)
        copies = f"{t.frames} + {t.elsewhere} made elsewhere (cost unknown)" if t.unknown else str(t.frames)
        rows.append([label, copies, fmt_energy(t.energy_wh), f"{fmt.significant(t.co2_g)} g",
                     fmt_water(t.water_ml), money, "measured" if t.measured else "estimated"])  # fmt: skip
    return rows


def chain_cost_line(t: Totals) -> str:
    """One chain's cost in a line: "101 copies, 0.51 Wh, 0.39 g CO2e, 2.8 ml water, $0.00 (estimated)"."""
    if t.unknown and t.frames == 0:
        return f"{t.elsewhere} copies made elsewhere: cost unknown"
    money = _money_short(t, "money unknown")
    kind = "measured" if t.measured else "estimated"
    return (
        f"{t.frames} copies, {fmt_energy(t.energy_wh)}, {fmt.significant(t.co2_g)} g CO2e, "
        f"{fmt_water(t.water_ml)} water, {money} ({kind} energy)"
    )


COST_BY_HEADERS = ["", "copies", "energy", "CO2e", "water", "money", "energy is"]


def fmt_energy(wh: float | None) -> str:
    if wh is None:
        return "unknown"
    return f"{fmt.significant(wh / 1000)} kWh" if wh >= 1000 else f"{fmt.significant(wh)} Wh"


def fmt_water(ml: float) -> str:
    return f"{fmt.significant(ml / 1000)} L" if ml >= 1000 else f"{fmt.significant(ml)} ml"


def _share_phrase(share: SourceShare, frames: int, with_frames: bool) -> str:
    head = _SHORT.get(share.source, ("measured by " if share.measured else "estimated by ") + share.source)
    if share.source == SOURCE_CPU_ESTIMATE:
        head = f"estimated from {share.detail}"
    elif share.source == SOURCE_PER_IMAGE:
        head = f"estimated at {share.detail.split(' (', 1)[0]}"
    if with_frames:
        head += f" for {share.frames} of {frames} frames ({fmt_energy(joules_to_wh(share.joules))})"
    return head


def energy_label(t: Totals) -> str:
    """How the energy total was obtained, e.g. "measured by RAPL" or "measured by RAPL for 90 of 101 frames
    (0.7 Wh) + estimated from CPU time × 10 W per core for 11 of 101 frames (0.1 Wh)"."""
    if not t.shares:
        return "not measured"
    full = len(t.shares) == 1 and t.shares[0].frames == t.frames
    return " + ".join(_share_phrase(s, t.frames, not full) for s in t.shares)


def _grid_phrase(t: Totals) -> str:
    _, intensity = t.factors.grid(t.country)
    where = "world-average grid" if t.country == "world" else f"{t.country} grid"
    return f"{where}, {intensity.value:g} g/kWh"


_COMPONENT = {SOURCE_NVML: "GPU", SOURCE_RAPL: "CPU"}


def _missing_what(m: Missing) -> str:
    return f"{_COMPONENT.get(m.source, m.source)} energy"


def _missing_lines(t: Totals) -> list[str]:
    return [
        f"Not counted: {_missing_what(m)} for {m.frames} of {t.frames} frames ({m.reason})."
        for m in t.missing
    ]


def _money_phrase(t: Totals) -> str:
    if t.usd_unpriced == t.frames:
        return "money unknown (no price in the cost factor table)"
    text = fmt.usd(t.usd)
    if all(src.startswith("local model") for src in t.usd_sources):
        text += " (local model: no per-image fee; electricity not priced)"
    else:
        prices = "; ".join(
            src.split(" (", 1)[0] for src in t.usd_sources if not src.startswith("local model")
        )
        text += f", estimated at listed prices ({prices})"
    if t.usd_unpriced:
        text += f"; {t.usd_unpriced} copies have no price"
    return text


def summary_lines(t: Totals) -> list[str]:
    """Sentences for the end-of-run summary, each number labelled measured or estimated."""
    elsewhere = (
        f"{t.elsewhere} copies were made elsewhere (imported), so their energy, CO2e, water and money are "
        "unknown (not measured, not zero)."
    )
    if t.frames == 0:
        return [elsewhere] if t.unknown else ["No copies were made, so there is no cost to report."]
    f = t.factors
    lines = [
        f"{t.frames} copies used {fmt_energy(t.energy_wh)} ({energy_label(t)}) "
        f"≈ {fmt_count(t.phone_charges, 'a phone charge', 'phone charges')} "
        f"({f.phone_charge_wh.value:g} Wh each).",
        *_missing_lines(t),
        f"≈ {fmt.significant(t.co2_g)} g CO2e (estimated: energy × PUE {f.pue.value:g} × {_grid_phrase(t)}).",
        f"≈ {fmt_water(t.water_ml)} of water ≈ {fmt_count(t.glasses, 'a glass', 'glasses')} "
        f"({f.glass_ml.value:g} ml each) (estimated: {f.wue_onsite.value:g} L/kWh cooling + "
        f"PUE {f.pue.value:g} × {f.grid_water.value:g} L/kWh at power stations, after Li et al.).",
        f"Money: {_money_phrase(t)}.",
        f"Model time: {fmt.duration(t.wall_s)} wall clock, {fmt.duration(t.cpu_s)} CPU (measured).",
    ]
    return [*lines, f"Besides, {elsewhere[0].lower()}{elsewhere[1:]}"] if t.unknown else lines


def cost_rows_for_report(t: Totals) -> list[tuple[str, str, str]]:
    """(label, value, provenance) rows for the HTML report and the bias card. Every provenance starts with
    "measured", "estimated", "exact" (a local model's zero fee) or "unavailable", then names the factors
    used and their sources."""
    if t.unknown and t.frames == 0:
        why = "unknown: the copies were made elsewhere (imported); nothing was measured or priced"
        return [("Copies", str(t.elsewhere), "made elsewhere (imported)"),
                *((label, "unknown", why) for label in ("Energy", "CO2e", "Water", "Money"))]  # fmt: skip
    f = t.factors
    wh = t.energy_wh
    code, intensity = f.grid(t.country)
    kind = "measured" if t.measured else "estimated"
    energy_prov = "; ".join(
        f"{'measured' if s.measured else 'estimated'}: {s.detail}"
        + (f" — {f.watts_per_core.source}" if s.source == SOURCE_CPU_ESTIMATE else "")
        + (f" for {s.frames} of {t.frames} frames" if s.frames != t.frames else "")
        for s in t.shares
    )
    rows = [
        ("Copies", str(t.frames), "measured: frames with a cost record"),
        ("Model time", fmt.duration(t.wall_s), "measured: wall clock around each model call"),
        (
            "CPU time",
            fmt.duration(t.cpu_s),
            "measured: this process's CPU time during model calls, all threads (work overlapping the calls, "
            "such as writing frames, is included)",
        ),
        ("Energy", fmt_energy(wh), energy_prov or "estimated: nothing was metered"),
    ]
    rows += [
        ("Not counted", f"{_missing_what(m)}, {m.frames} frames", f"unavailable: {m.reason}")
        for m in t.missing
    ]
    rows += [
        (
            "CO2e",
            f"{fmt.significant(t.co2_g)} g",
            f"estimated from {kind} energy: {fmt_energy(wh)} × PUE {f.pue.value:g} × "
            f"{intensity.value:g} g/kWh ({'world average' if code == 'world' else code}) — "
            f"grid: {intensity.source}; PUE: {f.pue.source}",
        ),
        (
            "Water",
            fmt_water(t.water_ml),
            f"estimated from {kind} energy: {fmt_energy(wh)} × ({f.wue_onsite.value:g} + {f.pue.value:g} × "
            f"{f.grid_water.value:g}) L/kWh — on-site: {f.wue_onsite.source}; power stations: "
            f"{f.grid_water.source}",
        ),
        (
            "Phone charges",
            fmt_fraction(t.phone_charges),
            f"estimated: {fmt_energy(wh)} ÷ {f.phone_charge_wh.value:g} Wh per charge — "
            f"{f.phone_charge_wh.source}",
        ),
        (
            "Glasses of water",
            fmt_fraction(t.glasses),
            f"estimated: {fmt_water(t.water_ml)} ÷ {f.glass_ml.value:g} ml — {f.glass_ml.source}",
        ),
        ("Money", _money_short(t), _money_provenance(t)),
    ]
    if t.unknown:
        rows.append(("Made elsewhere", f"{t.elsewhere} copies", "unknown: imported copies, not measured"))
    return rows


def _money_provenance(t: Totals) -> str:
    sources = "; ".join(t.usd_sources) or "no prices"
    if t.usd_unpriced:
        sources += f"; {t.usd_unpriced} of {t.frames} copies have no price"
    if all(src.startswith("local model") for src in t.usd_sources):
        return f"exact: {sources}"
    return f"estimated from listed prices: {sources}"
