"""The factor table: every number the cost report uses that is not measured, each with its source.

The defaults live in the packaged ``driftloop/cost_factors.toml`` (read it: it documents every number); the
prices of hosted models in the dated model catalogue ``driftloop/hosted_models.toml`` (:mod:`.catalogue`).
:func:`load_factors` layers the workspace's ``driftloop.toml`` ``[cost]`` table and then a per-run file over
them, key by key. A number someone overrides without saying where it came from is labelled "set in <file>",
so a report never passes a user's guess off as a published figure.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from driftloop.cost import catalogue
from driftloop.errors import DriftloopError

WORLD = "world"
WORKSPACE_CONFIG = "driftloop.toml"

# name -> (lowest allowed value, whether the lowest is allowed)
SCALARS: dict[str, tuple[float, bool]] = {
    "watts_per_core": (0.0, True),
    "pue": (1.0, True),
    "wue_onsite": (0.0, True),
    "grid_water": (0.0, True),
    "hosted_wh_per_image": (0.0, True),
    "phone_charge_wh": (0.0, False),
    "glass_ml": (0.0, False),
}
TOP_LEVEL = {"country", "grid_intensity", "prices", *SCALARS}


class CostConfigError(DriftloopError):
    """A cost-factor file cannot be used (bad TOML, unknown key, a value out of range, unknown country)."""

    exit_code = 2


@dataclass(frozen=True)
class Factor:
    """One number with its unit and where it comes from."""

    value: float
    unit: str
    source: str


TOKEN_PREFIX = "tokens:"  # price-table keys of per-token rates (USD per 1M tokens): tokens:output, ...


@dataclass(frozen=True)
class Price:
    """Money per output image of a hosted model, dated."""

    usd: float
    source: str
    as_of: str | None = None

    def describe(self) -> str:
        when = f", as of {self.as_of}" if self.as_of else ""
        return f"${self.usd:g} per image ({self.source.strip()}{when})"


@dataclass(frozen=True)
class Factors:
    """The merged factor table a run uses. ``origins`` lists the files merged, defaults first."""

    watts_per_core: Factor
    pue: Factor
    wue_onsite: Factor
    grid_water: Factor
    hosted_wh_per_image: Factor
    phone_charge_wh: Factor
    glass_ml: Factor
    country: str
    grid_intensity: dict[str, Factor]
    prices: dict[str, dict[str, Price]] = field(default_factory=dict)
    origins: tuple[str, ...] = ()

    def grid(self, country: str | None = None) -> tuple[str, Factor]:
        """The grid intensity (g CO2e/kWh) of ``country`` (default: the configured one), with its code."""
        code = normalise_country(country if country is not None else self.country)
        if code not in self.grid_intensity:
            raise CostConfigError(_unknown_country(code, self.grid_intensity))
        return code, self.grid_intensity[code]

    def price(self, model: str, quality: str | None = None, size: str | None = None) -> Price | None:
        """Price per image of a hosted ``model`` (``openai:gpt-image-1``, or a bare ``gpt-image-1``).

        Tries ``quality:size``, then ``quality``, then ``default``; ``None`` when the table has no such model.
        """
        table = self._table(model)
        if table is None:
            return None
        keys = []
        if quality and size:
            keys.append(f"{quality}:{size}".lower())
        if quality:
            keys.append(quality.lower())
        keys.append("default")
        for key in keys:
            if key in table:
                return table[key]
        return None

    def megapixel_price(
        self, model: str, input_mp: float, output_mp: float, cite: bool = True
    ) -> Price | None:
        """What a per-megapixel model (FLUX.2 through BFL) charges for one call, from its ``mp:first`` (the
        first output megapixel) and ``mp:extra`` (each further output megapixel, and each input megapixel)
        rates; None unless the table has both."""
        table = self._table(model)
        if not table or "mp:first" not in table or "mp:extra" not in table:
            return None
        first, extra = table["mp:first"], table["mp:extra"]
        usd = first.usd + max(0.0, output_mp - 1.0) * extra.usd + input_mp * extra.usd
        source = (
            f"${first.usd:g} first MP + {max(0.0, output_mp - 1.0):.3f} more output MP and "
            f"{input_mp:.3f} input MP × ${extra.usd:g}"
        )
        source += f" ({first.source.strip()})" if cite else f" (prices as of {first.as_of})"
        return Price(usd, source, first.as_of)

    def token_price(self, model: str, counts: dict[str, int], cite: bool = True) -> Price | None:
        """What an answer cost by its token counts (``input_text``, ``input_image``, ``output``), from the
        model's ``tokens:<kind>`` rates in USD per 1M tokens; None unless the table has a rate for every
        kind counted. ``cite=False`` names the prices' date instead of their source."""
        table = self._table(model)
        if not table or not any(counts.values()):
            return None
        rates = {key.split(":", 1)[1]: p for key, p in table.items() if key.startswith(TOKEN_PREFIX)}
        if not rates or any(kind not in rates for kind, n in counts.items() if n):
            return None
        usd = sum(n * rates[kind].usd / 1e6 for kind, n in counts.items() if n)
        parts = ", ".join(f"{n:,} {kind.replace('_', ' ')}" for kind, n in counts.items() if n)
        rate = ", ".join(f"{kind.replace('_', ' ')} ${rates[kind].usd:g}" for kind, n in counts.items() if n)
        first = next(iter(rates.values()))
        source = f"{parts} tokens × ({rate}) per 1M tokens"
        source += f" ({first.source.strip()})" if cite else f" (prices as of {first.as_of})"
        return Price(usd, source, first.as_of)

    def _table(self, model: str) -> dict[str, Price] | None:
        table = self.prices.get(model.lower())
        if table is None:
            bare = [t for name, t in self.prices.items() if name.split(":", 1)[-1] == model.lower()]
            table = bare[0] if len(bare) == 1 else None
        return table

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot (values, units, sources) to store with a run; :meth:`from_dict` reads it."""
        out: dict[str, Any] = {name: _factor_dict(getattr(self, name)) for name in SCALARS}
        out["country"] = self.country
        out["grid_intensity"] = {code: _factor_dict(f) for code, f in self.grid_intensity.items()}
        out["prices"] = {
            model: {key: {"usd": p.usd, "source": p.source, "as_of": p.as_of} for key, p in table.items()}
            for model, table in self.prices.items()
        }
        out["origins"] = list(self.origins)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Factors:
        return cls(
            **{name: Factor(**data[name]) for name in SCALARS},
            country=data["country"],
            grid_intensity={code: Factor(**f) for code, f in data["grid_intensity"].items()},
            prices={
                model: {key: Price(**p) for key, p in table.items()}
                for model, table in data.get("prices", {}).items()
            },
            origins=tuple(data.get("origins", ())),
        )


def _factor_dict(f: Factor) -> dict[str, Any]:
    return {"value": f.value, "unit": f.unit, "source": f.source}


def normalise_country(code: str) -> str:
    code = code.strip()
    return WORLD if code.lower() == WORLD else code.upper()


def _unknown_country(code: str, table: dict[str, Factor]) -> str:
    known = ", ".join(sorted(table))
    return (
        f"no grid carbon intensity for country {code!r} (known: {known}); add it to your cost factors, "
        f'e.g. [grid_intensity] {code} = {{ value = 300, source = "..." }}, or use country = "world"'
    )


# ---------------------------------------------------------------------------------------------- loading


def load_factors(overrides: Path | str | None = None, workspace: Path | str | None = None) -> Factors:
    """The packaged defaults, then ``WORKSPACE/driftloop.toml``'s ``[cost]`` table, then ``overrides``.

    ``overrides`` is a TOML file holding factor keys at its top level or under ``[cost]``; it must exist.
    A missing workspace config is fine. Raises :class:`CostConfigError` naming the file and key at fault.
    """
    factors = _defaults()
    if workspace is not None:
        config = Path(workspace) / WORKSPACE_CONFIG
        if config.is_file():
            table = _read_toml(config).get("cost")
            if table is not None:
                factors = apply_overrides(factors, _as_table(table, f"{config} [cost]"), str(config))
    if overrides is not None:
        path = Path(overrides)
        if not path.is_file():
            raise CostConfigError(f"cost factor file {path} does not exist; pass the path of a TOML file")
        data = _read_toml(path)
        if "cost" in data:
            extra = sorted(set(data) - {"cost"} - TOP_LEVEL)
            data = _as_table(data["cost"], f"{path} [cost]")
            if extra:
                raise CostConfigError(f"{path}: unexpected top-level key(s) {extra} beside [cost]")
        factors = apply_overrides(factors, data, str(path))
    factors.grid()  # the chosen country must exist
    return factors


@lru_cache(maxsize=1)
def _defaults() -> Factors:
    ref = resources.files("driftloop").joinpath("cost_factors.toml")
    label = "driftloop/cost_factors.toml"
    try:
        data = tomllib.loads(ref.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:  # a broken install, not a user error
        raise RuntimeError(f"the packaged cost factor table {label} cannot be read: {exc}") from exc
    missing = sorted((set(SCALARS) | {"country", "grid_intensity"}) - set(data))
    if missing:
        raise RuntimeError(f"the packaged cost factor table lacks {missing}")
    scalars = {name: _scalar(name, data[name], label, None) for name in SCALARS}
    grid = _grid(data["grid_intensity"], label, None)
    if "prices" in data:
        raise RuntimeError(f"{label} must not hold prices: they live in {catalogue.LABEL}")
    prices = _prices(catalogue.price_tables(), catalogue.LABEL)
    unknown = sorted(set(data) - TOP_LEVEL)
    if unknown:
        raise RuntimeError(f"the packaged cost factor table has unknown keys {unknown}")
    return Factors(
        **scalars,
        country=normalise_country(str(data["country"])),
        grid_intensity=grid,
        prices=prices,
        origins=(label,),
    )


def default_factors() -> Factors:
    """The packaged defaults alone."""
    return _defaults()


def apply_overrides(base: Factors, data: dict[str, Any], label: str) -> Factors:
    """``base`` with one override table (parsed TOML) applied key by key; ``label`` names its file."""
    unknown = sorted(set(data) - TOP_LEVEL)
    if unknown:
        raise CostConfigError(
            f"{label}: unknown cost factor key(s) {unknown}; known keys: {', '.join(sorted(TOP_LEVEL))}"
        )
    changes: dict[str, Any] = {}
    for name in SCALARS:
        if name in data:
            changes[name] = _scalar(name, data[name], label, getattr(base, name))
    if "country" in data:
        if not isinstance(data["country"], str) or not data["country"].strip():
            raise CostConfigError(f'{label}: country must be a country code string such as "DE" or "world"')
        changes["country"] = normalise_country(data["country"])
    if "grid_intensity" in data:
        changes["grid_intensity"] = {**base.grid_intensity, **_grid(data["grid_intensity"], label, label)}
    if "prices" in data:
        prices = {model: dict(table) for model, table in base.prices.items()}
        for model, table in _prices(data["prices"], label, default_source=f"set in {label}").items():
            prices.setdefault(model, {}).update(table)
        changes["prices"] = prices
    return replace(base, **changes, origins=(*base.origins, label))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CostConfigError(f"{path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise CostConfigError(f"cannot read cost factor file {path}: {exc}") from exc


def _as_table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CostConfigError(f"{where} must be a table of cost factors")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CostConfigError(f"{where} must be a finite number, not {value!r}")
    return float(value)


def _scalar(name: str, raw: Any, label: str, base: Factor | None) -> Factor:
    """A factor from a bare number (source: "set in <label>") or a {value, unit?, source?} table."""
    where = f"{label}: {name}"
    unit = base.unit if base else ""
    if base is None and not (isinstance(raw, dict) and raw.get("source")):
        raise RuntimeError(f"packaged factor {name} must be a table with a source")
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"value", "unit", "source"})
        if unknown or "value" not in raw:
            raise CostConfigError(f"{where} must be a number or a table with value (and source, unit)")
        value = _number(raw["value"], f"{where}.value")
        unit = str(raw.get("unit", unit))
        source = str(raw.get("source") or f"set in {label}")
    else:
        value = _number(raw, where)
        source = f"set in {label}"
    low, inclusive = SCALARS[name]
    if value < low or (value == low and not inclusive):
        relation = "at least" if inclusive else "more than"
        raise CostConfigError(f"{where} must be {relation} {low:g}, not {value:g}")
    return Factor(value, unit, source.strip())


def _grid(raw: Any, label: str, override: str | None) -> dict[str, Factor]:
    table = _as_table(raw, f"{label}: grid_intensity")
    unit = str(table.get("unit", "g CO2e per kWh"))
    shared = table.get("source")
    fallback = str(shared) if shared else (f"set in {override}" if override else "")
    out = {}
    for code, entry in table.items():
        if code in ("unit", "source"):
            continue
        where = f"{label}: grid_intensity.{code}"
        if isinstance(entry, dict):
            value = _number(entry.get("value"), f"{where}.value")
            source = str(entry.get("source") or fallback)
        else:
            value = _number(entry, where)
            source = fallback
        if value < 0:
            raise CostConfigError(f"{where} must not be negative")
        if not source:
            raise RuntimeError(f"packaged grid intensity {code} has no source")
        out[normalise_country(code)] = Factor(value, unit, source.strip())
    return out


def _prices(raw: Any, label: str, default_source: str = "") -> dict[str, dict[str, Price]]:
    table = _as_table(raw, f"{label}: prices")
    out: dict[str, dict[str, Price]] = {}
    for model, entries in table.items():
        entries = _as_table(entries, f"{label}: prices.{model}")
        source = str(entries.get("source") or default_source)
        as_of = str(entries["as_of"]) if "as_of" in entries else None
        if not source:
            raise RuntimeError(f"packaged price table {model} has no source")
        out[model.lower()] = {
            key.lower(): Price(_number(usd, f"{label}: prices.{model}.{key}"), source.strip(), as_of)
            for key, usd in entries.items()
            if key not in ("source", "as_of", "unit")
        }
    return out
