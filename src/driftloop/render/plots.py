"""Plots of a run's metrics: a metric against the step, the a*–b* colour trajectory, fidelity on a log axis.

Input is the metrics table (one row per chain and step, columns ``chain``, ``step`` and metric columns;
see :mod:`driftloop.analysis`). Every plot is written twice, as ``<stem>.png`` and ``<stem>.svg``, each
atomically, and returned as ``(png, svg)``. Output is deterministic: fixed names, no dates in the files,
fixed SVG ids. Figures are built with ``matplotlib.figure.Figure`` (PNG through Agg, SVG through the SVG
backend) and never through ``pyplot``, so no GUI backend is touched and no global figure state leaks
between calls or threads.

Robust to what real runs produce: PSNR of identical frames is ∞ (not drawn; a note says how many points
were left out), missing values, columns absent altogether (the plot says "not measured"), one chain (no
mean or band) and one step (markers instead of lines).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from driftloop._fs import atomic_write
from driftloop.analysis.curves import GUIDES, PLOT_COLUMNS
from driftloop.analysis.curves import long_values as _long
from driftloop.analysis.curves import mean_band as _mean_band
from driftloop.measures import PLOT_LABELS, TABLE_ORDER

__all__ = [
    "DEFAULT_PLOT_COLUMNS",
    "plot_ab_trajectory",
    "plot_all_metrics",
    "plot_fidelity_log",
    "plot_metric",
    "plot_run",
]

DEFAULT_PLOT_COLUMNS = PLOT_COLUMNS  # what plot_run draws as single-metric plots, when present
_GUIDES = GUIDES

_STEP_LABEL = "step (number of copies)"
_MANY_CHAINS = 10  # above this, chains are drawn in one colour with one legend entry
_FEW_POINTS = 25  # at most this many steps: draw point markers too
_PNG_DPI = 120
_RC = {"svg.hashsalt": "driftloop", "svg.fonttype": "path", "font.size": 9.5, "axes.titlesize": 11}


# -------------------------------------------------------------------------------------------- drawing


def _chain_colours(chains: Sequence[int]) -> dict[int, tuple]:
    if len(chains) > _MANY_CHAINS:
        return dict.fromkeys(chains, (0.35, 0.45, 0.6, 1.0))
    cmap = matplotlib.colormaps["tab10"]
    return {c: cmap(i % 10) for i, c in enumerate(chains)}


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4", fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_chains(ax: Axes, data: pd.DataFrame, log_x: bool = False) -> None:
    """Chains as thin lines (markers when few steps), plus their mean and 95% band when more than one."""
    chains = sorted(data["chain"].unique().tolist())
    colours = _chain_colours(chains)
    n_steps = data["step"].nunique()
    marker = "o" if n_steps <= _FEW_POINTS else None
    many = len(chains) > _MANY_CHAINS
    single = len(chains) == 1
    alpha = 1.0 if single else max(0.2, min(0.8, 3.0 / len(chains)))
    for i, chain in enumerate(chains):
        rows = data[data["chain"] == chain]
        label = f"chain {chain}"
        if many:
            label = f"individual chains (n={len(chains)})" if i == 0 else None
        ax.plot(
            rows["step"],
            rows["value"],
            color=colours[chain],
            lw=1.8 if single else 0.9,
            alpha=alpha,
            marker=marker,
            ms=3.5 if single else 2.5,
            label=label,
        )
    if not single:
        band = _mean_band(data)
        if np.isfinite(band["half"]).any() and len(band) > 1:
            ok = np.isfinite(band["half"].to_numpy())
            ax.fill_between(
                band["step"],
                band["mean"] - band["half"].fillna(0),
                band["mean"] + band["half"].fillna(0),
                where=ok,
                color="0.1",
                alpha=0.15,
                lw=0,
                label="95% CI of the mean",
                interpolate=False,
            )
        ax.plot(
            band["step"],
            band["mean"],
            color="black",
            lw=2.2,
            marker=marker,
            ms=3,
            label=f"mean of {len(chains)} chains",
        )
    if n_steps == 1 and not log_x:
        step = int(data["step"].iloc[0])
        ax.set_xlim(step - 1, step + 1)
    if not log_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _guide(ax: Axes, column: str, data: pd.DataFrame) -> None:
    """Draw the column's reference line (if any) when it is near the data, then fit the y range.

    The y range follows the chains and the guide, not the confidence band: with two or three chains the
    t-interval is wide enough to squash every line flat, so the band is clipped at the axes instead.
    """
    lo, hi = float(data["value"].min()), float(data["value"].max())
    if column in _GUIDES:
        value, label = _GUIDES[column]
        span = max(hi - lo, 1e-9)
        if lo - span <= value <= hi + span:  # only when near the data, so it does not squash the plot
            ax.axhline(value, color="tab:red", lw=1, ls="--", alpha=0.8, label=label)
            lo, hi = min(lo, value), max(hi, value)
    pad = (hi - lo) * 0.08 if hi > lo else max(abs(hi) * 0.05, 0.5)
    ax.set_ylim(lo - pad, hi + pad)


def _inf_note(ax: Axes, infinite: int) -> None:
    if infinite:
        points = "point" if infinite == 1 else "points"
        ax.text(
            0.99, 0.01, f"{infinite} {points} with value ∞ (identical frames) not drawn",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="0.35",
        )  # fmt: skip


def _legend(ax: Axes) -> None:
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=8, loc="best", framealpha=0.85, ncols=2 if len(handles) > 6 else 1)


def _save(fig: Figure, path_stem: Path | str) -> tuple[Path, Path]:
    stem = Path(path_stem)
    png = stem.with_name(stem.name + ".png")
    svg = stem.with_name(stem.name + ".svg")
    with matplotlib.rc_context({"svg.hashsalt": _RC["svg.hashsalt"], "svg.fonttype": "path"}):
        with atomic_write(png) as tmp:
            fig.savefig(tmp, format="png", dpi=_PNG_DPI, metadata={"Software": None})
        # The PNG save ran the constrained layout; keep its positions instead of computing them again.
        fig.set_layout_engine("none")
        with atomic_write(svg) as tmp:
            fig.savefig(tmp, format="svg", metadata={"Date": None, "Creator": None})
    return png, svg


def _figure(width: float = 7.2, height: float = 4.3, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(1, ncols, squeeze=False)[0].tolist()
    return fig, axes


# ----------------------------------------------------------------------------------------------- plots


def plot_metric(df: pd.DataFrame, column: str, path_stem: Path | str) -> tuple[Path, Path]:
    """One metric against the step: every chain as a thin line, their mean and 95% band on top.

    The band is mean ± t·sd/√n across source images at each step (each image's chains averaged first),
    drawn where at least 3 images have a value (with 2 it is ~9x their gap and hides everything); the y
    range follows the chains, so a wide band is clipped at the axes. Writes ``<path_stem>.png`` and
    ``<path_stem>.svg``.
    """
    title, ylabel = PLOT_LABELS.get(column, (column, column))
    data, infinite = _long(df, column)
    with matplotlib.rc_context(_RC):
        fig, (ax,) = _figure()
        ax.set_title(title)
        if data.empty:
            why = "not measured" if column not in df.columns else "no finite values"
            _no_data(ax, f"{column}: {why}")
        else:
            _draw_chains(ax, data)
            _guide(ax, column, data)
            ax.set_xlabel(_STEP_LABEL)
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            _legend(ax)
        _inf_note(ax, infinite)
        return _save(fig, path_stem)


def plot_all_metrics(df: pd.DataFrame, path_stem: Path | str, ncols: int = 4) -> tuple[Path, Path] | None:
    """Every measured metric against the step, small multiples in one figure (the large plots show the
    main ones): chains as thin lines, their mean and 95% band. None when nothing is measured."""
    face = [c for c in df.columns if c.startswith("face_") and c != "face_found"]
    drawn = {c: _long(df, c)[0] for c in (*TABLE_ORDER, *face) if c in df.columns}
    columns = [c for c, data in drawn.items() if not data.empty]
    if not columns:
        return None
    nrows = math.ceil(len(columns) / ncols)
    with matplotlib.rc_context({**_RC, "font.size": 7.5, "axes.titlesize": 7.5}):
        # a fixed grid: a constrained layout of ~30 axes costs seconds and gains nothing here
        height = 2.0 * nrows + 0.4
        fig = Figure(figsize=(2.7 * ncols, height))
        fig.subplots_adjust(left=0.06, right=0.99, top=1 - 0.3 / height, bottom=0.65 / height,
                            hspace=0.55, wspace=0.38)  # fmt: skip
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
        for ax, column in zip(axes, columns, strict=False):
            _draw_chains(ax, drawn[column])
            ax.set_title(PLOT_LABELS.get(column, (column, column))[0])
            ax.grid(True, alpha=0.3)
            ax.locator_params(nbins=4)
        for ax in axes[len(columns) :]:
            fig.delaxes(ax)
        fig.supxlabel(_STEP_LABEL)
        return _save(fig, path_stem)


def plot_fidelity_log(df: pd.DataFrame, path_stem: Path | str) -> tuple[Path, Path]:
    """SSIM and PSNR to the original against the step on a log axis (steps ≥ 1), to show early decay.

    Most of the loss happens in the first copies; a log step axis gives them room. Step 0 (the original
    itself: SSIM 1, PSNR ∞) is left out.
    """
    with matplotlib.rc_context(_RC):
        fig, axes = _figure(width=10, height=4.0, ncols=2)
        fig.suptitle("Fidelity to the original (log step axis)", fontsize=12)
        for ax, column in zip(axes, ("ssim_to_origin", "psnr_to_origin"), strict=True):
            title, ylabel = PLOT_LABELS[column]
            ax.set_title(title)
            if column not in df.columns:
                _no_data(ax, f"{column}: not measured")
                continue
            data, _ = _long(df, column)
            data = data[data["step"] >= 1]
            if data.empty:
                _no_data(ax, "no copies with a finite value yet")
                continue
            _draw_chains(ax, data, log_x=True)
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            lo, hi = int(data["step"].min()), int(data["step"].max())
            ax.set_xlim(lo * 0.9, hi * 1.1 if hi > lo else lo * 1.5)
            _guide(ax, column, data)
            ax.set_xlabel(_STEP_LABEL + ", log scale")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.25)
            _legend(ax)
            steps = pd.to_numeric(df["step"], errors="coerce")
            dropped = int((np.isinf(pd.to_numeric(df[column], errors="coerce")) & (steps >= 1)).sum())
            _inf_note(ax, dropped)
        return _save(fig, path_stem)


def plot_ab_trajectory(df: pd.DataFrame, path_stem: Path | str) -> tuple[Path, Path]:
    """Each chain's mean colour as a path in the CIELAB a*–b* plane, coloured by step.

    A circle marks step 0, a square the chain's last step; equal axis scales, so distances are colour
    differences. Up is yellower, down bluer, right redder, left greener.
    """
    a, _ = _long(df, "lab_a_mean")
    b, _ = _long(df, "lab_b_mean")
    data = a.merge(b, on=["chain", "step"], suffixes=("_a", "_b"))
    with matplotlib.rc_context(_RC):
        fig, (ax,) = _figure(width=6.4, height=5.4)
        ax.set_title("Colour trajectory in the a*–b* plane")
        if data.empty:
            missing = [c for c in ("lab_a_mean", "lab_b_mean") if c not in df.columns]
            _no_data(ax, f"{', '.join(missing)}: not measured" if missing else "no finite a*/b* values")
            return _save(fig, path_stem)
        max_step = max(int(data["step"].max()), 1)
        norm = Normalize(0, max_step)
        cmap = matplotlib.colormaps["viridis"]
        chains = sorted(data["chain"].unique().tolist())
        label_ends = len(chains) <= _MANY_CHAINS and len(chains) > 1
        many = len(chains) > _MANY_CHAINS
        marker_size, line_width = (22, 1.1) if many else (55, 2.0)
        for i, chain in enumerate(chains):
            rows = data[data["chain"] == chain]
            x = rows["value_a"].to_numpy()
            y = rows["value_b"].to_numpy()
            steps = rows["step"].to_numpy()
            if len(rows) > 1:
                points = np.column_stack([x, y]).reshape(-1, 1, 2)
                segments = np.concatenate([points[:-1], points[1:]], axis=1)
                lines = LineCollection(segments, cmap=cmap, norm=norm, linewidths=line_width, alpha=0.9)
                lines.set_array((steps[:-1] + steps[1:]) / 2)
                ax.add_collection(lines)
            ax.scatter(
                x[:1], y[:1], s=marker_size, facecolor="white", edgecolor="black", zorder=3,
                label=f"start (step {int(steps[0])})" if i == 0 else None,
            )  # fmt: skip
            if len(rows) > 1:
                end_colour = cmap(norm(steps[-1]))
                ax.scatter(
                    x[-1:], y[-1:], s=marker_size, marker="s", color=end_colour, edgecolor="black", zorder=3,
                    label="end (last step)" if i == 0 else None,
                )  # fmt: skip
            if label_ends:
                ax.annotate(
                    f"chain {chain}", (x[-1], y[-1]), xytext=(5, 4), textcoords="offset points", fontsize=8
                )
        # A square window with equal scales (distances are colour differences), around all the chains.
        xs, ys = data["value_a"].to_numpy(), data["value_b"].to_numpy()
        cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        half = max(xs.max() - xs.min(), ys.max() - ys.min(), 1.0) / 2 * 1.15
        ax.set_xlim(cx - half, cx + half)
        ax.set_ylim(cy - half, cy + half)
        ax.set_aspect("equal", adjustable="box")
        if abs(cx) <= half:
            ax.axvline(0, color="0.6", lw=0.8, zorder=0)
        if abs(cy) <= half:
            ax.axhline(0, color="0.6", lw=0.8, zorder=0)
        ax.set_xlabel("mean a* (CIELAB; ← greener · redder →)")
        ax.set_ylabel("mean b* (CIELAB; ← bluer · yellower →)")
        ax.grid(True, alpha=0.3)
        mappable = ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(mappable, ax=ax, label="step", shrink=0.85)
        _legend(ax)
        return _save(fig, path_stem)


def plot_run(
    df: pd.DataFrame, folder: Path | str, columns: Sequence[str] | None = None
) -> list[tuple[Path, Path]]:
    """The standard plots of a run into ``folder``, with fixed names, in report order.

    ``fidelity_log``, ``ab_trajectory`` (when a*/b* exist), then ``metric_<column>`` for each of
    ``columns`` (default DEFAULT_PLOT_COLUMNS) present in ``df``. Returns the (png, svg) pairs.
    """
    folder = Path(folder)
    out = []
    if "ssim_to_origin" in df.columns or "psnr_to_origin" in df.columns:
        out.append(plot_fidelity_log(df, folder / "fidelity_log"))
    if "lab_a_mean" in df.columns and "lab_b_mean" in df.columns:
        out.append(plot_ab_trajectory(df, folder / "ab_trajectory"))
    for column in columns if columns is not None else DEFAULT_PLOT_COLUMNS:
        if column in df.columns:
            out.append(plot_metric(df, column, folder / f"metric_{column}"))
    if columns is None and (every := plot_all_metrics(df, folder / "all_metrics")) is not None:
        out.append(every)
    return out
