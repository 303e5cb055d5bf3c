"""One process advances a run at a time: an advisory lock on ``RUN/.lock`` that dies with its process.

``kill -9`` included: the kernel drops a ``flock`` when its holder exits, so a crashed run is never
stuck "locked", and a reader can tell a run in progress from one whose process died.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from driftloop.errors import RunLockedError

LOCK_NAME = ".lock"
STOPPED_NAME = ".stopped"  # an empty file: "stopped", where a full disk had no room to store the status


@contextmanager
def run_lock(run_dir: Path, run_id: str) -> Iterator[None]:
    """Hold the run's lock for the block; refuse at once (no waiting) if another process holds it."""
    path = run_dir / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(run_id) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_live(run_dir: Path) -> bool:
    """True when some process holds the run's lock (it is being advanced right now)."""
    path = run_dir / LOCK_NAME
    if not path.exists():
        return False
    with open(path, "rb") as fh:  # a read-only descriptor can take a flock too (a read-only workspace)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def mark_stopped(run_dir: Path) -> None:
    """Say "this run stopped cleanly" without writing a byte of data (a full disk still has inodes)."""
    (run_dir / STOPPED_NAME).touch()


def clear_stopped(run_dir: Path) -> None:
    (run_dir / STOPPED_NAME).unlink(missing_ok=True)


def unlocked_status(run_dir: Path, stored: str) -> str:
    """A run's status as a reader should see it: a 'running' run no process holds is 'stopped' when it
    was stopped cleanly but could not store that (a full disk), else 'interrupted' (its process died)."""
    if stored != "running" or is_live(run_dir):
        return stored
    return "stopped" if (run_dir / STOPPED_NAME).exists() else "interrupted"
