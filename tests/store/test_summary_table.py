"""The wide ``chain_summaries`` table (one row per chain, a column per number of the vocabulary) and the
migrations that bring older workspaces to it: schema 3's rows of (chain, name, value) are moved over,
schema 2 gains the table, and a measure added to the vocabulary later gains its column on opening."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from driftloop.errors import StoreError
from driftloop.measures import summary_columns
from driftloop.store import SCHEMA_VERSION, Store
from driftloop.store.chain_table import ChainQuery, Threshold, query_chains

SSIM, DB = "ssim_to_origin.final", "lab_b_mean.change"
V3_TABLE = (
    "CREATE TABLE chain_summaries (run_id TEXT NOT NULL, chain INTEGER NOT NULL, name TEXT NOT NULL, "
    "value REAL, PRIMARY KEY (run_id, chain, name), "
    "FOREIGN KEY (run_id, chain) REFERENCES chains(run_id, chain) ON DELETE CASCADE)"
)


def made(root: Path) -> Path:
    """A workspace of two runs of three chains each, without numbers yet; its database's path."""
    s = Store(root)
    for r in ("r0", "r1"):
        s.create_run(r, "taef2", 5, {}, {}, {}, {}, [(f"in{c}.png", "h", c) for c in range(3)])
    s.close()
    return root / "driftloop.db"


def as_schema_3(db: Path, rows: list[tuple[str, int, str, float | None]]) -> None:
    """The database as driftloop with schema 3 left it: summaries as (run, chain, name, value) rows."""
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE chain_summaries")
        conn.execute("DROP INDEX runs_by_created")
        conn.execute(V3_TABLE)
        conn.execute("CREATE INDEX chain_summaries_by_value ON chain_summaries(name, value)")
        conn.executemany("INSERT INTO chain_summaries VALUES (?, ?, ?, ?)", rows)
        conn.execute("PRAGMA user_version = 3")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}


def test_one_row_per_chain_with_a_column_and_index_per_number(tmp_path: Path) -> None:
    db = made(tmp_path / "ws")
    with sqlite3.connect(db) as conn:
        names = [r[1] for r in conn.execute("PRAGMA table_info(chain_summaries)")]
        assert names == ["run_id", "chain", *summary_columns()]
        assert conn.execute("SELECT COUNT(*) FROM chain_summaries").fetchone()[0] == 6
    assert {"chain_summaries_by_half_life", "chain_summaries_by_ssim_to_origin__final"} <= tables(db)
    s = Store(tmp_path / "ws")
    s.set_chain_summaries("r0", {0: {SSIM: 0.25, DB: None}, 2: {DB: 1.5}})
    assert s.chain_summaries("r0") == {0: {SSIM: 0.25}, 2: {DB: 1.5}}
    s.set_chain_summaries("r0", {2: {SSIM: 0.75}})  # replaces the run's numbers: chain 0's are gone
    assert s.chain_summaries("r0") == {2: {SSIM: 0.75}} and s.chain_summaries("r1") == {}
    with pytest.raises(StoreError, match=r"'nonsense\.final' is not a chain summary column"):
        s.set_chain_summaries("r0", {0: {"nonsense.final": 1.0}})
    assert s.chain_summaries("r0") == {2: {SSIM: 0.75}}  # nothing of a refused write is kept
    s.delete_run("r0")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM chain_summaries WHERE run_id = 'r0'").fetchone()[0] == 0


def test_a_schema_3_workspace_moves_its_numbers_into_the_wide_rows(tmp_path: Path) -> None:
    db = made(tmp_path / "ws")
    old = [("r0", 0, SSIM, 0.4), ("r0", 0, DB, 2.0), ("r0", 1, SSIM, 0.9), ("r0", 1, DB, None),
           ("r1", 2, "half_life", 7.0), ("r1", 2, "retired_measure.final", 3.0)]  # fmt: skip
    as_schema_3(db, old)
    s = Store(tmp_path / "ws")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "4"
        assert conn.execute("SELECT COUNT(*) FROM chain_summaries").fetchone()[0] == 6  # every chain
    assert {"chain_summaries_3", "chain_summaries_by_value"}.isdisjoint(tables(db))
    assert {"runs_by_created", "chain_summaries_by_lab_b_mean__change"} <= tables(db)
    assert s.chain_summaries("r0") == {0: {SSIM: 0.4, DB: 2.0}, 1: {SSIM: 0.9}}
    assert s.chain_summaries("r1") == {2: {"half_life": 7.0}}  # a name outside the vocabulary is dropped
    below = query_chains(s, ChainQuery(columns=(SSIM,), where=(Threshold(SSIM, "<", 0.5),)))
    assert [(r.run_id, r.chain, r.values[SSIM]) for r in below.rows] == [("r0", 0, 0.4)]
    assert query_chains(s, ChainQuery()).total == 6
    s.close()
    Store(tmp_path / "ws").close()  # opening it again changes nothing
    assert Store(tmp_path / "ws").chain_summaries("r0")[0] == {SSIM: 0.4, DB: 2.0}


def test_a_schema_3_workspace_read_only_says_to_open_it_once(tmp_path: Path) -> None:
    db = made(tmp_path / "ws")
    as_schema_3(db, [("r0", 0, SSIM, 0.4)])
    s = Store(tmp_path / "ws", readonly=True)
    with pytest.raises(StoreError, match="open it once with this one"):
        query_chains(s, ChainQuery())
    assert s.chain_summaries("r0") == {}


def test_a_schema_2_workspace_gains_the_table_with_a_row_per_chain(tmp_path: Path) -> None:
    db = made(tmp_path / "ws")
    with sqlite3.connect(db) as conn:  # as schema 2 left it
        conn.execute("DROP TABLE chain_summaries")
        conn.execute("DROP INDEX runs_by_created")
        conn.execute("PRAGMA user_version = 2")
    s = Store(tmp_path / "ws")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT COUNT(*) FROM chain_summaries").fetchone()[0] == 6
    assert query_chains(s, ChainQuery(sort="half_life")).total == 6


def test_a_measure_new_to_the_vocabulary_gains_its_column_on_opening(tmp_path: Path) -> None:
    db = made(tmp_path / "ws")
    with sqlite3.connect(db) as conn:  # as a release before the measure made it
        conn.execute("DROP INDEX chain_summaries_by_half_life")
        conn.execute("ALTER TABLE chain_summaries DROP COLUMN half_life")
    s = Store(tmp_path / "ws")
    assert "half_life" in s.summary_columns and "chain_summaries_by_half_life" in tables(db)
    s.set_chain_summaries("r1", {1: {"half_life": 3.0}})
    assert [r.chain for r in query_chains(s, ChainQuery(where=(Threshold("half_life", "<", 4),))).rows] == [1]
