"""Model backends behind one protocol; see :mod:`driftloop.replicators.base`."""

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
