"""Pixel-level similarity of two frames: PSNR, SSIM, mean absolute error and perceptual-hash distance.

Definitions (all on 8-bit values, so every number is comparable across runs):

* **Luma** is BT.601 ``Y' = 0.299 R + 0.587 G + 0.114 B`` on the 8-bit values (float32, 0..255), the grey
  image SSIM is conventionally computed on (Wang et al. 2004; MATLAB ``rgb2gray``; Pillow's ``L`` mode).
* **PSNR** is ``10 log10(255² / MSE)`` with the MSE over all three RGB channels, in dB. Identical frames
  have MSE 0 and PSNR ``math.inf`` (no division, no warning); ``inf`` is a legal Python float, stored as
  such (``float('inf')``; SQLite keeps IEEE infinity in a REAL column, JSON writers should map it).
* **SSIM** is the mean structural similarity of the two luma images with Wang et al.'s 11×11 Gaussian window
  (σ = 1.5), K1 = 0.01, K2 = 0.03, data range 255, population covariances, averaged over the pixels at
  least 5 pixels from the border. That is exactly ``skimage.metrics.structural_similarity(y1, y2,
  data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` (tested to 1e-4).
  Frames smaller than 11 pixels on a side, where scikit-image refuses, are reflect-padded and averaged
  over every pixel instead.
* **MAE** is the mean absolute difference over all three RGB channels, in 8-bit levels (0..255).
* **pHash** is the 64-bit DCT hash of Pillow's LANCZOS resize of the luma to 32×32: the 8×8 lowest DCT-II
  frequencies (DC included) compared with their median, as ``imagehash.phash`` does. The distance is
  the Hamming distance of two hashes, 0..64 bits.

Speed: a frame's luma, Gaussian means and variances and hash are computed once (:class:`SsimStats`,
:func:`phash_bits`); a pair then costs one Gaussian filter of the product image plus a few array passes.
The Gaussian is a separable "valid" correlation written with array slices, which produces exactly the
interior that scikit-image keeps (boundary handling never reaches it), in float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
from PIL import Image

from driftloop.metrics._scratch import scratch

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
DATA_RANGE = 255.0
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # 5: an 11-tap window, as in scikit-image / Wang et al.
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_C1 = np.float32((SSIM_K1 * DATA_RANGE) ** 2)
_C2 = np.float32((SSIM_K2 * DATA_RANGE) ** 2)
# Luma is shifted by this before second moments are formed: variances are shift-invariant and the smaller
# magnitudes keep float32's E[x²] - E[x]² cancellation ~4x smaller.
_SHIFT = np.float32(128.0)
PHASH_SIZE = 32
PHASH_BITS = 8


def _gaussian_kernel() -> np.ndarray:
    x = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return (k / k.sum()).astype(np.float32)


_KERNEL = _gaussian_kernel()


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an ``H×W×3`` RGB array as float32 ``H×W`` in 0..255."""
    planes = np.moveaxis(np.asarray(rgb), -1, 0)
    return luma_from_planes(planes, np.empty(planes.shape[1:], np.float32))


def luma_from_planes(planes: np.ndarray, out: np.ndarray) -> np.ndarray:
    """BT.601 luma of ``3×H×W`` planes (any numeric dtype, 8-bit values) into float32 ``out``."""
    w = np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    tmp = scratch("px.luma", out.shape)
    np.multiply(planes[0], w[0], out=out, dtype=np.float32)
    np.multiply(planes[1], w[1], out=tmp, dtype=np.float32)
    out += tmp
    np.multiply(planes[2], w[2], out=tmp, dtype=np.float32)
    out += tmp
    return out


def gaussian_valid(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The 11×11 Gaussian (σ = 1.5) correlation of a 2-D float32 array, valid part only.

    Output shape ``(H - 10, W - 10)``; element ``[i, j]`` is the filtered value at ``[i + 5, j + 5]``.
    ``out`` must not be one of this function's own scratch buffers.
    """
    r = SSIM_RADIUS
    k = _KERNEL
    h, w = a.shape
    tmp = scratch("px.gv.rows", (h - 2 * r, w))
    buf = scratch("px.gv.rows.buf", (h - 2 * r, w))
    np.multiply(a[r : h - r], k[r], out=tmp)
    for i in range(1, r + 1):
        np.add(a[r - i : h - r - i], a[r + i : h - r + i], out=buf)
        buf *= k[r + i]
        tmp += buf
    if out is None:
        out = np.empty((h - 2 * r, w - 2 * r), np.float32)
    buf = scratch("px.gv.cols.buf", out.shape)
    np.multiply(tmp[:, r : w - r], k[r], out=out)
    for i in range(1, r + 1):
        np.add(tmp[:, r - i : w - r - i], tmp[:, r + i : w - r + i], out=buf)
        buf *= k[r + i]
        out += buf
    return out


@dataclass(frozen=True, eq=False)
class SsimStats:
    """The per-frame half of SSIM: shifted luma and its local Gaussian means and variances.

    ``shifted`` is ``luma - 128`` (reflect-padded by 5 pixels for frames under 11 pixels a side), ``mu_s``
    its local mean over the valid region and ``vc`` the local variance plus ``C2/2``, so a pair needs only
    its cross term.
    """

    shifted: np.ndarray
    mu_s: np.ndarray
    vc: np.ndarray

    @classmethod
    def of(cls, y: np.ndarray) -> SsimStats:
        """Statistics of one luma image (2-D, 0..255)."""
        ys = np.subtract(y, _SHIFT, dtype=np.float32)
        if min(ys.shape) < 2 * SSIM_RADIUS + 1:
            ys = np.pad(ys, SSIM_RADIUS, mode="symmetric")  # = scipy.ndimage's "reflect"
        sq = scratch("px.ssim.sq", ys.shape)
        np.multiply(ys, ys, out=sq)
        mu_s = gaussian_valid(ys)
        var = gaussian_valid(sq)
        tmp = scratch("px.ssim.tmp", mu_s.shape)
        np.multiply(mu_s, mu_s, out=tmp)
        var -= tmp
        var += _C2 / 2
        for arr in (ys, mu_s, var):
            arr.setflags(write=False)
        return cls(shifted=ys, mu_s=mu_s, vc=var)


def ssim_from_stats(a: SsimStats, b: SsimStats) -> float:
    """Mean SSIM of two frames from their :class:`SsimStats` (same shape)."""
    if a.shifted.shape != b.shifted.shape:
        raise ValueError(f"SSIM needs equal sizes, got {a.shifted.shape} and {b.shifted.shape}")
    if a is b:
        return 1.0
    prod = scratch("px.ssim.prod", a.shifted.shape)
    np.multiply(a.shifted, b.shifted, out=prod)
    shape = a.mu_s.shape
    num = gaussian_valid(prod, out=scratch("px.ssim.num", shape))  # E[xy] of the shifted luma
    t1 = scratch("px.ssim.t1", shape)
    t2 = scratch("px.ssim.t2", shape)
    t3 = scratch("px.ssim.t3", shape)
    np.multiply(a.mu_s, b.mu_s, out=t1)
    num -= t1  # covariance
    num *= 2
    num += _C2  # A2 = 2 cov + C2
    np.add(a.mu_s, _SHIFT, out=t1)  # mu_a
    np.add(b.mu_s, _SHIFT, out=t2)  # mu_b
    np.multiply(t1, t2, out=t3)
    t3 *= 2
    t3 += _C1  # A1 = 2 mu_a mu_b + C1
    num *= t3
    t1 *= t1
    t2 *= t2
    t1 += t2
    t1 += _C1  # B1 = mu_a² + mu_b² + C1
    np.add(a.vc, b.vc, out=t2)  # B2 = var_a + var_b + C2
    t1 *= t2
    num /= t1
    return float(num.sum(dtype=np.float64)) / num.size


def ssim(y1: np.ndarray, y2: np.ndarray) -> float:
    """Mean SSIM of two luma images (2-D, 0..255); see the module docstring for the exact definition."""
    return ssim_from_stats(SsimStats.of(y1), SsimStats.of(y2))


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB for 8-bit data; ``math.inf`` when ``mse`` is 0."""
    if mse <= 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE * DATA_RANGE / mse)


def diff_stats(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(mean absolute error, mean squared error)`` of two same-shaped arrays of 8-bit values."""
    if a.shape != b.shape:
        raise ValueError(f"pixel metrics need equal sizes, got {a.shape} and {b.shape}")
    if a is b:
        return 0.0, 0.0
    d = scratch("px.diff", a.shape)
    sq = scratch("px.diff.sq", a.shape)
    np.subtract(a, b, out=d, dtype=np.float32)
    np.multiply(d, d, out=sq)
    np.abs(d, out=d)
    n = d.size
    return float(d.sum(dtype=np.float32)) / n, float(sq.sum(dtype=np.float32)) / n


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two RGB ``uint8`` frames, dB; ``math.inf`` when identical."""
    return psnr_from_mse(diff_stats(a, b)[1])


def mae(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two RGB ``uint8`` frames, 8-bit levels."""
    return diff_stats(a, b)[0]


def phash_bits(y: np.ndarray) -> np.ndarray:
    """64-bit perceptual hash (bool array of 64) of a luma image (2-D float, 0..255)."""
    img = Image.fromarray(np.ascontiguousarray(y, dtype=np.float32))
    small = np.asarray(img.resize((PHASH_SIZE, PHASH_SIZE), Image.Resampling.LANCZOS), dtype=np.float64)
    low = scipy.fft.dctn(small, type=2)[:PHASH_BITS, :PHASH_BITS]
    return (low > np.median(low)).ravel()


def phash_distance(h1: np.ndarray, h2: np.ndarray) -> int:
    """Hamming distance of two hashes from :func:`phash_bits`, 0..64."""
    return int(np.count_nonzero(h1 != h2))
