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

from driftloop.config import arm_label
from driftloop.store.db import Store

OPERATORS = ("<=", ">=", "<", ">", "=")
BUILT_IN_SORTS = {  # sort key -> SQL expression (the newest run first is "-created")
    "created": "r.created_at",
    "run": "c.run_id",
    "chain": "c.chain",
    "model": "r.model",
    "seed": "c.seed",
    "input": "c.input_path",
    "status": "r.status",
}
STABILIZE_SQL = "COALESCE(json_extract(r.config, '$.stabilize'), 'none')"  # a run's stabilizer, none if none


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


def _sort_sql(sort: str, aliases: dict[str, str]) -> str:
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    expr = f"{aliases[key]}.value" if key in aliases else BUILT_IN_SORTS.get(key, "r.created_at")
    way = "DESC" if descending else "ASC"
    return f"({expr} IS NULL), {expr} {way}, r.created_at DESC, c.run_id, c.chain"  # no number: last


def query_chains(store: Store, query: ChainQuery) -> ChainTablePage:
    """One page of the chains ``query`` selects, sorted, with the numbers of its columns."""
    key = query.sort.lstrip("-")
    thresholds = list(dict.fromkeys(t.name for t in query.where))
    aliases = {n: f"s{i}" for i, n in enumerate(dict.fromkeys([*thresholds, key])) if n not in BUILT_IN_SORTS}
    joins, args = [], []
    for name, alias in aliases.items():  # a threshold's column: an inner join (no number never passes one)
        kind = "JOIN" if name in thresholds else "LEFT JOIN"
        on = f"{alias}.run_id = c.run_id AND {alias}.chain = c.chain AND {alias}.name = ?"
        joins.append(f"{kind} chain_summaries {alias} ON {on}")
        args.append(name)
    where, wargs = [], []
    if query.model:
        where.append("r.model = ?")
        wargs.append(query.model)
    if query.stabilize:
        where.append(f"{STABILIZE_SQL} = ?")
        wargs.append(query.stabilize)
    if query.sweep:
        tagged = "json_extract(r.config, '$.sweep') = ?"
        where.append(f"({tagged} OR c.run_id IN (SELECT run_id FROM sweep_runs WHERE sweep = ?))")
        wargs += [query.sweep, query.sweep]
    if query.statuses:
        where.append(f"r.status IN ({', '.join('?' * len(query.statuses))})")
        wargs += list(query.statuses)
    for t in query.where:
        if t.op not in OPERATORS or not math.isfinite(t.value):
            raise ValueError(f"not a threshold: {t.name} {t.op} {t.value}")
        where.append(f"{aliases[t.name]}.value {t.op} ?")
        wargs.append(t.value)
    filters = " WHERE " + " AND ".join(where) if where else ""
    counted = [j for j, n in zip(joins, aliases, strict=True) if n in thresholds]  # the count needs no sort
    count_args = [n for n in aliases if n in thresholds]
    head = "FROM chains c JOIN runs r ON r.id = c.run_id "
    count_sql = f"SELECT COUNT(*) {head}{' '.join(counted)}{filters}"
    total = int(store._query(count_sql, (*count_args, *wargs))[0][0])
    per_page = max(1, query.per_page)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, query.page), pages)
    sql = (
        "SELECT c.run_id, c.chain, r.model, r.status, c.input_path, c.seed, r.created_at, "
        f"{STABILIZE_SQL} AS stabilize "
        f"{head}{' '.join(joins)}{filters} ORDER BY {_sort_sql(query.sort, aliases)} LIMIT ? OFFSET ?"
    )
    found = store._query(sql, (*args, *wargs, per_page, (page - 1) * per_page))
    last_sql = "SELECT step, sha256 FROM frames WHERE run_id = ? AND chain = ? ORDER BY step DESC LIMIT 1"
    shown = list(dict.fromkeys([*query.columns, *aliases]))  # with the sort and threshold columns
    values_sql = (f"SELECT name, value FROM chain_summaries WHERE run_id = ? AND chain = ? AND name IN "
                  f"({', '.join('?' * len(shown))})")  # fmt: skip
    rows = []
    for r in found:  # the page's rows only: primary-key lookups for its frame and its columns
        last = store._query(last_sql, (r["run_id"], r["chain"]))
        got = dict(store._query(values_sql, (r["run_id"], r["chain"], *shown))) if shown else {}
        rows.append(
            ChainTableRow(r["run_id"], r["chain"], r["model"], r["status"], r["input_path"], r["seed"],
                          r["created_at"], {n: got.get(n) for n in shown},
                          (last[0]["step"], last[0]["sha256"]) if last else None, r["stabilize"])
        )  # fmt: skip
    return ChainTablePage(rows, total, page, pages)


def summary_sums(
    store: Store, chains: dict[str, list[int] | None], names: tuple[str, ...]
) -> dict[tuple[str, str], tuple[int, float]]:
    """(run, name) → (chains with a number, their sum) of some stored summary numbers, over the given chains
    of each run (None: all of them), summed in SQL: a sweep's cells' means at any number of chains."""
    out: dict[tuple[str, str], tuple[int, float]] = {}
    if not names:
        return out
    in_names = f"name IN ({', '.join('?' * len(names))})"
    whole = [r for r, picked in chains.items() if picked is None]
    for i in range(0, len(whole), 500):  # SQLite's limit of bound parameters, with room
        part = whole[i : i + 500]
        rows = store._query(
            f"SELECT run_id, name, COUNT(value), TOTAL(value) FROM chain_summaries WHERE run_id IN "
            f"({', '.join('?' * len(part))}) AND {in_names} GROUP BY run_id, name",
            (*part, *names),
        )
        out.update({(r[0], r[1]): (int(r[2]), float(r[3])) for r in rows})
    for run, picked in chains.items():
        if picked is None:
            continue
        for i in range(0, len(picked), 500):
            part = picked[i : i + 500]
            rows = store._query(
                f"SELECT name, COUNT(value), TOTAL(value) FROM chain_summaries WHERE run_id = ? AND chain IN "
                f"({', '.join('?' * len(part))}) AND {in_names} GROUP BY name",
                (run, *part, *names),
            )
            for name, count, total in rows:
                n, t = out.get((run, name), (0, 0.0))
                out[(run, name)] = (n + int(count), t + float(total))
    return out
