"""The bias card's records: per model and measure the estimates, comparisons with the control, verdicts.

Computed by :func:`driftloop.analysis.bias.bias_card` (see its module for every definition); the verdict
sentences are written by :mod:`driftloop.analysis.text`. :meth:`BiasCard.to_dict` is the card's strict
JSON, with the methods spelled out. :data:`BIAS_MEASURES` lists the measures the card looks at, in reading
order, each with its words from the vocabulary (:mod:`driftloop.measures`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftloop._fs import json_safe
from driftloop.analysis.intervals import Interval
from driftloop.analysis.stats import ALPHA, CONFIDENCE
from driftloop.measures import MEASURES, Measure

__all__ = [
    "BIAS_MEASURES",
    "FACE_MEASURES",
    "LAST",
    "METHODS",
    "RATE",
    "BiasCard",
    "Comparison",
    "FaceLoss",
    "MeasureResult",
    "ModelCard",
]

RATE = "rate"
LAST = "last"

# Every measure the card looks at, in reading order; only the columns present in the table are used.
BIAS_MEASURES: dict[str, Measure] = {
    m: MEASURES[m]
    for m in (
        "lab_l_mean",
        "lab_a_mean",
        "lab_b_mean",
        "lab_chroma_mean",
        "hsv_saturation_mean",
        "colourfulness",
        "white_cast",
        "cct_kelvin",
        "contrast_rms",
        "contrast",
        "sharpness",
        "edge_density",
        "entropy_bits",
        "face_eyebrow_thickness",
        "face_eyebrow_height",
        "face_eye_opening",
        "face_mouth_width",
        "face_aspect",
    )
}
FACE_MEASURES = tuple(m for m in BIAS_MEASURES if m.startswith("face_"))


# ------------------------------------------------------------------------------------------ result types


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
    rate: Interval | None
    change: dict[str, Interval] = field(default_factory=dict)  # step key ("1", "10", "last") → estimate
    vs_control: dict[str, Comparison] = field(default_factory=dict)  # "rate" or a step key
    verdict: str = ""
    reliable: bool = False  # the rate's interval excludes 0
    reliable_vs_control: bool | None = None  # p < 0.05 against the control (None: no comparison)
    direction: int = 0  # +1 up, −1 down, 0 no reliable change
    drains: bool = False  # the change is the colour draining toward grey (analysis/colour_reading.py)


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
    rate_steps: int | None  # None: each chain's rate over all its steps
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
    "rate": (
        "per chain: the average change per step over the chain's steps (0..rate_steps when rate_steps is "
        "set), (value(last) − value(first)) / (steps between them); with one source image, its interval is "
        "the chain's own (driftloop.analysis.chain_rate.chain_rate_ci: a random walk + noise REML fit, an "
        "autoregression where a unit-root test says the measure reverts, a walk that stops or jumps once; "
        "none below 100 steps), its chains pooled (rate_over_chains_ci), as in the run report"
    ),
    "estimate": (
        "mean of per-image means (each source image's chains averaged first; every image weighs the same)"
    ),
    "ci": (
        "95% Student's t interval on the per-image means, df = images − 1 ('t over images'); when the same "
        "seeds run on several images and their shared effect is measurable, the two-way image × seed "
        "variance with Satterthwaite df ('t over images and seeds'); zero width only when every value is "
        "equal; none for the changes with one source image or a single chain (the rate: see 'rate'). "
        "driftloop.analysis.intervals.mean_ci; "
        "simulated coverage about 0.95 at 3-30 images for normal image effects, lower for strongly skewed "
        "ones (README)"
    ),
    "difference": (
        "model − control paired at the image level: per shared source image (per image × seed cell when both "
        "ran the same seeds there) the model's mean minus the control's, and the interval of those "
        "differences as for 'ci' (driftloop.analysis.intervals.paired_diff_ci); chains of images only one "
        "model has are left out; no shared image: difference of the two estimates with a Welch t interval"
    ),
    "hedges_g": (
        "difference of chain means / pooled SD of per-chain values, small-sample corrected (descriptive)"
    ),
    "p_value": (
        "two-sided paired image-level permutation test (driftloop.analysis.intervals.sign_flip_test): per "
        "shared source image the mean of each model's chains; relabellings swap the two means of an image "
        "(sign flips); statistic = mean over shared images of the difference; exact over all 2^G "
        "relabellings when 2^G <= n_perm, else p = (1 + count)/(n_perm + 1); one shared image: its chains "
        "permuted; none: image means permuted across images"
    ),
    "verdict": (
        "reliable change when the rate's 95% interval excludes 0; reliably different from the control when "
        "p < 0.05 and the difference's 95% interval excludes 0; colour read right "
        "(driftloop.analysis.colour_reading): when the model's chains lose at least a quarter of their mean "
        "chroma C*, a*, b*, white cast and CCT moving toward their grey values are said as the colour "
        "draining to grey, not as a hue or light change"
    ),
}


def _dataclass_dict(obj: Any) -> Any:
    """Like ``dataclasses.asdict`` (recursing into dicts and lists), plus the properties worth keeping."""
    if isinstance(obj, Interval):
        return {
            "mean": obj.mean,
            "ci_low": obj.ci_low,
            "ci_high": obj.ci_high,
            "n_chains": obj.n_values,
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
