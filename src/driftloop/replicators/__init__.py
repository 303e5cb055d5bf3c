"""Model backends behind one protocol; see :mod:`driftloop.replicators.base`.

Names are imported on first use (:mod:`driftloop._lazy`), so reading a spec (:mod:`.spec`) does not load
the registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_names

if TYPE_CHECKING:
    from driftloop.replicators.base import (
        Backend,
        CallableReplicator,
        Copy,
        OptionalHooks,
        Replicator,
        Requirements,
        WeightsStatus,
    )
    from driftloop.replicators.registry import build, listing, lookup, parse

_BASE = "driftloop.replicators.base"
_REGISTRY = "driftloop.replicators.registry"
_WHERE = {
    "Backend": _BASE,
    "CallableReplicator": _BASE,
    "Copy": _BASE,
    "OptionalHooks": _BASE,
    "Replicator": _BASE,
    "Requirements": _BASE,
    "WeightsStatus": _BASE,
    "build": _REGISTRY,
    "listing": _REGISTRY,
    "lookup": _REGISTRY,
    "parse": _REGISTRY,
}
__getattr__ = lazy_names(__name__, _WHERE)

__all__ = [
    "Backend",
    "CallableReplicator",
    "Copy",
    "OptionalHooks",
    "Replicator",
    "Requirements",
    "WeightsStatus",
    "build",
    "listing",
    "lookup",
    "parse",
]
