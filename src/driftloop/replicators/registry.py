"""Finding replicators by name: the built-ins plus third-party ones from the entry-point group
``driftloop.replicators``.

An entry point names a :class:`~driftloop.replicators.base.Backend`, or a callable returning one or a list
of them. A plain Python callable ``(frames, seeds) -> frames`` can also be passed as the model from the
Python API (see :func:`build`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from driftloop.cost import catalogue, default_factors
from driftloop.errors import SpecError
from driftloop.replicators import codec, tae
from driftloop.replicators.base import (
    Backend,
    CallableReplicator,
    Needs,
    Replicator,
    WeightsStatus,
    declared_needs,
)
from driftloop.replicators.diffusers import caption_redraw, img2img, instruct, vae
from driftloop.replicators.hosted import bfl, gemini, openai_images
from driftloop.replicators.hosted.replicator import offline
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


def backends() -> dict[str, Backend]:
    """Every backend by name (built-ins win over plug-ins of the same name)."""
    table: dict[str, Backend] = {}
    plugins, _ = _from_entry_points()
    builtins = [
        *tae.backends(),
        *codec.backends(),
        *img2img.backends(),
        *instruct.backends(),
        *vae.backends(),
        *caption_redraw.backends(),
        *openai_images.backends(),
        *gemini.backends(),
        *bfl.backends(),
    ]
    for b in [*plugins, *builtins]:
        table[b.name] = b
        for alias in b.aliases:
            table[alias] = b
    return table


def plugin_problems() -> list[str]:
    """Plug-ins that failed to load, for ``driftloop models``."""
    return _from_entry_points()[1]


def lookup(spec: str) -> Backend:
    """The backend a spec string names, or a SpecError listing the known names."""
    name, _, _ = split_spec(spec)
    table = backends()
    if name not in table:
        known = ", ".join(sorted(table))
        raise SpecError(f"unknown model {name!r} in spec {spec!r}; known models: {known}")
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
    """What ``driftloop models`` shows: each backend with its default config's weight status."""
    rows = []
    seen: set[int] = set()
    for name, b in sorted(backends().items()):
        if id(b) in seen or name != b.name:
            continue
        seen.add(id(b))
        try:
            status = b.weights_status(b.config_type())
        except Exception as exc:
            status = WeightsStatus(False, f"error: {exc}")
        rows.append(ModelListing(b.name, b.summary, status, b.notes))
    return rows


@dataclass(frozen=True)
class HostedListing:
    """One hosted model of the catalogue, for ``driftloop models``: status and price per copy."""

    spec: str
    status: str
    usd_per_copy: float | None  # at the default spec and frame size; None: no price known
    price_read: str | None
    note: str


def hosted_listing(size: int = 512) -> list[HostedListing]:
    """Every model of the catalogue with its status and what one copy of a size×size frame costs with the
    default parameters (input tokens included where the provider's rules are known)."""
    factors = default_factors()
    rows = []
    for entry in catalogue.entries():
        usd = None
        if entry.price:
            with offline():
                estimate = build(entry.key).call_estimate(size, size, factors)  # type: ignore[attr-defined]
            usd = estimate.usd or None
        read = str(entry.price["read"]) if entry.price else None
        rows.append(HostedListing(entry.key, entry.status_line(), usd, read, entry.conflict or entry.note))
    return rows
