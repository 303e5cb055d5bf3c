"""The JPEG/WebP control replicators."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from driftloop.replicators import build


@pytest.mark.parametrize(
    "spec", ["jpeg", "jpeg:quality=40", "webp:quality=50", "jpeg:quality=95,subsampling=0"]
)
def test_codec_copies_lossy_and_deterministic(spec: str) -> None:
    frame = np.ascontiguousarray(data.astronaut()[::4, ::4])
    rep = build(spec)
    first = rep.replicate([frame], [1])[0]
    again = rep.replicate([frame], [2])[0]
    assert first.shape == frame.shape and first.dtype == np.uint8
    assert np.array_equal(first, again)  # a codec ignores seeds
    assert not np.array_equal(first, frame)  # lossy
    assert np.abs(first.astype(int) - frame).mean() < 12


def test_lower_quality_loses_more() -> None:
    frame = np.ascontiguousarray(data.astronaut()[::4, ::4])
    err = {}
    for q in (30, 95):
        out = build(f"jpeg:quality={q}").replicate([frame], [0])[0]
        err[q] = np.abs(out.astype(int) - frame).mean()
    assert err[30] > err[95]
