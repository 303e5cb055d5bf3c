"""The bias card: what a model does to images *on average*, with honest uncertainty.

One chain is an anecdote; "an orange tint tends to appear" is a claim about a model, so it rests on many
chains over many source images. Input is the sweep's metrics table, a pandas DataFrame with one row per
(chain, step): ``model`` (spec string), ``image`` (source image id; ``input`` is accepted instead),
``chain_seed``, ``chain`` (with ``run_id``, if present, it identifies a chain), ``step`` and the metric
columns of :mod:`driftloop.metrics` (plus optional face columns). Statistics, exactly:

**Per chain** (:func:`chain_statistics`), for every measure (column) *m* with values *v(step)*:

* change at step *s*: ``v(s) − v(0)``, for each requested step the chain reached, and ``last``: the change
  at the chain's own last step;
* rate: the average change per step over the chain's steps (all of them by default; ``0..rate_steps`` when
  given), ``(v(last) − v(first)) / (steps between them)``, with its own interval
  (:func:`driftloop.analysis.chain_rate.chain_rate_ci`, kept in the column ``m:rate:ci``); needs two steps
  with values; a constant series has rate exactly 0.

Missing values are left out: ``white_cast`` where ``white_cast_pixels`` is 0 (no bright near-neutral
pixels: the score is 0 by convention, not a reading) and the face measures where ``face_found`` is 0.

**Per model** (:func:`bias_card`): chains of one source image are not independent (they share the
picture), so the image is the unit. The estimate is the mean of the per-image means (each image's chains
averaged first, then every image weighs the same); its 95% confidence interval is **Student's t on the
image means** (df = G − 1 for G images), :func:`driftloop.analysis.intervals.mean_ci`. Step seeds derive
from (chain seed, step), so a sweep that runs the same seeds on every image gives chains of different
images the same model noise; when that is the case and the seeds' shared effect is measurable, the
variance is the two-way image × seed one with Satterthwaite's df (``t over images and seeds``). A model
whose chains all come from one image has no interval for the changes at steps (its chains say nothing about
other images); its rate has the interval about that image that the run report prints too
(:func:`driftloop.analysis.chain_rate.rate_over_chains_ci`: one chain's own interval, or its chains
pooled), so the card and the report agree on when a rate has an interval. Simulated with a known truth
(``benchmarks/coverage.py``), the intervals over images cover about 95% from 3 to 30 images when image
effects are roughly normal; strongly skewed effects make every method tried fall short (the README gives
the table).

**Against a control model** (per measure, for the rate and each change-at-step *s*):

* difference = model − control **paired at the image level**: per source image both models ran, the mean
  of the model's chains minus the mean of the control's (per (image, seed) cell when both ran the same
  seeds on every shared image), and the interval of those differences as above
  (:func:`driftloop.analysis.intervals.paired_diff_ci`); chains of images only one model has are left
  out. With no image in common, the difference of the two estimates with Welch's interval
  (:func:`driftloop.analysis.intervals.unpaired_diff_ci`);
* Hedges' g = difference of chain means / pooled SD of the per-chain values × (1 − 3 / (4(n₁+n₂) − 9)), a
  descriptive standardised effect size (chains as units);
* p: a two-sided **paired image-level permutation test**
  (:func:`driftloop.analysis.intervals.sign_flip_test`) on the same per-image differences: a relabelling
  swaps the model and control means of an image (a sign flip of that image's difference), independently
  per image; statistic T = mean over shared images of the differences. All 2^G relabellings are enumerated
  when 2^G ≤ ``n_perm`` (exact p = share of relabellings with |T*| ≥ |T|, so the smallest possible p is
  2/2^G: p < 0.05 needs ≥ 6 shared images, p < 0.01 needs ≥ 8); otherwise ``n_perm`` random ones and
  p = (1 + count) / (n_perm + 1). With one shared image the chains of that image are permuted instead
  (a statement about that image only); with none, image means are permuted across images (two-sample).
  In a sweep that reuses seeds across images and whose models respond to them, images are not fully
  independent and p may be too small; the comparison notes this when the interval found a seed effect,
  and the interval (which then counts the seeds) is the safer guide.

**Verdict** per (model, measure), from the rate: a *reliable change* needs the rate's interval to exclude 0
(a zero-width interval ``[0, 0]`` includes it). Against the control, *reliably different* needs p < 0.05
**and** the difference's interval to exclude 0; the line gives the p-value either way. Otherwise: "no
reliable <measure> change". Colour is read right (:mod:`driftloop.analysis.colour_reading`): when a model's
chains lose at least a quarter of their mean chroma, a*, b*, white cast and CCT moving toward their grey
values are said as "the colour drains to grey" (``MeasureResult.drains``), never "cooler" or "bluer light";
where the mean colour keeps its chroma, a turn of its hue is named.

The intervals involve no randomness; the permutation test's random relabellings (only when there are too
many to enumerate) come from ``numpy.random.default_rng`` seeded by (``seed``, model, column), so the same
data give the same card, whatever the row order or the other models and measures in the table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from driftloop.analysis.card import (
    BIAS_MEASURES,
    FACE_MEASURES,
    LAST,
    RATE,
    BiasCard,
    Comparison,
    FaceLoss,
    MeasureResult,
    ModelCard,
)
from driftloop.analysis.chain_rate import chain_rate_ci, rate_over_chains_ci
from driftloop.analysis.chains import numeric_column
from driftloop.analysis.colour_reading import ColourReading, reading_of
from driftloop.analysis.compare import compare_all
from driftloop.analysis.intervals import Interval, mean_ci
from driftloop.analysis.stats import as_labels, seeded_rng
from driftloop.analysis.text import colour_verdict, verdict
from driftloop.metrics.face import first_lost_step

__all__ = ["DEFAULT_CONTROL", "DEFAULT_STEPS", "bias_card", "chain_statistics"]

DEFAULT_CONTROL = "jpeg:quality=90"
DEFAULT_STEPS: tuple[int, ...] = (1, 10, 25, 50, 100)
FEW_IMAGES = 5  # below this many source images, say how much the intervals then lean on normality
START = "start"  # the per-chain column of a measure's value at step 0 (for reading colour right)


def _step_key(step: int) -> str:
    return str(int(step))


def _columns(df: pd.DataFrame) -> tuple[str, str]:
    image = "image" if "image" in df.columns else ("input" if "input" in df.columns else "")
    model = "model" if "model" in df.columns else ""
    return image, model


def chain_statistics(
    df: pd.DataFrame,
    steps: Iterable[int] = DEFAULT_STEPS,
    rate_steps: int | None = None,
    measures: Sequence[str] | None = None,
    rate_intervals: str = "all",
) -> pd.DataFrame:
    """One row per chain: ``model``, ``image``, ``chain_seed``, ``chain_id``, ``last_step``, ``rate_max_step``
    and, per measure *m*, ``m:rate`` and ``m:<s>`` (change at step *s*) for the requested steps that any
    chain reached, plus ``m:last``. Missing numbers are NaN. Rows are sorted by (model, image, chain_id).

    Without a ``model`` column every chain belongs to model ``"model"``; without an ``image`` (or
    ``input``) column every chain is its own image. ``rate_intervals``: whose chains get their own rate
    interval in ``m:rate:ci`` (:func:`~driftloop.analysis.chain_rate.chain_rate_ci`, the slow part): ``all``,
    ``one image`` (models whose chains all come from one image: the only ones the card reads it for) or
    ``none``. Computed for the whole table at once, so its time grows linearly with the rows.
    """
    if rate_intervals not in RATE_INTERVALS:
        raise ValueError(f"rate_intervals: one of {', '.join(RATE_INTERVALS)}, got {rate_intervals!r}")
    if df is None or df.empty or "step" not in df.columns:
        return pd.DataFrame(
            columns=["model", "image", "chain_seed", "chain_id", "last_step", "rate_max_step"]
        )
    work = _chain_rows(df)
    wanted = list(measures) if measures is not None else list(BIAS_MEASURES)
    present = [m for m in wanted if m in df.columns]
    st = work["_step"].to_numpy()
    n_rows = len(work)
    keys = work["_model"].to_numpy(dtype=object) + "\0" + work["_chain"].to_numpy(dtype=object)
    start = np.ones(n_rows, dtype=bool)
    start[1:] = keys[1:] != keys[:-1]
    first = np.flatnonzero(start)
    last = np.append(first[1:], n_rows) - 1
    of = np.cumsum(start) - 1  # the chain of each row
    n = len(first)
    max_step = int(st.max()) if n_rows else 0
    step_keys = sorted({int(s) for s in steps if 0 < int(s) <= max_step})

    def row_at(step: int) -> np.ndarray:
        """Per chain, its row at ``step`` (-1 where it has none)."""
        at = np.full(n, -1)
        hit = np.flatnonzero(st == step)
        at[of[hit]] = hit
        return at

    at0 = row_at(0)
    has0 = at0 >= 0
    window = np.ones(len(st), bool) if rate_steps is None else st <= rate_steps
    none = np.iinfo(np.int64).min
    rate_max = np.maximum.reduceat(np.where(window, st, none), first) if n else np.zeros(0, np.int64)
    cols: dict[str, Any] = {
        "model": work["_model"].to_numpy(dtype=object)[first],
        "image": work["_image"].to_numpy(dtype=object)[first],
        "chain_seed": work["chain_seed"].to_numpy()[first] if "chain_seed" in work.columns
        else np.full(n, None, dtype=object),
        "chain_id": work["_chain"].to_numpy(dtype=object)[first],
        "last_step": st[last].astype(int),
        "rate_max_step": np.where(rate_max == none, -1, rate_max).astype(int),
    }  # fmt: skip
    no_face = None
    if "face_found" in work.columns:
        found = numeric_column(work, "face_found")
        no_face = ~(found > 0)
        measured = np.logical_or.reduceat(np.isfinite(found), first) if n else np.zeros(0, bool)
        if measured.any():  # NaN throughout a chain: faces were not measured on it
            at_start = np.where(has0, found[np.maximum(at0, 0)] > 0, False)
            lost = np.full(n, math.nan)
            for c in np.flatnonzero(measured):
                rows = slice(first[c], last[c] + 1)
                step = first_lost_step(dict(zip(st[rows].tolist(), found[rows].tolist(), strict=True)))
                lost[c] = math.nan if step is None else float(step)
            cols["face_at_start"] = np.where(measured, at_start, None).astype(object)
            cols["face_lost_step"] = np.where(measured, lost, math.nan)
        face_lost_at_start = ~has0 | no_face[np.maximum(at0, 0)]  # no face in the original: no change
    step_rows = {s: row_at(s) for s in step_keys}
    intervals = _interval_chains(cols["model"], cols["image"], rate_intervals)
    for m in present:
        v = numeric_column(work, m)
        if m == "white_cast" and "white_cast_pixels" in work.columns:
            v[~(numeric_column(work, "white_cast_pixels") > 0)] = np.nan
        if m in FACE_MEASURES and no_face is not None:
            v[no_face] = np.nan
            v[face_lost_at_start[of]] = np.nan
        v0 = np.where(has0, v[np.maximum(at0, 0)], math.nan)
        for s, at in step_rows.items():
            cols[f"{m}:{s}"] = np.where(at >= 0, v[np.maximum(at, 0)] - v0, math.nan)
        cols[f"{m}:{LAST}"] = np.where(cols["last_step"] > 0, v[last] - v0, math.nan)
        cols[f"{m}:{START}"] = v0
        cols[f"{m}:{RATE}"] = _window_rates(st, v, window, first, of, n)
        cis = np.full(n, None, dtype=object)
        for c in intervals:
            rows = np.arange(first[c], last[c] + 1)
            rows = rows[window[rows]]
            iv = chain_rate_ci(st[rows].astype(float), v[rows])
            cols[f"{m}:{RATE}"][c] = iv.mean
            cis[c] = iv
        cols[f"{m}:{RATE}:ci"] = cis
    out = pd.DataFrame(cols)
    out = out.sort_values(["model", "image", "chain_id"], kind="stable").reset_index(drop=True)
    out.attrs["step_keys"] = [_step_key(s) for s in step_keys] + [LAST]
    out.attrs["measures"] = present
    return out


RATE_INTERVALS = ("all", "one image", "none")


def _chain_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The table's rows with a step, keyed (``_model``, ``_chain``, ``_image``, ``_step``), sorted by model,
    chain and step, one row per step of a chain (the last one wins)."""
    image_col, model_col = _columns(df)
    steps = pd.to_numeric(df["step"], errors="coerce")
    work = df.loc[steps.notna()].copy()
    work["_step"] = steps[steps.notna()].astype(int)
    work["_model"] = work[model_col].astype(str) if model_col else "model"
    if "chain" in work.columns:
        work["_chain"] = work["chain"].astype(str)
        if "run_id" in work.columns and not work["_chain"].str.contains("/").all():
            work["_chain"] = work["run_id"].astype(str) + "/" + work["_chain"]
    elif image_col:
        seed = work["chain_seed"].astype(str) if "chain_seed" in work.columns else ""
        work["_chain"] = work[image_col].astype(str) + "/" + seed
    else:
        work["_chain"] = "0"
    if image_col:
        work["_image"] = work[image_col].astype(str)
    else:
        work["_image"] = work["_model"] + "|" + work["_chain"]
    work = work.sort_values(["_model", "_chain", "_step"], kind="stable")
    return work.drop_duplicates(["_model", "_chain", "_step"], keep="last").reset_index(drop=True)


def _window_rates(
    st: np.ndarray, v: np.ndarray, window: np.ndarray, first: np.ndarray, of: np.ndarray, n: int
) -> np.ndarray:
    """Per chain, the rate :func:`~driftloop.analysis.chain_rate.chain_rate_ci` estimates: (last − first
    value) / (steps between them) over its finite values in the window; 0 for a constant series,
    NaN below two values."""
    ok = window & np.isfinite(v)
    idx = np.flatnonzero(ok)
    count = np.bincount(of[idx], minlength=n)
    lo = np.full(n, -1)
    hi = np.full(n, -1)
    lo[of[idx[::-1]]] = idx[::-1]  # the first finite row of each chain wins (written last)
    hi[of[idx]] = idx
    vmin = np.full(n, np.inf)
    vmax = np.full(n, -np.inf)
    np.minimum.at(vmin, of[idx], v[idx])
    np.maximum.at(vmax, of[idx], v[idx])
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = (v[np.maximum(hi, 0)] - v[np.maximum(lo, 0)]) / (st[np.maximum(hi, 0)] - st[np.maximum(lo, 0)])
    rate = np.where(vmax == vmin, 0.0, rate)
    return np.where(count >= 2, rate, math.nan)


def _interval_chains(models: np.ndarray, images: np.ndarray, which: str) -> list[int]:
    """The chains (positions) whose own rate interval ``rate_intervals=which`` asks for."""
    if which == "all":
        return list(range(len(models)))
    if which == "none":
        return []
    one = pd.Series(images).groupby(pd.Series(models)).nunique()
    return np.flatnonzero(pd.Series(models).map(one).to_numpy() == 1).tolist()


# ------------------------------------------------------------------------------------------------ card


def _seed_labels(rows: pd.DataFrame) -> np.ndarray | None:
    """Chain seeds as strings, or None when the table does not say."""
    if "chain_seed" not in rows.columns or rows["chain_seed"].isna().all():
        return None
    return as_labels(rows["chain_seed"])


def _estimate(iv: Interval) -> Interval | None:
    """The card keeps an interval when a chain has a value (None otherwise)."""
    return iv if iv.n_values else None


def _colour_of(rows: pd.DataFrame, measures: Sequence[str]) -> ColourReading:
    """A model's colour reading (:mod:`driftloop.analysis.colour_reading`): the means over its chains of
    each measure at step 0 and at the chain's last step, where every chain has both."""
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    for m in measures:
        v0 = rows[f"{m}:{START}"].to_numpy(dtype=float)
        v1 = v0 + rows[f"{m}:{LAST}"].to_numpy(dtype=float)
        if len(rows) and np.isfinite(v1).all():
            start[m], end[m] = float(v0.mean()), float(v1.mean())
    return reading_of(start, end)


def _pick_control(models: Sequence[str], control: str | bool | None) -> tuple[str | None, str | None]:
    """(control used, note). ``False``: no control (a sweep's ``control = false``)."""
    if control is False or control is True:
        return None, "no control model (control = false): no comparisons"
    if control is None:
        jpeg = sorted(m for m in models if m.lower().startswith("jpeg"))
        if jpeg:
            return jpeg[0], None
        return None, "no control model given and no JPEG model in the data: no comparisons"
    if control in models:
        return control, None
    norm = {m.replace(" ", "").lower(): m for m in models}
    key = control.replace(" ", "").lower()
    if key in norm:
        return norm[key], None
    return None, f"control model {control!r} is not in the data: no comparisons"


def bias_card(
    df: pd.DataFrame,
    control: str | bool | None = DEFAULT_CONTROL,
    steps: Iterable[int] = DEFAULT_STEPS,
    rate_steps: int | None = None,
    n_perm: int = 5000,
    seed: int = 0,
    measures: Sequence[str] | None = None,
) -> BiasCard:
    """The bias card of a sweep's metrics table (see the module docstring for every definition).

    ``control``: the model every other model is compared with; None picks a model whose spec starts with
    ``jpeg`` if there is one. A control missing from the data means no comparisons (and a note saying so).
    ``measures`` defaults to every column of :data:`BIAS_MEASURES` present in ``df``.
    """
    steps = tuple(int(s) for s in steps)
    table = chain_statistics(
        df, steps=steps, rate_steps=rate_steps, measures=measures, rate_intervals="one image"
    )
    notes: list[str] = []
    if table.empty:
        return BiasCard([], None, control, [LAST], rate_steps, n_perm, seed,
                        ["no chains to summarise"], ["the metrics table has no chains"])  # fmt: skip
    step_keys: list[str] = table.attrs["step_keys"]
    present: list[str] = table.attrs["measures"]
    with_data = [m for m in present if table[[f"{m}:{RATE}", f"{m}:{LAST}"]].notna().to_numpy().any()]
    empty = [BIAS_MEASURES[m].noun if m in BIAS_MEASURES else m for m in present if m not in with_data]
    if empty:
        notes.append(f"no values (e.g. no face found) for: {', '.join(empty)}")
    if not any(m in present for m in BIAS_MEASURES if m.startswith("contrast")):
        notes.append("no contrast column in the table: contrast is not on this card")
    if "image" not in df.columns and "input" not in df.columns:
        notes.append("no image column: every chain counted as its own source image")

    models = sorted(table["model"].unique().tolist())
    used, note = _pick_control(models, control)
    if note:
        notes.append(note)
    if used is not None:
        models = [used] + [m for m in models if m != used]

    stat_keys = [RATE, *step_keys]
    cards: list[ModelCard] = []
    verdicts: list[str] = []
    ctrl_rows = table.loc[table["model"] == used] if used is not None else None
    for model in models:
        rows = table.loc[table["model"] == model]
        images = as_labels(rows["image"])
        n_images = len(set(images.tolist()))
        seeds = _seed_labels(rows)
        card = ModelCard(
            model=model,
            is_control=model == used,
            n_chains=len(rows),
            n_images=n_images,
            n_seeds=0 if seeds is None else len(set(seeds.tolist())),
            last_step_min=int(rows["last_step"].min()),
            last_step_max=int(rows["last_step"].max()),
            rate_max_step=int(rows["rate_max_step"].max()),
        )
        if n_images == 1 and len(rows) > 1:
            card.warnings.append(
                f"{model}: every chain comes from 1 source image: its rate intervals are about that image "
                "(its chains pooled) and say nothing about other images; no intervals for the changes"
            )
        elif 1 < n_images < FEW_IMAGES:
            card.warnings.append(
                f"{model}: only {n_images} source images; the t intervals are wide and lean on the image "
                "effects being roughly normal (with skewed effects they come out too narrow)"
            )
        elif len(rows) == 1:
            card.warnings.append(
                f"{model}: a single chain: its rate intervals are that chain's own (about its image only); "
                "no intervals for the changes"
            )
        if card.n_seeds == 1 and n_images > 1:
            card.warnings.append(
                f"{model}: every chain uses the same seed; if the model uses its seed, the card describes "
                "that seed's noise, not the model's average"
            )
        if "face_at_start" in rows.columns and rows["face_at_start"].notna().any():
            with_face = rows.loc[rows["face_at_start"].fillna(False).astype(bool)]
            steps_lost = sorted(int(x) for x in with_face["face_lost_step"].dropna())
            card.face = FaceLoss(len(with_face), len(steps_lost), steps_lost)
        cols = [f"{m}:{k}" for m in with_data for k in stat_keys]
        values = rows[cols].to_numpy(dtype=float)
        ests = {col: _estimate(mean_ci(values[:, j], images, seeds)) for j, col in enumerate(cols)}
        for m in with_data:  # the rate: from two images as above; one image: its chains' own intervals
            chain_ivs = rows[f"{m}:{RATE}:ci"].tolist() if f"{m}:{RATE}:ci" in rows.columns else []
            if n_images == 1 and chain_ivs:
                ests[f"{m}:{RATE}"] = _estimate(rate_over_chains_ci(chain_ivs, images, seeds))
        cmps: dict[str, Comparison | None] = {}
        if ctrl_rows is not None and model != used:
            ccols = [f"{m}:{k}" for m in with_data for k in [RATE, *[k for k in step_keys if k != LAST]]]
            mine = (rows[ccols].to_numpy(dtype=float), images, seeds)
            theirs = (
                ctrl_rows[ccols].to_numpy(dtype=float),
                as_labels(ctrl_rows["image"]),
                _seed_labels(ctrl_rows),
            )
            found = compare_all(mine, theirs, ccols, used, n_perm, seeded_rng(seed, "compare", model))
            cmps = dict(zip(ccols, found, strict=True))
        label = f"{model} (control)" if model == used else model
        colour = _colour_of(rows, with_data)
        if (said := colour_verdict(label, colour)) is not None:
            verdicts.append(said)
        for m in with_data:
            symbol = BIAS_MEASURES[m].symbol if m in BIAS_MEASURES else f"Δ{m}"
            result = MeasureResult(m, symbol, ests[f"{m}:{RATE}"])
            result.change = {k: e for k in step_keys if (e := ests[f"{m}:{k}"]) is not None}
            result.vs_control = {k: x for k in [RATE, *step_keys] if (x := cmps.get(f"{m}:{k}")) is not None}
            if result.rate is None and not result.change:
                continue
            head = result.rate or result.change.get(LAST)
            result.reliable = bool(head is not None and head.excludes_zero)
            result.direction = (1 if head.mean > 0 else -1) if result.reliable and head else 0
            key = RATE if result.rate is not None else LAST
            if key in result.vs_control and result.vs_control[key].p_value is not None:
                result.reliable_vs_control = result.vs_control[key].reliable
            result.drains = colour.drains(m)
            result.verdict = verdict(label, m, result, used)
            card.measures[m] = result
            verdicts.append(result.verdict)
        if card.face is not None:
            verdicts.append(card.face.sentence(f"{model} (control)" if model == used else model))
        cards.append(card)
        notes.extend(card.warnings)
    return BiasCard(
        models=cards,
        control=used,
        control_requested=control,
        steps=step_keys,
        rate_steps=rate_steps,
        n_perm=n_perm,
        seed=seed,
        verdicts=verdicts,
        notes=notes,
    )
