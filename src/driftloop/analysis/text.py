"""driftloop's words and numbers: one formatter family, and the sentences of summaries and bias cards.

Numbers: :func:`fmt_signed` (``+0.24`` / ``−0.24`` with a real minus sign), :func:`fmt_number`,
:func:`fmt_interval`, :func:`format_p`, with decimals from :func:`decimals_for` / :func:`interval_decimals`
(two significant digits of the largest value shown). Sentences: :func:`sentences` says a run's chain
summaries in plain words (report, CLI); :func:`verdict` says what one model does to one measure on the bias
card. The words for each measure come from the vocabulary (:mod:`driftloop.measures`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from driftloop.analysis.card import BIAS_MEASURES, LAST, RATE, Comparison, MeasureResult
from driftloop.analysis.chains import MEASURE_INFO, ChainSummary, chain_rows, numeric_column, run_overview
from driftloop.analysis.intervals import Interval
from driftloop.analysis.stats import Rate
from driftloop.measures import NEGLIGIBLE_LAB, Measure

__all__ = [
    "MINUS",
    "WHITE_CAST_YELLOW",
    "decimals_for",
    "fmt_interval",
    "fmt_number",
    "fmt_range",
    "fmt_signed",
    "fmt_step",
    "format_p",
    "interval_decimals",
    "sentences",
    "verdict",
]

MINUS = "\N{MINUS SIGN}"
# The community "white cast" score above which whites read as yellow.
WHITE_CAST_YELLOW = 25.0
# Measures that get their own drift/rate sentences (the others are in the tables).
_SENTENCE_MEASURES = ("lab_l_mean", "lab_a_mean", "lab_b_mean", "lab_chroma_mean", "white_cast", "cct_kelvin")
_TOTAL_MEASURES = ("lab_l_mean", "lab_a_mean", "lab_b_mean")


# ------------------------------------------------------------------------------------------------ numbers


def decimals_for(*values: float | None, digits: int = 2, fallback: int = 2) -> int:
    """Decimals that show the largest of ``values`` with ``digits`` significant digits (0..4); ``fallback``
    when no value is finite and non-zero."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return fallback
    return int(min(4, max(0, digits - 1 - math.floor(math.log10(max(finite))))))


def fmt_signed(value: float, decimals: int | None = None, unit: str = "") -> str:
    """``+0.24`` / ``−0.24`` (a real minus sign), ``0`` for zero; decimals chosen for 2 significant digits.

    ``0.00`` (no sign) for a value that rounds to zero; ``∞`` / ``−∞`` / ``n/a`` for non-finite values."""
    if not math.isfinite(value):
        return "∞" if value > 0 else (f"{MINUS}∞" if value < 0 else "n/a")
    d = decimals_for(value, fallback=0) if decimals is None else decimals
    text = f"{value:+.{d}f}"
    if float(text) == 0:
        text = f"{0:.{d}f}"
    return text.replace("-", MINUS) + unit


def fmt_interval(rate: Rate, digits: int) -> str:
    """A rate's 95% interval as "[−0.27, −0.21]"."""
    return f"[{fmt_signed(rate.ci_low, digits)}, {fmt_signed(rate.ci_high, digits)}]"


def fmt_number(value: float, decimals: int | None = None) -> str:
    """An unsigned-style number (a real minus sign if negative); decimals for 3 significant digits."""
    if not math.isfinite(value):
        return "∞" if value > 0 else "n/a"
    d = decimals_for(value, digits=3, fallback=0) if decimals is None else decimals
    return f"{value:.{d}f}".replace("-", MINUS)


def fmt_step(value: float) -> str:
    """A step (or a mean of steps): ``12``, or ``12.5`` when not whole."""
    return str(round(value)) if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def fmt_range(spread: dict[str, float]) -> str:
    """The min–max of a spread of steps: ``12`` or ``9–14``."""
    lo, hi = spread["min"], spread["max"]
    return fmt_step(lo) if lo == hi else f"{fmt_step(lo)}–{fmt_step(hi)}"


def interval_decimals(value: float, low: float | None, high: float | None) -> int:
    """Decimals for a value with its interval: 2 significant digits of the largest, and enough to show the
    interval's width with at least 1 (at most 4 decimals)."""
    d = decimals_for(value, low, high)
    if low is not None and high is not None and high > low:
        d = max(d, decimals_for(high - low, digits=1))
    return min(d, 4)


def format_p(p: float | None, at_floor: bool = False) -> str:
    """``p<0.001`` below 0.001; ``p≤0.005`` when no random relabelling reached the observed statistic (p is
    then the smallest value the number of permutations can give); else ``p=0.012`` (2 significant digits)."""
    if p is None or not math.isfinite(p):
        return "p n/a"
    if p < 0.001:
        return "p<0.001"
    text = f"{p:.2g}"
    if "e" in text:
        text = f"{p:.4f}"
    return f"p≤{text}" if at_floor else f"p={text}"


# ------------------------------------------------------------------------------------- chain summaries


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
    d = decimals_for(rate.slope, rate.ci_low, rate.ci_high, fallback=0)
    if rate.has_ci:
        interval = fmt_interval(rate, d)
        numbers = f"{symbol} {fmt_signed(rate.slope, d, unit)} per step {interval}"
    else:
        why = rate.note or "no interval"
        numbers = f"{symbol} {fmt_signed(rate.slope, d, unit)} per step; no interval: {why}"
    name = info.name if info else measure
    if rate.slope == 0 and rate.has_ci and rate.ci_low == rate.ci_high == 0:
        return f"{name}: no clear change — constant over {over}{of_chains}"
    if rate.clear and info is not None:
        head = info.up_head if rate.slope > 0 else info.down_head
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
        d = decimals_for(mean, lo, hi, fallback=0)
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
    by_last = (
        f"step {int(last['max'])}" if last["min"] == last["max"] else f"the last step ({fmt_range(last)})"
    )

    # Half-life.
    hl = ov["half_life"]
    if hl is not None:
        reached = int(hl["n_reached"])
        if n == 1:
            out.append(f"SSIM to the original halves by step {fmt_step(hl['mean'])}")
        else:
            where = "" if reached == n else f" in {reached} of {n} chains"
            out.append(
                f"SSIM to the original halves by step {fmt_step(hl['mean'])} on average{where} "
                f"(chains: {fmt_range(hl)})"
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
        parts.append(f"SSIM to the original {fmt_number(final['ssim_to_origin']['mean'], 2)}")
    if "psnr_to_origin" in final:
        parts.append(f"PSNR {fmt_number(final['psnr_to_origin']['mean'], 1)} dB")
    if "lpips_to_origin" in final:
        parts.append(f"LPIPS {fmt_number(final['lpips_to_origin']['mean'], 3)}")
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
            f"{fp['n_reached']} of {n} chains reached a fixed point ({at} {fmt_range(fp['steps'])}; "
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
            one = spread["min"] == spread["max"]
            at = f"step {int(spread['min'])}" if one else f"steps {fmt_range(spread)}"
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
            rows = chain_rows(rows)
            v = numeric_column(rows, "white_cast")
            if rows.empty or not np.isfinite(v[-1]):
                continue
            if "white_cast_pixels" in rows.columns and not numeric_column(rows, "white_cast_pixels")[-1] > 0:
                continue  # no bright near-neutral pixels: the score is 0 by convention, not a reading
            ends.append(float(v[-1]))
        if ends:
            end = float(np.mean(ends))
            side = "above" if end > WHITE_CAST_YELLOW else "below"
            of_chains = " (mean of chains)" if n > 1 else ""
            out.append(
                f"white cast at {by_last}: {fmt_number(end, 1)}{of_chains}, {side} the "
                f"~{WHITE_CAST_YELLOW:g} at which whites read yellow"
            )
    return out


# ------------------------------------------------------------------------------------ bias-card verdicts


def _numbers(info: Measure, est: Interval, per: str = " per step") -> str:
    d = interval_decimals(est.mean, est.ci_low, est.ci_high)
    text = f"{info.symbol} {fmt_signed(est.mean, d, info.unit)}{per}"
    if est.has_ci:
        text += f" [{fmt_signed(est.ci_low, d)}, {fmt_signed(est.ci_high, d)}]"  # type: ignore[arg-type]
    return text


def _diff_text(info: Measure, cmp: Comparison, per: str = " per step") -> str:
    d = interval_decimals(cmp.difference, cmp.ci_low, cmp.ci_high)
    text = f"difference {fmt_signed(cmp.difference, d, info.unit)}{per}"
    if cmp.ci_low is not None and cmp.ci_high is not None:
        text += f" [{fmt_signed(cmp.ci_low, d)}, {fmt_signed(cmp.ci_high, d)}]"
    return text


def verdict(model: str, measure: str, result: MeasureResult, control: str | None) -> str:
    info = BIAS_MEASURES.get(measure) or Measure(
        measure,
        "",
        symbol=f"Δ{measure}",
        noun=measure,
        up_word="up",
        down_word="down",
        up_verb="rises",
        down_verb="falls",
    )
    est = result.rate
    per = " per step"
    if est is None:
        # No rate (e.g. one step per chain): fall back to the change by the last step.
        est = result.change.get(LAST)
        per = " by the last step"
        if est is None:
            return f"{model}: {info.noun} not measured"
    cmp = result.vs_control.get(RATE if result.rate is not None else LAST)
    numbers = _numbers(info, est, per)
    if not est.has_ci:
        chains = "1 chain" if est.n_values == 1 else f"{est.n_values} chains"
        return f"{model}: {numbers} from {chains}; no interval, so no verdict"
    if est.excludes_zero:
        head = f"{model} {info.up_verb if est.mean > 0 else info.down_verb}: {numbers}"
        if cmp is None or cmp.p_value is None:
            return head
        same_way = (cmp.difference > 0) == (est.mean > 0) and cmp.difference != 0
        if cmp.reliable and same_way:
            return f"{head}, {cmp.p_text} vs {control}"
        if cmp.reliable:
            return f"{head}; less than {control} does ({_diff_text(info, cmp, per)}, {cmp.p_text})"
        if cmp.significant:
            return (
                f"{head}; not reliably different from {control} ({cmp.p_text}, but the difference's 95% "
                "interval includes 0)"
            )
        return f"{head}; not reliably different from {control} ({cmp.p_text})"
    text = f"{model}: no reliable {info.noun} change ({numbers})"
    if cmp is None or cmp.p_value is None:
        return text
    if cmp.reliable:
        return f"{text}, but it differs from {control}: {_diff_text(info, cmp, per)}, {cmp.p_text}"
    return f"{text}; {cmp.p_text} vs {control}"
