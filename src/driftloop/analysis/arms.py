"""Stabilizer arms: what a stabilizer changes in a model's drift, measure by measure, paired by image.

A run made with ``--stabilize SPEC`` is its own arm on the bias card, labelled ``MODEL + stabilize=SPEC``
(:func:`driftloop.config.arm_label`). For every model that has a plain arm and one or more stabilized arms,
this compares each stabilized arm with the plain one, so a reader sees what colour correction removes
(the colour drift, by construction) and what it does not (loss of structure and of faces), and whether it
posterises (fewer levels in use: ``entropy_bits`` down, ``histogram_gaps`` up).

Definitions, exactly:

* the statistic of a chain for a measure *m* is its change at its own last step, ``v(last) − v(0)``
  (:func:`driftloop.analysis.bias.chain_statistics`, column ``m:last``; face measures only where a face
  is found, ``white_cast`` only where it has pixels);
* per source image both arms ran, the mean over that image's chains in each arm; the **difference** is
  arm − plain per image, its estimate the mean over images, its 95% interval Student's t on the per-image
  differences (:func:`driftloop.analysis.intervals.paired_diff_ci`; images only one arm has are left
  out and counted);
* the **test** is the two-sided paired image-level permutation (sign-flip) test on the same per-image
  differences (:func:`driftloop.analysis.intervals.paired_permutation_test`: exact over all 2^G sign
  patterns when 2^G ≤ ``n_perm``, so p < 0.05 needs ≥ 6 shared images);
* a difference is **reliable** when p < 0.05 and its interval excludes 0; then the reading says by how
  much the stabilizer shrinks or grows the plain arm's change (``|arm| / |plain|``).

Context arms (:func:`context_arms`) are read the same way: a conversation model's ``thread`` or
``window=K`` arm against the same model's fresh requests (``window=0``), difference = thread − fresh per
image, so a reader sees whether seeing the earlier copies slows the drift or speeds it up.

Randomness (only for more than ``log2(n_perm)`` images) comes from a generator seeded by (``seed``, arm).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from driftloop import fmt
from driftloop.analysis.bias import chain_statistics
from driftloop.analysis.card import LAST
from driftloop.analysis.intervals import Interval, SignFlipResult, paired_diff_ci, paired_permutation_test
from driftloop.analysis.stats import ALPHA, seeded_rng
from driftloop.config import split_arm
from driftloop.errors import DriftloopError
from driftloop.measures import MEASURES
from driftloop.replicators import registry
from driftloop.replicators.hosted.config import canonical_spec

__all__ = ["ARM_MEASURES", "ArmComparison", "ArmMeasure", "context_arms", "measure_name", "stabilizer_arms"]

# What a reader asks of a stabilizer, in reading order: measure → the question it answers.
ARM_MEASURES: dict[str, str] = {
    "lab_delta_e": "colour",
    "lab_l_mean": "colour",
    "lab_a_mean": "colour",
    "lab_b_mean": "colour",
    "lab_chroma_mean": "colour",
    "colourfulness": "colour",
    "ssim_to_origin": "structure",
    "psnr_to_origin": "structure",
    "phash_to_origin": "structure",
    "lpips_to_origin": "structure",
    "dino_cosine_to_origin": "structure",
    "sharpness": "structure",
    "edge_density": "structure",
    "face_found": "faces",
    "face_eye_opening": "faces",
    "face_eyebrow_thickness": "faces",
    "face_mouth_width": "faces",
    "entropy_bits": "posterisation",
    "histogram_gaps": "posterisation",
}
GROUPS = ("colour", "structure", "faces", "posterisation")


@dataclass(frozen=True)
class ArmMeasure:
    """One measure: the change by the last step in the plain and the stabilized arm, and their difference."""

    measure: str
    group: str  # colour | structure | faces | posterisation
    plain: float  # mean change of the plain arm over the shared images
    arm: float  # mean change of the stabilized arm over the shared images
    difference: Interval  # arm − plain, paired by image
    test: SignFlipResult | None
    reliable: bool  # p < 0.05 and the interval excludes 0
    reading: str  # "removes 94% of the change", "no reliable difference", ...

    @property
    def p_value(self) -> float | None:
        return None if self.test is None else self.test.p_value


@dataclass
class ArmComparison:
    """A stabilized arm of a model against the model's plain arm."""

    model: str  # the plain arm's label (the model spec)
    stabilizer: str  # the stabilizer spec (axis "context": the context mode, thread or window=K)
    arm: str  # the stabilized arm's label: "MODEL + stabilize=SPEC" (a conversation's own spec)
    n_images: int  # source images both arms ran
    n_chains_plain: int
    n_chains_arm: int
    measures: list[ArmMeasure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    axis: str = "stabilize"  # what differs from the control: a stabilizer, or the context (fresh control)

    def summary(self) -> list[str]:
        """One sentence per question (colour, structure, faces, posterisation) that has measures."""
        lines = []
        for group in GROUPS:
            rows = [m for m in self.measures if m.group == group]
            if not rows:
                continue
            changed = [f"{measure_name(m.measure)} {m.reading}" for m in rows if m.reliable]
            same = [measure_name(m.measure) for m in rows if not m.reliable]
            text = f"{group}: " + ("; ".join(changed) if changed else "no reliable difference")
            if changed and same:
                text += f"; no reliable difference in {', '.join(same)}"
            lines.append(text)
        return lines

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["summary"] = self.summary()
        return out


_NAMES = {  # measures without a card symbol, as the arms section names them
    "lab_delta_e": "ΔE*ab of the mean colour",
    "ssim_to_origin": "SSIM to the original",
    "psnr_to_origin": "PSNR to the original",
    "phash_to_origin": "pHash distance to the original",
    "lpips_to_origin": "LPIPS to the original",
    "dino_cosine_to_origin": "DINOv2 similarity to the original",
    "face_found": "face found",
}


def measure_name(measure: str) -> str:
    """How the arms section names a measure: its card symbol (Δb*), else a short phrase."""
    info = MEASURES.get(measure)
    return _NAMES.get(measure) or (info.symbol if info and info.symbol else measure)


def _reading(plain: float, arm: float, reliable: bool) -> str:
    """What the stabilizer does to the plain arm's change, in words (only for a reliable difference).

    A share ("removes 94% of the change") only where the plain arm has a change to speak of: when it is
    under a tenth of the difference, the stabilizer adds a change of its own."""
    if not reliable:
        return "no reliable difference"
    numbers = f"({fmt.signed(plain)} → {fmt.signed(arm)})"
    if not math.isfinite(plain) or abs(plain) < 0.1 * abs(arm - plain):
        return f"adds a change the plain arm does not have {numbers}"
    ratio = abs(arm) / abs(plain)
    if ratio < 1:
        return f"removes {100 * (1 - ratio):.0f}% of the change {numbers}"
    flipped = " and reverses" if (arm > 0) != (plain > 0) else ""
    return f"grows{flipped} the change by {100 * (ratio - 1):.0f}% {numbers}"


def _images(rows: pd.DataFrame) -> np.ndarray:
    return rows["image"].astype(str).to_numpy()


def _compare(
    plain: pd.DataFrame, arm: pd.DataFrame, measure: str, n_perm: int, rng: np.random.Generator
) -> ArmMeasure | None:
    column = f"{measure}:{LAST}"
    if column not in plain.columns or column not in arm.columns:
        return None
    p_vals, a_vals = plain[column].to_numpy(dtype=float), arm[column].to_numpy(dtype=float)
    p_img, a_img = _images(plain), _images(arm)
    ok_p, ok_a = np.isfinite(p_vals), np.isfinite(a_vals)
    shared = np.intersect1d(p_img[ok_p], a_img[ok_a])
    if shared.size == 0:
        return None
    diff = paired_diff_ci(a_vals, p_vals, a_img, p_img)
    test = paired_permutation_test(a_vals, p_vals, a_img, p_img, n_perm=n_perm, rng=rng)
    mean_of = lambda vals, imgs, ok: float(  # noqa: E731
        np.mean([vals[ok & (imgs == i)].mean() for i in shared])
    )
    plain_mean, arm_mean = mean_of(p_vals, p_img, ok_p), mean_of(a_vals, a_img, ok_a)
    reliable = bool(test is not None and test.p_value < ALPHA and diff.excludes_zero)
    return ArmMeasure(measure, ARM_MEASURES[measure], plain_mean, arm_mean, diff, test, reliable,
                      _reading(plain_mean, arm_mean, reliable))  # fmt: skip


def stabilizer_arms(df: pd.DataFrame, n_perm: int = 5000, seed: int = 0) -> list[ArmComparison]:
    """Every stabilized arm in a bias card's metrics table (``model`` holds arm labels) against its model's
    plain arm; none when the table has no stabilized arm with a plain one beside it."""
    if df is None or df.empty or "model" not in df.columns:
        return []
    labels = sorted(df["model"].astype(str).unique())
    pairs = [(label, *split_arm(label)) for label in labels]
    pairs = [(label, model, spec) for label, model, spec in pairs if spec != "none" and model in labels]
    return compare_arms(df, pairs, n_perm, seed)


def context_arms(df: pd.DataFrame, n_perm: int = 5000, seed: int = 0) -> list[ArmComparison]:
    """Every conversation arm (``thread``, ``window=K``) of a bias card's metrics table against the same
    model's fresh requests (``window=0``), paired by image: thread − fresh, measure by measure."""
    if df is None or df.empty or "model" not in df.columns:
        return []
    labels = sorted(df["model"].astype(str).unique())
    pairs = []
    for label in labels:
        model, stabilize = split_arm(label)
        fresh = fresh_control(model) if stabilize == "none" else None
        if fresh is not None and fresh != model and fresh in labels:
            pairs.append((label, fresh, context_of(model)))
    return compare_arms(df, pairs, n_perm, seed, axis="context")


def compare_arms(
    df: pd.DataFrame,
    pairs: list[tuple[str, str, str]],
    n_perm: int = 5000,
    seed: int = 0,
    axis: str = "stabilize",
) -> list[ArmComparison]:
    """Each (arm label, control label, what differs) pair of a metrics table compared measure by measure,
    paired by image (the arms section's definitions above)."""
    if not pairs:
        return []
    wanted = [m for m in ARM_MEASURES if m in df.columns]
    table = chain_statistics(df[df["model"].isin([*{p[1] for p in pairs}, *(p[0] for p in pairs)])],
                             measures=wanted, rate_intervals="none")  # fmt: skip
    out = []
    for label, model, spec in pairs:
        plain, arm = table[table["model"] == model], table[table["model"] == label]
        shared = set(_images(plain)) & set(_images(arm))
        cmp = ArmComparison(model, spec, label, len(shared), len(plain), len(arm), axis=axis)
        rng = seeded_rng(seed, "arms", label)
        for measure in wanted:
            found = _compare(plain, arm, measure, n_perm, rng)
            if found is not None:
                cmp.measures.append(found)
        if not shared:
            cmp.notes.append(f"{label} and {model} share no source image: nothing to pair")
        elif len(shared) < 6:
            cmp.notes.append(
                f"{len(shared)} shared source image(s): the exact permutation test cannot reach p < 0.05 "
                "below 6 images"
            )
        left = len(set(_images(plain)) ^ set(_images(arm)))
        if left:
            cmp.notes.append(f"{left} source image(s) only one arm ran are left out")
        out.append(cmp)
    return out


def _window(spec: str) -> tuple[Any, Any] | None:
    """(backend, config) of a conversation spec (one with a ``window`` parameter); None otherwise."""
    try:
        backend, config = registry.parse(spec)
    except DriftloopError:
        return None
    return (backend, config) if hasattr(config, "window") else None


def fresh_control(spec: str) -> str | None:
    """The fresh-request arm of a conversation spec (the same spec with ``window=0``); None for a model
    that is not a conversation."""
    found = _window(spec)
    if found is None:
        return None
    backend, config = found
    return canonical_spec(backend.name, replace(config, window=0), backend.positional or "model")


def context_of(spec: str) -> str:
    """``thread``, ``window=K`` or ``fresh``: a conversation spec's context mode."""
    found = _window(spec)
    window = found[1].window if found is not None else None
    return "thread" if window is None else ("fresh" if window == 0 else f"window={window}")
