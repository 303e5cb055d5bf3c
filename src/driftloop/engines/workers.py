"""Per-worker status of a run on Ray: which node and device each model replica runs on, how many copies it
made, how fast, how often it failed and was restarted.

The driver keeps a :class:`WorkerBoard` and writes it, atomically and at most every couple of seconds, to
``WORKSPACE/runs/RUN/workers.json`` beside the run's frames (not into the database: only the driver writes
it, and nothing about the run's frames depends on it). ``driftloop runs --workers RUN`` and the gallery's
live view read it back with :func:`read_workers`. A row is a worker *slot*: when a worker dies its
replacement takes the slot over, so copies, failures and restarts add up across the slot's lifetimes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from driftloop._fs import json_safe, write_text_atomic
from driftloop.errors import StoreError

FILE = "workers.json"
EVERY_S = 2.0  # seconds between two writes of the board while a run goes on


@dataclass
class WorkerStatus:
    """One worker slot of a run, as the driver last saw it."""

    slot: int
    name: str  # the Ray actor's name now in the slot (driftloop:RUN:wN)
    node: str = ""  # Ray node id
    host: str = ""
    device: str = ""
    state: str = "starting"  # starting, working, idle, lost, done, not needed
    copies: int = 0
    failures: int = 0
    restarts: int = 0
    started_at: float = field(default_factory=time.time)
    ready_at: float | None = None  # its model loaded (the slot's first worker)
    last_copy_at: float | None = None

    @property
    def copies_per_s(self) -> float | None:
        """Copies a second since the slot's model was loaded, until its latest copy (None before one)."""
        if self.ready_at is None or self.last_copy_at is None or self.last_copy_at <= self.ready_at:
            return None
        return self.copies / (self.last_copy_at - self.ready_at)


class WorkerBoard:
    """The driver's record of its workers, written to the run's folder as it changes."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / FILE
        self.rows: list[WorkerStatus] = []
        self._written = 0.0

    def started(self, slot: int, name: str) -> None:
        """A worker was asked for in ``slot`` (a new one, or a replacement for one that died)."""
        if slot < len(self.rows):
            row = self.rows[slot]
            row.name, row.state, row.restarts = name, "starting", row.restarts + 1
            row.node = row.host = row.device = ""
        else:
            self.rows.append(WorkerStatus(slot, name))
        self.write(force=True)

    def ready(self, slot: int, where: dict[str, str]) -> None:
        row = self.rows[slot]
        row.node, row.host, row.device = where.get("node", ""), where.get("host", ""), where.get("device", "")
        row.state, row.ready_at = "idle", row.ready_at or time.time()
        self.write(force=True)

    def state(self, slot: int, state: str) -> None:
        """Written at once when it changes (once a group, so cheap): a live view never shows a worker that
        finished its group as still working."""
        changed = self.rows[slot].state != state
        self.rows[slot].state = state
        self.write(force=changed)

    def copies(self, slot: int, n: int) -> None:
        row, now = self.rows[slot], time.time()
        if n:
            row.last_copy_at, row.copies = now, row.copies + n
        self.write()

    def failed(self, slot: int) -> None:
        self.rows[slot].failures += 1
        self.write(force=True)

    def close(self) -> None:
        """The run is over: every worker is done, except one lost, and one still starting, which the run
        did not need (its model never loaded before the other workers had made every copy)."""
        for row in self.rows:
            if row.state == "starting":
                row.state = "not needed"
            elif row.state != "lost":
                row.state = "done"
        self.write(force=True)

    def write(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._written < EVERY_S:
            return
        self._written = now
        rows = [{**asdict(r), "copies_per_s": r.copies_per_s} for r in self.rows]
        write_text_atomic(self.path, json.dumps(json_safe({"updated_at": now, "workers": rows}), indent=1))


def read_workers(run_dir: Path) -> list[dict[str, Any]]:
    """A run's per-worker status as last written (``[]``: the run never ran on Ray)."""
    path = run_dir / FILE
    try:
        return list(json.loads(path.read_text())["workers"])
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"{path}: cannot read the workers' status ({exc})") from None
