"""The workspace database's schema: its tables, its version, and the migrations between versions.

The version is kept in ``PRAGMA user_version``. Opening a workspace brings an older database up to
:data:`SCHEMA_VERSION` in one transaction (:func:`migrate`) and refuses a newer one rather than half-read
it. Read by :mod:`driftloop.store.db`, the one module that queries the database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from driftloop.errors import StoreError
from driftloop.store import summary_table

SCHEMA_VERSION = 4
"""The database schema this release writes, kept in ``PRAGMA user_version``.

1: driftloop 0.1.0 (the version was kept only in ``meta.schema_version``).
2: the version moves to ``PRAGMA user_version``; a ``frames(run_id, sha256)`` index for serving frames by
   hash. Tables and columns are otherwise those of 1, so a workspace of 0.1.0 opens, resumes and reports
   the same numbers.
3: a ``chain_summaries(run_id, chain, name, value)`` table: each chain's final values, changes, rates and
   marked steps, written with the run's report (and after a recompute), so the gallery's table sorts and
   filters 100,000 chains without recomputing them; indexed by ``(name, value)``. A workspace of 2 opens
   with the table empty; ``driftloop report RUN`` fills a run's rows.
4: ``chain_summaries`` becomes one wide row per chain, a column per summary number of the vocabulary, each
   with a partial index (:mod:`driftloop.store.summary_table`): the gallery's table filters by one number
   and sorts by another without a join or pivot per number (the README has the times at 100,000 chains).
   The rows of 3 are moved over; every chain has a row. A ``runs(created_at, id)`` index serves the
   newest-first order. Columns of measures added to the vocabulary later are added on opening.
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    model TEXT NOT NULL,
    n_steps INTEGER NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    model_info TEXT NOT NULL,
    versions TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER,
    error TEXT
);
CREATE TABLE IF NOT EXISTS chains (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    chain INTEGER NOT NULL,
    input_path TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    stop_reason TEXT,
    PRIMARY KEY (run_id, chain)
);
CREATE TABLE IF NOT EXISTS frames (
    run_id TEXT NOT NULL,
    chain INTEGER NOT NULL,
    step INTEGER NOT NULL,
    seed INTEGER,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    model_seconds REAL,
    created_at REAL NOT NULL,
    info TEXT,
    cost TEXT,
    PRIMARY KEY (run_id, chain, step),
    FOREIGN KEY (run_id, chain) REFERENCES chains(run_id, chain) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    chain INTEGER NOT NULL,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, chain, step, name),
    FOREIGN KEY (run_id, chain) REFERENCES chains(run_id, chain) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    sweep TEXT NOT NULL REFERENCES sweeps(name) ON DELETE CASCADE,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    PRIMARY KEY (sweep, run_id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    chain INTEGER,
    step INTEGER,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


def _stored_version(conn: sqlite3.Connection) -> int:
    """The schema version of an existing database (0 for a new, empty one)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version:
        return int(version)
    has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE INDEX IF NOT EXISTS frames_by_sha256 ON frames(run_id, sha256)")


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS chain_summaries (run_id TEXT NOT NULL, chain INTEGER NOT NULL, "
        "name TEXT NOT NULL, value REAL, PRIMARY KEY (run_id, chain, name), "
        "FOREIGN KEY (run_id, chain) REFERENCES chains(run_id, chain) ON DELETE CASCADE)"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS chain_summaries_by_value ON chain_summaries(name, value)")


def _migrate_3_to_4(conn: sqlite3.Connection) -> None:
    summary_table.from_long_layout(conn)
    conn.execute("CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created_at, id)")


MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4}
"""``MIGRATIONS[v]`` moves a database from schema ``v`` to ``v + 1``, inside one transaction."""


def readable_version(conn: sqlite3.Connection, path: Path) -> int:
    """The stored schema version; a newer database than this release knows is refused, not half-read."""
    found = _stored_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"workspace database {path} has schema version {found}; this driftloop reads up to "
            f"{SCHEMA_VERSION}: upgrade driftloop"
        )
    return found


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; return the version it had (0: a new database).

    A new database gets schema 1's tables and then every migration, so new and migrated workspaces are
    the same. A newer database than this release knows is refused rather than half-understood. The
    summaries table gains the columns of measures the vocabulary gained since (no new version: a column
    nobody wrote reads as no number).
    """
    found = readable_version(conn, path)
    if found == SCHEMA_VERSION and not summary_table.missing_columns(conn):
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = _stored_version(conn)  # again, under the lock: another process may have migrated it
        if found < SCHEMA_VERSION:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for v in range(max(found, 1), SCHEMA_VERSION):
                MIGRATIONS[v](conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
        summary_table.add_missing_columns(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return found
