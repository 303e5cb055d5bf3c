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
- **rates**: the per-step drift rate of each colour measure, the OLS slope over steps 0..k with a 95%
  t-interval.

Across chains (:func:`run_overview`), a rate is the mean of the per-chain slopes with a 95% t-interval
across chains (chains, not frames, are the independent units), and :func:`sentences` says it all in plain
words for the report and the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from driftloop._fs import json_safe
from driftloop.metrics.face import first_lost_step

__all__ = [
    "COLOUR_MEASURES",
    "HALF_LIFE_SSIM",
    "MEASURE_INFO",
    "ChainSummary",
    "MeasureInfo",
    "Rate",
    "fixed_point_step",
    "fmt_interval",
    "fmt_signed",
    "run_overview",
    "sentences",
    "summarize_chain",
    "summarize_run",
]

HALF_LIFE_SSIM = 0.5
# Below this many CIELAB units a net change is not worth a sentence (a just-noticeable colour difference
# is ~1-2.3 ΔE).
NEGLIGIBLE_LAB = 1.0
# The community "white cast" score above which whites read as yellow.
WHITE_CAST_YELLOW = 25.0
MINUS = "\N{MINUS SIGN}"


@dataclass(frozen=True)
class MeasureInfo:
    """How to talk about one colour measure: symbol, unit and the words for up and down."""

    symbol: str  # "Δb*"
    name: str  # "b* (blue–yellow)"
    up: str  # sentence head when it rises: "the image drifts warmer (yellower)"
    down: str
    up_word: str  # one word or two for tables: "warmer"
    down_word: str
    unit: str = ""  # appended to numbers: " K"
    negligible: float = 0.0  # |total change| below this is "negligible" (0: never)


MEASURE_INFO: dict[str, MeasureInfo] = {
    "lab_l_mean": MeasureInfo(
        "ΔL*", "L* (lightness)", "the image gets brighter", "the image gets darker", "brighter", "darker",
        negligible=NEGLIGIBLE_LAB,
    ),
    "lab_a_mean": MeasureInfo(
        "Δa*", "a* (green–red)", "the image drifts redder", "the image drifts greener", "redder", "greener",
        negligible=NEGLIGIBLE_LAB,
    ),
    "lab_b_mean": MeasureInfo(
        "Δb*", "b* (blue–yellow)", "the image drifts warmer (yellower)", "the image drifts cooler (bluer)",
        "warmer", "cooler", negligible=NEGLIGIBLE_LAB,
    ),
    "lab_chroma_mean": MeasureInfo(
        "ΔC*", "C* (chroma)", "colours get more saturated", "colours get less saturated (greyer)",
        "more saturated", "greyer", negligible=NEGLIGIBLE_LAB,
    ),
    "hsv_saturation_mean": MeasureInfo(
        "Δsaturation", "HSV saturation", "colours get more saturated", "colours get less saturated",
        "more saturated", "less saturated",
    ),
    "colourfulness": MeasureInfo(
        "Δcolourfulness", "colourfulness", "the image gets more colourful", "the image gets duller",
        "more colourful", "duller",
    ),
    "white_cast": MeasureInfo(
        "Δwhite cast", "white cast", "whites turn yellower", "whites turn bluer", "yellower whites",
        "bluer whites",
    ),
    "cct_kelvin": MeasureInfo(
        "ΔCCT", "colour temperature (CCT)", "the colour temperature rises (cooler, bluer light)",
        "the colour temperature falls (warmer, more orange light)", "cooler light", "warmer light",
        unit=" K",
    ),
}  # fmt: skip

# Colour measures summarised as drift and rates, in reading order. Hue angle is left out on purpose: it is
# circular and meaningless for near-neutral images, so a slope of it would mislead.
COLOUR_MEASURES: tuple[str, ...] = tuple(MEASURE_INFO)
# Measures that get their own drift/rate sentences (the others are in the tables).
_SENTENCE_MEASURES = ("lab_l_mean", "lab_a_mean", "lab_b_mean", "lab_chroma_mean", "white_cast", "cct_kelvin")
_TOTAL_MEASURES = ("lab_l_mean", "lab_a_mean", "lab_b_mean")
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


@dataclass(frozen=True)
class Rate:
    """Per-step drift rate: OLS slope of a measure against the step, with its 95% confidence interval.

    ``n`` points (steps) went into the fit, the last of them at step ``max_step``. For an overview across
    chains (``chains`` > 1) the slope is the mean of the chains' slopes and the interval is across chains.
    The interval is NaN when it cannot be computed (fewer than 3 points, or fewer than 2 chains with a
    slope); a constant series has slope 0 and a zero-width interval.
    """

    slope: float
    ci_low: float
    ci_high: float
    n: int
    max_step: int = 0
    chains: int = 1
    images: int = 1  # independent units behind an across-chain interval (source images)

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.ci_low) and math.isfinite(self.ci_high)

    @property
    def clear(self) -> bool:
        """True when the interval excludes 0: the measure clearly drifts, in the direction of ``slope``."""
        return self.has_ci and (self.ci_low > 0 or self.ci_high < 0)


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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become None, step keys become strings)."""
        out = asdict(self)
        out["drift"] = {str(s): {m: json_safe(v) for m, v in d.items()} for s, d in self.drift.items()}
        out["rates"] = {m: {k: json_safe(v) for k, v in asdict(r).items()} for m, r in self.rates.items()}
        out["final"] = {m: json_safe(v) for m, v in self.final.items()}
        return out


# ------------------------------------------------------------------------------------------------ helpers


def _numeric(df: pd.DataFrame, column: str) -> np.ndarray:
    """A column as a writable float64 array (non-numbers become NaN), aligned with ``df``'s rows."""
    return pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)


def _prepare(df_chain: pd.DataFrame) -> pd.DataFrame:
    """Rows with a valid step, sorted by step, one row per step (the last one wins)."""
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
        mae = _numeric(df, "mae_to_prev")
        return (mae == 0) & consecutive
    if "psnr_to_prev" in df.columns:
        psnr = _numeric(df, "psnr_to_prev")
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
    return _fixed_point(_prepare(df_chain), k)[0]


def _ols_rate(x: np.ndarray, y: np.ndarray) -> Rate | None:
    """OLS slope of y on x with a 95% t-interval; None when fewer than 2 finite points or one x."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    if n < 2:
        return None
    xc = x - x.mean()
    sxx = float(np.dot(xc, xc))
    if sxx == 0.0:
        return None
    yc = y - y.mean()
    slope = float(np.dot(xc, yc) / sxx)
    last = int(x.max())
    if n < 3:
        return Rate(slope, math.nan, math.nan, n, last)
    resid = yc - slope * xc
    sse = float(np.dot(resid, resid))
    # Rounding leaves ~1e-30 residuals on exact lines; treat anything that small as exact.
    scale = float(np.dot(yc, yc))
    if sse <= 1e-24 * max(scale, 1.0):
        sse = 0.0
    se = math.sqrt(sse / (n - 2) / sxx)
    half = float(stats.t.ppf(0.975, n - 2)) * se
    return Rate(slope, slope - half, slope + half, n, last)


def _mean_rate(rates: Sequence[Rate], sources: Sequence[str] | None = None) -> Rate | None:
    """Mean of per-chain slopes with a 95% t-interval across source images (one chain: that chain's rate).

    Chains of one source image (several seeds) are not independent samples, so each image's chains are
    averaged first and the interval is across images; with a single image it is the mean of its chains' own
    intervals (identical chains of a deterministic model then count as one chain, not as proof).
    """
    keep = [i for i, r in enumerate(rates) if math.isfinite(r.slope)]
    if not keep:
        return None
    rates = [rates[i] for i in keep]
    labels = [sources[i] for i in keep] if sources is not None else [str(i) for i in range(len(rates))]
    if len(rates) == 1:
        return rates[0]
    n = sum(r.n for r in rates)
    max_step = max(r.max_step for r in rates)
    mean = float(np.mean([r.slope for r in rates]))
    groups: dict[str, list[float]] = {}
    for r, label in zip(rates, labels, strict=True):
        groups.setdefault(label, []).append(r.slope)
    if len(groups) == 1:
        low = float(np.mean([r.ci_low for r in rates]))
        high = float(np.mean([r.ci_high for r in rates]))
        return Rate(mean, low, high, n=n, max_step=max_step, chains=len(rates), images=1)
    units = np.array([np.mean(v) for v in groups.values()])
    m = len(units)
    sd = float(units.std(ddof=1))
    if sd <= 1e-12 * max(abs(float(units.mean())), 1.0):
        sd = 0.0
    centre = float(units.mean())
    half = float(stats.t.ppf(0.975, m - 1)) * sd / math.sqrt(m)
    return Rate(centre, centre - half, centre + half, n=n, max_step=max_step, chains=len(rates), images=m)


# -------------------------------------------------------------------------------------------- summaries


def summarize_chain(
    df_chain: pd.DataFrame,
    fixed_point_k: int = 3,
    drift_steps: Iterable[int] = (1, 10, 25, 50, 100),
    rate_steps: int = 20,
    measures: Sequence[str] | None = None,
) -> ChainSummary:
    """Summarise one chain's rows (see the module docstring); ``measures`` defaults to COLOUR_MEASURES.

    Rates use the steps 0..``rate_steps`` the chain has (all of them if it is shorter). Works on an empty
    frame (a summary with ``last_step`` -1 and nothing else) and on a chain holding only step 0.
    """
    df = _prepare(df_chain)
    chain = 0
    if "chain" in df.columns and len(df):
        value = pd.to_numeric(df["chain"], errors="coerce").iloc[0]
        chain = int(value) if pd.notna(value) else 0
    if df.empty:
        return ChainSummary(chain, -1, 0, None, None, fixed_point_k, False)
    steps = df["step"].to_numpy()
    last_step = int(steps[-1])

    half_life = _half_life(steps, _numeric(df, "ssim_to_origin")) if "ssim_to_origin" in df else None
    fixed_point, checked = _fixed_point(df, fixed_point_k)

    present = [m for m in (measures if measures is not None else COLOUR_MEASURES) if m in df.columns]
    values = {m: _numeric(df, m) for m in present}
    if "white_cast" in values and "white_cast_pixels" in df.columns:
        # Without bright near-neutral pixels the score is 0 by convention, not a measurement.
        values["white_cast"][~(_numeric(df, "white_cast_pixels") > 0)] = np.nan
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
    window = steps <= rate_steps
    x = steps[window].astype(float)
    for m, v in values.items():
        rate = _ols_rate(x, v[window])
        if rate is not None:
            rates[m] = rate

    final: dict[str, float] = {}
    for m in _FINAL_METRICS:
        if m in df.columns:
            v = _numeric(df, m)
            ok = np.flatnonzero(~np.isnan(v))
            if ok.size and int(steps[ok[-1]]) == last_step:
                final[m] = float(v[ok[-1]])

    face_at_start, face_lost = None, None
    if "face_found" in df.columns and has_origin:
        found = _numeric(df, "face_found")
        face_at_start = bool(found[0] > 0)
        face_lost = first_lost_step(dict(zip(steps.tolist(), found.tolist(), strict=True)))
    return ChainSummary(
        source=str(df["input"].iloc[0]) if "input" in df.columns else None,
        face_at_start=face_at_start,
        face_lost_step=face_lost,
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


# -------------------------------------------------------------------------------------------- sentences


def _decimals(*values: float, digits: int = 2) -> int:
    """Decimals that show the largest of ``values`` with ``digits`` significant digits (0..4)."""
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    if not finite:
        return 0
    return int(min(4, max(0, digits - 1 - math.floor(math.log10(max(finite))))))


def fmt_signed(value: float, decimals: int | None = None, unit: str = "") -> str:
    """``+0.24`` / ``−0.24`` (a real minus sign), ``0`` for zero; decimals chosen for 2 significant digits."""
    if not math.isfinite(value):
        return "∞" if value > 0 else (f"{MINUS}∞" if value < 0 else "n/a")
    d = _decimals(value) if decimals is None else decimals
    text = f"{value:+.{d}f}"
    if float(text) == 0:
        text = f"{0:.{d}f}"
    return text.replace("-", MINUS) + unit


def fmt_interval(rate: Rate, digits: int) -> str:
    """A rate's 95% interval as "[−0.27, −0.21]"."""
    return f"[{fmt_signed(rate.ci_low, digits)}, {fmt_signed(rate.ci_high, digits)}]"


def _fmt(value: float, decimals: int | None = None) -> str:
    if not math.isfinite(value):
        return "∞" if value > 0 else "n/a"
    d = _decimals(value, digits=3) if decimals is None else decimals
    return f"{value:.{d}f}".replace("-", MINUS)


def _fmt_step(value: float) -> str:
    return str(round(value)) if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _range(spread: dict[str, float]) -> str:
    lo, hi = spread["min"], spread["max"]
    return _fmt_step(lo) if lo == hi else f"{_fmt_step(lo)}–{_fmt_step(hi)}"


def _steps_phrase(k: int) -> str:
    return "the first step" if k == 1 else f"the first {k} steps"


def _rate_sentence(measure: str, rate: Rate) -> str:
    info = MEASURE_INFO.get(measure)
    symbol = info.symbol if info else f"Δ{measure}"
    unit = info.unit if info else ""
    over = _steps_phrase(rate.max_step)
    from_images = (
        f" from {rate.images} image{'s' if rate.images > 1 else ''}" if rate.images < rate.chains else ""
    )
    of_chains = f" (mean of {rate.chains} chains{from_images})" if rate.chains > 1 else ""
    d = _decimals(rate.slope, rate.ci_low, rate.ci_high)
    if rate.has_ci:
        interval = fmt_interval(rate, d)
        numbers = f"{symbol} {fmt_signed(rate.slope, d, unit)} per step {interval}"
    else:
        numbers = f"{symbol} {fmt_signed(rate.slope, d, unit)} per step; too few points for an interval"
    name = info.name if info else measure
    if rate.slope == 0 and rate.has_ci and rate.ci_low == rate.ci_high == 0:
        return f"{name}: no clear change — constant over {over}{of_chains}"
    if rate.clear and info is not None:
        head = info.up if rate.slope > 0 else info.down
        return f"{head}: {numbers} over {over}{of_chains}"
    if rate.clear:
        return f"{name} {'rises' if rate.slope > 0 else 'falls'}: {numbers} over {over}{of_chains}"
    mean_of = f", mean of {rate.chains} chains{from_images}" if rate.chains > 1 else ""
    return f"{name}: no clear change over {over} ({numbers}{mean_of})"


def _total_sentence(measure: str, spread: dict[str, float], steps: str, n_chains: int) -> str | None:
    info = MEASURE_INFO[measure]
    mean, lo, hi = spread["mean"], spread["min"], spread["max"]
    if n_chains > 1 and lo < 0 < hi and min(-lo, hi) >= info.negligible:
        return (
            f"{info.symbol} by {steps} differs between chains: {fmt_signed(lo)} to {fmt_signed(hi)} "
            f"(mean {fmt_signed(mean)})"
        )
    if abs(mean) < info.negligible:
        return None
    word = info.up_word if mean > 0 else info.down_word
    text = f"{word}: {info.symbol} {fmt_signed(mean, unit=info.unit)} by {steps}"
    if n_chains > 1:
        d = _decimals(mean, lo, hi)
        low, high = fmt_signed(lo, d), fmt_signed(hi, d)
        text += (
            f" (all {n_chains} chains)" if low == high else f" (mean of {n_chains} chains; {low} to {high})"
        )
    return text


def sentences(summaries: Sequence[ChainSummary], df: pd.DataFrame | None = None) -> list[str]:
    """The summary in plain words, one finding per sentence (no trailing full stops; UI decides).

    ``df`` (the metrics table the summaries came from) adds the white-cast level; everything else comes
    from ``summaries``. Interval brackets are 95% confidence intervals.
    """
    chains = [s for s in summaries if s.n_frames > 0]
    if not chains:
        return ["no frames to summarise"]
    ov = run_overview(chains)
    n = len(chains)
    last = ov["last_step"]
    out: list[str] = []
    chain_word = "1 chain" if n == 1 else f"{n} chains"
    if last["max"] == 0:
        return [f"{chain_word}, only the original frame (step 0): nothing to compare yet"]
    if last["min"] == last["max"]:
        each = "" if n == 1 else " each"
        copies = "1 copy" if last["max"] == 1 else f"{int(last['max'])} copies"
        out.append(f"{chain_word}, {copies}{each} (steps 0–{int(last['max'])})")
    else:
        out.append(f"{chain_word}, {int(last['min'])}–{int(last['max'])} copies each")
    by_last = f"step {int(last['max'])}" if last["min"] == last["max"] else f"the last step ({_range(last)})"

    # Half-life.
    hl = ov["half_life"]
    if hl is not None:
        reached = int(hl["n_reached"])
        if n == 1:
            out.append(f"SSIM to the original halves by step {_fmt_step(hl['mean'])}")
        else:
            where = "" if reached == n else f" in {reached} of {n} chains"
            out.append(
                f"SSIM to the original halves by step {_fmt_step(hl['mean'])} on average{where} "
                f"(chains: {_range(hl)})"
            )
            if reached < n:
                rest = n - reached
                out.append(
                    f"{rest} chain{'s' if rest > 1 else ''} stay{'s' if rest == 1 else ''} above SSIM 0.5 "
                    "to the end"
                )
    elif any("ssim_to_origin" in s.final for s in chains):
        who = "the chain" if n == 1 else "every chain"
        out.append(f"SSIM to the original stays above 0.5 in {who} through {by_last} (no half-life)")

    # Where the chains end up.
    final = ov["final"]
    parts = []
    if "ssim_to_origin" in final:
        parts.append(f"SSIM to the original {_fmt(final['ssim_to_origin']['mean'], 2)}")
    if "psnr_to_origin" in final:
        parts.append(f"PSNR {_fmt(final['psnr_to_origin']['mean'], 1)} dB")
    if "lpips_to_origin" in final:
        parts.append(f"LPIPS {_fmt(final['lpips_to_origin']['mean'], 3)}")
    if parts:
        mean_of = " (mean of chains)" if n > 1 else ""
        out.append(f"at {by_last}: {', '.join(parts)}{mean_of}")

    # Fixed points.
    fp = ov["fixed_point"]
    k = ov["fixed_point_k"]
    if fp["checked"] == 0:
        out.append("fixed points unknown: no per-step pixel change was measured")
    elif fp["n_reached"] == 0:
        out.append("no chain reached a fixed point")
    elif n == 1:
        out.append(
            f"the chain reached a fixed point at step {int(fp['steps']['min'])}: "
            f"no pixel changed over the next {k} steps"
        )
    else:
        at = "at step" if fp["steps"]["min"] == fp["steps"]["max"] else "at steps"
        out.append(
            f"{fp['n_reached']} of {n} chains reached a fixed point ({at} {_range(fp['steps'])}; "
            f"no pixel change over {k} steps)"
        )

    # Faces (measured with --faces).
    face = ov.get("face")
    if face is not None:
        if face["chains_with_face"] == 0:
            out.append("no face found at step 0, so no face measures")
        elif face["lost"] == 0:
            out.append(f"the face is still found at {by_last}")
        else:
            spread = face["steps"]
            at = f"step {int(spread['min'])}" if spread["min"] == spread["max"] else f"steps {_range(spread)}"
            of = "" if n == 1 else f" in {face['lost']} of {face['chains_with_face']} chains"
            out.append(f"the face is lost{of} at {at}")

    # Drift rates, then the total change of L*, a*, b*.
    for m in _SENTENCE_MEASURES:
        if m in ov["rates"]:
            out.append(_rate_sentence(m, ov["rates"][m]))
    negligible = []
    for m in _TOTAL_MEASURES:
        if m in ov["final_drift"]:
            text = _total_sentence(m, ov["final_drift"][m], by_last, n)
            if text is None:
                negligible.append(MEASURE_INFO[m].symbol)
            else:
                out.append(text)
    if negligible:
        out.append(
            f"no visible net change in {', '.join(negligible)} by {by_last} (|Δ| < {NEGLIGIBLE_LAB:g})"
        )

    # White cast level at the end, against the community threshold.
    if df is not None and "white_cast" in df.columns and "step" in df.columns:
        ends = []
        for s in chains:
            rows = (
                df
                if "chain" not in df.columns
                else df[pd.to_numeric(df["chain"], errors="coerce") == s.chain]
            )
            rows = _prepare(rows)
            v = _numeric(rows, "white_cast")
            if rows.empty or not np.isfinite(v[-1]):
                continue
            if "white_cast_pixels" in rows.columns and not _numeric(rows, "white_cast_pixels")[-1] > 0:
                continue  # no bright near-neutral pixels: the score is 0 by convention, not a reading
            ends.append(float(v[-1]))
        if ends:
            end = float(np.mean(ends))
            side = "above" if end > WHITE_CAST_YELLOW else "below"
            out.append(
                f"white cast at {by_last}: {_fmt(end, 1)}{' (mean of chains)' if n > 1 else ''}, {side} the "
                f"~{WHITE_CAST_YELLOW:g} at which whites read yellow"
            )
    return out
