"""driftloop: recursive image replication, measured.

Hand an image model a picture, ask it to copy it, feed the copy back in, repeat; store every frame and
watch where the model's errors take the picture.

The statistics of the bias card and the run reports are public too, for a researcher's own table (one value
per chain, with its source image and optionally its seed): :func:`mean_ci` and :func:`paired_diff_ci`, from
their home :mod:`driftloop.analysis.intervals` (which also has ``sign_flip_test`` and ``unpaired_diff_ci``).
"""

from driftloop.analysis.intervals import Interval, mean_ci, paired_diff_ci
from driftloop.api import RunHandle, open_run, resume, run, runs
from driftloop.errors import DriftloopError
from driftloop.replicators.base import Backend, Replicator, Requirements

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "DriftloopError",
    "Interval",
    "Replicator",
    "Requirements",
    "RunHandle",
    "__version__",
    "mean_ci",
    "open_run",
    "paired_diff_ci",
    "resume",
    "run",
    "runs",
]
