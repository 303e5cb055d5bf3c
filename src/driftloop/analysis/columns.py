"""Each chain's numbers as table columns: what the gallery's runs-and-chains table sorts and filters by.

A column is ``MEASURE.STAT`` for a measure of the vocabulary (:mod:`driftloop.measures`) and a statistic:
``final`` (its value at the chain's last step), ``change`` (that minus its value at step 0) and, for the
colour measures, ``rate`` (the chain summary's average change per step over the whole chain); or one of the
chain's marked steps: ``half_life`` (first step with SSIM to the original below 0.5), ``fixed_point``,
``face_lost``, and ``last_step``. They are computed once per run from its metrics table and chain
summaries (:func:`chain_columns`) and stored beside it, never per request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from driftloop.analysis.chains import COLOUR_MEASURES, ChainSummary, chain_rows, numeric_column
from driftloop.measures import MEASURES, STEP_MARKS, SUMMARY_STATS, TABLE_ORDER

STATS = dict(zip(SUMMARY_STATS, ("at the last step", "change from the original", "per step (whole chain)"),
                 strict=True))  # fmt: skip
STEP_COLUMNS = dict(
    zip(
        STEP_MARKS,
        ("half-life (first step with SSIM < 0.5)", "first step of a fixed point",
         "first step without the face", "last step"),
        strict=True,
    )
)  # fmt: skip


def _title(measure: str) -> str:
    found = MEASURES.get(measure)
    return (found.title or found.description.split(":")[0]) if found else measure


def column_choices(measures: Sequence[str] = TABLE_ORDER) -> dict[str, str]:
    """Every column a table can show, by name, with its label in the vocabulary's words."""
    out = dict(STEP_COLUMNS)
    for m in measures:
        for stat, words in STATS.items():
            if stat != "rate" or m in COLOUR_MEASURES:
                out[f"{m}.{stat}"] = f"{_title(m)} · {words}"
    return out


def _number(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def chain_columns(df: pd.DataFrame, summaries: Sequence[ChainSummary]) -> dict[int, dict[str, float | None]]:
    """{chain: {column: value}} of a run's metrics table and its chain summaries (None: not measured)."""
    out: dict[int, dict[str, float | None]] = {}
    by_chain = {s.chain: s for s in summaries}
    if df is None or df.empty or "chain" not in df.columns:
        return out
    measures = [m for m in (*TABLE_ORDER, *MEASURES) if m in df.columns]
    measures = list(dict.fromkeys(measures))
    for chain, group in df.groupby("chain", sort=True):
        rows = chain_rows(group)
        if rows.empty:
            continue
        values: dict[str, float | None] = {"last_step": float(rows["step"].iloc[-1])}
        from_origin = int(rows["step"].iloc[0]) == 0
        for m in measures:
            column = numeric_column(rows, m)
            last = _number(column[-1])
            values[f"{m}.final"] = last
            first = _number(column[0]) if from_origin else None
            values[f"{m}.change"] = last - first if last is not None and first is not None else None
        s = by_chain.get(int(chain))
        if s is not None:
            values["half_life"] = s.half_life
            values["fixed_point"] = s.fixed_point_step
            values["face_lost"] = s.face_lost_step
            for m, rate in s.rates.items():
                values[f"{m}.rate"] = _number(rate.slope)
        out[int(chain)] = {k: (None if v is None else float(v)) for k, v in values.items()}
    return out
