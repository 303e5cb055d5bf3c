"""The chains table's address: every choice of the page (columns, sort, filters, thresholds, page) lives in
the URL's query, so a view is a link to bookmark or share, and every link of the page keeps it.

``?col=ssim_to_origin.final&col=lab_b_mean.change&sort=-lab_b_mean.change&where=ssim_to_origin.final<0.5
&model=taef2&sweep=s&status=done&page=2`` reads as: these two columns, the warmest first, chains whose SSIM
to the original ends below 0.5, of taef2 in sweep ``s``, finished, second page. A model may be an arm
(``model=taef2 + stabilize=colour:lab``; ``+ stabilize=none``: only the chains made without a stabilizer).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from driftloop.analysis.columns import column_choices
from driftloop.config import ARM_SEPARATOR, split_arm
from driftloop.errors import DriftloopError
from driftloop.measures import TABLE_ORDER
from driftloop.report.bundles import DEFAULT_MEASURE
from driftloop.store.chain_table import BUILT_IN_SORTS, OPERATORS, ChainQuery, Threshold

DEFAULT_COLUMNS = ("ssim_to_origin.final", "lab_b_mean.change", "lab_b_mean.rate", "half_life")
MAX_COLUMNS = 12
MAX_THRESHOLDS = 6
PER_PAGE_CHOICES = (25, 50, 100, 200)
MAX_MARKS = PER_PAGE_CHOICES[-1]  # a bundle marks at most a page of the table
_THRESHOLD = re.compile(r"\s*([A-Za-z0-9_.]+)\s*(" + "|".join(map(re.escape, OPERATORS)) + r")\s*(\S+)\s*")


@dataclass(frozen=True)
class TableView:
    """The page's state as the URL says it (strings as given, for the links and the form)."""

    columns: tuple[str, ...]
    sort: str
    model: str
    sweep: str
    status: str
    where: tuple[str, ...]
    page: int
    per_page: int

    def link(self, **changes: object) -> str:
        """This view's address with some choices changed (a sort, a page): ``/chains?...``."""
        return "/chains?" + urlencode(replace(self, **changes)._pairs())  # type: ignore[arg-type]

    def _pairs(self) -> list[tuple[str, object]]:
        view = self
        pairs: list[tuple[str, object]] = [("col", c) for c in view.columns]
        pairs += [("sort", view.sort)]
        pairs += [(k, getattr(view, k)) for k in ("model", "sweep", "status") if getattr(view, k)]
        pairs += [("where", w) for w in view.where]
        if view.per_page != PER_PAGE_CHOICES[1]:
            pairs.append(("per_page", view.per_page))
        if view.page != 1:
            pairs.append(("page", view.page))
        return pairs

    def arm_link(self, model: str, stabilize: str) -> str:
        """This view narrowed to one arm (``model=taef2 + stabilize=colour:lab``; ``+ stabilize=none``: the
        chains made without a stabilizer), from its first page."""
        return self.link(model=f"{model}{ARM_SEPARATOR}{stabilize}", page=1)

    def sort_measure(self) -> str:
        """The measure of the sorted column (``lab_b_mean`` of ``lab_b_mean.change``), else SSIM."""
        measure, dot, _ = self.sort.lstrip("-").partition(".")
        return measure if dot and measure in TABLE_ORDER else DEFAULT_MEASURE

    def bundle_link(self, marked: Sequence[str]) -> str:
        """These chains as bundles of the sorted column's measure, with ``marked`` (``RUN:CHAIN``: the rows
        of the page shown) drawn on top: ``/bundles?...&measure=lab_b_mean&mark=RUN:0&mark=...``."""
        marks = [("mark", m) for m in list(marked)[:MAX_MARKS]]
        return "/bundles?" + urlencode([*self._pairs(), ("measure", self.sort_measure()), *marks])

    def sort_link(self, column: str) -> str:
        """Sort by ``column``: descending first (the largest on top); a second click turns it round."""
        return self.link(sort=column if self.sort == f"-{column}" else f"-{column}", page=1)


def read_marks(marks: Sequence[str]) -> tuple[str, ...]:
    """A bundle's marked chains (``RUN:CHAIN`` each, at most a page of the table, each once); anything else
    is a clear error naming it."""
    picked = tuple(dict.fromkeys(m.strip() for m in marks if m.strip()))
    if len(picked) > MAX_MARKS:
        raise DriftloopError(f"at most {MAX_MARKS} marked chains (a page of the table), not {len(picked)}")
    for mark in picked:
        run, _, chain = mark.rpartition(":")
        if not run or not chain.isdigit():
            raise DriftloopError(f"mark {mark!r}: expected RUN_ID:CHAIN, e.g. 20261204-120000-taef2-ab12:3")
    return picked


def parse_threshold(text: str, known: Mapping[str, str]) -> Threshold:
    """``ssim_to_origin.final<0.5`` as a :class:`Threshold`; anything else is a clear error."""
    match = _THRESHOLD.fullmatch(text)
    if not match:
        raise DriftloopError(f"filter {text!r}: expected COLUMN OP NUMBER, e.g. ssim_to_origin.final<0.5")
    name, op, number = match.groups()
    if name not in known:
        raise DriftloopError(f"filter {text!r}: no column {name!r} (choose one the table offers)")
    try:
        value = float(number)
    except ValueError:
        raise DriftloopError(f"filter {text!r}: {number!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise DriftloopError(f"filter {text!r}: {number!r} is not a finite number")
    return Threshold(name, op, value)


def read_view(
    columns: Sequence[str],
    sort: str,
    model: str,
    sweep: str,
    status: str,
    where: Sequence[str],
    page: int,
    per_page: int,
    statuses: Mapping[str, Sequence[str]],
) -> tuple[TableView, ChainQuery]:
    """The view and the store query of a request's parameters; ``statuses``: the page's status word ->
    the store's words it covers. Unknown columns or sorts and malformed filters are errors naming them."""
    known = column_choices()
    picked = tuple(dict.fromkeys(c for c in columns if c)) or DEFAULT_COLUMNS
    unknown = [c for c in picked if c not in known]
    if unknown:
        raise DriftloopError(f"no column {unknown[0]!r}: choose the columns the table offers")
    if len(picked) > MAX_COLUMNS:
        raise DriftloopError(f"at most {MAX_COLUMNS} columns at once")
    key = sort.lstrip("-")
    if key not in known and key not in BUILT_IN_SORTS:
        raise DriftloopError(f"cannot sort by {key!r}: sort by a column of the table")
    given = tuple(w.strip() for w in where if w.strip())[:MAX_THRESHOLDS]
    thresholds = tuple(parse_threshold(w, known) for w in given)
    if status and status not in statuses:
        raise DriftloopError(f"status {status!r}: one of {', '.join(statuses)}")
    per_page = per_page if per_page in PER_PAGE_CHOICES else PER_PAGE_CHOICES[1]
    view = TableView(picked, sort, model, sweep, status, given, max(1, page), per_page)
    base, stabilize = (
        split_arm(model) if ARM_SEPARATOR in model else (model, None)
    )  # an arm: its stabilizer too
    query = ChainQuery(
        columns=picked, sort=sort, model=base or None, stabilize=stabilize, sweep=sweep or None,
        statuses=tuple(statuses[status]) if status else (), where=thresholds, page=view.page,
        per_page=per_page,
    )  # fmt: skip
    return view, query
