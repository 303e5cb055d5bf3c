"""Per-thread reusable buffers for the temporaries of the metric computations.

Why: a 512² float32 plane is 1 MiB, which glibc's allocator hands out as fresh zeroed pages from the
kernel; a frame's ~30 temporaries then cost ~6000 page faults, about as much CPU time as the arithmetic
itself. Reusing a few named buffers per thread removes that. A buffer's contents are undefined, it is
only valid until the next call that asks for the same tag on the same thread, and it is never returned
to a caller or stored in a result. Frames above :data:`POOL_MAX_ELEMENTS` elements per buffer allocate
normally, so a rare huge frame does not pin its temporaries' memory for the thread's lifetime.
"""

from __future__ import annotations

import math
import threading

import numpy as np

POOL_MAX_ELEMENTS = 3 * 1024 * 1024  # a 1024² RGB frame's planes
_MAX_BUFFERS = 64

_local = threading.local()


def scratch(tag: str, shape: tuple[int, ...], dtype: type | np.dtype = np.float32) -> np.ndarray:
    """A reusable uninitialised array for ``tag`` on this thread (see the module docstring)."""
    if math.prod(shape) > POOL_MAX_ELEMENTS:
        return np.empty(shape, dtype)
    pool: dict | None = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    key = (tag, shape, np.dtype(dtype))
    buf = pool.get(key)
    if buf is None:
        if len(pool) >= _MAX_BUFFERS:  # frame size changed: drop the old size's buffers
            pool.clear()
        buf = pool[key] = np.empty(shape, dtype)
    return buf
