"""Bundles of curves: every chain's curve of one measure, grouped by arm (its model with its stabilizer, if
any), by stabilizer, by conversation context or by source image, with each group's mean and its 95% band
at every step, and the chains a table's page marked, as the data the chart module's ``assets/bundles.js``
draws: the gallery's ``/bundles`` (JSON per request) and a published site's ``bundles.html`` (one data
file per measure, every chain's curve in it once for all groupings: :func:`shared_bundle`).

The band is :func:`driftloop.analysis.intervals.mean_ci` over the group's chains at that step, clustered by
source image (Student's t over the image means, the "t over images" row of ``benchmarks/coverage.py``, as
the report's charts draw it; the two-way image × seed variance costs a least-squares fit per step, 80 ms at
1,000 chains, too slow for a page of 101 steps); below
:data:`~driftloop.analysis.curves.MIN_BAND_CHAINS` source images there is no band, only the mean (as in
the report's charts). In the gallery the chains are the chains table's selection, so a filtered table
opens as its bundle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from driftloop.analysis.arms import context_of, fresh_control
from driftloop.analysis.curves import MIN_BAND_CHAINS
from driftloop.analysis.intervals import mean_ci
from driftloop.config import arm_label
from driftloop.replicators.spec import spec_label
from driftloop.store.chain_table import ChainTableRow

BUNDLES_JS = "bundles.js"  # the chart module's bundles, in ``assets/`` beside ``charts.js``
DEFAULT_MEASURE = "ssim_to_origin"  # what a bundle shows unless asked (or a table sorted by a measure)
GROUPINGS = {"model": "model", "stabilizer": "stabilizer", "context": "context", "image": "source image"}
NO_CONVERSATION = "no conversation"  # the context of a model that is not a conversation: a request a copy
MAX_CHAINS = 5000  # a bundle beyond this many chains is not drawn (narrow the selection)
DIGITS = 5  # significant digits sent to the browser: far below what a plot shows, a third of the bytes


def _short(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{DIGITS}g}")


def stabilizer_of(config: Mapping[str, Any]) -> str:
    """A run's stabilizer as a bundle groups it (``none`` when it has none), from its stored settings."""
    return str(config.get("stabilize") or "none")


@lru_cache(maxsize=1024)
def context_label(model: str) -> str:
    """A chain's conversation context as a bundle groups it: ``thread``, ``window=K`` or ``fresh`` (a
    conversation model's modes, :func:`driftloop.analysis.arms.context_of`), or ``no conversation``."""
    return context_of(model) if fresh_control(model) is not None else NO_CONVERSATION


def group_of(row: ChainTableRow, by: str, stabilizers: Mapping[str, str]) -> str:
    """The group a chain is drawn in: its arm (the model as people read it, with its stabilizer: ``taef2``
    and ``taef2 + stabilize=colour:lab`` are two groups with a mean each), its run's stabilizer or its
    source image's file name, or its conversation context (:func:`context_label`). ``stabilizers`` (run →
    spec) overrides the row's own stabilizer."""
    stabilizer = stabilizers.get(row.run_id, row.stabilize)
    if by == "stabilizer":
        return stabilizer
    if by == "context":
        return context_label(row.model)
    if by == "image":
        return row.input_path.replace("\\", "/").rsplit("/", 1)[-1]
    return spec_label(arm_label(row.model, stabilizer))


def build_bundle(
    rows: Sequence[ChainTableRow],
    values: Sequence[tuple[str, int, int, float | None]],
    by: str,
    stabilizers: Mapping[str, str],
    marked: Sequence[str] = (),
) -> dict[str, Any]:
    """{steps, groups: [{name, chains, values, mean, low, high, n_images}], n_chains, marked}: each chain's
    values on the shared steps (None where it has none), each group's mean and band per step (None: no
    band); ``marked``: the chains (``RUN:CHAIN``) of ``marked`` among ``rows``, drawn on top. Marks do not
    change a group: its mean and band are over all its chains."""
    curves: dict[tuple[str, int], dict[int, float | None]] = {}
    for run_id, chain, step, value in values:
        curves.setdefault((run_id, chain), {})[step] = value
    steps = sorted({s for c in curves.values() for s in c})
    members: dict[str, list[ChainTableRow]] = {}
    for row in rows:
        members.setdefault(group_of(row, by, stabilizers), []).append(row)
    groups = []
    for name in sorted(members):
        chosen = members[name]
        table = [[_short(curves.get((r.run_id, r.chain), {}).get(s)) for s in steps] for r in chosen]
        images = [r.input_path for r in chosen]
        mean, low, high = [], [], []
        for j in range(len(steps)):
            column = [row[j] for row in table]
            present = [k for k, v in enumerate(column) if v is not None]
            if not present:
                mean.append(None), low.append(None), high.append(None)
                continue
            found = mean_ci([column[k] for k in present], [images[k] for k in present])
            banded = found.n_images >= MIN_BAND_CHAINS and found.ci_low is not None
            mean.append(_short(found.mean))
            low.append(_short(found.ci_low) if banded else None)
            high.append(_short(found.ci_high) if banded else None)
        groups.append({
            "name": name, "chains": [f"{r.run_id}:{r.chain}" for r in chosen], "values": table,
            "mean": mean, "low": low, "high": high, "n_images": len(set(images)),
        })  # fmt: skip
    selected = {f"{r.run_id}:{r.chain}" for r in rows}
    shown = [c for c in dict.fromkeys(marked) if c in selected]
    return {"steps": steps, "groups": groups, "n_chains": len(rows), "marked": shown}


def shared_bundle(
    rows: Sequence[ChainTableRow],
    values: Sequence[tuple[str, int, int, float | None]],
    groupings: Sequence[str],
    stabilizers: Mapping[str, str],
) -> dict[str, Any]:
    """One measure's bundles under several ``groupings`` with each chain's curve once (a static page cannot
    ask for one grouping at a time): {steps, chains, values, by: {grouping: [{name, members, mean, low,
    high, n_images}]}}, ``members`` indexing ``chains`` and ``values``; :func:`build_bundle`'s groups."""
    names = [f"{r.run_id}:{r.chain}" for r in rows]
    index = {name: i for i, name in enumerate(names)}
    curves: list[list[float | None]] = [[] for _ in rows]
    by: dict[str, list[dict[str, Any]]] = {}
    steps: list[int] = []
    for grouping in groupings:
        bundle = build_bundle(rows, values, grouping, stabilizers)
        steps = bundle["steps"]
        by[grouping] = []
        for group in bundle["groups"]:
            members = [index[c] for c in group.pop("chains")]
            for i, curve in zip(members, group.pop("values"), strict=True):
                curves[i] = curve
            by[grouping].append({**group, "members": members})
    return {"steps": steps, "chains": names, "values": curves, "by": by, "n_chains": len(rows)}
