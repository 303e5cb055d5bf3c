"""Background threads that give way to the model.

The engine overlaps writing PNGs and measuring frames with the next model call. On a machine with few
cores those threads compete with the model's own compute threads (oneDNN uses every core), and the model
call slows by about as much as they work. Lowering their scheduling priority (Linux gives each thread its
own nice value) lets them run in the gaps instead: they still get a steady share of a core, which is far
more than they need (~35 ms of work per 512² frame against seconds of model time), so they never fall
behind for long.
"""

from __future__ import annotations

import os
import threading

BACKGROUND_NICE = 10


def yield_to_model(nice: int = BACKGROUND_NICE) -> bool:
    """Lower the calling thread's priority by ``nice`` steps; False where the OS does not allow it."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (AttributeError, OSError):  # not Linux-like, or not permitted: run at normal priority
        return False
    return True
