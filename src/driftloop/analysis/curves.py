"""A measure's curves: each chain's values against the step, and their mean with a 95% band.

What a plot of a run draws, computed once for both kinds of plot: the charts of ``report.html`` and the
gallery (drawn in the browser) and the static figures of ``driftloop plots`` (matplotlib).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "ANGLES",
    "GUIDES",
    "MIN_BAND_CHAINS",
    "PLOT_COLUMNS",
    "evenly_spaced",
    "long_values",
    "mean_band",
    "table_band",
    "unwrap_angles",
]

# The measures plotted one by one (report charts, static figures), when a run has them.
PLOT_COLUMNS: tuple[str, ...] = (
    "ssim_to_origin",
    "psnr_to_origin",
    "lpips_to_origin",
    "clip_cosine_to_origin",
    "dino_cosine_to_origin",
    "lab_l_mean",
    "lab_a_mean",
    "lab_b_mean",
    "lab_delta_e",
    "lab_chroma_mean",
    "white_cast",
    "cct_kelvin",
    "sharpness",
)

# Horizontal guides: column -> (value, label).
GUIDES: dict[str, tuple[float, str]] = {
    "ssim_to_origin": (0.5, "half-life threshold (SSIM 0.5)"),
    "white_cast": (25.0, "above ~25 whites read yellow"),
}

# Measures that are angles in degrees on a circle: 359° and 1° are 2° apart, so a curve is unwrapped
# before it is drawn (a hue drifting through red would otherwise jump 0 → 355 and back).
ANGLES: frozenset[str] = frozenset({"lab_hue_deg"})

# Fewest source images at a step for a confidence band: with two, t(0.975, 1) = 12.7 makes the band ~9x
# the gap between the chains, which fills the whole plot and says nothing.
MIN_BAND_CHAINS = 3


def long_values(df: pd.DataFrame, column: str) -> tuple[pd.DataFrame, int]:
    """(chain, step, value, source) rows with a finite value, sorted (an angle unwrapped, see
    :func:`unwrap_angles`); and how many infinite values were dropped (PSNR of identical frames is ∞)."""
    if column not in df.columns or "step" not in df.columns or df.empty:
        return pd.DataFrame({"chain": [], "step": [], "value": []}), 0
    out = pd.DataFrame(
        {
            "chain": (
                pd.to_numeric(df["chain"], errors="coerce")
                if "chain" in df.columns
                else pd.Series(0, df.index)
            ),
            "step": pd.to_numeric(df["step"], errors="coerce"),
            "value": pd.to_numeric(df[column], errors="coerce").astype(float),
            # chains of one source image are not independent: the band counts images, not chains
            "source": df["input"].astype(str) if "input" in df.columns else df.get("chain", 0),
        }
    )
    infinite = int(np.isinf(out["value"].to_numpy()).sum())
    ok = out["chain"].notna() & out["step"].notna() & np.isfinite(out["value"].to_numpy())
    out = out.loc[ok].astype({"chain": int, "step": int})
    out = out.sort_values(["chain", "step"], kind="stable").reset_index(drop=True)
    if column in ANGLES and len(out):  # drawn as one continuous drift, as in the report's charts
        table = out.pivot_table(index="step", columns="chain", values="value", aggfunc="last")
        unwrapped = pd.DataFrame(unwrap_angles(table.to_numpy(dtype=float)), table.index, table.columns)
        out["value"] = [unwrapped.at[s, c] for c, s in zip(out["chain"], out["step"], strict=True)]
    return out, infinite


def evenly_spaced(n: int, most: int) -> list[int]:
    """Indices of at most ``most`` of ``n`` items, evenly spaced, the first and the last kept: the chains a
    contact sheet or a chart draws when a run has too many to draw them all."""
    if n <= most:
        return list(range(n))
    return [int(i) for i in np.unique(np.linspace(0, n - 1, most).round().astype(int))]


def unwrap_angles(table: np.ndarray) -> np.ndarray:
    """A (step × chain) table of angles in degrees, each chain's column unwrapped (no jump larger than 180°
    between one value and the next, gaps skipped) and then moved by whole turns so that its first value
    is within 180° of the first chain's: the curves and their mean read as one continuous drift."""
    out = np.array(table, dtype=float, copy=True)
    anchor: float | None = None
    for k in range(out.shape[1]):
        column = out[:, k]
        ok = np.isfinite(column)
        if not ok.any():
            continue
        values = np.unwrap(column[ok], period=360.0)
        if anchor is None:
            anchor = float(values[0])
        values -= 360.0 * np.round((values[0] - anchor) / 360.0)
        column[ok] = values
    return out


def table_band(table: np.ndarray, sources: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """For a (step × chain) table and each chain's source image: per step, the mean across source images
    (each image's chains averaged first: seeds of one picture are not independent samples) and the
    half-width of its 95% t-interval, NaN below MIN_BAND_CHAINS images. In NumPy: the report calls it for
    thirty columns, where a pandas groupby per column would cost more than the rest of the report."""
    groups: dict[Any, list[int]] = {}
    for i, src in enumerate(sources):
        groups.setdefault(src, []).append(i)
    if not groups:
        return np.full(len(table), np.nan), np.full(len(table), np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps of a source: NaN, as meant
        per_source = np.column_stack([np.nanmean(table[:, cols], axis=1) for cols in groups.values()])
        n = np.isfinite(per_source).sum(axis=1)
        mean = np.nanmean(per_source, axis=1)
        sd = np.nanstd(per_source, axis=1, ddof=1)
    half = np.full(len(mean), np.nan)
    ok = (n >= MIN_BAND_CHAINS) & np.isfinite(sd)
    if ok.any():
        half[ok] = stats.t.ppf(0.975, n[ok] - 1) * sd[ok] / np.sqrt(n[ok])
    return mean, half


def mean_band(data: pd.DataFrame) -> pd.DataFrame:
    """:func:`table_band` of long (chain, step, value[, source]) rows: columns step, mean, half."""
    table = data.pivot_table(index="step", columns="chain", values="value", aggfunc="last").sort_index()
    if "source" in data.columns:
        first = data.drop_duplicates("chain").set_index("chain")["source"]
        sources = [first[c] for c in table.columns]
    else:
        sources = list(table.columns)
    mean, half = table_band(table.to_numpy(dtype=float), sources)
    return pd.DataFrame({"step": table.index.to_numpy(), "mean": mean, "half": half})
