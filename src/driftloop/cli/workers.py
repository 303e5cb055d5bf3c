"""``driftloop runs --workers RUN``: a run's Ray workers as a table."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def workers_table(run_id: str, rows: list[dict[str, Any]]) -> Table | str:
    """One line per worker slot: node, host, device, state, copies, copies/s, failures, restarts."""
    if not rows:
        return f"run {run_id} has no Ray workers (it ran on the local engine, or has not started)"
    table = Table(box=None)
    for name in ("worker", "node", "host", "device", "state", "copies", "copies/s", "failures", "restarts"):
        table.add_column(
            name, no_wrap=True, justify="right" if name.startswith(("cop", "fail", "rest")) else "left"
        )
    for r in rows:
        rate = r.get("copies_per_s")
        table.add_row(
            str(r["name"]).rsplit(":", 1)[-1], str(r["node"])[:12], r["host"], r["device"], r["state"],
            str(r["copies"]), "–" if rate is None else f"{rate:.2f}", str(r["failures"]), str(r["restarts"]),
        )  # fmt: skip
    return table
