"""driftloop: recursive image replication, measured.

Hand an image model a picture, ask it to copy it, feed the copy back in, repeat; store every frame and
watch where the model's errors take the picture.

The statistics of the bias card and the run reports are public too, for a researcher's own table (one value
per chain, with its source image and optionally its seed): :func:`mean_ci` and :func:`paired_diff_ci`; and
for one chain's steps, :func:`chain_rate_ci` (its average change per step with an interval that holds on
drifting chains, from :mod:`driftloop.analysis.chain_rate`, which also has ``rate_over_chains_ci``); the
others from their home :mod:`driftloop.analysis.intervals` (which also has ``sign_flip_test`` and
``unpaired_diff_ci``).

The names below are loaded on first use (PEP 562), so ``import driftloop.cli`` (and ``driftloop --help``)
does not pay for NumPy, pandas and the rest of the library.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from driftloop.errors import DriftloopError

if TYPE_CHECKING:
    from driftloop.analysis.chain_rate import chain_rate_ci
    from driftloop.analysis.intervals import Interval, mean_ci, paired_diff_ci
    from driftloop.api import RunHandle, import_chain, open_run, plan, resume, run, runs
    from driftloop.replicators.base import Backend, Replicator, Requirements

__version__ = "0.1.0"

_LAZY = {
    "RunHandle": "driftloop.api",
    "import_chain": "driftloop.api",
    "open_run": "driftloop.api",
    "plan": "driftloop.api",
    "resume": "driftloop.api",
    "run": "driftloop.api",
    "runs": "driftloop.api",
    "Interval": "driftloop.analysis.intervals",
    "chain_rate_ci": "driftloop.analysis.chain_rate",
    "mean_ci": "driftloop.analysis.intervals",
    "paired_diff_ci": "driftloop.analysis.intervals",
    "Backend": "driftloop.replicators.base",
    "Replicator": "driftloop.replicators.base",
    "Requirements": "driftloop.replicators.base",
}

__all__ = [
    "Backend",
    "DriftloopError",
    "Interval",
    "Replicator",
    "Requirements",
    "RunHandle",
    "__version__",
    "chain_rate_ci",
    "import_chain",
    "mean_ci",
    "open_run",
    "paired_diff_ci",
    "plan",
    "resume",
    "run",
    "runs",
]


def __getattr__(name: str) -> Any:
    """The public API, imported when first asked for (the library is heavy; the CLI's --help is not)."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'driftloop' has no attribute {name!r}")
