"""The workspace database: one SQLite file (WAL) beside one folder of PNG frames per run.

This is the only module that queries it (its tables and migrations: :mod:`driftloop.store.schema`).
Layout::

    WORKSPACE/driftloop.db
    WORKSPACE/runs/RUN_ID/frames/cCCC/SSSS.png      chain CCC, step SSSS
    WORKSPACE/runs/RUN_ID/...                       renders and reports

Invariant: a frame exists iff its row exists. The PNG is written to a temp file, fsynced and renamed
first; its row is committed after. A crash between the two leaves a file without a row, which
:meth:`Store.clean_orphans` removes before a resume.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop.errors import ReadOnlyWorkspaceError, RunNotFoundError, StoreError, storage_problem
from driftloop.store import summary_table
from driftloop.store.schema import migrate, readable_version

DB_NAME = "driftloop.db"
BUSY_TIMEOUT_S = 30.0  # how long a connection waits for another process's lock before it gives up


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode, waiting while another process holds it.

    The switch needs an exclusive lock, and SQLite answers "database is locked" at once instead of calling
    the busy handler, so two processes opening a new workspace at the same moment (two ``run --resume``
    started together) would fail. Retrying for as long as any other lock is waited for fixes that.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _parse_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


NEWEST_FIRST = "created_at DESC, id DESC"  # runs are listed newest first, everywhere


@dataclass(frozen=True)
class RunRow:
    """A run as stored."""

    id: str
    created_at: float
    updated_at: float
    model: str
    n_steps: int
    status: str
    config: dict[str, Any]
    model_info: dict[str, Any]
    versions: dict[str, Any]
    host: dict[str, Any]
    pid: int | None
    error: str | None


@dataclass(frozen=True)
class RunListRow:
    """A run as a listing shows it: what one SQL query reads, without parsing any JSON column."""

    id: str
    model: str
    n_steps: int
    status: str
    created_at: float
    sweep: str | None  # the sweep the run was made for (its config's ``sweep``), if any
    stabilize: str | None = None  # the stabilizer of each copy (its config's ``stabilize``), if any


@dataclass(frozen=True)
class ChainRow:
    """A chain as stored, with how far it got."""

    run_id: str
    chain: int
    input_path: str
    input_sha256: str
    seed: int
    status: str
    stop_reason: str | None
    last_step: int


# FrameRow's fields, in order
_FRAME_COLUMNS = "run_id, chain, step, seed, sha256, path, model_seconds, created_at, info, cost"


@dataclass(frozen=True)
class FrameRow:
    """One stored frame."""

    run_id: str
    chain: int
    step: int
    seed: int | None
    sha256: str
    path: str
    model_seconds: float | None
    created_at: float
    info: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None


class Store:
    """A workspace folder. Safe to share between threads (one connection behind a lock)."""

    @staticmethod
    def exists(root: str | Path) -> bool:
        """Whether ``root`` holds a workspace (without creating one)."""
        return (Path(root).expanduser() / DB_NAME).is_file()

    def __init__(self, root: str | Path, readonly: bool = False) -> None:
        """Open (or, writable, create) the workspace at ``root``.

        ``readonly`` opens an existing workspace for reading only (a read-only mount, an archive copy):
        nothing is created or migrated. A workspace that cannot be written or has no space left is a
        :class:`~driftloop.errors.StorageError` that says so, never a traceback.
        """
        self.root = Path(root).expanduser().resolve()
        self.db_path = self.root / DB_NAME
        self.readonly = readonly
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"workspace {self.root} is a file, not a folder")
        self._lock = threading.RLock()
        try:
            if readonly:
                self._conn = self._open_readonly()
                readable_version(self._conn, self.db_path)  # read as it is: nothing is migrated
                self.summary_columns = summary_table.stored_columns(self._conn)
                return
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "runs").mkdir(exist_ok=True)
            if not all(
                os.access(p, os.W_OK) for p in (self.root, self.root / "runs", self.db_path) if p.exists()
            ):
                raise ReadOnlyWorkspaceError(self.root)  # SQLite would open it read-only and fail later
            self._conn = sqlite3.connect(
                self.db_path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
            )
            self._conn.row_factory = sqlite3.Row
            _enable_wal(self._conn)
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            migrate(self._conn, self.db_path)
            self.summary_columns = summary_table.stored_columns(self._conn)  # the chain table's numbers
        except (sqlite3.DatabaseError, OSError) as exc:
            problem = storage_problem(exc, self.root)
            if problem is not None:
                raise problem from None
            if isinstance(exc, OSError):
                raise
            raise StoreError(f"workspace database {self.db_path} cannot be opened: {exc}") from None

    def _open_readonly(self) -> sqlite3.Connection:
        """A read-only connection; ``immutable`` where SQLite cannot even make its shared-memory file."""
        for query in ("mode=ro", "mode=ro&immutable=1"):
            conn = sqlite3.connect(
                f"{self.db_path.as_uri()}?{query}", uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_S
            )
            conn.row_factory = sqlite3.Row
            try:
                conn.execute("SELECT COUNT(*) FROM runs").fetchone()
            except sqlite3.OperationalError:
                conn.close()
                continue
            return conn
        raise StoreError(f"workspace database {self.db_path} cannot be read")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of writes. A full or read-only disk is a :class:`~driftloop.errors.StorageError`
        (its cause the SQLite error), and nothing of the unit is kept."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    raise
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                problem = storage_problem(exc, self.root)
                if problem is None:
                    raise
                raise problem from exc

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # ---- paths -------------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def frame_relpath(self, chain: int, step: int) -> str:
        return f"frames/c{chain:03d}/{step:04d}.png"

    def frame_path(self, run_id: str, chain: int, step: int) -> Path:
        return self.run_dir(run_id) / self.frame_relpath(chain, step)

    def raw_relpath(self, chain: int, step: int) -> str:
        """Where a stabilized run with ``keep_raw`` keeps the model's own copy, beside the stored frame."""
        return f"frames/c{chain:03d}/{step:04d}.raw.png"

    # ---- runs --------------------------------------------------------------------------------------
    def create_run(
        self,
        run_id: str,
        model: str,
        n_steps: int,
        config: dict[str, Any],
        model_info: dict[str, Any],
        versions: dict[str, Any],
        host: dict[str, Any],
        chains: list[tuple[str, str, int]],
    ) -> None:
        """Insert a run and its chains (input path, input sha256, seed) in one transaction."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs(id, created_at, updated_at, model, n_steps, status, config, model_info,"
                " versions, host) VALUES (?, ?, ?, ?, ?, 'created', ?, ?, ?, ?)",
                (run_id, now, now, model, n_steps, json.dumps(config), json.dumps(model_info),
                 json.dumps(versions), json.dumps(host)),
            )  # fmt: skip
            db.executemany(
                "INSERT INTO chains(run_id, chain, input_path, input_sha256, seed, status) "
                "VALUES (?, ?, ?, ?, ?, 'running')",
                [(run_id, i, p, h, s) for i, (p, h, s) in enumerate(chains)],
            )
            db.executemany(  # every chain is a row of the table of numbers, before it has any
                "INSERT INTO chain_summaries(run_id, chain) VALUES (?, ?)",
                [(run_id, i) for i in range(len(chains))],
            )

    def delete_run(self, run_id: str) -> None:
        """Remove a run's rows (chains, frames, metrics, events and sweep links go with it by cascade).

        Its folder is the caller's to remove, after this: a folder without a row is harmless, a row without
        its folder is a damaged run.
        """
        with self.transaction() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def set_run_status(
        self, run_id: str, status: str, pid: int | None = None, error: str | None = None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, pid = ?, error = ?, updated_at = ? WHERE id = ?",
                (status, pid, error, time.time(), run_id),
            )

    def update_model_info(self, run_id: str, model_info: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET model_info = ? WHERE id = ?", (json.dumps(model_info), run_id))

    def _run_row(self, row: sqlite3.Row) -> RunRow:
        return RunRow(
            id=row["id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            model=row["model"],
            n_steps=row["n_steps"],
            status=row["status"],
            config=json.loads(row["config"]),
            model_info=json.loads(row["model_info"]),
            versions=json.loads(row["versions"]),
            host=json.loads(row["host"]),
            pid=row["pid"],
            error=row["error"],
        )

    def runs(self) -> list[RunRow]:
        """Every run, newest first (the one order of runs everywhere they are listed)."""
        return [self._run_row(r) for r in self._query(f"SELECT * FROM runs ORDER BY {NEWEST_FIRST}")]

    def run_list(self) -> list[RunListRow]:
        """Every run, newest first, as a listing needs it: the sweep and the stabilizer are read from the
        stored config in SQL, so a thousand runs cost no JSON parse in Python (what :meth:`runs` spends most
        of its time on)."""
        rows = self._query(
            "SELECT id, model, n_steps, status, created_at, json_extract(config, '$.sweep') AS sweep, "
            f"json_extract(config, '$.stabilize') AS stabilize FROM runs ORDER BY {NEWEST_FIRST}"
        )
        return [
            RunListRow(r["id"], r["model"], r["n_steps"], r["status"], r["created_at"],
                       r["sweep"] if isinstance(r["sweep"], str) and r["sweep"] else None,
                       r["stabilize"] if isinstance(r["stabilize"], str) and r["stabilize"] else None)
            for r in rows
        ]  # fmt: skip

    def data_version(self) -> int:
        """A number that changes whenever another connection (another process) has committed to the
        database since this one last asked (SQLite's ``PRAGMA data_version``): a cheap "did anything
        change?" for readers that cache, such as the gallery. This connection's own commits do not move it."""
        return int(self._query("PRAGMA data_version")[0][0])

    def get_run(self, run_id: str) -> RunRow:
        """A run by id or unique id prefix; an empty or ambiguous prefix is an error naming the candidates."""
        if not run_id.strip():
            ids = [r["id"] for r in self._query("SELECT id FROM runs ORDER BY created_at DESC, id DESC")]
            listed = ", ".join(ids[:10]) + (f", … ({len(ids)} in all)" if len(ids) > 10 else "")
            raise RunNotFoundError(
                f"give a run id (or a unique prefix of one); the workspace {self.root} has "
                + (f"these runs: {listed}" if ids else "no runs")
            )
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            like = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = self._query("SELECT * FROM runs WHERE id LIKE ? ESCAPE '\\'", (like,))
        if not rows:
            raise RunNotFoundError(f"no run {run_id!r} in workspace {self.root} (see `driftloop runs`)")
        if len(rows) > 1:
            ids = ", ".join(r["id"] for r in rows[:10]) + (
                f", … ({len(rows)} in all)" if len(rows) > 10 else ""
            )
            raise RunNotFoundError(f"run id prefix {run_id!r} is ambiguous; it matches {ids}")
        return self._run_row(rows[0])

    # ---- chains ------------------------------------------------------------------------------------
    def chains(self, run_id: str) -> list[ChainRow]:
        rows = self._query(
            "SELECT c.*, COALESCE(MAX(f.step), -1) AS last_step FROM chains c "
            "LEFT JOIN frames f ON f.run_id = c.run_id AND f.chain = c.chain "
            "WHERE c.run_id = ? GROUP BY c.chain ORDER BY c.chain",
            (run_id,),
        )
        return [
            ChainRow(r["run_id"], r["chain"], r["input_path"], r["input_sha256"], r["seed"], r["status"],
                     r["stop_reason"], r["last_step"])
            for r in rows
        ]  # fmt: skip

    def set_chain_status(self, run_id: str, chain: int, status: str, reason: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE chains SET status = ?, stop_reason = ? WHERE run_id = ? AND chain = ?",
                (status, reason, run_id, chain),
            )

    # ---- frames ------------------------------------------------------------------------------------
    def add_frames(
        self, rows: list[FrameRow], metrics: list[tuple[int, int, dict[str, float]]] | None = None
    ) -> None:
        """Commit rows whose PNG files are already durable on disk (and, in the same transaction, their
        ``metrics`` rows when they were measured before, as on a Ray worker)."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO frames(run_id, chain, step, seed, sha256, path, model_seconds, created_at,"
                " info, cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.run_id,
                        r.chain,
                        r.step,
                        r.seed,
                        r.sha256,
                        r.path,
                        r.model_seconds,
                        r.created_at,
                        _json_or_null(r.info),
                        _json_or_null(r.cost),
                    )
                    for r in rows
                ],
            )
            if metrics:
                _insert_metrics(db, rows[0].run_id, metrics)

    def frames(self, run_id: str, chain: int | None = None) -> list[FrameRow]:
        sql = f"SELECT {_FRAME_COLUMNS} FROM frames WHERE run_id = ?"
        args: tuple[Any, ...] = (run_id,)
        if chain is not None:
            sql += " AND chain = ?"
            args += (chain,)
        with self._lock:
            cursor = self._conn.cursor()
            cursor.row_factory = None  # tuples: a 100,000-frame run reads in a third of the time
            rows = cursor.execute(sql + " ORDER BY chain, step", args).fetchall()
        return [FrameRow(*r[:8], _parse_or_none(r[8]), _parse_or_none(r[9])) for r in rows]

    def copy_seconds(self, model: str, size: int) -> tuple[list[float], int]:
        """Seconds each stored copy of ``model`` at the requested frame ``size`` took the model (a batch's
        time shared by its frames), and from how many runs: what a time estimate learns from history."""
        rows = self._query(
            "SELECT f.run_id, f.model_seconds FROM frames f JOIN runs r ON r.id = f.run_id "
            "WHERE json_extract(r.config, '$.model') = ? AND f.step > 0 AND f.model_seconds IS NOT NULL "
            "AND COALESCE(json_extract(r.config, '$.requested_size'), json_extract(r.config, '$.size')) = ?",
            (model, size),
        )
        return [float(r["model_seconds"]) for r in rows], len({r["run_id"] for r in rows})

    def frame_counts(self) -> dict[str, tuple[int, int, int]]:
        """Per run: (number of chains, smallest and largest last step over chains), for listings."""
        rows = self._query(
            "SELECT c.run_id AS run_id, COUNT(*) AS n, MIN(last) AS done, MAX(last) AS most FROM "
            "(SELECT c.run_id, c.chain, COALESCE(MAX(f.step), -1) AS last FROM chains c LEFT JOIN frames f "
            " ON f.run_id = c.run_id AND f.chain = c.chain GROUP BY c.run_id, c.chain) c GROUP BY c.run_id"
        )
        return {r["run_id"]: (r["n"], r["done"], r["most"]) for r in rows}

    def clean_orphans(self, run_id: str) -> list[Path]:
        """Delete frame files that have no row (a crash between rename and commit) and temp leftovers.

        Raises StoreError when a row's file is missing: that frame is lost and the run cannot be trusted.
        """
        frames_root = self.run_dir(run_id) / "frames"
        rows = self.frames(run_id)
        known = {r.path for r in rows}
        known |= {str(r.info["raw_path"]) for r in rows if r.info and r.info.get("raw_path")}
        removed: list[Path] = []
        if frames_root.is_dir():
            for path in sorted(frames_root.rglob("*")):
                if path.is_file() and str(path.relative_to(self.run_dir(run_id))) not in known:
                    path.unlink()
                    removed.append(path)
        for rel in known:
            if not (self.run_dir(run_id) / rel).is_file():
                raise StoreError(
                    f"run {run_id}: frame file {self.run_dir(run_id) / rel} is recorded but missing on disk; "
                    "the run folder was altered and cannot be resumed"
                )
        return removed

    # ---- metrics -----------------------------------------------------------------------------------
    def add_metrics(self, run_id: str, rows: list[tuple[int, int, dict[str, float]]]) -> None:
        """Store (chain, step, {name: value}) rows; recomputing a frame replaces its values."""
        with self.transaction() as db:
            _insert_metrics(db, run_id, rows)

    def metrics(self, run_id: str) -> dict[tuple[int, int], dict[str, float]]:
        """Every stored metric of a run, by (chain, step)."""
        out: dict[tuple[int, int], dict[str, float]] = {}
        for chain, step, name, value in self.metric_tuples(run_id):
            out.setdefault((chain, step), {})[name] = value
        return out

    def metric_tuples(self, run_id: str) -> list[tuple[int, int, str, float | None]]:
        """Every stored metric of a run as plain (chain, step, name, value) tuples: a table's fast read
        (a run of 1,000 chains × 13 steps has 200,000 of them)."""
        with self._lock:
            cursor = self._conn.cursor()
            cursor.row_factory = None  # tuples, not sqlite3.Row: half the time for a large run
            return cursor.execute(
                "SELECT chain, step, name, value FROM metrics WHERE run_id = ?", (run_id,)
            ).fetchall()

    def metric_values(self, name: str, run_ids: list[str]) -> list[tuple[str, int, int, float | None]]:
        """(run, chain, step, value) of one metric over some runs, in that order (a bundle's curves)."""
        out: list[tuple[str, int, int, float | None]] = []
        for i in range(0, len(run_ids), 500):  # SQLite's limit of bound parameters, with room
            part = run_ids[i : i + 500]
            rows = self._query(
                f"SELECT run_id, chain, step, value FROM metrics WHERE name = ? AND run_id IN "
                f"({', '.join('?' * len(part))}) ORDER BY run_id, chain, step",
                (name, *part),
            )
            out += [(r[0], r[1], r[2], r[3]) for r in rows]
        return out

    def measured_steps(self, run_id: str) -> set[tuple[int, int]]:
        rows = self._query("SELECT DISTINCT chain, step FROM metrics WHERE run_id = ?", (run_id,))
        return {(r["chain"], r["step"]) for r in rows}

    def delete_metrics(self, run_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))

    def set_chain_summaries(self, run_id: str, rows: dict[int, dict[str, float | None]]) -> None:
        """Replace a run's stored per-chain summary numbers ({chain: {column: value}}), in one transaction;
        a column outside the vocabulary (:func:`driftloop.measures.summary_columns`) is an error."""
        with self.transaction() as db:
            summary_table.write(db, self.summary_columns, run_id, rows)

    def chain_summaries(self, run_id: str) -> dict[int, dict[str, float]]:
        """A run's stored per-chain summary numbers, by chain: the chains that have any, with the numbers
        they have (empty before its first report)."""
        with self._lock:
            return summary_table.read(self._conn, self.summary_columns, run_id)

    # ---- sweeps ------------------------------------------------------------------------------------
    def save_sweep(self, name: str, spec: dict[str, Any]) -> None:
        """Record what a sweep asks for (models, control, inputs, seeds, ...); the latest spec wins."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO sweeps(name, spec, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
                (name, json.dumps(spec), time.time()),
            )

    def get_sweep(self, name: str) -> dict[str, Any] | None:
        rows = self._query("SELECT spec FROM sweeps WHERE name = ?", (name,))
        return json.loads(rows[0]["spec"]) if rows else None

    def add_sweep_run(self, name: str, run_id: str) -> None:
        """A run holds chains of the sweep (made for it, or made before and reused)."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO sweep_runs(sweep, run_id) VALUES (?, ?)", (name, run_id))

    def sweep_run_ids(self, name: str) -> list[str]:
        rows = self._query(
            "SELECT r.id FROM sweep_runs s JOIN runs r ON r.id = s.run_id WHERE s.sweep = ? "
            "ORDER BY r.created_at, r.id",
            (name,),
        )
        return [r["id"] for r in rows]

    # ---- events ------------------------------------------------------------------------------------
    def add_event(
        self, run_id: str, kind: str, message: str, chain: int | None = None, step: int | None = None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO events(run_id, chain, step, kind, message, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, chain, step, kind, message, time.time()),
            )

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._query("SELECT * FROM events WHERE run_id = ? ORDER BY id", (run_id,))]


def _insert_metrics(
    db: sqlite3.Connection, run_id: str, rows: list[tuple[int, int, dict[str, float]]]
) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO metrics(run_id, chain, step, name, value) VALUES (?, ?, ?, ?, ?)",
        [(run_id, c, s, k, float(v)) for c, s, values in rows for k, v in values.items()],
    )
