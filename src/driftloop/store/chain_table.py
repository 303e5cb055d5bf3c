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

from driftloop.errors import StoreError
from driftloop.store.db import Store
from driftloop.store.summary_table import column_sql

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


@dataclass(frozen=True)
class ChainTablePage:
    """A page of chains and how many match in all."""

    rows: list[ChainTableRow]
    total: int
    page: int
    pages: int


def _filters(query: ChainQuery) -> tuple[list[str], list[object]]:
    """The WHERE terms (on ``s``, the summaries row) of the query's filters, and their arguments.

    Run filters become one set of runs (``IN``: read once per query); a threshold is a range of its
    column, which its partial index serves."""
    runs, args = [], []
    if query.model:
        runs.append("r.model = ?")
        args.append(query.model)
    if query.sweep:
        tagged = "json_extract(r.config, '$.sweep') = ?"
        runs.append(f"({tagged} OR r.id IN (SELECT run_id FROM sweep_runs WHERE sweep = ?))")
        args += [query.sweep, query.sweep]
    if query.statuses:
        runs.append(f"r.status IN ({', '.join('?' * len(query.statuses))})")
        args += list(query.statuses)
    where = [f"s.run_id IN (SELECT r.id FROM runs r WHERE {' AND '.join(runs)})"] if runs else []
    for t in query.where:
        if t.op not in OPERATORS or not math.isfinite(t.value):
            raise ValueError(f"not a threshold: {t.name} {t.op} {t.value}")
        where.append(f"s.{column_sql(t.name)} {t.op} ?")
        args.append(t.value)
    return where, args


def _sql_where(terms: list[str]) -> str:
    return " WHERE " + " AND ".join(terms) if terms else ""


def _page_keys(
    store: Store, query: ChainQuery, where: list[str], args: list[object], offset: int, limit: int
) -> list[int]:
    """The rowids of the page's chains, in order.

    A number column: its partial index walked in order (ties in the order the chains were made, reversed
    when descending), then, past the chains that have the number, those without it. A built-in column:
    runs and chains in their keys' order. Only rowids are sorted and skipped; a page's details are read
    after, for its rows only.
    """
    key, way = query.sort.lstrip("-"), "DESC" if query.sort.startswith("-") else "ASC"
    if key in store.summary_columns:
        q = f"s.{column_sql(key)}"
        sql = f"SELECT s.rowid FROM chain_summaries s{_sql_where([*where, f'{q} IS NOT NULL'])}"
        got = [r[0] for r in store._query(f"{sql} ORDER BY {q} {way}, s.rowid {way} LIMIT ? OFFSET ?",
                                          (*args, limit, offset))]  # fmt: skip
        if len(got) == limit or any(t.name == key for t in query.where):  # a threshold: no chain lacks it
            return got
        numbered = store._query(sql.replace("SELECT s.rowid", "SELECT COUNT(*)", 1), tuple(args))[0][0]
        sql = f"SELECT s.rowid FROM chain_summaries s{_sql_where([*where, f'{q} IS NULL'])}"
        rest = store._query(f"{sql} ORDER BY s.rowid LIMIT ? OFFSET ?",
                            (*args, limit - len(got), max(0, offset - numbered)))  # fmt: skip
        return got + [r[0] for r in rest]
    expr = BUILT_IN_SORTS.get(key, "r.created_at")
    newest = expr == "r.created_at"
    order = f"r.created_at {way}, r.id {way}, s.chain" if newest else f"{expr} {way}, {NEWEST}"
    chains = "JOIN chains c ON c.run_id = s.run_id AND c.chain = s.chain " if expr.startswith("c.") else ""
    runs = "runs r CROSS JOIN chain_summaries s" if newest else "chain_summaries s JOIN runs r"  # runs first
    sql = (f"SELECT s.rowid FROM {runs} ON r.id = s.run_id {chains}"
           f"{_sql_where(where)} ORDER BY {order} LIMIT ? OFFSET ?")  # fmt: skip
    return [r[0] for r in store._query(sql, (*args, limit, offset))]


def query_chains(store: Store, query: ChainQuery) -> ChainTablePage:
    """One page of the chains ``query`` selects, sorted, with the numbers of its columns (and of its sort
    and thresholds): a count, the page's keys, then its rows, each one query on the summaries table."""
    if not store.summary_columns:
        raise StoreError(f"workspace {store.root} keeps its chain summaries as an older driftloop did: "
                         "open it once with this one (not read-only) to bring it up to date")  # fmt: skip
    if any(t.name not in store.summary_columns for t in query.where):
        return ChainTablePage([], 0, 1, 1)  # a number this workspace has no column for: no chain has it
    where, args = _filters(query)
    total = int(store._query(f"SELECT COUNT(*) FROM chain_summaries s{_sql_where(where)}", tuple(args))[0][0])
    per_page = max(1, query.per_page)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, query.page), pages)
    keys = _page_keys(store, query, where, args, (page - 1) * per_page, per_page)
    named = [*query.columns, *(t.name for t in query.where), query.sort.lstrip("-")]
    shown = [n for n in dict.fromkeys(named) if n not in BUILT_IN_SORTS]
    stored = [n for n in shown if n in store.summary_columns]
    numbers = "".join(f", s.{column_sql(n)}" for n in stored)
    found = store._query(
        "SELECT s.rowid AS k, s.run_id, s.chain, r.model, r.status, c.input_path, c.seed, "
        f"r.created_at{numbers} FROM chain_summaries s JOIN runs r ON r.id = s.run_id "
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
                          r["created_at"], values, (last[0]["step"], last[0]["sha256"]) if last else None)
        )  # fmt: skip
    return ChainTablePage(rows, total, page, pages)
