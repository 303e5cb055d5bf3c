"""Chains as a table to query: filter by model, sweep, status and thresholds on stored summary numbers,
sort by any of them, one page at a time, in SQL.

The numbers are the ``chain_summaries`` rows written with each run's report
(:func:`driftloop.analysis.columns.store_chain_columns`), so a query reads them and never recomputes a
chain. Column and threshold names travel as SQL parameters; only whitelisted operators and sort keys
become SQL text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from driftloop.config import arm_label
from driftloop.errors import StoreError
from driftloop.store.db import Store
from driftloop.store.summary_table import column_sql, index_name

OPERATORS = ("<=", ">=", "<", ">", "=")
BUILT_IN_SORTS = {  # sort key -> SQL expression (the newest run first is "-created")
    "created": "r.created_at",
    "run": "s.run_id",
    "chain": "s.chain",
    "model": "r.model",
    "seed": "c.seed",
    "input": "c.input_path",
    "status": "r.status",
}
STABILIZE_SQL = "COALESCE(json_extract(r.config, '$.stabilize'), 'none')"  # a run's stabilizer, none if none
NEWEST = "r.created_at DESC, r.id DESC, s.chain"  # ties of a built-in sort: the newest run first


@dataclass(frozen=True)
class Threshold:
    """``name op value``: a stored number compared with a value (``ssim_to_origin.final < 0.5``)."""

    name: str
    op: str
    value: float


@dataclass(frozen=True)
class ChainQuery:
    """What the table shows: its number columns, the sort (``-`` first: descending), the filters, a page."""

    columns: tuple[str, ...] = ()
    sort: str = "-created"
    model: str | None = None
    stabilize: str | None = None  # a stabilizer spec, ``none`` for chains made without one; None: any
    sweep: str | None = None
    statuses: tuple[str, ...] = ()  # the store's words (running, done, interrupted, ...)
    where: tuple[Threshold, ...] = ()
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True)
class ChainTableRow:
    """One chain in the table, with its number columns (None: not measured)."""

    run_id: str
    chain: int
    model: str
    status: str
    input_path: str
    seed: int
    created_at: float
    values: dict[str, float | None] = field(default_factory=dict)
    last: tuple[int, str] | None = None  # (step, sha256) of its last stored frame
    stabilize: str = "none"  # its run's stabilizer spec (``none``: made without one)

    @property
    def arm(self) -> str:
        """The arm the chain belongs to (:func:`driftloop.config.arm_label`): ``taef2`` and ``taef2 +
        stabilize=colour:lab`` are two arms of one model, shown and grouped apart."""
        return arm_label(self.model, self.stabilize)


@dataclass(frozen=True)
class ChainTablePage:
    """A page of chains and how many match in all."""

    rows: list[ChainTableRow]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class _Filters:
    """The query's filters as SQL: terms on the run (``r``) and on the chain's numbers (``s``)."""

    runs: list[str]
    run_args: list[object]
    numbers: list[tuple[str, float]]  # (term, its value)

    @property
    def args(self) -> list[object]:
        return [*self.run_args, *(v for _, v in self.numbers)]

    def run_set(self) -> list[str]:
        """The run terms as one set of runs (``IN``: read once per query)."""
        return [f"s.run_id IN (SELECT r.id FROM runs r WHERE {' AND '.join(self.runs)})"] if self.runs else []

    def on_numbers(self, *more: str) -> str:
        """WHERE on the summaries row alone."""
        return _sql_where([*self.run_set(), *(t for t, _ in self.numbers), *more])

    def joined(self) -> str:
        """WHERE on the summaries row joined with its run."""
        return _sql_where([*self.runs, *(t for t, _ in self.numbers)])

    def parts(self) -> list[tuple[str, list[object]]]:
        """Each filter alone (the set of runs, each threshold), as WHERE and its arguments: each one's
        count is read from one index alone."""
        runs = [(_sql_where(self.run_set()), self.run_args)] if self.runs else []
        return runs + [(_sql_where([t]), [v]) for t, v in self.numbers]


def _filters(query: ChainQuery) -> _Filters:
    """Model, sweep and status are terms on the run; a threshold is a range of its column, which the
    column's partial index serves."""
    runs, args = [], []
    if query.model:
        runs.append("r.model = ?")
        args.append(query.model)
    if query.stabilize:
        runs.append(f"{STABILIZE_SQL} = ?")
        args.append(query.stabilize)
    if query.sweep:
        tagged = "json_extract(r.config, '$.sweep') = ?"
        runs.append(f"({tagged} OR r.id IN (SELECT run_id FROM sweep_runs WHERE sweep = ?))")
        args += [query.sweep, query.sweep]
    if query.statuses:
        runs.append(f"r.status IN ({', '.join('?' * len(query.statuses))})")
        args += list(query.statuses)
    numbers = []
    for t in query.where:
        if t.op not in OPERATORS or not math.isfinite(t.value):
            raise ValueError(f"not a threshold: {t.name} {t.op} {t.value}")
        numbers.append((f"s.{column_sql(t.name)} {t.op} ?", t.value))
    return _Filters(runs, args, numbers)


def _sql_where(terms: list[str]) -> str:
    return " WHERE " + " AND ".join(terms) if terms else ""


def _count(store: Store, where: str, args: list[object]) -> int:
    return int(store._query(f"SELECT COUNT(*) FROM chain_summaries s{where}", tuple(args))[0][0])


def _keys(store: Store, sql: str, args: list[object], limit: int, offset: int) -> list[int]:
    return [r[0] for r in store._query(f"{sql} LIMIT ? OFFSET ?", (*args, limit, offset))]


def _plan(store: Store, query: ChainQuery, f: _Filters) -> tuple[int | None, list[int] | None, bool]:
    """How to answer: (the count if already known, every selected chain in order if already read, whether
    to walk the sort column's index).

    Each filter's count alone comes from one index (cheap); one filter's is the total. With no filter, or
    filters that keep at least half the chains, a sort by a number walks its column's index testing each
    chain (a walk visits at most every chain). With more selective ones the filters' own indexes collect
    what they keep and only that is sorted: by SQLite for one filter; for several, in one pass that reads
    each kept chain's number and gives the count too (instead of a count, then a sort: two passes)."""
    parts = f.parts()
    if not parts:
        return None, None, True
    counts = [_count(store, where, args) for where, args in parts]
    known = counts[0] if len(parts) == 1 else None
    key = query.sort.lstrip("-")
    every = store._query("SELECT MAX(rowid) FROM chain_summaries")[0][0] or 0  # O(1): about how many
    if key not in store.summary_columns or min(counts) * 2 >= every:
        return known, None, True
    if known is not None:
        return known, None, False
    found = store._query(f"SELECT s.rowid, s.{column_sql(key)} FROM chain_summaries s{f.on_numbers()}",
                         tuple(f.args))  # fmt: skip
    have = sorted(((v, k) for k, v in found if v is not None), reverse=query.sort.startswith("-"))
    collected = [k for _, k in have] + sorted(k for k, v in found if v is None)
    return len(collected), collected, False


def _page_keys(
    store: Store, query: ChainQuery, f: _Filters, offset: int, limit: int, walk: bool
) -> list[int]:
    """The rowids of the page's chains, in order (see :func:`_plan` for ``walk``).

    A number column: the chains that have it in its order, then those without it in the order they were
    made. Ties: in the order the chains were made, reversed when descending. A built-in column: runs and
    chains in their keys' order. Only rowids are sorted and skipped; the page's rows are read after.
    """
    key, way = query.sort.lstrip("-"), "DESC" if query.sort.startswith("-") else "ASC"
    if key in store.summary_columns:
        q = f"s.{column_sql(key)}"
        source = f"chain_summaries s INDEXED BY {index_name(key)}" if walk else "chain_summaries s"
        by = q if walk else f"+{q}"  # "+": not the column's index, the filters' own
        got = _keys(store, f"SELECT s.rowid FROM {source}{f.on_numbers(f'{by} IS NOT NULL')} "
                           f"ORDER BY {by} {way}, s.rowid {way}", f.args, limit, offset)  # fmt: skip
        if len(got) == limit or any(t.name == key for t in query.where):  # a threshold: no chain lacks it
            return got
        numbered = _count(store, f.on_numbers(f"{q} IS NOT NULL"), f.args)
        rest = _keys(store, f"SELECT s.rowid FROM chain_summaries s{f.on_numbers(f'{q} IS NULL')} ORDER BY "
                            "s.rowid", f.args, limit - len(got), max(0, offset - numbered))  # fmt: skip
        return got + rest
    expr = BUILT_IN_SORTS.get(key, "r.created_at")
    newest = expr == "r.created_at"
    order = f"r.created_at {way}, r.id {way}, s.chain" if newest else f"{expr} {way}, {NEWEST}"
    chains = "JOIN chains c ON c.run_id = s.run_id AND c.chain = s.chain " if expr.startswith("c.") else ""
    runs = "runs r CROSS JOIN chain_summaries s" if newest else "chain_summaries s JOIN runs r"  # runs first
    sql = f"SELECT s.rowid FROM {runs} ON r.id = s.run_id {chains}{f.joined()} ORDER BY {order}"
    return _keys(store, sql, f.args, limit, offset)


def _kept(query: ChainQuery) -> tuple[list[str], list[object]]:
    """Each threshold's chains as a subquery on its column's index alone (the index holds the number and
    the rowid: an index-only scan, no wide row read), with their arguments. Everything below stays in SQL:
    two thresholds each keeping half of 100,000 chains, right after a change, cost 40–60 ms to count and
    35–40 ms for a page, where reading the rows one index finds to test the other took 85–140 ms, and
    intersecting the rowids in Python 220–270 ms (50,000 objects each time wake the garbage collector of a
    server's large heap)."""
    subs, args = [], []
    for t in query.where:
        q = column_sql(t.name)
        subs.append(f"SELECT rowid FROM chain_summaries INDEXED BY {index_name(t.name)} WHERE {q} {t.op} ?")
        args.append(t.value)
    return subs, args


def _kept_page(store: Store, query: ChainQuery, offset: int, limit: int) -> list[int]:
    """A page of the chains every threshold keeps, in the order of a number column: its index walked, each
    chain tested against the thresholds' sets (SQLite builds each once per query); then the kept chains
    without the number, in the order they were made (as :func:`_page_keys` orders them)."""
    subs, args = _kept(query)
    key, way = query.sort.lstrip("-"), "DESC" if query.sort.startswith("-") else "ASC"
    q = column_sql(key)
    inside = " AND ".join(f"rowid IN ({sub})" for sub in subs)
    walk = f"FROM chain_summaries INDEXED BY {index_name(key)} WHERE {q} IS NOT NULL AND {inside}"
    got = _keys(store, f"SELECT rowid {walk} ORDER BY {q} {way}, rowid {way}", args, limit, offset)
    if len(got) == limit or any(t.name == key for t in query.where):  # a threshold: no chain lacks it
        return got
    numbered = int(store._query(f"SELECT COUNT(*) {walk}", tuple(args))[0][0])
    has = f"SELECT rowid FROM chain_summaries INDEXED BY {index_name(key)} WHERE {q} IS NOT NULL"
    named = [subs[0].replace("SELECT rowid", "SELECT rowid AS k", 1), *subs[1:]]  # named by the first
    rest = f"SELECT k FROM ({' INTERSECT '.join(named)}) WHERE k NOT IN ({has}) ORDER BY k"
    return got + _keys(store, rest, args, limit - len(got), max(0, offset - numbered))


def query_chains(store: Store, query: ChainQuery) -> ChainTablePage:
    """One page of the chains ``query`` selects, sorted, with the numbers of its columns (and of its sort
    and thresholds): a count and the page's keys (or every selected chain's, when the filters are
    selective), then the page's rows."""
    if not store.summary_columns:
        raise StoreError(f"workspace {store.root} keeps its chain summaries as an older driftloop did: "
                         "open it once with this one (not read-only) to bring it up to date")  # fmt: skip
    if any(t.name not in store.summary_columns for t in query.where):
        return ChainTablePage([], 0, 1, 1)  # a number this workspace has no column for: no chain has it
    f = _filters(query)
    key = query.sort.lstrip("-")
    by_indexes = not f.runs and len(query.where) > 1 and key in store.summary_columns  # thresholds alone
    if by_indexes:
        subs, args = _kept(query)
        count = store._query(f"SELECT COUNT(*) FROM ({' INTERSECT '.join(subs)})", tuple(args))[0][0]
        known, collected, walk = int(count), None, True
    else:
        known, collected, walk = _plan(store, query, f)
    total = known if known is not None else _count(store, f.on_numbers(), f.args)
    per_page = max(1, query.per_page)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, query.page), pages)
    offset = (page - 1) * per_page
    if by_indexes:
        keys = _kept_page(store, query, offset, per_page) if total else []
    elif collected is not None:
        keys = collected[offset : offset + per_page]
    else:
        keys = _page_keys(store, query, f, offset, per_page, walk) if total else []
    named = [*query.columns, *(t.name for t in query.where), query.sort.lstrip("-")]
    shown = [n for n in dict.fromkeys(named) if n not in BUILT_IN_SORTS]
    stored = [n for n in shown if n in store.summary_columns]
    numbers = "".join(f", s.{column_sql(n)}" for n in stored)
    found = store._query(
        "SELECT s.rowid AS k, s.run_id, s.chain, r.model, r.status, c.input_path, c.seed, "
        f"r.created_at, {STABILIZE_SQL} AS stabilize{numbers} "
        "FROM chain_summaries s JOIN runs r ON r.id = s.run_id "
        "JOIN chains c ON c.run_id = s.run_id AND c.chain = s.chain "
        f"WHERE s.rowid IN ({', '.join('?' * len(keys))})",
        tuple(keys),
    ) if keys else []  # fmt: skip
    by_key = {r["k"]: r for r in found}
    last_sql = "SELECT step, sha256 FROM frames WHERE run_id = ? AND chain = ? ORDER BY step DESC LIMIT 1"
    rows = []
    for r in (by_key[k] for k in keys if k in by_key):  # the page's rows only: a primary-key lookup each
        last = store._query(last_sql, (r["run_id"], r["chain"]))
        values = {n: r[n] if n in stored else None for n in shown}
        rows.append(
            ChainTableRow(r["run_id"], r["chain"], r["model"], r["status"], r["input_path"], r["seed"],
                          r["created_at"], values, (last[0]["step"], last[0]["sha256"]) if last else None,
                          r["stabilize"])
        )  # fmt: skip
    return ChainTablePage(rows, total, page, pages)


def summary_sums(
    store: Store, chains: dict[str, list[int] | None], names: tuple[str, ...]
) -> dict[tuple[str, str], tuple[int, float]]:
    """(run, name) → (chains with a number, their sum) of some stored summary numbers, over the given chains
    of each run (None: all of them), summed in SQL: a sweep's cells' means at any number of chains. A run
    with no chain holding a number has no entry for it."""
    out: dict[tuple[str, str], tuple[int, float]] = {}
    stored = [n for n in names if n in store.summary_columns]
    if not stored:
        return out
    sums = ", ".join(f"COUNT({column_sql(n)}), TOTAL({column_sql(n)})" for n in stored)

    def add(run: str, values: Any) -> None:
        for i, name in enumerate(stored):
            count, total = int(values[2 * i]), float(values[2 * i + 1])
            if count:
                n, t = out.get((run, name), (0, 0.0))
                out[(run, name)] = (n + count, t + total)

    whole = [r for r, picked in chains.items() if picked is None]
    for i in range(0, len(whole), 500):  # SQLite's limit of bound parameters, with room
        part = whole[i : i + 500]
        rows = store._query(
            f"SELECT run_id, {sums} FROM chain_summaries WHERE run_id IN ({', '.join('?' * len(part))}) "
            "GROUP BY run_id",
            tuple(part),
        )
        for r in rows:
            add(r[0], tuple(r)[1:])
    for run, picked in chains.items():
        for i in range(0, len(picked or []), 500):
            part = (picked or [])[i : i + 500]
            rows = store._query(
                f"SELECT {sums} FROM chain_summaries WHERE run_id = ? "
                f"AND chain IN ({', '.join('?' * len(part))})",
                (run, *part),
            )
            for r in rows:
                add(run, tuple(r))
    return out
