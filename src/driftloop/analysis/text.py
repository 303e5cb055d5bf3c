"""driftloop's words: the sentences of summaries and bias cards.

:func:`sentences` says a run's chain summaries in plain words (report, CLI); :func:`verdict` says what one
model does to one measure on the bias card. The words for each measure come from the vocabulary
(:mod:`driftloop.measures`); every number in them is written by :mod:`driftloop.fmt` (one function per rule:
``signed``, ``fixed``, ``interval``, ``p_value``, ``step`` ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from driftloop import fmt
from driftloop.analysis.card import BIAS_MEASURES, LAST, RATE, Comparison, MeasureResult
from driftloop.analysis.chains import MEASURE_INFO, ChainSummary, chain_rows, numeric_column, run_overview
from driftloop.analysis.colour_reading import ColourReading, hue_name, hue_turn, read_colour
from driftloop.analysis.intervals import Interval
from driftloop.analysis.stats import Rate
from driftloop.measures import COLOUR_DRAINS, HUE_NEGLIGIBLE_DEG, NEGLIGIBLE_LAB, Measure

__all__ = [
    "WHITE_CAST_YELLOW",
    "colour_verdict",
    "headline",
    "rate_word",
    "sentences",
    "verdict",
]
# The community "white cast" score above which whites read as yellow.
WHITE_CAST_YELLOW = 25.0
# Measures that get their own drift/rate sentences (the others are in the tables).
_SENTENCE_MEASURES = ("lab_l_mean", "lab_a_mean", "lab_b_mean", "lab_chroma_mean", "white_cast", "cct_kelvin")
_TOTAL_MEASURES = ("lab_l_mean", "lab_a_mean", "lab_b_mean")


# ------------------------------------------------------------------------------------- chain summaries


def _steps_phrase(k: int) -> str:
    return "the first step" if k == 1 else f"the first {k} steps"


def _drain_head(info: Measure, up: bool) -> str:
    """A measure moving toward its grey value while the colour drains, said as that (see colour_reading)."""
    grey = f"{fmt.fixed(info.neutral or 0.0, 0)}{info.unit}"
    word = info.up_word if up else info.down_word
    return f"{info.name} moves toward a grey's {grey} as the colour drains (not {word})"


def rate_word(measure: str, rate: Rate, reading: ColourReading | None = None) -> str:
    """A rate in a word or two for a table: "too few points", "no clear change", "warmer", "toward grey"."""
    info = MEASURE_INFO.get(measure)
    if not rate.has_ci:
        return "no interval (too short)" if "too short" in (rate.note or "") else "no interval"
    if not rate.clear:
        return "no clear change"
    if info is None:
        return "rises" if rate.slope > 0 else "falls"
    if reading is not None and reading.drains(measure):
        return "toward grey"
    return info.up_word if rate.slope > 0 else info.down_word


def _colour_sentence(reading: ColourReading, by_last: str, n_chains: int) -> str | None:
    """The colour drains to grey (chroma loss), or the mean colour's hue turns (where its chroma is
    meaningful), or a cast appears on a near-grey mean; None when none of these holds."""
    mean_of = " (mean of chains)" if n_chains > 1 else ""
    loss = reading.chroma_loss
    if reading.drained and loss is not None:
        c0, c1 = reading.start["lab_chroma_mean"], reading.end["lab_chroma_mean"]
        return (
            f"{COLOUR_DRAINS}: mean chroma C* {fmt.fixed(c0, 1)} → {fmt.fixed(c1, 1)} by {by_last} "
            f"({fmt.signed(-100 * loss, 0)}%){mean_of}"
        )
    h0, h1 = reading.hue_start, reading.hue_end
    if h0 is not None and h1 is not None and abs(hue_turn(h0, h1)) >= HUE_NEGLIGIBLE_DEG:
        return (
            f"the mean colour's hue turns toward {hue_name(h1)}: h {h0:.0f}° ({hue_name(h0)}) → {h1:.0f}° "
            f"({hue_name(h1)}) by {by_last}{mean_of}"
        )
    c0, c1 = reading.cast_start, reading.cast_end
    if h0 is None and h1 is not None and c0 is not None and c1 is not None and c1 - c0 > NEGLIGIBLE_LAB:
        name = hue_name(h1)
        article = "an" if name[0] in "aeiou" else "a"
        return (
            f"{article} {name} cast appears: the mean colour's chroma {fmt.fixed(c0, 1)} → "
            f"{fmt.fixed(c1, 1)}, hue {h1:.0f}°, by {by_last}{mean_of}"
        )
    return None


def _rate_sentence(measure: str, rate: Rate, reading: ColourReading | None = None) -> str:
    info = MEASURE_INFO.get(measure)
    symbol = info.symbol if info else f"Δ{measure}"
    unit = info.unit if info else ""
    over = _steps_phrase(rate.max_step)
    from_images = (
        f" from {rate.images} image{'s' if rate.images > 1 else ''}" if rate.images < rate.chains else ""
    )
    of_chains = f" (mean of {rate.chains} chains{from_images})" if rate.chains > 1 else ""
    d = fmt.decimals_for(rate.slope, rate.ci_low, rate.ci_high, fallback=0)
    if rate.has_ci:
        interval = fmt.interval(rate.ci_low, rate.ci_high, d)
        numbers = f"{symbol} {fmt.signed(rate.slope, d, unit)} per step {interval}"
    else:
        why = rate.note or "no interval"
        numbers = f"{symbol} {fmt.signed(rate.slope, d, unit)} per step; no interval: {why}"
    name = info.name if info else measure
    if rate.slope == 0 and rate.has_ci and rate.ci_low == rate.ci_high == 0:
        return f"{name}: no clear change — constant over {over}{of_chains}"
    if rate.clear and info is not None and reading is not None and reading.drains(measure):
        return f"{_drain_head(info, rate.slope > 0)}: {numbers} over {over}{of_chains}"
    if rate.clear and info is not None:
        head = info.up_head if rate.slope > 0 else info.down_head
        return f"{head}: {numbers} over {over}{of_chains}"
    if rate.clear:
        return f"{name} {'rises' if rate.slope > 0 else 'falls'}: {numbers} over {over}{of_chains}"
    mean_of = f", mean of {rate.chains} chains{from_images}" if rate.chains > 1 else ""
    return f"{name}: no clear change over {over} ({numbers}{mean_of})"


def _total_sentence(
    measure: str, spread: dict[str, float], steps: str, n_chains: int, reading: ColourReading | None = None
) -> str | None:
    info = MEASURE_INFO[measure]
    mean, lo, hi = spread["mean"], spread["min"], spread["max"]
    if n_chains > 1 and lo < 0 < hi and min(-lo, hi) >= info.negligible:
        return (
            f"{info.symbol} by {steps} differs between chains: {fmt.signed(lo)} to {fmt.signed(hi)} "
            f"(mean {fmt.signed(mean)})"
        )
    if abs(mean) < info.negligible:
        return None
    word = info.up_word if mean > 0 else info.down_word
    if reading is not None and reading.drains(measure):
        word = "toward grey"
    text = f"{word}: {info.symbol} {fmt.signed(mean, unit=info.unit)} by {steps}"
    if n_chains > 1:
        d = fmt.decimals_for(mean, lo, hi, fallback=0)
        low, high = fmt.signed(lo, d), fmt.signed(hi, d)
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
        f"step {int(last['max'])}"
        if last["min"] == last["max"]
        else f"the last step ({fmt.step_range(last)})"
    )

    # Half-life.
    hl = ov["half_life"]
    if hl is not None:
        reached = int(hl["n_reached"])
        if n == 1:
            out.append(f"SSIM to the original halves by step {fmt.step(hl['mean'])}")
        else:
            where = "" if reached == n else f" in {reached} of {n} chains"
            out.append(
                f"SSIM to the original halves by step {fmt.step(hl['mean'])} on average{where} "
                f"(chains: {fmt.step_range(hl)})"
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
        parts.append(f"SSIM to the original {fmt.fixed(final['ssim_to_origin']['mean'], 2)}")
    if "psnr_to_origin" in final:
        parts.append(f"PSNR {fmt.fixed(final['psnr_to_origin']['mean'], 1)} dB")
    if "lpips_to_origin" in final:
        parts.append(f"LPIPS {fmt.fixed(final['lpips_to_origin']['mean'], 3)}")
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
            f"{fp['n_reached']} of {n} chains reached a fixed point ({at} {fmt.step_range(fp['steps'])}; "
            f"no pixel change over {k} steps)"
        )

    # Faces (measured with --faces).
    face = ov.get("face")
    if face is not None:
        if face["chains_with_face"] == 0:
            out.append("no face in the original (step 0), so no face measures")
        elif face["lost"] == 0:
            out.append(f"the face is still found at {by_last}")
        else:
            spread = face["steps"]
            one = spread["min"] == spread["max"]
            at = f"step {int(spread['min'])}" if one else f"steps {fmt.step_range(spread)}"
            of = "" if n == 1 else f" in {face['lost']} of {face['chains_with_face']} chains"
            out.append(f"the face is lost{of} at {at}")

    # The colour read right (drains to grey, or turns), then drift rates and the total change of L*, a*, b*.
    reading = read_colour(chains)
    colour = _colour_sentence(reading, by_last, n)
    if colour is not None:
        out.append(colour)
    for m in _SENTENCE_MEASURES:
        if m in ov["rates"]:
            out.append(_rate_sentence(m, ov["rates"][m], reading))
    negligible = []
    for m in _TOTAL_MEASURES:
        if m in ov["final_drift"]:
            text = _total_sentence(m, ov["final_drift"][m], by_last, n, reading)
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
                f"white cast at {by_last}: {fmt.fixed(end, 1)}{of_chains}, {side} the "
                f"~{WHITE_CAST_YELLOW:g} at which whites read yellow"
            )
    return out


def headline(summaries: Sequence[ChainSummary]) -> list[str]:
    """The drift in one or two lines, for the end of a run: where SSIM to the original ended and when it
    halved, then the largest net change of L*, a* or b* in words (from the sentences' own phrasing)."""
    chains = [s for s in summaries if s.n_frames > 0]
    if not chains:
        return ["no frames to summarise"]
    ov = run_overview(chains)
    n, last = len(chains), ov["last_step"]
    if last["max"] == 0:
        return ["only the original frame (step 0): nothing drifted yet"]
    by_last = (
        f"step {int(last['max'])}"
        if last["min"] == last["max"]
        else f"the last step ({fmt.step_range(last)})"
    )
    out = []
    if "ssim_to_origin" in ov["final"]:
        mean_of = f" (mean of {n} chains)" if n > 1 else ""
        ssim = fmt.fixed(ov["final"]["ssim_to_origin"]["mean"], 2)
        text = f"SSIM to the original {ssim} at {by_last}{mean_of}"
        hl = ov["half_life"]
        if hl is None:
            text += ", never below 0.5 (no half-life)"
        elif n == 1:
            text += f", below 0.5 from step {fmt.step(hl['mean'])} (the half-life)"
        else:
            where = "" if hl["n_reached"] == n else f" in {int(hl['n_reached'])} of {n} chains"
            text += f", below 0.5 from step {fmt.step(hl['mean'])} on average{where} (the half-life)"
        out.append(text)
    totals = {m: ov["final_drift"][m] for m in _TOTAL_MEASURES if m in ov["final_drift"]}
    if totals:
        largest = max(totals, key=lambda m: abs(totals[m]["mean"]))
        text = _total_sentence(largest, totals[largest], by_last, n)
        if text is None:
            symbols = ", ".join(MEASURE_INFO[m].symbol for m in totals)
            text = f"no visible colour change by {by_last} ({symbols} all within ±{NEGLIGIBLE_LAB:g})"
        else:
            text = f"largest colour change: {text}"
        out.append(text)
    return out or ["no measures: `driftloop metrics RUN --recompute` measures the frames"]


# ------------------------------------------------------------------------------------ bias-card verdicts


def _numbers(info: Measure, est: Interval, per: str = " per step") -> str:
    d = fmt.interval_decimals(est.mean, est.ci_low, est.ci_high)
    text = f"{info.symbol} {fmt.signed(est.mean, d, info.unit)}{per}"
    if est.has_ci:
        text += f" {fmt.interval(est.ci_low, est.ci_high, d)}"  # type: ignore[arg-type]
    return text


def _diff_text(info: Measure, cmp: Comparison, per: str = " per step") -> str:
    d = fmt.interval_decimals(cmp.difference, cmp.ci_low, cmp.ci_high)
    text = f"difference {fmt.signed(cmp.difference, d, info.unit)}{per}"
    if cmp.ci_low is not None and cmp.ci_high is not None:
        text += f" {fmt.interval(cmp.ci_low, cmp.ci_high, d)}"
    return text


def colour_verdict(model: str, reading: ColourReading) -> str | None:
    """The bias card's line on a model's colour: it drains to grey, or its mean hue turns (or None)."""
    said = _colour_sentence(reading, "the last step", 2)
    return None if said is None else f"{model}: {said}"


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
        up = est.mean > 0
        said = _drain_head(info, up) if result.drains else None
        head = (
            f"{model}: {said}: {numbers}"
            if said
            else f"{model} {info.up_verb if up else info.down_verb}: {numbers}"
        )
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
