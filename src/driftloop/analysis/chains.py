"""Chain summaries: how fast a chain forgets its original, whether it stops changing, how its colour drifts.

Input is the metrics table: a pandas DataFrame with one row per (chain, step), columns ``chain`` (int),
``step`` (int, 0 = the original) and any subset of the stable metric columns of ``driftloop.metrics``
(``ssim_to_origin``, ``mae_to_prev``, ``lab_b_mean``, ...); other columns (``sha256``, ``path``) are
used where they help and ignored otherwise. Every function works with whatever columns are present:
a summary field whose inputs are missing is ``None`` / absent, never an error.

Per chain (:func:`summarize_chain`):

- **half-life**: the first step whose SSIM to the original is below 0.5;
- **fixed point**: the first step from which the frame does not change for ``k`` steps in a row
  (equal consecutive ``sha256`` hashes, else ``mae_to_prev == 0``, else ``psnr_to_prev == inf``);
- **drift**: change of each colour measure from step 0 (ΔL*, Δa*, Δb*, ...) at chosen steps and at the
  chain's last step;
- **rates**: the per-step drift rate of each colour measure, the average change per step over the whole
  chain (or steps 0..k) with the 95% interval of :func:`driftloop.analysis.chain_rate.chain_rate_ci` (none
  for a chain too short for one that holds; the record says why).

Across chains (:func:`run_overview`), a rate is
:func:`driftloop.analysis.chain_rate.rate_over_chains_ci`: from two source images on, the mean of the
per-image means of the per-chain rates with the 95% :func:`~driftloop.analysis.intervals.mean_ci` interval
across images (chains, not frames, are the units, and chains of one image are averaged first); chains of
one image pooled into an interval about that image. The bias card uses the same function, so the two agree
on when there is an interval. :func:`driftloop.analysis.text.sentences` says it all in plain words for the
report and the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from driftloop._fs import json_safe
from driftloop.analysis.chain_rate import chain_rate_ci, rate_over_chains_ci
from driftloop.analysis.intervals import Interval
from driftloop.analysis.stats import Rate
from driftloop.measures import MEASURES, Measure
from driftloop.metrics.face import first_lost_step

__all__ = [
    "COLOUR_MEASURES",
    "HALF_LIFE_SSIM",
    "MEASURE_INFO",
    "ChainSummary",
    "as_rate",
    "chain_rows",
    "fixed_point_step",
    "numeric_column",
    "rate_interval",
    "run_overview",
    "summarize_chain",
    "summarize_run",
]

HALF_LIFE_SSIM = 0.5

# Colour measures summarised as drift and rates, in reading order. Hue angle is left out on purpose: it is
# circular and meaningless for near-neutral images, so a slope of it would mislead.
COLOUR_MEASURES: tuple[str, ...] = (
    "lab_l_mean",
    "lab_a_mean",
    "lab_b_mean",
    "lab_chroma_mean",
    "hsv_saturation_mean",
    "colourfulness",
    "white_cast",
    "cct_kelvin",
)
# How to talk about them (symbol, unit, the words for up and down): their records in the vocabulary.
MEASURE_INFO: dict[str, Measure] = {m: MEASURES[m] for m in COLOUR_MEASURES}
# Similarity to the original kept at the last step of each chain (higher or lower is better, per metric).
_FINAL_METRICS = (
    "ssim_to_origin",
    "psnr_to_origin",
    "mae_to_origin",
    "phash_to_origin",
    "lpips_to_origin",
    "clip_cosine_to_origin",
    "dino_cosine_to_origin",
)


@dataclass
class ChainSummary:
    """What one chain did. ``drift`` and ``rates`` are keyed by metric column name (``lab_b_mean``).

    ``drift[step][measure]`` is value(step) − value(0), for the requested steps the chain reached plus its
    ``last_step``. ``fixed_point_checked`` says whether per-step pixel change was known at all (without it
    ``fixed_point_step`` is always None). ``final`` holds the similarity-to-origin metrics at the last step.
    """

    chain: int
    last_step: int
    n_frames: int
    half_life: int | None
    fixed_point_step: int | None
    fixed_point_k: int
    fixed_point_checked: bool
    drift: dict[int, dict[str, float]] = field(default_factory=dict)
    rates: dict[str, Rate] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    source: str | None = None  # the input it started from (chains of one source are not independent)
    face_at_start: bool | None = None  # None: faces not measured
    face_lost_step: int | None = None  # first step without the face frame 0 had
    start: dict[str, float] = field(default_factory=dict)  # the measures at step 0 (to read a drift right)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become None, step keys become strings)."""
        out = asdict(self)
        out["drift"] = {str(s): {m: json_safe(v) for m, v in d.items()} for s, d in self.drift.items()}
        out["rates"] = {m: {k: json_safe(v) for k, v in asdict(r).items()} for m, r in self.rates.items()}
        out["final"] = {m: json_safe(v) for m, v in self.final.items()}
        out["start"] = {m: json_safe(v) for m, v in self.start.items()}
        return out


# ------------------------------------------------------------------------------------------------ helpers


def numeric_column(df: pd.DataFrame, column: str) -> np.ndarray:
    """A column as a writable float64 array (non-numbers become NaN), aligned with ``df``'s rows."""
    return pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)


def chain_rows(df_chain: pd.DataFrame) -> pd.DataFrame:
    """One chain's rows with a valid step, sorted by step, one row per step (the last one wins)."""
    if "step" not in df_chain.columns:
        raise KeyError("the metrics table needs a 'step' column")
    steps = pd.to_numeric(df_chain["step"], errors="coerce")
    out = df_chain.loc[steps.notna()].copy()
    out["step"] = steps[steps.notna()].astype(int)
    out = out.sort_values("step", kind="stable").drop_duplicates("step", keep="last")
    return out.reset_index(drop=True)


def _half_life(steps: np.ndarray, ssim: np.ndarray, threshold: float = HALF_LIFE_SSIM) -> int | None:
    below = np.flatnonzero(np.isfinite(ssim) & (ssim < threshold))
    return int(steps[below[0]]) if below.size else None


def _unchanged(df: pd.DataFrame) -> np.ndarray | None:
    """Per row: True when the frame equals the previous step's frame, False when not or unknown.

    None when no column tells pixel change. Row i counts only if step[i] == step[i-1] + 1.
    """
    steps = df["step"].to_numpy()
    n = len(df)
    consecutive = np.zeros(n, dtype=bool)
    consecutive[1:] = np.diff(steps) == 1
    hashes = df["sha256"].astype(object).to_numpy() if "sha256" in df.columns else np.array([])
    if any(isinstance(h, str) and h for h in hashes):
        same = np.zeros(n, dtype=bool)
        for i in range(1, n):
            a, b = hashes[i - 1], hashes[i]
            same[i] = isinstance(a, str) and isinstance(b, str) and a != "" and a == b
        return same & consecutive
    if "mae_to_prev" in df.columns:
        mae = numeric_column(df, "mae_to_prev")
        return (mae == 0) & consecutive
    if "psnr_to_prev" in df.columns:
        psnr = numeric_column(df, "psnr_to_prev")
        return np.isposinf(psnr) & consecutive
    return None


def _fixed_point(df: pd.DataFrame, k: int) -> tuple[int | None, bool]:
    """First step f whose frame stays the same for the next ``k`` steps; and whether change was known."""
    same = _unchanged(df)
    if same is None:
        return None, False
    k = max(1, int(k))
    steps = df["step"].to_numpy()
    run = 0
    for i, flag in enumerate(same):
        run = run + 1 if flag else 0
        if run >= k:
            return int(steps[i - k]), True
    return None, True


def fixed_point_step(df_chain: pd.DataFrame, k: int = 3) -> int | None:
    """First step of one chain's rows whose frame stays the same for the next ``k`` steps (from ``sha256``,
    else no change to the previous frame), or None: whether or not the run stopped there."""
    return _fixed_point(chain_rows(df_chain), k)[0]


def fixed_point_steps(df: pd.DataFrame, k: Mapping[str, int], by: str = "chain") -> dict[str, int | None]:
    """:func:`fixed_point_step` of every chain of a table at once (chains named by column ``by``, ``k[name]``
    the patience of each): the same answers, in one pass over the rows instead of one per chain. Chains with
    no ``sha256`` go through :func:`fixed_point_step` one by one."""
    if "sha256" not in df.columns:
        return {str(name): fixed_point_step(g, int(k[str(name)])) for name, g in df.groupby(by, sort=True)}
    rows = df.loc[pd.to_numeric(df["step"], errors="coerce").notna(), [by, "step", "sha256"]].copy()
    rows["step"] = pd.to_numeric(rows["step"]).astype(int)
    rows = rows.sort_values([by, "step"], kind="stable").drop_duplicates([by, "step"], keep="last")
    names = rows[by].to_numpy()
    hashes = rows["sha256"].to_numpy(dtype=object)
    hashed = np.array([isinstance(h, str) and h != "" for h in hashes], dtype=bool)
    steps = rows["step"].to_numpy()
    start = np.ones(len(rows), dtype=bool)
    start[1:] = names[1:] != names[:-1]
    same = np.zeros(len(rows), dtype=bool)
    same[1:] = ~start[1:] & (np.diff(steps) == 1) & hashed[1:] & hashed[:-1] & (hashes[1:] == hashes[:-1])
    out: dict[str, int | None] = {}
    chain_of = np.cumsum(start) - 1  # chain number of each row
    first = np.flatnonzero(start)
    any_hash = np.logical_or.reduceat(hashed, first) if len(first) else np.zeros(0, dtype=bool)
    patience = np.array([max(1, int(k[str(names[i])])) for i in first], dtype=int)
    run = np.cumsum(same)  # run[i] - run[i - w] == w: the w rows up to i all repeat their previous frame
    for w in np.unique(patience):
        ends = np.flatnonzero(same)
        ends = ends[ends >= w]
        ends = ends[(patience[chain_of[ends]] == w) & (run[ends] - run[ends - w] == w)]
        chains_done, at = np.unique(chain_of[ends], return_index=True)
        for c, i in zip(chains_done.tolist(), ends[at].tolist(), strict=True):
            out[str(names[first[c]])] = int(steps[i - w])
    unhashed = set(names[first[~any_hash]].tolist())
    if unhashed:  # no hashes: the frames' change is read from other columns, chain by chain
        for name, g in df[df[by].isin(unhashed)].groupby(by, sort=True):
            out[str(name)] = fixed_point_step(g, int(k[str(name)]))
    for i in first.tolist():
        out.setdefault(str(names[i]), None)
    return out


# -------------------------------------------------------------------------------------------- summaries


def summarize_chain(
    df_chain: pd.DataFrame,
    fixed_point_k: int = 3,
    drift_steps: Iterable[int] = (1, 10, 25, 50, 100),
    rate_steps: int | None = None,
    measures: Sequence[str] | None = None,
) -> ChainSummary:
    """Summarise one chain's rows (see the module docstring); ``measures`` defaults to COLOUR_MEASURES.

    Rates use all the chain's steps (``rate_steps``: only steps 0..rate_steps). Works on an empty
    frame (a summary with ``last_step`` -1 and nothing else) and on a chain holding only step 0.
    """
    df = chain_rows(df_chain)
    chain = 0
    if "chain" in df.columns and len(df):
        value = pd.to_numeric(df["chain"], errors="coerce").iloc[0]
        chain = int(value) if pd.notna(value) else 0
    if df.empty:
        return ChainSummary(chain, -1, 0, None, None, fixed_point_k, False)
    steps = df["step"].to_numpy()
    last_step = int(steps[-1])

    half_life = _half_life(steps, numeric_column(df, "ssim_to_origin")) if "ssim_to_origin" in df else None
    fixed_point, checked = _fixed_point(df, fixed_point_k)

    present = [m for m in (measures if measures is not None else COLOUR_MEASURES) if m in df.columns]
    values = {m: numeric_column(df, m) for m in present}
    if "white_cast" in values and "white_cast_pixels" in df.columns:
        # Without bright near-neutral pixels the score is 0 by convention, not a measurement.
        values["white_cast"][~(numeric_column(df, "white_cast_pixels") > 0)] = np.nan
    has_origin = steps[0] == 0

    drift: dict[int, dict[str, float]] = {}
    wanted = sorted({int(s) for s in drift_steps if 0 < int(s) <= last_step} | {last_step})
    index = {int(s): i for i, s in enumerate(steps)}
    if has_origin and present:
        for step in wanted:
            if step == 0 or step not in index:
                continue
            i = index[step]
            row = {
                m: float(v[i] - v[0]) for m, v in values.items() if np.isfinite(v[i]) and np.isfinite(v[0])
            }
            if row:
                drift[step] = row

    rates: dict[str, Rate] = {}
    window = np.ones(len(steps), bool) if rate_steps is None else steps <= rate_steps
    x = steps[window].astype(float)
    for m, v in values.items():
        iv = chain_rate_ci(x, v[window])
        if math.isfinite(iv.mean):
            seen = x[np.isfinite(v[window])]
            rates[m] = as_rate(iv, max_step=int(seen.max()))

    final: dict[str, float] = {}
    for m in _FINAL_METRICS:
        if m in df.columns:
            v = numeric_column(df, m)
            ok = np.flatnonzero(~np.isnan(v))
            if ok.size and int(steps[ok[-1]]) == last_step:
                final[m] = float(v[ok[-1]])

    face_at_start, face_lost = None, None
    if "face_found" in df.columns and has_origin:
        found = numeric_column(df, "face_found")
        face_at_start = bool(found[0] > 0)
        face_lost = first_lost_step(dict(zip(steps.tolist(), found.tolist(), strict=True)))
    return ChainSummary(
        source=str(df["input"].iloc[0]) if "input" in df.columns else None,
        face_at_start=face_at_start,
        face_lost_step=face_lost,
        start={m: float(v[0]) for m, v in values.items() if has_origin and np.isfinite(v[0])},
        chain=chain,
        last_step=last_step,
        n_frames=len(df),
        half_life=half_life,
        fixed_point_step=fixed_point,
        fixed_point_k=int(fixed_point_k),
        fixed_point_checked=checked,
        drift=drift,
        rates=rates,
        final=final,
    )


def summarize_run(df: pd.DataFrame, **kwargs: Any) -> list[ChainSummary]:
    """One summary per chain, ordered by chain; keyword arguments go to :func:`summarize_chain`.

    A table without a ``chain`` column is one chain (chain 0); an empty table gives an empty list.
    """
    if df is None or df.empty:
        return []
    if "chain" not in df.columns:
        return [summarize_chain(df, **kwargs)]
    chains = pd.to_numeric(df["chain"], errors="coerce")
    out = []
    for _, group in df.loc[chains.notna()].groupby(chains[chains.notna()].astype(int), sort=True):
        out.append(summarize_chain(group, **kwargs))
    return out


def _spread(values: Sequence[float]) -> dict[str, float] | None:
    vals = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if vals.size == 0:
        return None
    return {
        "mean": float(vals.mean()),
        "median": float(np.median(vals)),
        "min": float(vals.min()),
        "max": float(vals.max()),
        "n": int(vals.size),
    }


def as_rate(iv: Interval, max_step: int, chains: int = 1) -> Rate:
    """The summary's record of a rate interval (NaN bounds when there is none)."""
    low = math.nan if iv.ci_low is None else iv.ci_low
    high = math.nan if iv.ci_high is None else iv.ci_high
    return Rate(iv.mean, low, high, iv.n_values, max_step, chains, max(iv.n_images, 1), iv.method, iv.se,
                iv.df, iv.note)  # fmt: skip


def rate_interval(rate: Rate) -> Interval:
    """A summary's rate as the :class:`Interval` it was made from."""
    low, high = (rate.ci_low, rate.ci_high) if rate.has_ci else (None, None)
    return Interval(rate.slope, low, high, 0.95, rate.method, rate.images, rate.n, se=rate.se, df=rate.df,
                    note=rate.note)  # fmt: skip


def _mean_rate(rates: Sequence[Rate], sources: Sequence[str]) -> Rate | None:
    """The rate across chains: :func:`rate_over_chains_ci` of the chains' own intervals (one chain: its
    own rate)."""
    keep = [i for i, r in enumerate(rates) if math.isfinite(r.slope)]
    if not keep:
        return None
    if len(keep) == 1:
        return rates[keep[0]]
    iv = rate_over_chains_ci([rate_interval(rates[i]) for i in keep], [sources[i] for i in keep])
    rate = as_rate(iv, max(rates[i].max_step for i in keep), chains=len(keep))
    return replace(rate, n=sum(rates[i].n for i in keep))


def run_overview(summaries: Sequence[ChainSummary]) -> dict[str, Any]:
    """Numbers across chains, for the report header and the CLI.

    Keys: ``n_chains``; ``last_step`` (min/max/…); ``half_life`` (spread over chains that reached it, plus
    ``n_reached``) or None; ``fixed_point`` likewise (and ``checked``); ``drift``: step → measure → spread
    over chains that reached the step; ``final_drift``: measure → spread of each chain's change by its last
    step; ``final``: similarity metric → spread at the last step; ``rates``: measure → :class:`Rate` (mean
    slope with a CI across chains; the chain's own rate for one chain).
    """
    chains = [s for s in summaries if s.n_frames > 0]
    out: dict[str, Any] = {"n_chains": len(chains), "fixed_point_k": chains[0].fixed_point_k if chains else 0}
    out["last_step"] = _spread([s.last_step for s in chains])
    reached = [s.half_life for s in chains if s.half_life is not None]
    out["half_life"] = _spread(reached)
    if out["half_life"] is not None:
        out["half_life"]["n_reached"] = len(reached)
    checked = [s for s in chains if s.fixed_point_checked]
    fixed = [s.fixed_point_step for s in checked if s.fixed_point_step is not None]
    out["fixed_point"] = {"checked": len(checked), "n_reached": len(fixed), "steps": _spread(fixed)}
    with_face = [s for s in chains if s.face_at_start]
    lost = [s.face_lost_step for s in with_face if s.face_lost_step is not None]
    out["face"] = (
        {"chains_with_face": len(with_face), "lost": len(lost), "steps": _spread(lost)}
        if any(s.face_at_start is not None for s in chains)
        else None
    )

    drift: dict[int, dict[str, dict[str, float]]] = {}
    for step in sorted({st for s in chains for st in s.drift}):
        measures = sorted({m for s in chains for m in s.drift.get(step, {})}, key=_measure_order)
        cell = {
            m: _spread([s.drift[step][m] for s in chains if m in s.drift.get(step, {})]) for m in measures
        }
        drift[step] = {m: v for m, v in cell.items() if v is not None}
    out["drift"] = drift

    final_drift: dict[str, dict[str, float]] = {}
    for m in sorted({m for s in chains for m in s.drift.get(s.last_step, {})}, key=_measure_order):
        spread = _spread([s.drift[s.last_step][m] for s in chains if m in s.drift.get(s.last_step, {})])
        if spread is not None:
            final_drift[m] = spread
    out["final_drift"] = final_drift

    final: dict[str, dict[str, float]] = {}
    for m in _FINAL_METRICS:
        spread = _spread([s.final[m] for s in chains if m in s.final])
        if spread is not None:
            final[m] = spread
    out["final"] = final

    rates: dict[str, Rate] = {}
    for m in sorted({m for s in chains for m in s.rates}, key=_measure_order):
        having = [s for s in chains if m in s.rates]
        sources = [s.source if s.source is not None else str(s.chain) for s in having]
        rate = _mean_rate([s.rates[m] for s in having], sources)
        if rate is not None:
            rates[m] = rate
    out["rates"] = rates
    return out


def _measure_order(m: str) -> tuple[int, str]:
    order = list(COLOUR_MEASURES)
    return (order.index(m), m) if m in order else (len(order), m)
