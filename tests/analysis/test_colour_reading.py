"""Colour words read right (driftloop.analysis.colour_reading and the sentences built on it): a photo whose
copies lose their saturation "drains to grey", it does not drift "cooler (bluer)" or "greener", and its
rising colour temperature is not "bluer light"; a true shift toward orange is still called warmer.

The chains are real pictures (examples/chelsea.jpg, examples/astronaut.jpg at 64 px) copied step by step,
every copy quantised to 8 bits and measured by driftloop's own colour metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.analysis.bias import bias_card
from driftloop.analysis.chains import summarize_run
from driftloop.analysis.colour_reading import hue_name, hue_turn, read_colour
from driftloop.analysis.text import sentences
from driftloop.images import load_image
from driftloop.metrics.colour import colour_metrics

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LUMA = np.array([0.299, 0.587, 0.114])
ORANGE = np.array([1.0, 0.3, -1.2])  # per copy: a little more red, less blue — toward orange
WRONG = ("drifts cooler", "drifts greener", "bluer light", "drifts bluer")


def _desaturate(frame: np.ndarray, keep: float) -> np.ndarray:
    """One copy that keeps ``keep`` of each pixel's colour and moves the rest to its grey (luma)."""
    x = frame.astype(float)
    grey = (x @ LUMA)[..., None]
    return np.clip(np.rint(keep * x + (1 - keep) * grey), 0, 255).astype(np.uint8)


def _warm(frame: np.ndarray, strength: float) -> np.ndarray:
    return np.clip(np.rint(frame.astype(float) + strength * ORANGE), 0, 255).astype(np.uint8)


def chain(image: str, copy, setting: float, steps: int = 100, chain_id: int = 0) -> pd.DataFrame:
    frame = load_image(EXAMPLES / image, 64, 1).frame
    rows = []
    for step in range(steps + 1):
        rows.append({"chain": chain_id, "input": image, "step": step, **colour_metrics(frame)})
        frame = copy(frame, setting)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def desaturating() -> pd.DataFrame:
    return chain("chelsea.jpg", _desaturate, 0.93)


@pytest.fixture(scope="module")
def warming() -> pd.DataFrame:
    return chain("astronaut.jpg", _warm, 1.0)


def test_hue_names_and_turns() -> None:
    assert hue_name(62) == "orange" and hue_name(100) == "yellow" and hue_name(355) == "pink"
    assert hue_name(40) == "red" and hue_name(300) == "blue"
    assert hue_turn(350, 10) == pytest.approx(20) and hue_turn(10, 350) == pytest.approx(-20)


def test_a_desaturating_photo_drains_to_grey_not_cooler(desaturating: pd.DataFrame) -> None:
    summaries = summarize_run(desaturating)
    reading = read_colour(summaries)
    assert reading.drained and reading.chroma_loss > 0.5
    # b* (orange cat: positive) and a* fall toward 0, and the colour temperature rises toward a grey's
    assert reading.drains("lab_b_mean") and reading.drains("lab_a_mean") and reading.drains("cct_kelvin")
    said = sentences(summaries, desaturating)
    text = "\n".join(said)
    assert any(s.startswith("the colour drains to grey: mean chroma C* 25.8 → ") for s in said), text
    assert not any(w in text for w in WRONG), text
    assert "b* (blue–yellow) moves toward a grey's 0 as the colour drains" in text
    assert "colour temperature (CCT) moves toward a grey's 6503 K as the colour drains" in text
    assert any(s.startswith("toward grey: Δb* −") for s in said), text


def test_a_true_warm_drift_is_called_warmer(warming: pd.DataFrame) -> None:
    summaries = summarize_run(warming)
    reading = read_colour(summaries)
    assert not reading.drained
    said = sentences(summaries, warming)
    text = "\n".join(said)
    assert "drains" not in text and "toward grey" not in text
    assert any(s.startswith("the image drifts warmer (yellower): Δb* +") for s in said), text
    assert any(s.startswith("the colour temperature falls (warmer, more orange light)") for s in said), text
    # the mean colour is far from grey, so its hue is read: red-ish (41°) turning toward orange
    assert any(s.startswith("the mean colour's hue turns toward orange: h 41° (red)") for s in said), text


def test_the_bias_card_reads_colour_right() -> None:
    parts = []
    for model, copy, settings in (("fader", _desaturate, (0.92, 0.94)), ("warmer", _warm, (0.8, 1.0))):
        for image in ("chelsea.jpg", "astronaut.jpg"):
            for k, setting in enumerate(settings):
                df = chain(image, copy, setting, steps=12, chain_id=k)
                parts.append(df.assign(model=model, chain_seed=k, chain=f"{model}/{image}/{k}"))
    card = bias_card(pd.concat(parts, ignore_index=True), control=None, n_perm=50)
    fader = [v for v in card.verdicts if v.startswith("fader")]
    warmer = [v for v in card.verdicts if v.startswith("warmer")]
    assert any("the colour drains to grey" in v for v in fader), fader
    assert not any(w in v for v in fader for w in WRONG), fader
    assert card.model("fader").measures["lab_b_mean"].drains
    assert any(v.startswith("warmer drifts warmer (yellower): Δb* +") for v in warmer), warmer
    assert not any("drains" in v for v in warmer), warmer
    assert not card.model("warmer").measures["lab_b_mean"].drains


def test_a_cast_on_a_grey_picture_is_named() -> None:
    frame = np.tile(np.linspace(40, 220, 32, dtype=np.uint8)[None, :, None], (32, 1, 3))
    rows = []
    for step in range(16):
        rows.append({"chain": 0, "step": step, **colour_metrics(frame)})
        frame = _warm(frame, 1.0)
    df = pd.DataFrame(rows)
    said = sentences(summarize_run(df), df)
    assert any(s.startswith("an orange cast appears: the mean colour's chroma 0.0 → ") for s in said), said
