"""The chains table in SQL: stored summary numbers filtered, sorted (no number: last) and paged, every page
in the reference order, by walking indexes."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from driftloop.errors import StoreError
from driftloop.store import Store
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


def test_every_chain_is_listed_before_it_has_numbers(tmp_path: Path) -> None:
    s = Store(tmp_path / "ws")
    s.create_run("r", "m", 3, {}, {}, {}, {}, [("a.png", "h", 0), ("b.png", "h", 1)])
    assert s.chain_summaries("r") == {}
    page = query_chains(s, ChainQuery(columns=("half_life",), sort="-half_life"))
    assert ids(page) == ["r:0", "r:1"] and page.rows[0].values == {"half_life": None}


def test_the_order_of_every_page_of_every_sort(tmp_path: Path) -> None:
    """Every page, both ways, of a number with ties and gaps (and with a filter and a threshold) is the
    reference order: numbers sorted (ties in the order the chains were made, reversed when descending),
    then the chains without the number in the order they were made."""
    rng = random.Random(3)
    s = Store(tmp_path / "ws")
    made, numbers = [], {}
    for i in range(4):
        model = ("a", "b", "a", "a")[i]
        s.create_run(f"r{i}", model, 9, {}, {}, {}, {}, [("x.png", "h", c) for c in range(9)])
        rows = {c: {"half_life": rng.choice([None, 1.0, 2.0, 3.0]), "lab_b_mean.change": rng.uniform(-1, 1),
                    "ssim_to_origin.final": rng.choice([None, rng.uniform(0, 1)])}
                for c in range(9)}  # fmt: skip
        s.set_chain_summaries(f"r{i}", rows)
        for c in range(9):
            made.append((f"r{i}:{c}", model))
            numbers[f"r{i}:{c}"] = rows[c]

    def reference(desc: bool, keep) -> list[str]:
        order = {k: n for n, (k, _) in enumerate(made)}
        chosen = [k for k, m in made if keep(k, m)]
        have = [k for k in chosen if numbers[k]["half_life"] is not None]
        have.sort(key=lambda k: (numbers[k]["half_life"], order[k]), reverse=desc)
        return have + [k for k in chosen if numbers[k]["half_life"] is None]

    db, ssim = "lab_b_mean.change", "ssim_to_origin.final"
    cases = [  # every chain (a walk); few of them (collected, sorted in SQL); most of them (a walk with a
        # test per chain); a threshold; two filters that keep few (one pass, sorted in Python)
        (ChainQuery(), lambda k, m: True),
        (ChainQuery(model="b"), lambda k, m: m == "b"),
        (ChainQuery(model="a"), lambda k, m: m == "a"),
        (ChainQuery(where=(Threshold(db, ">", 0.0),)), lambda k, m: numbers[k][db] > 0),
        (ChainQuery(model="a", where=(Threshold(db, ">", 0.5),)),
         lambda k, m: m == "a" and numbers[k][db] > 0.5),
        # thresholds alone: their indexes' rowids intersected, the sort's index walked (the kept chains
        # without a half-life last), and the sort's own column as one of them
        (ChainQuery(where=(Threshold(db, ">", -0.9), Threshold(ssim, "<", 0.95))),
         lambda k, m: numbers[k][db] > -0.9 and (numbers[k][ssim] or 9) < 0.95),
        (ChainQuery(where=(Threshold(db, ">", -0.8), Threshold("half_life", ">=", 2.0))),
         lambda k, m: numbers[k][db] > -0.8 and (numbers[k]["half_life"] or 0) >= 2.0),
    ]  # fmt: skip
    for base, keep in cases:
        for desc in (False, True):
            want = reference(desc, keep)
            got = []
            for page in range(1, -(-len(want) // 4) + 1):
                q = replace(base, sort="-half_life" if desc else "half_life", page=page, per_page=4)
                got += ids(query_chains(s, q))
            assert got == want, (base, desc)


def test_built_in_sorts_newest_run_first(store: Store) -> None:
    newest = query_chains(store, ChainQuery(per_page=100))
    assert ids(newest)[:5] == ["r2:0", "r2:1", "r2:2", "r2:3", "r1:0"]
    by_model = query_chains(store, ChainQuery(sort="model", per_page=100))
    assert [r.model for r in by_model.rows] == ["jpeg"] * 4 + ["taef2"] * 8
    assert ids(by_model)[4:6] == ["r2:0", "r2:1"]  # ties: the newest run first
    by_seed = query_chains(store, ChainQuery(sort="-seed", per_page=3))
    assert [r.seed for r in by_seed.rows] == [3, 3, 3] and by_seed.pages == 4


def test_the_query_walks_an_index(store: Store) -> None:
    """A sort by a number walks its column's index (no sort of every chain) unless the filters select
    fewer chains than that would visit (then they are collected and sorted), a threshold reads its range,
    and the newest-first page walks the runs' index: the plans that keep 100,000 chains fast."""
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    col = "ssim_to_origin.final"

    def plans(query: ChainQuery) -> list[str]:
        seen.clear()
        query_chains(store, query)
        selects = [
            q for q in seen if q.startswith("SELECT") and not any(w in q for w in (" k,", "frames", "MAX("))
        ]
        return [" ".join(r[3] for r in store._query(f"EXPLAIN QUERY PLAN {q}")) for q in selects]

    walk = plans(ChainQuery(sort=f"-{col}", per_page=2))[1]  # 2 of 12: walk the column's index
    assert "chain_summaries_by_ssim_to_origin__final" in walk and "TEMP B-TREE" not in walk
    collect = plans(ChainQuery(model="jpeg", sort=f"-{col}", page=2, per_page=2))  # 4 chains of 12
    assert all("ssim" not in p and "(run_id=?)" in p for p in collect)  # count, keys, then the one without
    assert "TEMP B-TREE FOR ORDER BY" in collect[1]  # only the 4 chains are sorted
    ranged = plans(ChainQuery(where=(Threshold(col, "<", 0.5),)))[0]
    assert "chain_summaries_by_ssim_to_origin__final" in ranged
    newest = plans(ChainQuery())[1]
    assert "USE TEMP B-TREE FOR ORDER BY" not in newest  # at most each run's chains are put in order


def test_a_bad_threshold_is_refused(store: Store) -> None:
    bad = ChainQuery(where=(Threshold("ssim_to_origin.final", "; DROP", 1.0),))
    with pytest.raises(ValueError, match="not a threshold"):
        query_chains(store, bad)
    odd = query_chains(store, ChainQuery(where=(Threshold('x" OR 1=1 --', "<", 1.0),)))
    assert odd.total == 0 and odd.rows == []  # a name the table has no column for: no chain passes
    with pytest.raises(StoreError, match="not a chain summary column"):
        store.set_chain_summaries("r0", {0: {'x" = 1 --': 1.0}})


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
