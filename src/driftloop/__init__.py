"""driftloop: recursive image replication, measured.

Hand an image model a picture, ask it to copy it, feed the copy back in, repeat; store every frame and
watch where the model's errors take the picture.
"""

from driftloop.api import RunHandle, import_chain, open_run, resume, run, runs
from driftloop.errors import DriftloopError
from driftloop.replicators.base import Backend, Replicator, Requirements

__version__ = "0.1.0"

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
