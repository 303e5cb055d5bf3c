"""Stabilizers: colour matching of each copy to frame 0, as loopback tools do it."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from skimage import color, data

from driftloop.errors import SpecError
from driftloop.metrics import FrameFeatures
from driftloop.stabilizers import CHOICES, parse_stabilizer


@pytest.fixture(scope="module")
def origin() -> np.ndarray:
    return data.astronaut()[::2, ::2].copy()  # 256×256


@pytest.fixture(scope="module")
def tinted(origin: np.ndarray) -> np.ndarray:
    """The "orange tint" of the trend: warmer and a little brighter, as a chat model's copies drift."""
    return np.clip(origin.astype(np.int16) + np.array([22, 8, -28]), 0, 255).astype(np.uint8)


def _lab_mean(frame: np.ndarray) -> np.ndarray:
    return color.rgb2lab(frame).reshape(-1, 3).mean(axis=0)


def test_the_tint_is_a_real_lab_drift(origin: np.ndarray, tinted: np.ndarray) -> None:
    drift = _lab_mean(tinted) - _lab_mean(origin)
    assert drift[2] > 15 and np.linalg.norm(drift) > 15


@pytest.mark.parametrize(("spec", "limit"), [("colour:lab", 1.0), ("colour-stats", 1.0)])
def test_lab_matching_removes_the_lab_mean_drift(origin, tinted, spec: str, limit: float) -> None:
    out = parse_stabilizer(spec).apply(tinted, origin)
    assert out.dtype == np.uint8 and out.shape == tinted.shape and out.flags.c_contiguous
    assert np.all(np.abs(_lab_mean(out) - _lab_mean(origin)) < limit)


def test_colour_stats_matches_spread_too(origin: np.ndarray) -> None:
    flat = np.clip(128 + (origin.astype(np.float64) - 128) * 0.5, 0, 255).round().astype(np.uint8)
    out = parse_stabilizer("colour-stats").apply(flat, origin)
    std = lambda f: color.rgb2lab(f).reshape(-1, 3).std(axis=0)  # noqa: E731
    assert np.all(np.abs(std(out) - std(origin)) < 0.1 * std(origin))
    assert np.all(std(flat)[0] < 0.6 * std(origin)[0])


@pytest.mark.parametrize("spec", ["colour:rgb", "colour:hsv"])
def test_rgb_and_hsv_matching_reduce_the_drift(origin, tinted, spec: str) -> None:
    before = np.linalg.norm(_lab_mean(tinted) - _lab_mean(origin))
    after = np.linalg.norm(_lab_mean(parse_stabilizer(spec).apply(tinted, origin)) - _lab_mean(origin))
    assert after < 0.5 * before


def test_rgb_matching_reproduces_each_channels_histogram(origin: np.ndarray) -> None:
    shuffled = origin[::-1, ::-1].copy()  # same histograms, other places: matching changes nothing
    assert np.array_equal(parse_stabilizer("colour:rgb").apply(shuffled, origin), shuffled)


def test_rgb_matching_of_a_low_contrast_copy_posterises_and_the_metric_sees_it(origin: np.ndarray) -> None:
    faded = np.clip(128 + (origin.astype(np.float64) - 128) * 0.6, 0, 255).round().astype(np.uint8)
    gaps = {
        spec: FrameFeatures.of(parse_stabilizer(spec).apply(faded, origin)).single["histogram_gaps"]
        for spec in ("none", "colour:rgb", "colour:lab")
    }
    assert gaps["none"] < 0.02 and gaps["colour:lab"] < 0.05
    assert gaps["colour:rgb"] > 0.3


def test_none_is_the_identity(origin: np.ndarray, tinted: np.ndarray) -> None:
    stabilizer = parse_stabilizer("none")
    assert stabilizer.is_identity
    assert stabilizer.apply(tinted, origin) is tinted


@pytest.mark.parametrize("spec", CHOICES)
def test_deterministic_and_close_to_identity_on_frame_0(origin, tinted, spec: str) -> None:
    stabilizer = parse_stabilizer(spec)
    digests = {hashlib.sha256(stabilizer.apply(tinted, origin).tobytes()).hexdigest() for _ in range(3)}
    assert len(digests) == 1
    same = stabilizer.apply(origin, origin)
    assert np.mean(np.abs(same.astype(np.int16) - origin)) < 1.0


def test_origin_of_another_size_is_fine(origin: np.ndarray, tinted: np.ndarray) -> None:
    out = parse_stabilizer("colour:lab").apply(tinted[:100, :180], origin)
    assert out.shape == (100, 180, 3)


@pytest.mark.parametrize(
    ("text", "spec"),
    [("colour:lab", "colour:lab"), ("Color:LAB", "colour:lab"), (" colour-stats ", "colour-stats"),
     ("color:hsv", "colour:hsv"), (None, "none"), ("", "none"), ("none", "none")],
)  # fmt: skip
def test_parse(text: str | None, spec: str) -> None:
    assert parse_stabilizer(text).spec == spec


@pytest.mark.parametrize("text", ["colour", "colour:xyz", "histogram", "lab"])
def test_unknown_stabilizer_lists_the_choices(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_stabilizer(text)
    message = str(info.value)
    assert repr(text) in message and all(choice in message for choice in CHOICES)


def test_a_frame_that_is_not_rgb_uint8_is_a_programming_error(origin: np.ndarray) -> None:
    with pytest.raises(ValueError, match="frame must be an H×W×3 uint8"):
        parse_stabilizer("colour:lab").apply(origin.astype(np.float32), origin)
    with pytest.raises(ValueError, match="origin must be"):
        parse_stabilizer("none").apply(origin, origin[..., 0])
