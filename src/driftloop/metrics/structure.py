"""Structure of one frame, on its BT.601 luma (0..255): sharpness, edges, entropy, high-frequency energy;
and, on its RGB channels, posterisation.

Definitions:

* **sharpness**: variance of the 4-neighbour Laplacian ``y[i-1,j] + y[i+1,j] + y[i,j-1] + y[i,j+1] −
  4 y[i,j]`` over the interior pixels (the 1-pixel border is left out rather than padded), in (8-bit
  levels)². Blur lowers it; noise raises it.
* **edge_density**: share of interior pixels whose Sobel gradient magnitude, scaled to 8-bit levels per
  pixel (the 3×3 Sobel responses divided by 8, so a clean 1-level-per-pixel ramp reads 1), exceeds
  :data:`EDGE_THRESHOLD` = 12 levels/pixel. A fixed threshold, not Canny's adaptive ones, so frames of a
  chain are compared on one scale (and ~40x faster than scikit-image's Canny); it counts
  strong-gradient pixels, not thinned edge lines.
* **entropy_bits**: Shannon entropy of the 256-bin histogram of the luma rounded to 8 bits, in bits:
  0 for a constant frame, 8 for uniform noise.
* **hf_energy_share**: share of the luma's 2-D power spectrum (mean removed) at radial frequencies above
  :data:`HF_CUTOFF` = 0.125 cycles/pixel, a quarter of the Nyquist frequency (0.5); 0..1, 0 for a
  constant frame, ~0.95 for white noise. The spectrum is the orthonormal 2-D DCT-II — the Fourier
  spectrum of the mirror-extended image — rather than the FFT, whose wrap-around edge between opposite
  borders would add a blur-proof floor of fake high-frequency energy (coefficient k of N stands for
  k / 2N cycles/pixel; the DC coefficient, the mean, is left out).
* **histogram_gaps**: posterisation (banding). For each of R, G, B, the share of the 8-bit levels between
  the channel's 1st and 99th percentile level (inclusive) that no pixel has, averaged over the channels;
  0..1. A natural photo fills its range (≈ 0); stretching or histogram-matching a channel spreads its
  levels apart and leaves a comb of empty levels (colour correction by RGB histogram matching of a
  low-contrast copy gives ≈ 0.4). Per channel, because the luma mixes three channels and fills the gaps.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from driftloop.metrics._scratch import scratch

EDGE_THRESHOLD = 12.0
HF_CUTOFF = 0.125

KEYS = ("sharpness", "edge_density", "entropy_bits", "hf_energy_share")


def sharpness(y: np.ndarray) -> float:
    """Variance of the Laplacian of a luma image, over interior pixels; 0 if there are none."""
    h, w = y.shape
    if min(h, w) < 3:
        return 0.0
    lap = np.add(y[1:-1, :-2], y[1:-1, 2:], out=scratch("st.lap", (h - 2, w - 2)))
    lap += y[:-2, 1:-1]
    lap += y[2:, 1:-1]
    tmp = np.multiply(y[1:-1, 1:-1], np.float32(4.0), out=scratch("st.lap.tmp", lap.shape))
    lap -= tmp
    mean = float(lap.sum(dtype=np.float64)) / lap.size
    lap -= np.float32(mean)
    lap *= lap
    return float(lap.sum(dtype=np.float64)) / lap.size


def edge_density(y: np.ndarray) -> float:
    """Share of interior pixels with Sobel gradient magnitude above :data:`EDGE_THRESHOLD` levels/pixel."""
    h, w = y.shape
    if min(h, w) < 3:
        return 0.0
    # x-derivative: [1 2 1] smoothing down the rows, then [-1 0 1] across the columns
    s = np.add(y[:-2], y[2:], out=scratch("st.sobel.s", (h - 2, w)))
    tmp = np.multiply(y[1:-1], np.float32(2.0), out=scratch("st.sobel.tmp", (h - 2, w)))
    s += tmp
    gx = np.subtract(s[:, 2:], s[:, :-2], out=scratch("st.sobel.gx", (h - 2, w - 2)))
    # y-derivative: [1 2 1] smoothing across the columns, then [-1 0 1] down the rows
    t = np.add(y[:, :-2], y[:, 2:], out=scratch("st.sobel.t", (h, w - 2)))
    tmp = np.multiply(y[:, 1:-1], np.float32(2.0), out=scratch("st.sobel.tmp2", (h, w - 2)))
    t += tmp
    gy = np.subtract(t[2:], t[:-2], out=scratch("st.sobel.gy", (h - 2, w - 2)))
    gx *= gx
    gy *= gy
    gx += gy
    limit = np.float32((8.0 * EDGE_THRESHOLD) ** 2)
    strong = np.greater(gx, limit, out=scratch("st.sobel.mask", gx.shape, np.bool_))
    return int(np.count_nonzero(strong)) / gx.size


def entropy_bits(y: np.ndarray) -> float:
    """Shannon entropy (bits) of the 8-bit histogram of a luma image."""
    q = np.clip(y, 0.0, 255.0, out=scratch("st.ent.q", y.shape))
    q += np.float32(0.5)
    qi = scratch("st.ent.qi", y.shape, np.intp)  # bincount's own index type: no conversion copy
    np.copyto(qi, q, casting="unsafe")
    hist = np.bincount(qi.ravel(), minlength=256)
    p = hist[hist > 0] / qi.size
    return float(max(-(p * np.log2(p)).sum(), 0.0))


@lru_cache(maxsize=8)
def _low_mask(h: int, w: int) -> np.ndarray:
    """Boolean mask of the DCT-II coefficients at or below :data:`HF_CUTOFF`, over the corner block holding
    them all (coefficient k of an N-point DCT-II stands for k / 2N cycles/pixel)."""
    rows, cols = min(h, int(2 * HF_CUTOFF * h) + 1), min(w, int(2 * HF_CUTOFF * w) + 1)
    fy = (np.arange(rows) / (2.0 * h))[:, None]
    fx = (np.arange(cols) / (2.0 * w))[None, :]
    mask = np.hypot(fy, fx) <= HF_CUTOFF
    mask.setflags(write=False)
    return mask


def hf_energy_share(y: np.ndarray) -> float:
    """Share of the (mean-removed) power spectrum above :data:`HF_CUTOFF` cycles/pixel, 0..1."""
    h, w = y.shape
    power = scipy.fft.dctn(y, type=2, norm="ortho")
    power *= power
    dc = float(power[0, 0])
    total = float(power.sum(dtype=np.float64)) - dc  # the DC term is the mean
    if not total > 0.0:
        return 0.0
    low = _low_mask(h, w)
    low_power = float(np.sum(power[: low.shape[0], : low.shape[1]], where=low, dtype=np.float64)) - dc
    return min(max(1.0 - low_power / total, 0.0), 1.0)


def histogram_gaps(u8: np.ndarray) -> float:
    """Share of empty levels inside each channel's 1–99 % level range, averaged over channels (``C×H×W``
    ``uint8`` planes); 0 for a frame whose every channel has one level."""
    shares = []
    for plane in u8:
        hist = np.bincount(plane.ravel(), minlength=256)
        cumulative = np.cumsum(hist)
        lo, hi = np.searchsorted(cumulative, [0.01 * plane.size, 0.99 * plane.size])
        inside = hist[lo : hi + 1]
        shares.append(float(np.count_nonzero(inside == 0)) / inside.size)
    return sum(shares) / len(shares)


def structure_metrics(y: np.ndarray) -> dict[str, float]:
    """All structure metrics of a luma image (2-D float32, 0..255)."""
    y = np.asarray(y, dtype=np.float32)
    return {
        "sharpness": sharpness(y),
        "edge_density": edge_density(y),
        "entropy_bits": entropy_bits(y),
        "hf_energy_share": hf_energy_share(y),
        "contrast_rms": float(y.std(dtype=np.float64)),
    }
