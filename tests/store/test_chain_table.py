"""The chains table in SQL: stored summary numbers filtered, sorted (no number: last) and paged; and a
schema-2 workspace gains the summaries table when opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from driftloop.store import SCHEMA_VERSION, Store
from driftloop.store.chain_table import ChainQuery, Threshold, query_chains, summary_sums


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """Three runs (two models, one in a sweep) of four chains; chain 3 of each has no SSIM."""
    s = Store(tmp_path / "ws")
    for i, model in enumerate(("taef2", "jpeg", "taef2")):
        config = {"sweep": "s1"} if i == 2 else {}
        s.create_run(f"r{i}", model, 10, config, {}, {}, {}, [(f"in{c}.png", "h", c) for c in range(4)])
        numbers = {c: {"ssim_to_origin.final": None if c == 3 else 0.1 * (i * 4 + c)} for c in range(4)}
        for c in range(4):
            numbers[c]["lab_b_mean.change"] = float(c - i)
        s.set_chain_summaries(f"r{i}", numbers)
    s.set_run_status("r1", "done")
    return s


def ids(page) -> list[str]:
    return [f"{r.run_id}:{r.chain}" for r in page.rows]


def test_thresholds_sort_and_nulls_last(store: Store) -> None:
    col = "ssim_to_origin.final"
    page = query_chains(store, ChainQuery(columns=(col,), sort=col, per_page=100))
    got = [r.values[col] for r in page.rows]
    assert got[:9] == sorted(got[:9]) and got[9:] == [None, None, None] and page.total == 12
    below = query_chains(store, ChainQuery(columns=(col,), where=(Threshold(col, "<", 0.45),), per_page=100))
    assert sorted(ids(below)) == ["r0:0", "r0:1", "r0:2", "r1:0"]
    warm = query_chains(store, ChainQuery(sort="-lab_b_mean.change", per_page=2))
    assert ids(warm) == ["r0:3", "r1:3"]  # ties: the newer run first
    assert warm.pages == 6 and "lab_b_mean.change" in warm.rows[0].values


def test_model_sweep_status_and_pages(store: Store) -> None:
    assert query_chains(store, ChainQuery(model="jpeg")).total == 4
    assert {r.run_id for r in query_chains(store, ChainQuery(sweep="s1")).rows} == {"r2"}
    assert {r.run_id for r in query_chains(store, ChainQuery(statuses=("done",))).rows} == {"r1"}
    last = query_chains(store, ChainQuery(sort="chain", per_page=5, page=99))
    assert last.page == 3 and len(last.rows) == 2  # a page past the end is the last page


def test_a_bad_threshold_is_refused(store: Store) -> None:
    bad = ChainQuery(where=(Threshold("ssim_to_origin.final", "; DROP", 1.0),))
    with pytest.raises(ValueError, match="not a threshold"):
        query_chains(store, bad)


def test_a_schema_2_workspace_gains_the_summaries_table(tmp_path: Path) -> None:
    Store(tmp_path / "ws").close()
    db = tmp_path / "ws" / "driftloop.db"
    with sqlite3.connect(db) as conn:  # as schema 2 left it
        conn.execute("DROP TABLE chain_summaries")
        conn.execute("PRAGMA user_version = 2")
    Store(tmp_path / "ws").close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"chain_summaries", "chain_summaries_by_value"} <= names


def test_summary_sums_over_whole_runs_and_some_chains(store: Store) -> None:
    col = "ssim_to_origin.final"
    sums = summary_sums(store, {"r0": None, "r1": [1, 3]}, (col, "lab_b_mean.change"))
    count, total = sums[("r0", col)]
    assert count == 3 and total == pytest.approx(0.0 + 0.1 + 0.2)  # chain 3 has no number: not counted
    assert sums[("r1", col)][0] == 1 and sums[("r1", col)][1] == pytest.approx(0.5)  # chain 3 of r1: none
    assert sums[("r1", "lab_b_mean.change")] == (2, pytest.approx(0.0 + 2.0))  # chains 1 and 3 only
    assert ("r2", col) not in sums and summary_sums(store, {"r0": None}, ()) == {}


def test_an_arm_selects_its_stabilizer(tmp_path: Path) -> None:
    s = Store(tmp_path / "arms")
    for run, stabilize in (("plain", None), ("lab", "colour:lab"), ("none", "none")):
        config = {"stabilize": stabilize} if stabilize else {}
        s.create_run(run, "taef2", 5, config, {}, {}, {}, [("in.png", "h", 0)])
    runs = {
        key: sorted(r.run_id for r in query_chains(s, ChainQuery(model="taef2", stabilize=key)).rows)
        for key in ("none", "colour:lab", None)
    }
    assert runs == {"none": ["none", "plain"], "colour:lab": ["lab"], None: ["lab", "none", "plain"]}
    arms = {r.run_id: (r.stabilize, r.arm) for r in query_chains(s, ChainQuery()).rows}
    assert arms == {"plain": ("none", "taef2"), "none": ("none", "taef2"),
                    "lab": ("colour:lab", "taef2 + stabilize=colour:lab")}  # fmt: skip
