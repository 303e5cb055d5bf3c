"""The data of a run's charts, drawn in the browser by the one chart module (``assets/charts.js``).

The report and the gallery draw their metric plots with the same vendored uPlot and the same JavaScript;
this module turns a run's metric rows into what that code draws (per chart: the steps, each chain's values,
their mean and 95% band, a guide line), so a report costs milliseconds instead of the seconds
matplotlib takes for 13 figures. Static PNG/SVG figures for papers: ``driftloop plots``
(:mod:`driftloop.render.plots`).
"""

from __future__ import annotations

import math
import re
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
import pandas as pd

from driftloop.analysis.curves import (
    ANGLES,
    GUIDES,
    PLOT_COLUMNS,
    evenly_spaced,
    long_values,
    table_band,
    unwrap_angles,
)
from driftloop.measures import PLOT_LABELS, TABLE_ORDER

__all__ = ["UPLOT_CSS", "UPLOT_JS", "asset_text", "chart_data"]

_ASSETS = files("driftloop.report") / "assets"
UPLOT_JS = "vendor/uplot-1.6.32/uPlot.iife.min.js"
UPLOT_CSS = "vendor/uplot-1.6.32/uPlot.min.css"
CHARTS_JS = "charts.js"
_MANY_CHAINS = 10
# Most chains whose own curves a chart carries: above this, evenly spaced ones (the mean and its band are
# still of every chain), so the page does not grow with the number of chains.
MAX_CHART_CHAINS = 60
# Longest y axis label drawn as it is: longer ones lose their parenthesis (the unit), which the caption
# then gives in full; the chart module shrinks or cuts whatever still does not fit the plot's height.
_AXIS_CHARS = 33
# The bounds a label states, as in "share of empty levels (0–1)" or "L* (CIELAB, 0–100)".
_BOUNDS = re.compile(r"(-?\d+(?:\.\d+)?)–(\d+(?:\.\d+)?)\)\s*$")


@cache
def asset_text(name: str) -> str:
    """A file of the report's package data (``assets/``): the chart module, uPlot, the page stylesheet."""
    return (_ASSETS / name).read_text(encoding="utf-8")


def _num(value: float) -> float | None:
    """A value as the chart data holds it: 6 significant digits (the file stays small), gaps as null."""
    return float(f"{value:.6g}") if math.isfinite(value) else None


def _column(values: np.ndarray) -> list[float | None]:
    return [_num(float(v)) for v in values]


def _axis(text: str) -> tuple[str, str]:
    """(the y axis label, what the caption adds): the label itself when short, else its words without the
    trailing parenthesis, which the caption then states."""
    if len(text) <= _AXIS_CHARS or not text.endswith(")"):
        return text, ""
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            head = text[:i].rstrip()
            return (head, f"; y axis: {text}") if head else (text, "")
    return text, ""


def _y_range(table: np.ndarray, axis: str) -> list[float] | None:
    """The y range of a series that does not change (uPlot would draw a constant 0 on 0..100): the bounds
    its label states, else a small span around the value; None for a series that changes."""
    finite = table[np.isfinite(table)]
    if not finite.size:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo > 1e-9 * max(1.0, abs(hi)):
        return None
    bounds = _BOUNDS.search(axis)
    if bounds and float(bounds.group(1)) <= lo <= float(bounds.group(2)):
        return [float(bounds.group(1)), float(bounds.group(2))]
    pad = max(abs(lo) * 0.05, 0.01)
    return [_num(lo - pad), _num(hi + pad)]


def _caption(column: str) -> str:
    title = PLOT_LABELS.get(column, (column, ""))[0]
    return (
        f"{title}: every chain and their mean; the 95% band (across source images, each image's chains "
        "averaged first) where at least 3 images have a value"
    )


class _Grid:
    """Where each metric row goes in a (step × chain) table, worked out once for all the columns: a pandas
    pivot per column costs ~40 ms, thirty of them more than the whole rest of the report."""

    def __init__(self, df: pd.DataFrame) -> None:
        has_chain = "chain" in df.columns
        chain = pd.to_numeric(df["chain"], errors="coerce") if has_chain else pd.Series(0, df.index)
        step = pd.to_numeric(df["step"], errors="coerce")
        self.ok = (chain.notna() & step.notna()).to_numpy()
        chain_v, step_v = chain.to_numpy()[self.ok].astype(int), step.to_numpy()[self.ok].astype(int)
        self.steps, self.chains = np.unique(step_v), np.unique(chain_v)
        self.si, self.ci = np.searchsorted(self.steps, step_v), np.searchsorted(self.chains, chain_v)
        self.step_v = step_v
        # chains of one source image are not independent: the band counts images, not chains
        source = df["input"].astype(str).to_numpy()[self.ok] if "input" in df.columns else chain_v
        first: dict[int, Any] = {}
        for c, src in zip(self.ci.tolist(), source.tolist(), strict=True):
            first.setdefault(c, src)
        self.source_of = [first.get(c) for c in range(len(self.chains))]


def _metric(df: pd.DataFrame, grid: _Grid, column: str, log_x: bool = False) -> dict[str, Any] | None:
    """One measure against the step: each chain on the steps of all chains, their mean and 95% band."""
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)[grid.ok]
    keep = grid.step_v >= 1 if log_x else np.ones(len(values), bool)
    infinite = int((np.isinf(values) & keep).sum())
    finite = np.isfinite(values) & keep
    if not finite.any():
        return None
    table = np.full((len(grid.steps), len(grid.chains)), np.nan)
    table[grid.si[finite], grid.ci[finite]] = values[finite]
    rows, cols = np.isfinite(table).any(axis=1), np.isfinite(table).any(axis=0)
    table = table[rows][:, cols]
    if column in ANGLES:
        table = unwrap_angles(table)
    steps, chains = grid.steps[rows], grid.chains[cols]
    sources = [s for s, keep_it in zip(grid.source_of, cols, strict=True) if keep_it]
    title, full_axis = PLOT_LABELS.get(column, (column, column))
    axis, axis_note = _axis(full_axis)
    spec: dict[str, Any] = {
        "kind": "metric",
        "column": column,
        "title": title,
        "axis": axis,
        "axis_note": axis_note,
        "y_range": _y_range(table, full_axis),
        "log_x": log_x,
        "steps": steps.tolist(),
        "chains": [
            {"label": f"chain {chains[k]}", "values": _column(table[:, k])}
            for k in evenly_spaced(len(chains), MAX_CHART_CHAINS)
        ],
        "n_chains": len(chains),
        "mean": None,
        "lo": None,
        "hi": None,
        "guide": None,
        "note": "",
    }
    if len(chains) > MAX_CHART_CHAINS:
        notes_first = f"{len(spec['chains'])} of {len(chains)} chains drawn, evenly spaced; the mean uses all"
    else:
        notes_first = ""
    if len(chains) > 1:
        mean, half = table_band(table, sources)
        spec["mean"] = _column(mean)
        if np.isfinite(half).any() and len(steps) > 1:
            spec["lo"], spec["hi"] = _column(mean - half), _column(mean + half)
    if column in GUIDES:
        value, label = GUIDES[column]
        lo, hi = float(np.nanmin(table)), float(np.nanmax(table))
        span = max(hi - lo, 1e-9)
        if lo - span <= value <= hi + span:  # only when near the data, so it does not squash the plot
            spec["guide"] = [value, label]
    notes = [notes_first] if notes_first else []
    if infinite:
        points = "point" if infinite == 1 else "points"
        notes.append(f"{infinite} {points} with value ∞ (identical frames) not drawn")
    if spec["y_range"] is not None:
        notes.append(f"constant: {_num(float(np.nanmax(table)))} at every step drawn")
    if column in ANGLES:
        notes.append("unwrapped: a hue that turns past 0° goes on below 0° or above 360°, without a jump")
    spec["note"] = "; ".join(notes)
    return spec


def _trajectory(df: pd.DataFrame) -> dict[str, Any] | None:
    a, _ = long_values(df, "lab_a_mean")
    b, _ = long_values(df, "lab_b_mean")
    data = a.merge(b, on=["chain", "step"], suffixes=("_a", "_b"))
    if data.empty:
        return None
    chains = [
        {
            "label": f"chain {chain}",
            "a": _column(rows["value_a"].to_numpy()),
            "b": _column(rows["value_b"].to_numpy()),
            "steps": [int(s) for s in rows["step"]],
        }
        for chain, rows in data.groupby("chain", sort=True)
    ]
    shown = evenly_spaced(len(chains), MAX_CHART_CHAINS)
    sampled = len(shown) < len(chains)
    caption_extra = f" ({len(shown)} of {len(chains)} chains, evenly spaced)" if sampled else ""
    chains = [chains[i] for i in shown]
    return {
        "kind": "trajectory",
        "title": "Colour trajectory in the a*–b* plane",
        "chains": chains,
        "max_step": int(data["step"].max()),
        "caption": "Mean colour of each chain in the CIELAB a*–b* plane, coloured by step (purple early, "
        "green late); circle = start, square = last step" + caption_extra,
    }


def chart_data(df: pd.DataFrame | None) -> dict[str, Any]:
    """Every chart of a run, in report order: SSIM and PSNR on a log step axis, the a*–b* trajectory, the
    main measures one by one, then every other measured column (faces included)."""
    charts: list[dict[str, Any]] = []
    if df is None or df.empty or "step" not in df.columns:
        return {"charts": charts}
    grid = _Grid(df)
    for column in ("ssim_to_origin", "psnr_to_origin"):
        if column in df.columns and (spec := _metric(df, grid, column, log_x=True)):
            spec["title"] += " (log step axis)"
            spec["caption"] = (
                "Fidelity to the original against the step on a log axis: the early copies get room"
                + spec["axis_note"]
            )
            charts.append(spec)
    if "lab_a_mean" in df.columns and "lab_b_mean" in df.columns and (spec := _trajectory(df)):
        charts.append(spec)
    face = [c for c in df.columns if c.startswith("face_") and c != "face_found"]
    others = [c for c in (*TABLE_ORDER, *face) if c not in PLOT_COLUMNS]
    for column in (*PLOT_COLUMNS, *others):
        if column in df.columns and (spec := _metric(df, grid, column)):
            spec["caption"] = _caption(column) + spec["axis_note"]
            charts.append(spec)
    return {"charts": charts, "many_chains": int(df["chain"].nunique()) > _MANY_CHAINS}
