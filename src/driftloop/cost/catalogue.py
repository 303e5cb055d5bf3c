"""The dated catalogue of hosted image models (``driftloop/hosted_models.toml``): status, dates, replacement,
size rules and prices, each with its source URL and read date.

It is the one home of hosted prices: :func:`price_tables` turns every model's ``[price]`` into the entries of
the cost factor table (``tokens:<kind>``, ``quality:size`` or tier keys, ``default``, ``mp:first``,
``mp:extra``), so overrides in a ``--cost-factors`` file keep working key by key. The replicators read
status and size rules from here too; naming a retired model is a warning (:func:`retirement_notice`),
not an error.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

LABEL = "driftloop/hosted_models.toml"
STATUSES = ("current", "deprecated", "retired")
PRICE_GROUPS = ("tokens", "per_image", "mp")


@dataclass(frozen=True)
class Entry:
    """One hosted model as the catalogue lists it (``key`` is ``provider:id``)."""

    key: str
    provider: str
    id: str
    status: str
    source: str
    read: dt.date
    confidence: str
    released: dt.date | None = None
    announced: dt.date | None = None
    shutdown: dt.date | None = None
    replacement: str | None = None
    note: str = ""
    conflict: str = ""
    name: str = ""
    facts: dict[str, Any] = field(default_factory=dict)  # every other field (size_rule, qualities, ...)
    price: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.facts.get(name, default)

    def status_line(self) -> str:
        """``current (since 2026-04-21)`` / ``retired 2026-10-23 → gpt-image-2``, for listings."""
        if self.status == "retired":
            text = f"retired {self.shutdown}" if self.shutdown else "retired"
        elif self.status == "deprecated":
            text = f"deprecated, shuts down {self.shutdown}" if self.shutdown else "deprecated"
        else:
            text = "current"
        if self.replacement and self.status != "current":
            text += f" → {self.replacement}"
        if self.confidence == "unconfirmed":
            text += " (unconfirmed)"
        return text


def _date(value: Any, where: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise RuntimeError(f"{LABEL}: {where} must be a TOML date (YYYY-MM-DD), not {value!r}")


def _entry(key: str, raw: dict[str, Any]) -> Entry:
    for needed in ("provider", "id", "status", "source", "read", "confidence"):
        if needed not in raw:
            raise RuntimeError(f"{LABEL}: models.{key!r} lacks {needed}")
    if f"{raw['provider']}:{raw['id']}" != key:
        raise RuntimeError(f"{LABEL}: models.{key!r} has provider:id {raw['provider']}:{raw['id']}")
    if raw["status"] not in STATUSES:
        raise RuntimeError(f"{LABEL}: models.{key!r} status {raw['status']!r} is not one of {STATUSES}")
    price = dict(raw.get("price") or {})
    if price and not (price.get("source") and price.get("read")):
        raise RuntimeError(f"{LABEL}: models.{key!r}.price needs a source and a read date")
    if price:
        price["read"] = _date(price["read"], f"models.{key!r}.price.read")
    known = {"provider", "id", "status", "source", "read", "confidence", "released", "announced", "shutdown",
             "replacement", "note", "conflict", "name", "price"}  # fmt: skip
    return Entry(
        key=key,
        provider=raw["provider"],
        id=raw["id"],
        status=raw["status"],
        source=" ".join(str(raw["source"]).split()),
        read=_date(raw["read"], f"models.{key!r}.read"),  # type: ignore[arg-type]
        confidence=raw["confidence"],
        released=_date(raw.get("released"), f"models.{key!r}.released"),
        announced=_date(raw.get("announced"), f"models.{key!r}.announced"),
        shutdown=_date(raw.get("shutdown"), f"models.{key!r}.shutdown"),
        replacement=raw.get("replacement"),
        note=" ".join(str(raw.get("note", "")).split()),
        conflict=" ".join(str(raw.get("conflict", "")).split()),
        name=raw.get("name", ""),
        facts={k: v for k, v in raw.items() if k not in known},
        price=price,
    )


@lru_cache(maxsize=1)
def _load() -> dict[str, Entry]:
    ref = resources.files("driftloop").joinpath("hosted_models.toml")
    try:
        data = tomllib.loads(ref.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:  # a broken install, not a user error
        raise RuntimeError(f"the packaged model catalogue {LABEL} cannot be read: {exc}") from exc
    entries = {key.lower(): _entry(key, raw) for key, raw in data.get("models", {}).items()}
    for entry in list(entries.values()):
        for alias in entry.get("aliases", []):
            entries[f"{entry.provider}:{alias}".lower()] = entry
    return entries


def entries() -> list[Entry]:
    """Every model of the catalogue, once each, in file order."""
    seen: dict[str, Entry] = {}
    for entry in _load().values():
        seen.setdefault(entry.key, entry)
    return list(seen.values())


def lookup(provider: str, model: str) -> Entry | None:
    """The catalogue's entry for ``provider:model`` (aliases and dated snapshots included), or ``None``."""
    table = _load()
    key = f"{provider}:{model}".lower()
    if key in table:
        return table[key]
    for entry in entries():  # a dated snapshot (gpt-image-2-2026-04-21) is its model
        if entry.provider == provider and model.lower() == str(entry.get("snapshot", "")).lower():
            return entry
    return None


def retirement_notice(entry: Entry, base_url_env: str | None = None) -> str | None:
    """The warning for naming a retired or deprecated model; ``None`` for a current one."""
    if entry.status == "current":
        return None
    if entry.status == "retired":
        text = f"{entry.key} was retired" + (f" on {entry.shutdown}" if entry.shutdown else "")
    else:
        text = f"{entry.key} is deprecated" + (
            f" and shuts down on {entry.shutdown}" if entry.shutdown else ""
        )
    text += f" (model catalogue, read {entry.read} from {entry.source})"
    if entry.replacement:
        text += f"; its replacement is {entry.replacement}: use {entry.provider}:{entry.replacement}"
    if base_url_env:
        text += f". It may still answer on a compatible endpoint set with {base_url_env}"
    return text


def replacement_hint(provider: str, model: str) -> str:
    """`` (retired 2026-10-23; use openai:gpt-image-2)`` for error messages; empty when nothing is known."""
    entry = lookup(provider, model)
    if entry is None or entry.status == "current":
        return ""
    when = f" {entry.shutdown}" if entry.shutdown else ""
    use = f"; use {entry.provider}:{entry.replacement}" if entry.replacement else ""
    return f" ({entry.status}{when}{use})"


# ------------------------------------------------------------------------------------------------ prices


def price_tables() -> dict[str, dict[str, Any]]:
    """Every priced model as a ``[prices."provider:id"]`` table of the cost factor file: flat keys to USD,
    plus ``source`` and ``as_of`` (the read date). Sources are cited without their ``https://``: they travel
    with every run's stored factors into its self-contained report, which links nowhere."""
    out: dict[str, dict[str, Any]] = {}
    for entry in entries():
        price = entry.price
        if not price:
            continue
        table: dict[str, Any] = {}
        for kind, usd in (price.get("tokens") or {}).items():
            table[f"tokens:{kind}"] = usd
        for key, usd in (price.get("per_image") or {}).items():
            table[key] = usd
        for key, usd in (price.get("mp") or {}).items():
            table[f"mp:{key}"] = usd
        source = " ".join(str(price["source"]).split()).replace("https://", "").replace("http://", "")
        note = " ".join(str(price.get("note", "")).split())
        table["source"] = f"{source} [{price.get('confidence', 'unconfirmed')}{'; ' + note if note else ''}]"
        table["as_of"] = str(price["read"])
        out[entry.key] = table
    return out
