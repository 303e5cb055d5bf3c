"""driftloop: recursive image replication, measured.

Hand an image model a picture, ask it to copy it, feed the copy back in, repeat; store every frame and
watch where the model's errors take the picture.

The names below are loaded on first use (PEP 562), so ``import driftloop.cli`` (and ``driftloop --help``)
does not pay for NumPy, pandas and the rest of the library.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from driftloop.errors import DriftloopError

if TYPE_CHECKING:
    from driftloop.api import RunHandle, import_chain, open_run, resume, run, runs
    from driftloop.replicators.base import Backend, Replicator, Requirements

__version__ = "0.1.0"

_LAZY = {
    "RunHandle": "driftloop.api",
    "import_chain": "driftloop.api",
    "open_run": "driftloop.api",
    "resume": "driftloop.api",
    "run": "driftloop.api",
    "runs": "driftloop.api",
    "Backend": "driftloop.replicators.base",
    "Replicator": "driftloop.replicators.base",
    "Requirements": "driftloop.replicators.base",
}

__all__ = [
    "Backend",
    "DriftloopError",
    "Replicator",
    "Requirements",
    "RunHandle",
    "__version__",
    "import_chain",
    "open_run",
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
