"""The ``chain_summaries`` table: one wide row per chain, a REAL column per summary number of the vocabulary
(:func:`driftloop.measures.summary_columns`: ``half_life``, ``ssim_to_origin.final``, ...), each column
with a partial index over the chains that have it.

Why wide: the gallery's table filters by one or two numbers and sorts by a third. With one row per chain a
threshold is a range of one column's index and a sort is a walk of another's (a chain without the number
is not in the index: it comes last), so no query joins or pivots a row per number, however many chains.
Every chain has its row from the moment its run is made (without numbers until its report is written), so
the table lists every chain.

The columns follow the vocabulary: opening a writable workspace adds the column and index of a measure
added since (:func:`add_missing_columns`); writing a name outside the vocabulary is an error. Read and
written only through :class:`driftloop.store.db.Store` and the schema's migrations.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping

from driftloop.errors import StoreError
from driftloop.measures import summary_columns

COLUMNS = summary_columns()
KEYS = ("run_id", "chain")
_NAME = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)?\Z")


def column_sql(name: str) -> str:
    """A column's name as SQL text (double-quoted: the names hold a dot); nothing else becomes SQL."""
    if not _NAME.match(name):
        raise StoreError(f"{name!r} is not a chain summary column")
    return f'"{name}"'


def index_name(name: str) -> str:
    return "chain_summaries_by_" + name.replace(".", "__")


def create_table(conn: sqlite3.Connection, columns: Iterable[str] = COLUMNS) -> None:
    numbers = "".join(f", {column_sql(c)} REAL" for c in columns)
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS chain_summaries (run_id TEXT NOT NULL, chain INTEGER NOT NULL{numbers}, "
        "PRIMARY KEY (run_id, chain), "
        "FOREIGN KEY (run_id, chain) REFERENCES chains(run_id, chain) ON DELETE CASCADE)"
    )


def create_indexes(conn: sqlite3.Connection, columns: Iterable[str]) -> None:
    """One partial index per column, over the chains that have the number (the ones a sort or a threshold
    walks): a column nobody measures costs nothing."""
    for c in columns:
        q = column_sql(c)
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(c)} ON chain_summaries({q}) WHERE {q} IS NOT NULL"
        )


def stored_columns(conn: sqlite3.Connection) -> tuple[str, ...]:
    """The number columns the table has; () when it has not the wide layout (a schema-3 database read
    as it is)."""
    names = [r[1] for r in conn.execute("PRAGMA table_info(chain_summaries)").fetchall()]
    if "name" in names or not names:
        return ()
    return tuple(n for n in names if n not in KEYS)


def missing_columns(conn: sqlite3.Connection) -> list[str]:
    """The vocabulary's columns the (wide) table lacks."""
    have = stored_columns(conn)
    return [c for c in COLUMNS if c not in have] if have else []


def add_missing_columns(conn: sqlite3.Connection) -> list[str]:
    """Add the columns (and indexes) of measures the vocabulary gained since the table was made."""
    missing = missing_columns(conn)
    for c in missing:
        conn.execute(f"ALTER TABLE chain_summaries ADD COLUMN {column_sql(c)} REAL")
    create_indexes(conn, missing)
    return missing


def from_long_layout(conn: sqlite3.Connection) -> None:
    """Schema 3 -> 4: the ``(run_id, chain, name, value)`` rows become one wide row per chain (a row for
    every chain, numbers or not; names outside the vocabulary, which no table could show, are dropped).
    The indexes are made after the rows are in: one sort each instead of an insert per row."""
    conn.execute("DROP INDEX IF EXISTS chain_summaries_by_value")
    conn.execute("ALTER TABLE chain_summaries RENAME TO chain_summaries_3")
    create_table(conn)  # and the old table goes once its rows are moved
    conn.execute("INSERT INTO chain_summaries(rowid, run_id, chain) SELECT rowid, run_id, chain FROM chains")
    known = set(COLUMNS)
    found = conn.execute(
        "SELECT run_id, chain, name, value FROM chain_summaries_3 WHERE value IS NOT NULL "
        "ORDER BY run_id, chain"
    )
    batch: dict[tuple[str, ...], list[tuple[object, ...]]] = {}
    key, numbers = None, {}
    for run_id, chain, name, value in [*found, (None, None, None, None)]:  # a sentinel ends the last chain
        if (run_id, chain) != key:
            if key is not None and numbers:
                batch.setdefault(tuple(numbers), []).append((*numbers.values(), *key))
            key, numbers = (run_id, chain), {}
        if name in known:
            numbers[name] = value
    for names, params in batch.items():
        sets = ", ".join(f"{column_sql(n)} = ?" for n in names)
        conn.executemany(f"UPDATE chain_summaries SET {sets} WHERE run_id = ? AND chain = ?", params)
    conn.execute("DROP TABLE chain_summaries_3")
    create_indexes(conn, COLUMNS)


def write(
    conn: sqlite3.Connection,
    columns: tuple[str, ...],
    run_id: str,
    rows: Mapping[int, Mapping[str, float | None]],
) -> None:
    """Replace a run's numbers: each of its chains' row is written whole (a number not given is NULL)."""
    unknown = sorted({n for values in rows.values() for n in values} - set(columns))
    if unknown:
        raise StoreError(f"run {run_id}: {unknown[0]!r} is not a chain summary column of this workspace")
    names = ", ".join(column_sql(c) for c in columns)
    sets = ", ".join(f"{column_sql(c)} = excluded.{column_sql(c)}" for c in columns)
    marks = ", ".join("?" * (len(columns) + 2))
    chains = {r[0] for r in conn.execute("SELECT chain FROM chain_summaries WHERE run_id = ?", (run_id,))}
    params = [(run_id, c, *(rows.get(c, {}).get(n) for n in columns)) for c in sorted(chains | set(rows))]
    conn.executemany(
        f"INSERT INTO chain_summaries(run_id, chain, {names}) VALUES ({marks}) "
        f"ON CONFLICT(run_id, chain) DO UPDATE SET {sets}",
        params,
    )


def read(conn: sqlite3.Connection, columns: tuple[str, ...], run_id: str) -> dict[int, dict[str, float]]:
    """A run's numbers by chain: the chains that have any, with the numbers they have."""
    if not columns:
        return {}
    names = ", ".join(column_sql(c) for c in columns)
    out: dict[int, dict[str, float]] = {}
    for row in conn.execute(f"SELECT chain, {names} FROM chain_summaries WHERE run_id = ?", (run_id,)):
        numbers = {n: v for n, v in zip(columns, row[1:], strict=True) if v is not None}
        if numbers:
            out[row[0]] = numbers
    return out
