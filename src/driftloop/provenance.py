"""What a run records about where it was made: library versions and the host.

Frames depend on the libraries a chain goes through (and, for float kernels, the machine), so every run
stores both; a report of an older run shows what that run recorded.
"""

from __future__ import annotations

import os
import platform
import socket
from importlib.metadata import PackageNotFoundError, version
from typing import Any


def versions() -> dict[str, str]:
    """Versions of what shapes the frames: Python and the libraries a chain goes through."""
    out = {"python": platform.python_version()}
    for pkg in ("driftloop", "torch", "numpy", "pillow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def host() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
