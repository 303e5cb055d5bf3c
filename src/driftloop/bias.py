"""The bias card: what a model does to images *on average*, with honest uncertainty.

One chain is an anecdote; "an orange tint tends to appear" is a claim about a model, so it rests on many
chains over many source images. Input is the sweep's metrics table, a pandas DataFrame with one row per
(chain, step): ``model`` (spec string), ``image`` (source image id; ``input`` is accepted instead),
``chain_seed``, ``chain`` (with ``run_id``, if present, it identifies a chain), ``step`` and the metric
columns of :mod:`driftloop.metrics` (plus optional face columns). Statistics, exactly:

**Per chain** (:func:`chain_statistics`), for every measure (column) *m* with values *v(step)*:

* change at step *s*: ``v(s) − v(0)``, for each requested step the chain reached, and ``last``: the change
  at the chain's own last step;
* rate: the ordinary-least-squares slope of *v* against the step over the chain's steps ``0..rate_steps``
  (all of them if the chain is shorter); needs two distinct steps with values; a constant series has
  slope exactly 0.

Missing values are left out: ``white_cast`` where ``white_cast_pixels`` is 0 (no bright near-neutral
pixels: the score is 0 by convention, not a reading) and the face measures where ``face_found`` is 0.

**Per model** (:func:`bias_card`): the estimate is the mean over the model's chains (each chain weighs the
same). Its 95% confidence interval is a percentile **cluster bootstrap over source images**: draw as many
images as there are, with replacement, take all chains of every drawn image, recompute the chain mean;
``n_boot`` times; the interval is the 2.5th and 97.5th percentile of those means. Chains of one image are
not independent (they share the picture), so the image, not the chain, is the resampled unit. Step seeds
derive from (chain seed, step), so a sweep that runs the same seeds on every image gives chains of
different images the same model noise; when that is the case (a seed value used on ≥ 2 images) and the
measure differs between chains of one image (the model uses its seed), seeds are resampled as well: a
two-way "pigeonhole" bootstrap (Owen 2007) in which a chain's weight is its image's draw count times its
seed's draw count (``image×seed bootstrap``; conservative: it can overstate the chain-to-chain part of the
variance up to threefold). When a measure's chains all come from one image, the interval resamples chains
(``chain bootstrap``; it says nothing about other images); a single chain has no interval. Percentile
intervals over fewer than 5 images come out somewhat too narrow; the card says so.

**Against a control model** (per measure, for the rate and each change-at-step *s*):

* difference = model mean − control mean, with a 95% bootstrap interval as above, drawing images from the
  union of both models' images (one draw serves both, so shared images stay paired; likewise seeds);
* Hedges' g = difference / pooled SD of the per-chain values × (1 − 3 / (4(n₁+n₂) − 9)), a descriptive
  standardised effect size (chains as units);
* p: a two-sided **paired image-level permutation test**. For each source image both models ran, the mean
  of its chains per model; a relabelling swaps the model and control means of an image (a sign flip of
  that image's difference), independently per image; statistic T = mean over shared images of (model mean
  − control mean). Chains of images only one model has are left out. All 2^G relabellings are enumerated
  when 2^G ≤ ``n_perm`` (exact p = share of relabellings with |T*| ≥ |T|, so the smallest possible p is
  2/2^G: p < 0.05 needs ≥ 6 shared images, p < 0.01 needs ≥ 8); otherwise ``n_perm`` random ones and
  p = (1 + count) / (n_perm + 1). With one shared image the chains of that image are permuted instead
  (a statement about that image only); with none, image means are permuted across images (two-sample).
  In a sweep that reuses seeds across images and whose model uses them, images are not fully
  independent and p may be too small; the comparison notes this, and the bootstrap interval (which then
  resamples seeds too) is the safer guide.

**Verdict** per (model, measure), from the rate: a *reliable change* needs the rate's interval to exclude 0
(a zero-width interval ``[0, 0]`` includes it). Against the control, *reliably different* needs p < 0.05
**and** the difference's interval to exclude 0; the line gives the p-value either way. Otherwise: "no
reliable <measure> change". All randomness comes from ``numpy.random.default_rng`` seeded by (``seed``,
model): one set of image (and seed) draws serves every measure of a model, so the same data give the same
card, whatever the row order or the other models and measures in the table.
"""

from __future__ import annotations

import itertools
import json
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftloop._fs import json_safe
from driftloop.metrics.face import first_lost_step

__all__ = [
    "BIAS_MEASURES",
    "DEFAULT_CONTROL",
    "BiasCard",
    "BiasMeasure",
    "Comparison",
    "Estimate",
    "MeasureResult",
    "ModelCard",
    "PermutationResult",
    "bias_card",
    "chain_statistics",
    "cluster_bootstrap",
    "decimals_for",
    "format_p",
    "hedges_g",
    "interval_decimals",
    "seeds_crossed",
    "signed_text",
    "stratified_permutation_test",
]

DEFAULT_CONTROL = "jpeg:quality=90"
DEFAULT_STEPS: tuple[int, ...] = (1, 10, 25, 50, 100)
CONFIDENCE = 0.95
ALPHA = 0.05
FEW_IMAGES = 5  # below this many source images, say that percentile intervals are approximate
MINUS = "\N{MINUS SIGN}"
RATE = "rate"
LAST = "last"


@dataclass(frozen=True)
class BiasMeasure:
    """How to talk about one measure: symbol, noun, and predicates that follow the model's name."""

    symbol: str  # "Δb*"
    noun: str  # as in "no reliable b* change"
    up: str  # "drifts warmer (yellower)": "taef2 drifts warmer (yellower): Δb* +0.24 per step ..."
    down: str
    up_word: str  # short reading for tables
    down_word: str
    unit: str = ""


def _m(*args: str, unit: str = "") -> BiasMeasure:
    return BiasMeasure(*args, unit=unit)


# Every measure the card looks at, in reading order; only the columns present in the table are used.
BIAS_MEASURES: dict[str, BiasMeasure] = {
    "lab_l_mean": _m("ΔL*", "lightness (L*)", "makes images brighter", "makes images darker", "brighter",
                     "darker"),
    "lab_a_mean": _m("Δa*", "a* (green–red)", "drifts redder", "drifts greener", "redder", "greener"),
    "lab_b_mean": _m("Δb*", "b* (blue–yellow)", "drifts warmer (yellower)", "drifts cooler (bluer)",
                     "warmer", "cooler"),
    "lab_chroma_mean": _m("ΔC*", "chroma", "makes colours more saturated (chroma)",
                          "makes colours greyer (chroma)", "more saturated", "greyer"),
    "hsv_saturation_mean": _m("Δsaturation", "saturation", "raises saturation", "lowers saturation",
                              "more saturated", "less saturated"),
    "colourfulness": _m("Δcolourfulness", "colourfulness", "makes images more colourful",
                        "makes images duller", "more colourful", "duller"),
    "white_cast": _m("Δwhite cast", "white cast", "turns whites yellower", "turns whites bluer",
                     "yellower whites", "bluer whites"),
    "cct_kelvin": _m("ΔCCT", "colour temperature", "raises the colour temperature (cooler, bluer light)",
                     "lowers the colour temperature (warmer, more orange light)", "cooler light",
                     "warmer light", unit=" K"),
    "contrast_rms": _m("Δcontrast", "contrast", "raises contrast", "lowers contrast", "more contrast",
                       "less contrast"),
    "contrast": _m("Δcontrast", "contrast", "raises contrast", "lowers contrast", "more contrast",
                   "less contrast"),
    "sharpness": _m("Δsharpness", "sharpness", "sharpens images", "blurs images", "sharper", "blurrier"),
    "edge_density": _m("Δedge density", "edge density", "adds edges", "removes edges (smoother)",
                       "more edges", "fewer edges"),
    "entropy_bits": _m("Δentropy", "luma entropy", "raises luma entropy (busier)",
                       "lowers luma entropy (flatter)", "busier", "flatter", unit=" bits"),
    "face_eyebrow_thickness": _m("Δeyebrow thickness", "eyebrow thickness", "thickens eyebrows",
                                 "thins eyebrows", "thicker brows", "thinner brows"),
    "face_eyebrow_height": _m("Δeyebrow height", "eyebrow height", "raises eyebrows", "lowers eyebrows",
                              "higher brows", "lower brows"),
    "face_eye_opening": _m("Δeye opening", "eye opening", "opens eyes wider", "narrows eyes", "wider eyes",
                           "narrower eyes"),
    "face_mouth_width": _m("Δmouth width", "mouth width", "widens mouths", "narrows mouths", "wider mouths",
                           "narrower mouths"),
    "face_aspect": _m("Δface aspect", "face aspect (height/width)", "makes faces longer",
                      "makes faces wider", "longer faces", "wider faces"),
}  # fmt: skip
FACE_MEASURES = tuple(m for m in BIAS_MEASURES if m.startswith("face_"))


# ------------------------------------------------------------------------------------------ result types


@dataclass(frozen=True)
class Estimate:
    """Mean of per-chain values with a 95% interval (None when there is none) and how it was made.

    ``method``: ``image bootstrap`` (cluster bootstrap over source images), ``chain bootstrap`` (all chains
    from one image: chains resampled), ``none`` (a single chain).
    """

    mean: float
    ci_low: float | None
    ci_high: float | None
    n_chains: int
    n_images: int
    method: str

    @property
    def has_ci(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly on one side of 0 (``[0, 0]`` does not)."""
        return self.has_ci and (self.ci_low > 0 or self.ci_high < 0)  # type: ignore[operator]


@dataclass(frozen=True)
class PermutationResult:
    """A permutation test's outcome: statistic, two-sided p, and what was enumerated or sampled."""

    statistic: float
    p_value: float
    exact: bool
    n_relabelings: int  # relabellings evaluated (all of them when exact)
    n_strata: int
    n_model: int  # chains (or image means) of each group that took part
    n_control: int
    at_floor: bool  # no random relabelling reached |T|: p is the smallest value this n_perm can give
    min_p: float  # the smallest p this test could give (exact: share of the most extreme relabellings)


@dataclass(frozen=True)
class Comparison:
    """A model against the control for one statistic (the rate, or the change at one step)."""

    control: str
    difference: float
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    hedges_g: float | None
    p_value: float | None
    p_text: str
    test: str  # "paired image-level permutation" | ... | "none"
    exact: bool
    n_relabelings: int
    n_units: int  # units the test permuted (image means, or chains for a single shared image)
    n_model_chains: int
    n_control_chains: int
    statistic: float | None = None
    min_p: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def significant(self) -> bool:
        """p < 0.05."""
        return self.p_value is not None and self.p_value < ALPHA

    @property
    def reliable(self) -> bool:
        """p < 0.05 and the difference's 95% interval excludes 0: reliably different from the control."""
        has_ci = self.ci_low is not None and self.ci_high is not None
        return self.significant and has_ci and (self.ci_low > 0 or self.ci_high < 0)  # type: ignore[operator]


@dataclass
class MeasureResult:
    """One measure of one model: rate, changes at steps, comparisons with the control, the verdict."""

    measure: str
    symbol: str
    rate: Estimate | None
    change: dict[str, Estimate] = field(default_factory=dict)  # step key ("1", "10", "last") → estimate
    vs_control: dict[str, Comparison] = field(default_factory=dict)  # "rate" or a step key
    verdict: str = ""
    reliable: bool = False  # the rate's interval excludes 0
    reliable_vs_control: bool | None = None  # p < 0.05 against the control (None: no comparison)
    direction: int = 0  # +1 up, −1 down, 0 no reliable change


@dataclass
class ModelCard:
    model: str
    is_control: bool
    n_chains: int
    n_images: int
    n_seeds: int
    last_step_min: int
    last_step_max: int
    rate_max_step: int  # the highest step that went into any rate
    measures: dict[str, MeasureResult] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    face: FaceLoss | None = None  # None: faces were not measured


@dataclass
class FaceLoss:
    """Of the chains whose frame 0 has a face: how many lose it, and at which step (first frame without)."""

    chains_with_face: int
    lost: int
    first_lost_steps: list[int]

    @property
    def median_step(self) -> float | None:
        return float(np.median(self.first_lost_steps)) if self.first_lost_steps else None

    def sentence(self, model: str) -> str:
        if not self.chains_with_face:
            return f"{model}: no face found in any input, so no face measures"
        if not self.lost:
            return f"{model}: the face survives in all {self.chains_with_face} chains that start with one"
        steps = self.first_lost_steps
        where = (
            f"at step {steps[0]}"
            if min(steps) == max(steps)
            else f"median step {self.median_step:g} ({min(steps)}–{max(steps)})"
        )
        n = self.chains_with_face
        return f"{model}: the face is lost in {self.lost} of {n} chains that start with one, {where}"


@dataclass
class BiasCard:
    """The card: per model and measure the estimates, comparisons and verdicts; ``to_dict`` is strict JSON."""

    models: list[ModelCard]
    control: str | None  # the control actually used (None: no comparisons)
    control_requested: str | None
    steps: list[str]  # change-at-step keys, in order ("1", "10", ..., "last")
    rate_steps: int
    n_boot: int
    n_perm: int
    seed: int
    verdicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def model(self, name: str) -> ModelCard:
        for card in self.models:
            if card.model == name:
                return card
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: non-finite numbers become None, numpy scalars become Python numbers."""
        out = {
            "schema": "driftloop.bias_card/1",
            "settings": {
                "control": self.control,
                "control_requested": self.control_requested,
                "steps": self.steps,
                "rate_steps": self.rate_steps,
                "n_boot": self.n_boot,
                "n_perm": self.n_perm,
                "seed": self.seed,
                "confidence": CONFIDENCE,
                "alpha": ALPHA,
            },
            "methods": METHODS,
            "models": [_dataclass_dict(m) for m in self.models],
            "verdicts": list(self.verdicts),
            "notes": list(self.notes),
        }
        return json_safe(out)

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)


METHODS: dict[str, str] = {
    "change": "per chain: value(step s) − value(step 0); 'last' = at the chain's own last step",
    "rate": "per chain: OLS slope of the value against the step over steps 0..rate_steps",
    "estimate": "mean over chains (each chain weighs the same)",
    "ci": (
        "95% percentile cluster bootstrap over source images (resample images with replacement, keep all "
        "their chains); seeds resampled too (two-way pigeonhole bootstrap) when the same seeds run on "
        "several images and chains of one image differ; chains resampled when all come from one image; "
        "none for a single chain"
    ),
    "difference": (
        "model mean − control mean; bootstrap as for 'ci', drawing images (and seeds) from the union of both "
        "models' (shared ones stay paired)"
    ),
    "hedges_g": "difference / pooled SD of per-chain values, small-sample corrected (descriptive)",
    "p_value": (
        "two-sided paired image-level permutation test: per shared source image the mean of each model's "
        "chains; relabellings swap the two means of an image (sign flips); statistic = mean over shared "
        "images of the difference; exact over all 2^G relabellings when 2^G <= n_perm, else "
        "p = (1 + count)/(n_perm + 1); one shared image: its chains permuted; none: image means permuted "
        "across images"
    ),
    "verdict": (
        "reliable change when the rate's 95% interval excludes 0; reliably different from the control when "
        "p < 0.05 and the difference's 95% interval excludes 0"
    ),
}


# ---------------------------------------------------------------------------------------------- helpers


def _dataclass_dict(obj: Any) -> Any:
    """Like ``dataclasses.asdict`` (recursing into dicts and lists), plus the properties worth keeping."""
    if isinstance(obj, Estimate):
        return {
            "mean": obj.mean,
            "ci_low": obj.ci_low,
            "ci_high": obj.ci_high,
            "n_chains": obj.n_chains,
            "n_images": obj.n_images,
            "method": obj.method,
            "excludes_zero": obj.excludes_zero,
        }
    if hasattr(obj, "__dataclass_fields__"):
        out = {k: _dataclass_dict(getattr(obj, k)) for k in obj.__dataclass_fields__}
        if isinstance(obj, Comparison):
            out["significant"] = obj.significant
            out["reliable"] = obj.reliable
        if isinstance(obj, FaceLoss):
            out["median_step"] = obj.median_step
        return out
    if isinstance(obj, dict):
        return {str(k): _dataclass_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_dataclass_dict(v) for v in obj]
    return obj


def _rng(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the names (stable across runs and row orders)."""
    words = [int(seed) & 0xFFFFFFFFFFFFFFFF] + [zlib.crc32(n.encode("utf-8")) for n in names]
    return np.random.default_rng(words)


def decimals_for(*values: float | None, digits: int = 2) -> int:
    """Decimals that show the largest of ``values`` with ``digits`` significant digits (0..4)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return 2
    return int(min(4, max(0, digits - 1 - math.floor(math.log10(max(finite))))))


def interval_decimals(value: float, low: float | None, high: float | None) -> int:
    """Decimals for a value with its interval: 2 significant digits of the largest, and enough to show the
    interval's width with at least 1 (at most 4 decimals)."""
    d = decimals_for(value, low, high)
    if low is not None and high is not None and high > low:
        d = max(d, decimals_for(high - low, digits=1))
    return min(d, 4)


def signed_text(value: float, decimals: int, unit: str = "") -> str:
    """``+0.24`` / ``−0.24`` with a real minus sign; ``0.00`` (no sign) for zero after rounding."""
    text = f"{value:+.{decimals}f}"
    if float(text) == 0:
        text = f"{0:.{decimals}f}"
    return text.replace("-", MINUS) + unit


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


def _numeric(df: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)


def _step_key(step: int) -> str:
    return str(int(step))


# ------------------------------------------------------------------------------------- per-chain numbers


def _ols_slope(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0:
        return math.nan
    if np.ptp(y) == 0:
        return 0.0  # exactly constant: exactly 0, not a rounding residue that "excludes 0"
    xc = x - x.mean()
    return float(np.dot(xc, y - y.mean()) / np.dot(xc, xc))


def _columns(df: pd.DataFrame) -> tuple[str, str]:
    image = "image" if "image" in df.columns else ("input" if "input" in df.columns else "")
    model = "model" if "model" in df.columns else ""
    return image, model


def chain_statistics(
    df: pd.DataFrame,
    steps: Iterable[int] = DEFAULT_STEPS,
    rate_steps: int = 20,
    measures: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per chain: ``model``, ``image``, ``chain_seed``, ``chain_id``, ``last_step``, ``rate_max_step``
    and, per measure *m*, ``m:rate`` and ``m:<s>`` (change at step *s*) for the requested steps that any
    chain reached, plus ``m:last``. Missing numbers are NaN. Rows are sorted by (model, image, chain_id).

    Without a ``model`` column every chain belongs to model ``"model"``; without an ``image`` (or
    ``input``) column every chain is its own image.
    """
    if df is None or df.empty or "step" not in df.columns:
        return pd.DataFrame(
            columns=["model", "image", "chain_seed", "chain_id", "last_step", "rate_max_step"]
        )
    image_col, model_col = _columns(df)
    wanted = list(measures) if measures is not None else list(BIAS_MEASURES)
    present = [m for m in wanted if m in df.columns]
    work = df.copy()
    work["_step"] = pd.to_numeric(work["step"], errors="coerce")
    work = work.loc[work["_step"].notna()]
    work["_step"] = work["_step"].astype(int)
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

    max_step = int(work["_step"].max()) if len(work) else 0
    step_keys = sorted({int(s) for s in steps if 0 < int(s) <= max_step})
    records: list[dict[str, Any]] = []
    for (model, chain), g in work.groupby(["_model", "_chain"], sort=True):
        g = g.sort_values("_step", kind="stable").drop_duplicates("_step", keep="last")
        st = g["_step"].to_numpy()
        images = g["_image"].unique()
        rec: dict[str, Any] = {
            "model": model,
            "image": str(images[0]),
            "chain_seed": g["chain_seed"].iloc[0] if "chain_seed" in g.columns else None,
            "chain_id": chain,
            "last_step": int(st[-1]),
        }
        window = st <= rate_steps
        rec["rate_max_step"] = int(st[window].max()) if window.any() else -1
        pos = {int(s): i for i, s in enumerate(st)}
        has0 = 0 in pos
        no_face = None
        if "face_found" in g.columns:
            found = _numeric(g, "face_found")
            no_face = ~(found > 0)
            if np.isfinite(found).any():  # NaN throughout: faces were not measured on this chain
                lost = first_lost_step(dict(zip(st.tolist(), found.tolist(), strict=True)))
                rec["face_at_start"] = bool(has0 and found[pos[0]] > 0)
                rec["face_lost_step"] = math.nan if lost is None else float(lost)
        for m in present:
            v = _numeric(g, m)
            if m == "white_cast" and "white_cast_pixels" in g.columns:
                v[~(_numeric(g, "white_cast_pixels") > 0)] = np.nan
            if m in FACE_MEASURES and no_face is not None:
                v[no_face] = np.nan
            v0 = v[pos[0]] if has0 else math.nan
            for s in step_keys:
                rec[f"{m}:{s}"] = float(v[pos[s]] - v0) if s in pos else math.nan
            rec[f"{m}:{LAST}"] = float(v[-1] - v0) if st[-1] > 0 else math.nan
            rec[f"{m}:{RATE}"] = _ols_slope(st[window].astype(float), v[window])
        records.append(rec)
    out = pd.DataFrame.from_records(records)
    out = out.sort_values(["model", "image", "chain_id"], kind="stable").reset_index(drop=True)
    out.attrs["step_keys"] = [_step_key(s) for s in step_keys] + [LAST]
    out.attrs["measures"] = present
    return out


# ------------------------------------------------------------------------------------------- bootstrap


def _draw_weights(rng: np.random.Generator, n_units: int, n_boot: int) -> np.ndarray:
    """(n_boot, n_units): how often each unit is drawn in each bootstrap replicate (n_units draws each)."""
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot).astype(float)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _percentile_ci(replicates: np.ndarray) -> tuple[float | None, float | None]:
    ok = replicates[np.isfinite(replicates)]
    if ok.size < 2:
        return None, None
    lo, hi = np.quantile(ok, [(1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2])
    return float(lo), float(hi)


def _labels(values: Any) -> np.ndarray:
    return np.asarray([str(v) for v in values], dtype=object).astype(str)


def seeds_crossed(images: Sequence[Any], seeds: Sequence[Any] | None) -> bool:
    """True when the design reuses seeds across images: ≥ 2 seed values, one of them on ≥ 2 images.

    Step seeds derive from (chain seed, step), so chains with the same seed on different images get the
    same model noise; if that noise moves a measure the same way on every image, those chains are not
    independent and seeds must be resampled too.
    """
    if seeds is None:
        return False
    per_seed: dict[str, set[str]] = {}
    for s, i in zip(_labels(seeds), _labels(images), strict=True):
        per_seed.setdefault(s, set()).add(i)
    return len(per_seed) >= 2 and max(len(v) for v in per_seed.values()) >= 2


def _varies_within_image(values: np.ndarray, images: np.ndarray) -> bool:
    """True when two chains of one image differ: the model's output depends on the seed."""
    ok = np.isfinite(values)
    values, images = values[ok], images[ok]
    for image in np.unique(images):
        v = values[images == image]
        if v.size > 1 and np.ptp(v) > 0:
            return True
    return False


def _joint_draws(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, n_boot: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-item bootstrap weights (n_boot × len) for two labelled sets: one draw over the union when they
    share a label (shared units stay paired), independent draws when they do not."""
    if set(a.tolist()) & set(b.tolist()):
        universe = np.unique(np.concatenate([a, b]))
        w = _draw_weights(rng, universe.size, n_boot)
        return w[:, np.searchsorted(universe, a)], w[:, np.searchsorted(universe, b)]
    ua, ub = np.unique(a), np.unique(b)
    wa = _draw_weights(rng, ua.size, n_boot)
    wb = _draw_weights(rng, ub.size, n_boot)
    return wa[:, np.searchsorted(ua, a)], wb[:, np.searchsorted(ub, b)]


def cluster_bootstrap(
    values: Sequence[float],
    images: Sequence[Any],
    seeds: Sequence[Any] | None = None,
    n_boot: int = 2000,
    rng: np.random.Generator | None = None,
) -> Estimate | None:
    """Mean of ``values`` (NaN ignored) with a 95% percentile cluster-bootstrap interval.

    Source images are resampled with replacement, all chains of a drawn image kept. When ``seeds`` are
    reused across images (:func:`seeds_crossed`) and chains of one image differ, seeds are resampled too
    (two-way "pigeonhole" bootstrap: a chain's weight is its image's count times its seed's count). One
    image: chains resampled (``chain bootstrap``); one value: no interval. None when no value is finite.
    """
    vals = np.asarray(values, dtype=float)
    return _estimates(
        vals[:, None], _labels(images), None if seeds is None else _labels(seeds), n_boot,
        rng or np.random.default_rng(0),
    )[0]  # fmt: skip


def _estimates(
    values: np.ndarray,
    images: np.ndarray,
    seeds: np.ndarray | None,
    n_boot: int,
    rng: np.random.Generator,
    names: Sequence[str] | None = None,
) -> list[Estimate | None]:
    """One :class:`Estimate` per column of ``values`` (chains × statistics); one set of draws for all.

    The rare per-column fallback (chain bootstrap) draws from a generator of its own, seeded from ``rng``'s
    first draw and the column's name, so a column's interval does not depend on which other columns exist.
    """
    base = int(rng.integers(0, 2**63))
    img_u = np.unique(images)
    crossed = seeds_crossed(images, seeds)
    finite = np.isfinite(values)
    v0 = np.where(finite, values, 0.0)
    boot_img = boot_two = None
    if img_u.size >= 2 and n_boot > 0:
        w_img = _draw_weights(rng, img_u.size, n_boot)[:, np.searchsorted(img_u, images)]
        boot_img = _ratio(w_img @ v0, w_img @ finite)
        if crossed and seeds is not None:
            seed_u = np.unique(seeds)
            w_two = w_img * _draw_weights(rng, seed_u.size, n_boot)[:, np.searchsorted(seed_u, seeds)]
            boot_two = _ratio(w_two @ v0, w_two @ finite)
    out: list[Estimate | None] = []
    for j in range(values.shape[1]):
        col = values[:, j]
        ok = finite[:, j]
        n = int(ok.sum())
        if n == 0:
            out.append(None)
            continue
        n_img = int(np.unique(images[ok]).size)
        vals = col[ok]
        mean = float(vals.mean())
        if np.ptp(vals) == 0:
            # Every chain agrees exactly: any resample gives this value (and no rounding residue).
            mean = float(vals[0])
            ci: tuple[float | None, float | None] = (mean, mean) if n >= 2 else (None, None)
            method = ("image bootstrap" if n_img >= 2 else "chain bootstrap") if n >= 2 else "none"
        elif n_img >= 2 and boot_img is not None:
            two_way = boot_two is not None and _varies_within_image(col, images)
            ci = _percentile_ci((boot_two if two_way else boot_img)[:, j])  # type: ignore[index]
            method = "image×seed bootstrap" if two_way else "image bootstrap"
        elif n >= 2 and n_boot > 0:
            w = _draw_weights(_column_rng(base, names, j), n, n_boot)
            ci, method = _percentile_ci(w @ vals / n), "chain bootstrap"
        else:
            ci, method = (None, None), "none"
        out.append(Estimate(mean, ci[0], ci[1], n, n_img, method))
    return out


def _column_rng(base: int, names: Sequence[str] | None, j: int) -> np.random.Generator:
    name = names[j] if names is not None else str(j)
    return np.random.default_rng([base, zlib.crc32(name.encode("utf-8"))])


# ---------------------------------------------------------------------------------- comparison numbers


def hedges_g(a: np.ndarray, b: np.ndarray) -> float | None:
    """Hedges' g of mean(a) − mean(b): pooled-SD standardised, small-sample corrected.

    0 when both groups are constant and equal; None when undefined (fewer than 2 per group, or constant
    groups that differ: an infinite effect).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    n1, n2 = a.size, b.size
    if n1 < 2 or n2 < 2:
        return None
    diff = float(a.mean() - b.mean())
    pooled = ((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2)
    sd = math.sqrt(max(pooled, 0.0))
    if sd <= 1e-12 * max(abs(diff), abs(float(a.mean())), abs(float(b.mean())), 1e-300):
        return 0.0 if diff == 0 else None
    correction = 1 - 3 / (4 * (n1 + n2) - 9)
    return diff / sd * correction


def stratified_permutation_test(
    values: Sequence[float],
    is_model: Sequence[bool],
    strata: Sequence[Any],
    n_perm: int = 5000,
    rng: np.random.Generator | None = None,
) -> PermutationResult | None:
    """Two-sided permutation test of "the label makes no difference", labels shuffled within strata.

    Strata holding only one label are dropped. Statistic: ``T = Σ_s (sum_model_s − m_s·mean_s) / Σ_s w_s``
    with ``w_s = m_s·c_s/(m_s+c_s)``, which equals the weighted mean over strata of (mean model − mean
    control) with weights ``w_s``; with one model and one control unit per stratum it is the mean paired
    difference and the relabellings are sign flips. Exact enumeration of all relabellings when there are at
    most ``n_perm``, p = #{|T*| ≥ |T|} / N; else ``n_perm`` random relabellings and
    p = (1 + #{|T*| ≥ |T|}) / (n_perm + 1). None when no stratum holds both labels.
    """
    values = np.asarray(values, dtype=float)
    is_model = np.asarray(is_model, dtype=bool)
    keep = np.isfinite(values)
    values, is_model = values[keep], is_model[keep]
    codes = np.unique(_labels(strata)[keep], return_inverse=True)[1] if keep.any() else np.zeros(0, int)
    groups = []
    for s in range(int(codes.max()) + 1 if codes.size else 0):
        idx = np.flatnonzero(codes == s)
        m = int(is_model[idx].sum())
        if 0 < m < idx.size:
            groups.append((values[idx], is_model[idx], m))
    if not groups:
        return None
    weight = sum(m * (x.size - m) / x.size for x, _, m in groups)
    offset = sum(m * x.mean() for x, _, m in groups)
    observed = (sum(x[lab].sum() for x, lab, _ in groups) - offset) / weight
    tol = 1e-9 * max(float(np.abs(x).max()) for x, _, _ in groups)
    total = math.prod(math.comb(x.size, m) for x, _, m in groups)
    n_model = sum(m for _, _, m in groups)
    n_ctrl = sum(x.size - m for x, _, m in groups)
    if total <= n_perm:
        sums = np.zeros(1)
        for x, _, m in groups:
            combos = np.array([x[list(c)].sum() for c in itertools.combinations(range(x.size), m)])
            sums = (sums[:, None] + combos[None, :]).ravel()
        stats = np.abs((sums - offset) / weight)
        count = int(np.sum(stats >= abs(observed) - tol))
        floor = int(np.sum(stats >= stats.max() - tol)) / total
        return PermutationResult(float(observed), count / total, True, total, len(groups), n_model, n_ctrl,
                                 False, floor)  # fmt: skip
    rng = rng or np.random.default_rng(0)
    sums = np.zeros(n_perm)
    for x, _, m in groups:
        shuffled = rng.permuted(np.broadcast_to(x, (n_perm, x.size)), axis=1)
        sums += shuffled[:, :m].sum(axis=1)
    count = int(np.sum(np.abs((sums - offset) / weight) >= abs(observed) - tol))
    return PermutationResult(float(observed), (1 + count) / (n_perm + 1), False, n_perm, len(groups),
                             n_model, n_ctrl, count == 0, 1 / (n_perm + 1))  # fmt: skip


def _sign_patterns(n_units: int, n_perm: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """±1 relabelling matrix for a paired test: all 2^n patterns when that is at most ``n_perm`` (exact),
    else ``n_perm`` random ones."""
    if n_units <= 20 and 2**n_units <= n_perm:
        codes = np.arange(2**n_units)[:, None] >> np.arange(n_units)[None, :]
        return (codes & 1) * 2.0 - 1.0, True
    return rng.choice(np.array([-1.0, 1.0]), size=(n_perm, n_units)), False


def _sign_flip_test(d: np.ndarray, signs: np.ndarray, exact: bool) -> PermutationResult:
    """Paired permutation test: T = mean(d); relabellings flip the signs of the d_i (rows of ``signs``)."""
    g = d.size
    observed = float(d.mean())
    stats = np.abs(signs @ d) / g
    tol = 1e-9 * float(np.abs(d).max()) if g else 0.0
    count = int(np.sum(stats >= abs(observed) - tol))
    rows = signs.shape[0]
    if exact:
        floor = float(np.sum(stats >= stats.max() - tol)) / rows
        return PermutationResult(observed, count / rows, True, 2**g, g, g, g, False, floor)
    return PermutationResult(
        observed, (1 + count) / (rows + 1), False, rows, g, g, g, count == 0, 1 / (rows + 1)
    )


Group = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]  # (chains × statistics values, images, seeds)


def _compare_all(
    m: Group, c: Group, names: Sequence[str], control: str, n_boot: int, n_perm: int, rng: np.random.Generator
) -> list[Comparison | None]:
    """Model vs control for every column (statistic) at once; one set of bootstrap draws and relabellings."""
    (vm, im, sm), (vc, ic, sc) = m, c
    fm, fc = np.isfinite(vm), np.isfinite(vc)
    crossed_m, crossed_c = seeds_crossed(im, sm), seeds_crossed(ic, sc)
    base = int(rng.integers(0, 2**63))
    boot_one = boot_two = None
    if n_boot > 0 and np.unique(im).size >= 2 and np.unique(ic).size >= 2:
        wm, wc = _joint_draws(rng, im, ic, n_boot)
        vm0, vc0 = np.where(fm, vm, 0.0), np.where(fc, vc, 0.0)
        boot_one = _ratio(wm @ vm0, wm @ fm) - _ratio(wc @ vc0, wc @ fc)
        if (crossed_m or crossed_c) and sm is not None and sc is not None:
            xm, xc = _joint_draws(rng, sm, sc, n_boot)
            wm, wc = wm * xm, wc * xc
            boot_two = _ratio(wm @ vm0, wm @ fm) - _ratio(wc @ vc0, wc @ fc)
    shared_all = np.array(sorted(set(im.tolist()) & set(ic.tolist())))
    signs, exact = _sign_patterns(shared_all.size, n_perm, rng) if shared_all.size >= 2 else (None, False)

    out: list[Comparison | None] = []
    for j in range(vm.shape[1]):
        okm, okc = fm[:, j], fc[:, j]
        mv, mi, cv, ci = vm[okm, j], im[okm], vc[okc, j], ic[okc]
        if mv.size == 0 or cv.size == 0:
            out.append(None)
            continue
        diff = float(mv.mean() - cv.mean())
        seeds_matter = (crossed_m and _varies_within_image(mv, mi)) or (
            crossed_c and _varies_within_image(cv, ci)
        )
        many = np.unique(mi).size >= 2 and np.unique(ci).size >= 2
        lo = hi = None
        ci_method = "none"
        if n_boot > 0 and (mv.size >= 2 or cv.size >= 2) and np.ptp(mv) == 0 and np.ptp(cv) == 0:
            lo = hi = float(mv[0] - cv[0])  # both constant: every resample gives this difference
            ci_method = "image bootstrap" if many else "chain bootstrap"
        elif many and boot_one is not None:
            two = boot_two is not None and seeds_matter
            lo, hi = _percentile_ci((boot_two if two else boot_one)[:, j])  # type: ignore[index]
            ci_method = "image×seed bootstrap" if two else "image bootstrap"
        elif n_boot > 0 and mv.size >= 2 and cv.size >= 2:
            crng = _column_rng(base, names, j)
            w_m, w_c = _draw_weights(crng, mv.size, n_boot), _draw_weights(crng, cv.size, n_boot)
            lo, hi = _percentile_ci(w_m @ mv / mv.size - w_c @ cv / cv.size)
            ci_method = "chain bootstrap"

        notes = []
        shared = sorted(set(mi.tolist()) & set(ci.tolist()))
        result: PermutationResult | None
        if len(shared) >= 2 and signs is not None:
            # Paired at the image level: per shared image the mean of its chains for each model; a
            # relabelling swaps the two means of an image, i.e. flips the sign of its difference.
            test = "paired image-level permutation"
            d = np.array([mv[mi == s].mean() - cv[ci == s].mean() for s in shared])
            result = _sign_flip_test(d, signs[:, np.searchsorted(shared_all, shared)], exact)
            left_out = int((~np.isin(mi, shared)).sum() + (~np.isin(ci, shared)).sum())
            if left_out:
                notes.append(f"{left_out} chain(s) on images only one model has are left out of the test")
            if seeds_matter:
                notes.append(
                    "the same seeds run on every image and the chains depend on them, so images are not "
                    "fully independent: the p-value may be too small; the interval resamples seeds as well"
                )
        elif len(shared) == 1:
            test = "within-image permutation (1 shared image)"
            notes.append("one shared source image: the test compares the chains of that image only")
            in_m, in_c = mi == shared[0], ci == shared[0]
            values = np.concatenate([mv[in_m], cv[in_c]])
            labels = np.concatenate([np.ones(in_m.sum(), bool), np.zeros(in_c.sum(), bool)])
            result = stratified_permutation_test(
                values, labels, [0] * values.size, n_perm, _column_rng(base, names, j)
            )
        else:
            test = "image-level permutation (no shared image)"
            um, uc = np.unique(mi), np.unique(ci)
            units = [mv[mi == i].mean() for i in um] + [cv[ci == i].mean() for i in uc]
            labels = np.array([True] * um.size + [False] * uc.size)
            result = stratified_permutation_test(
                units, labels, [0] * len(units), n_perm, _column_rng(base, names, j)
            )
        if result is not None and result.exact and result.min_p >= ALPHA:
            images_text = f"{result.n_strata} shared image{'s' if result.n_strata != 1 else ''}"
            notes.append(
                f"with {images_text} no outcome can reach p < {ALPHA:g} (smallest possible p = "
                f"{result.min_p:.2g})"
            )
        out.append(
            Comparison(
                control=control,
                difference=diff,
                ci_low=lo,
                ci_high=hi,
                ci_method=ci_method,
                hedges_g=hedges_g(mv, cv),
                p_value=None if result is None else result.p_value,
                p_text="p n/a" if result is None else format_p(result.p_value, result.at_floor),
                test=test if result is not None else "none",
                exact=bool(result and result.exact),
                n_relabelings=0 if result is None else result.n_relabelings,
                n_units=0 if result is None else result.n_model + result.n_control,
                n_model_chains=int(mv.size),
                n_control_chains=int(cv.size),
                statistic=None if result is None else result.statistic,
                min_p=None if result is None else result.min_p,
                notes=tuple(notes),
            )
        )
    return out


# ------------------------------------------------------------------------------------------- verdicts


def _numbers(info: BiasMeasure, est: Estimate, per: str = " per step") -> str:
    d = interval_decimals(est.mean, est.ci_low, est.ci_high)
    text = f"{info.symbol} {signed_text(est.mean, d, info.unit)}{per}"
    if est.has_ci:
        text += f" [{signed_text(est.ci_low, d)}, {signed_text(est.ci_high, d)}]"  # type: ignore[arg-type]
    return text


def _diff_text(info: BiasMeasure, cmp: Comparison, per: str = " per step") -> str:
    d = interval_decimals(cmp.difference, cmp.ci_low, cmp.ci_high)
    text = f"difference {signed_text(cmp.difference, d, info.unit)}{per}"
    if cmp.ci_low is not None and cmp.ci_high is not None:
        text += f" [{signed_text(cmp.ci_low, d)}, {signed_text(cmp.ci_high, d)}]"
    return text


def _verdict(model: str, measure: str, result: MeasureResult, control: str | None) -> str:
    info = BIAS_MEASURES.get(measure) or BiasMeasure(f"Δ{measure}", measure, "rises", "falls", "up", "down")
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
        chains = "1 chain" if est.n_chains == 1 else f"{est.n_chains} chains"
        return f"{model}: {numbers} from {chains}; no interval, so no verdict"
    if est.excludes_zero:
        head = f"{model} {info.up if est.mean > 0 else info.down}: {numbers}"
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


# ------------------------------------------------------------------------------------------------ card


def _seed_labels(rows: pd.DataFrame) -> np.ndarray | None:
    """Chain seeds as strings, or None when the table does not say."""
    if "chain_seed" not in rows.columns or rows["chain_seed"].isna().all():
        return None
    return _labels(rows["chain_seed"])


def _pick_control(models: Sequence[str], control: str | None) -> tuple[str | None, str | None]:
    """(control used, note)."""
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
    control: str | None = DEFAULT_CONTROL,
    steps: Iterable[int] = DEFAULT_STEPS,
    rate_steps: int = 20,
    n_boot: int = 2000,
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
    table = chain_statistics(df, steps=steps, rate_steps=rate_steps, measures=measures)
    notes: list[str] = []
    if table.empty:
        return BiasCard([], None, control, [LAST], rate_steps, n_boot, n_perm, seed,
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
        images = _labels(rows["image"])
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
                f"{model}: every chain comes from 1 source image, so intervals resample chains (seeds) and "
                "say nothing about other images"
            )
        elif 1 < n_images < FEW_IMAGES:
            card.warnings.append(
                f"{model}: only {n_images} source images; bootstrap intervals over so few images are "
                "approximate (likely too narrow)"
            )
        elif len(rows) == 1:
            card.warnings.append(f"{model}: a single chain, so no confidence intervals")
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
        ests = dict(zip(cols, _estimates(rows[cols].to_numpy(dtype=float), images, seeds, n_boot,
                                         _rng(seed, "boot", model), cols), strict=True))  # fmt: skip
        cmps: dict[str, Comparison | None] = {}
        if ctrl_rows is not None and model != used:
            ccols = [f"{m}:{k}" for m in with_data for k in [RATE, *[k for k in step_keys if k != LAST]]]
            mine = (rows[ccols].to_numpy(dtype=float), images, seeds)
            theirs = (
                ctrl_rows[ccols].to_numpy(dtype=float),
                _labels(ctrl_rows["image"]),
                _seed_labels(ctrl_rows),
            )
            found = _compare_all(mine, theirs, ccols, used, n_boot, n_perm, _rng(seed, "compare", model))
            cmps = dict(zip(ccols, found, strict=True))
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
            label = f"{model} (control)" if model == used else model
            result.verdict = _verdict(label, m, result, used)
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
        n_boot=n_boot,
        n_perm=n_perm,
        seed=seed,
        verdicts=verdicts,
        notes=notes,
    )
