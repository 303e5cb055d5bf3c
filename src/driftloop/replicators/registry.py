"""Finding replicators by name: the built-ins plus third-party ones from the entry-point group
``driftloop.replicators``.

A built-in backend's module (and what it imports: NumPy, Pillow, the diffusion code, a hosted client's
helpers) is imported when a spec naming it is looked up, not before: :mod:`~driftloop.replicators.known`
describes every built-in for ``driftloop models`` without importing any of them.

An entry point names a :class:`~driftloop.replicators.base.Backend`, or a callable returning one or a list
of them. A plain Python callable ``(frames, seeds) -> frames`` can also be passed as the model from the
Python API (see :func:`build`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from driftloop.cost import catalogue, default_factors
from driftloop.errors import SpecError
from driftloop.replicators import known
from driftloop.replicators.base import (
    Backend,
    CallableReplicator,
    Needs,
    Replicator,
    WeightsStatus,
    declared_needs,
)
from driftloop.replicators.spec import parse_config, split_spec

ENTRY_POINT_GROUP = "driftloop.replicators"


_SCANNED: dict[tuple[str, ...], tuple[list[Backend], list[str]]] = {}


def _from_entry_points() -> tuple[list[Backend], list[str]]:
    """The plug-ins' backends and load problems, scanned once per ``sys.path`` (a scan takes ~20 ms, and
    ``driftloop models`` looks up every hosted model)."""
    key = tuple(sys.path)
    if key not in _SCANNED:
        _SCANNED[key] = _scan_entry_points()
    found, problems = _SCANNED[key]
    return list(found), list(problems)


def _scan_entry_points() -> tuple[list[Backend], list[str]]:
    found: list[Backend] = []
    problems: list[str] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, Backend):
                obj = obj()
            items = obj if isinstance(obj, list | tuple) else [obj]
            for item in items:
                if not isinstance(item, Backend):
                    raise TypeError(f"{item!r} is not a driftloop Backend")
                found.append(item)
        except Exception as exc:  # a broken plug-in must not break the built-ins
            problems.append(f"{ep.name} ({ep.value}): {exc}")
    return found, problems


def _builtins(modules: list[str]) -> list[Backend]:
    """The backends registered by each of ``modules`` (each imported here, once per process)."""
    return [b for module in dict.fromkeys(modules) for b in import_module(module).backends()]


def _table(backends: list[Backend]) -> dict[str, Backend]:
    table: dict[str, Backend] = {}
    for b in backends:
        table[b.name] = b
        for alias in b.aliases:
            table[alias] = b
    return table


def backends() -> dict[str, Backend]:
    """Every backend by name (built-ins win over plug-ins of the same name); imports every built-in."""
    plugins, _ = _from_entry_points()
    return _table([*plugins, *_builtins(list(known.modules().values()))])  # built-ins last: they win


def plugin_problems() -> list[str]:
    """Plug-ins that failed to load, for ``driftloop models``."""
    return _from_entry_points()[1]


def lookup(spec: str) -> Backend:
    """The backend a spec string names, or a SpecError listing the known names."""
    name, _, _ = split_spec(spec)
    module = known.modules().get(name)
    if module is not None:  # a built-in: only its own module is imported
        return _table(_builtins([module]))[name]
    plugins, _ = _from_entry_points()
    table = _table(plugins)
    if name not in table:
        names = ", ".join(sorted({*known.modules(), *table}))
        raise SpecError(f"unknown model {name!r} in spec {spec!r}; known models: {names}")
    return table[name]


def parse(spec: str, **overrides: Any) -> tuple[Backend, Any]:
    """Backend and typed config of a spec; ``overrides`` (e.g. ``device``) win over the spec."""
    backend = lookup(spec)
    return backend, parse_config(spec, backend.config_type, backend.positional, **overrides)


def needs(spec: str, **overrides: Any) -> Needs:
    """What one replica of a spec's model needs (GPU, CPUs, memory, an API key), from its config alone:
    nothing is built and no weights are loaded (what places a model on a cluster)."""
    backend, config = parse(spec, **overrides)
    if backend.config_type.__module__.startswith("driftloop.replicators.hosted."):
        return Needs(cpus=0.0, api=True)
    return declared_needs(config)


def build(model: str | Replicator | Any, **overrides: Any) -> Replicator:
    """A replicator from a spec string, a replicator object, or a plain callable."""
    if isinstance(model, str):
        backend, config = parse(model, **overrides)
        return backend.build(config)
    if isinstance(model, Replicator):
        return model
    if callable(model):
        return CallableReplicator(model)
    raise SpecError(f"cannot use {model!r} as a model: give a spec string, a Replicator or a callable")


@dataclass(frozen=True)
class ModelListing:
    """One line of ``driftloop models``."""

    name: str
    summary: str
    weights: WeightsStatus
    notes: str


def listing() -> list[ModelListing]:
    """What ``driftloop models`` shows: each backend with its default config's weight status. The built-ins
    are described without importing them (:mod:`~driftloop.replicators.known`); plug-ins as they load."""
    rows = [ModelListing(k.name, k.summary, _status(k.weights), k.notes) for k in known.entries()]
    builtin = {r.name for r in rows}
    plugins, _ = _from_entry_points()
    for b in plugins:
        if b.name not in builtin:
            builtin.add(b.name)
            rows.append(
                ModelListing(
                    b.name, b.summary, _status(lambda b=b: b.weights_status(b.config_type())), b.notes
                )
            )
    return sorted(rows, key=lambda r: r.name)


def _status(check: Any) -> WeightsStatus:
    try:
        return check()
    except Exception as exc:  # a broken check must not break the listing
        return WeightsStatus(False, f"error: {exc}")


@dataclass(frozen=True)
class HostedListing:
    """One hosted model of the catalogue, for ``driftloop models``: status and list price per image."""

    spec: str
    status: str
    usd_per_image: float | None  # the price table's default (the provider's default quality and size)
    price_read: str | None
    note: str


def hosted_listing() -> list[HostedListing]:
    """Every model of the catalogue with its status and list price per image: the price table's default,
    read without building the model (a copy at a given size, input tokens included, is priced by
    ``driftloop run --dry-run``)."""
    factors = default_factors()
    rows = []
    for entry in catalogue.entries():
        price = factors.price(entry.key) if entry.price else None
        read = str(entry.price["read"]) if entry.price else None
        usd = price.usd if price is not None and price.usd else None
        rows.append(HostedListing(entry.key, entry.status_line(), usd, read, entry.conflict or entry.note))
    return rows
