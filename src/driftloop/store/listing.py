"""The list of a workspace's runs, newest first: what ``driftloop runs``, the API's ``runs()`` and the gallery
show.

Light on purpose: two SQL queries, no JSON parsed in Python, and nothing imported beyond the database and the
run locks (no NumPy, no Pillow, none of the analysis), so ``driftloop runs`` answers about as fast as a bare
command line starts. Newest first everywhere a list of runs is shown: the run just made is on top.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from driftloop.config import arm_label
from driftloop.errors import ReadOnlyWorkspaceError, RunNotFoundError, StoreError
from driftloop.store.db import DB_NAME, Store
from driftloop.store.locks import unlocked_status


@dataclass(frozen=True)
class RunSummary:
    """One line of ``driftloop runs``."""

    id: str
    model: str
    chains: int
    steps_done: int  # the least advanced chain's last step
    n_steps: int
    status: str
    created_at: float
    steps_most: int = 0  # the most advanced chain's (chains stopped early by a fixed point or a refusal)
    sweep: str | None = None  # the sweep the run was made for, if any
    stabilize: str | None = None  # the stabilizer that changed each copy, if any

    @property
    def arm(self) -> str:
        """The model, with the stabilizer when there is one (``webp + stabilize=colour:lab``)."""
        return arm_label(self.model, self.stabilize)

    @property
    def steps(self) -> str:
        """``101/101``, or ``40–101/101`` when chains stopped at different steps (fixed point, refusal)."""
        done = (
            str(self.steps_done)
            if self.steps_most == self.steps_done
            else f"{self.steps_done}–{self.steps_most}"
        )
        return f"{done}/{self.n_steps}"


def summaries(store: Store, live_status: bool = True) -> list[RunSummary]:
    """Every run of ``store``, newest first, with its chains' progress.

    ``live_status``: a 'running' run no process holds reads 'interrupted' (or 'stopped', see
    :mod:`~driftloop.store.locks`); a caller that keeps the list across reads passes False and applies
    :func:`live` on each read instead.
    """
    counts = store.frame_counts()
    rows = []
    for r in store.run_list():
        chains, done, most = counts.get(r.id, (0, -1, -1))
        rows.append(RunSummary(r.id, r.model, chains, max(done, 0), r.n_steps, r.status, r.created_at,
                               max(most, 0), r.sweep, r.stabilize))  # fmt: skip
    return live(store, rows) if live_status else rows


def live(store: Store, rows: list[RunSummary]) -> list[RunSummary]:
    """``rows`` with each 'running' run that no process holds shown as what it is now."""
    return [
        replace(r, status=unlocked_status(store.run_dir(r.id), r.status)) if r.status == "running" else r
        for r in rows
    ]


def check_folder(root: str | Path) -> None:
    """A workspace path that is a file is an error for every verb (not "no runs")."""
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise StoreError(f"workspace {path} is a file, not a folder")


def open_existing(root: str | Path) -> Store:
    """The workspace at ``root``, which must exist: a mistyped ``--workspace`` is an error, never a new empty
    workspace. A workspace that cannot be written is still opened for reading (list, report, export)."""
    root = Path(root).expanduser()
    check_folder(root)
    if not Store.exists(root):
        raise RunNotFoundError(f"no driftloop workspace at {root} (no {DB_NAME} there); check --workspace")
    try:
        return Store(root)
    except ReadOnlyWorkspaceError:
        return Store(root, readonly=True)


def list_runs(root: str | Path) -> list[RunSummary]:
    """Every run in a workspace, newest first; a folder that holds no workspace has none (and is not made
    into one); a file is an error."""
    if not Store.exists(root):
        check_folder(root)
        return []
    return summaries(open_existing(root))


def usd_spent(store: Store, run_ids: list[str]) -> dict[str, float]:
    """Each run's money spent: the sum of its frames' priced cost (``cost.usd``; an unpriced frame adds
    nothing, as in :func:`driftloop.cost.accounting.totals`), summed in SQL for many runs at once (a
    sweep's cells), where reading every frame's cost record in Python would take seconds."""
    out: dict[str, float] = {}
    for i in range(0, len(run_ids), 500):  # SQLite's limit of bound parameters, with room
        part = run_ids[i : i + 500]
        rows = store._query(
            f"SELECT run_id, TOTAL(json_extract(cost, '$.usd')) FROM frames WHERE run_id IN "
            f"({', '.join('?' * len(part))}) AND cost IS NOT NULL GROUP BY run_id",
            tuple(part),
        )
        out.update({r[0]: float(r[1]) for r in rows})
    return {r: out.get(r, 0.0) for r in run_ids}
