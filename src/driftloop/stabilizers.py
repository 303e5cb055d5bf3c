"""Stabilizers: what loopback users apply to each copy to stop colour drift, as a named, measured arm.

AUTOMATIC1111's loopback "colour correction" and Deforum's "colour coherence" match each new frame's colour
histogram to the first frame's. Here that is a pure function of (copy, frame 0), named by a spec string,
so a run records which one it used and the bias card can compare chains with and without it:

* ``none``: the copy as the model made it.
* ``colour:lab`` / ``colour:rgb`` / ``colour:hsv``: per-channel histogram matching to frame 0
  (``skimage.exposure.match_histograms``) in that colour space, then back to 8-bit RGB (rounded, clipped).
  Lab is A1111's choice; HSV and RGB are Deforum's other two.
* ``colour-stats``: a gentler version (Reinhard-style transfer): each Lab channel is shifted and scaled
  to frame 0's mean and standard deviation, keeping the copy's own histogram shape.

Histogram matching removes colour drift by construction, and can posterise (it spreads a copy's levels
apart, leaving a comb of empty levels): the ``histogram_gaps`` metric column measures that, and
``entropy_bits`` the information left in the luma histogram.
Every stabilizer is deterministic: the same copy and frame 0 give the same bytes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from skimage import color, exposure

from driftloop.errors import SpecError

__all__ = ["CHOICES", "Stabilizer", "parse_stabilizer"]

CHOICES = ("none", "colour:lab", "colour:rgb", "colour:hsv", "colour-stats")
_ALIASES = {"color:lab": "colour:lab", "color:rgb": "colour:rgb", "color:hsv": "colour:hsv",
            "color-stats": "colour-stats", "": "none"}  # fmt: skip


@dataclass(frozen=True)
class Stabilizer:
    """A parsed stabilizer spec; :meth:`apply` turns a copy into the frame that feeds the next copy."""

    spec: str

    @property
    def is_identity(self) -> bool:
        return self.spec == "none"

    def apply(self, frame: np.ndarray, origin: np.ndarray) -> np.ndarray:
        """The copy ``frame`` stabilized towards ``origin`` (frame 0): an RGB uint8 array of frame's shape.

        ``none`` returns ``frame`` itself (no copy made). ``origin`` may differ in size from ``frame``:
        only its colour distribution is used.
        """
        _check(frame, "frame")
        _check(origin, "origin")
        if self.spec == "none":
            return frame
        if self.spec == "colour:rgb":
            matched = exposure.match_histograms(frame, origin, channel_axis=-1)
            return _to_uint8(np.asarray(matched, dtype=np.float64) / 255.0)
        if self.spec == "colour:lab":
            lab = exposure.match_histograms(color.rgb2lab(frame), color.rgb2lab(origin), channel_axis=-1)
            return _to_uint8(_lab2rgb(lab))
        if self.spec == "colour:hsv":
            hsv = exposure.match_histograms(color.rgb2hsv(frame), color.rgb2hsv(origin), channel_axis=-1)
            return _to_uint8(color.hsv2rgb(np.clip(hsv, 0.0, 1.0)))
        return _to_uint8(_lab2rgb(_match_stats(color.rgb2lab(frame), color.rgb2lab(origin))))


def parse_stabilizer(spec: str | None) -> Stabilizer:
    """Parse ``colour:lab``, ``colour:rgb``, ``colour:hsv``, ``colour-stats`` or ``none`` (``color`` too).

    ``None`` or an empty string means ``none``. Anything else is a ``SpecError`` listing the choices.
    """
    text = (spec or "").strip().lower().replace(" ", "")
    text = _ALIASES.get(text, text)
    if text not in CHOICES:
        raise SpecError(f"unknown stabilizer {spec!r}; choose one of: {', '.join(CHOICES)}")
    return Stabilizer(text)


def _match_stats(lab: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each Lab channel moved to the reference's mean and standard deviation (a flat channel only shifts)."""
    out = np.empty_like(lab)
    for c in range(3):
        src, ref = lab[..., c], reference[..., c]
        mean, std = src.mean(), src.std()
        scale = ref.std() / std if std > 1e-6 else 1.0
        out[..., c] = (src - mean) * scale + ref.mean()
    return out


def _lab2rgb(lab: np.ndarray) -> np.ndarray:
    """Lab to RGB 0..1; matched values outside the sRGB gamut are clipped, as intended, without a warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Conversion from CIE-LAB", category=UserWarning)
        return color.lab2rgb(lab)


def _to_uint8(rgb01: np.ndarray) -> np.ndarray:
    """Float RGB in 0..1 to 8-bit, rounded half to even and clipped, C-contiguous."""
    return np.ascontiguousarray(np.clip(np.rint(rgb01 * 255.0), 0, 255).astype(np.uint8))


def _check(frame: np.ndarray, name: str) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise ValueError(
            f"{name} must be an H×W×3 uint8 RGB array, got {getattr(frame, 'dtype', None)} {shape}"
        )
