"""Colour of one frame: CIELAB statistics, saturation, colourfulness, the "white cast", colour temperature.

Definitions:

* **CIELAB** uses sRGB (IEC 61966-2-1 transfer curve), the sRGB→XYZ matrix and the D65 2° white of
  ``skimage.color.rgb2lab``, so the values agree with scikit-image (tested). Means are over all pixels:
  ``lab_l_mean`` (L*, 0..100), ``lab_a_mean`` (a*, + red / − green), ``lab_b_mean`` (b*, + yellow / −
  blue) and ``lab_chroma_mean`` (mean per-pixel C*ab = √(a*² + b*²)). ``lab_hue_deg`` is the hue angle
  h_ab = atan2(b̄*, ā*) of the *mean* a*, b* in degrees 0..360 (0 red, 90 yellow, 180 green, 270 blue); it
  is 0 for an exactly neutral mean and jumps around when the mean is nearly grey, so read it together
  with ``lab_hue_chroma``, the chroma of the mean colour √(ā*² + b̄*²) (how strongly the whole picture
  leans to that hue; the summaries read the hue only where it is at least
  :data:`driftloop.measures.HUE_MIN_CHROMA`).
* **HSV saturation** is ``(max − min) / max`` of R, G, B per pixel (0 for black), averaged, 0..1.
* **Colourfulness** is Hasler & Süsstrunk's (2003) M = √(σ_rg² + σ_yb²) + 0.3·√(μ_rg² + μ_yb²) with
  rg = R − G and yb = (R + G)/2 − B on 8-bit values; 0 for any grey image, ~>100 extremely colourful.
* **White cast** is the mean of (R + G)/2 − B (8-bit levels) over the bright, near-neutral pixels, those
  with HSV value V > 0.7 (max(R, G, B) ≥ 179) and saturation S < 0.25 (exact integer test). Positive
  reads yellow/warm, negative blue; the community reading is that > ~25 looks yellow. The HSV gate admits
  a yellowed white up to a score of ~60 at V ≈ 240 (a CIELAB gate C*ab < 20 would cap it near 38) while
  already excluding most saturated orange objects (skin at S > 0.25). Frames with no such pixel score
  0.0; ``white_cast_pixels`` is the share of pixels the score is over (0..1), so 0.0 with share 0 means
  "no bright neutral pixels", not "neutral".
* **Correlated colour temperature** (kelvin): the mean *linear* sRGB colour of the frame (a grey-world
  illuminant estimate) → XYZ → xy chromaticity → McCamy's (1992) cubic. McCamy is meant for
  chromaticities near the Planckian locus (~2000–12500 K); beyond that the result is clamped: the cubic is
  evaluated no further than its turning point on the warm side (~1630 K, the lowest value it can report),
  chromaticities at or below McCamy's epicentre's y = 0.1858 (deep blue/purple) report 25000 K (or 1000
  K if redder than x = 0.332), and everything is clamped to 1000..25000 K. A black frame has no
  chromaticity and reports the D65 white's ~6505 K, as any grey does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from driftloop.metrics._scratch import scratch

# sRGB primaries -> XYZ and the D65 (2°) white, exactly as skimage.color uses them.
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
CCT_MIN = 1000.0
CCT_MAX = 25000.0
WHITE_V_MIN = 179  # HSV V > 0.7  <=>  max(R, G, B) > 178.5
WHITE_S_MAX = 0.25  # HSV S < 0.25 <=>  4 (max - min) < max

_LAB_EPS = 0.008856
_LAB_KAPPA = 7.787


def _srgb_lut() -> np.ndarray:
    v = np.arange(256, dtype=np.float64) / 255.0
    lin = np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)
    return lin.astype(np.float32)


SRGB_TO_LINEAR = _srgb_lut()
_M_NORM = (XYZ_FROM_RGB / WHITE_D65[:, None]).astype(np.float32)

# McCamy: CCT(n) = 449 n³ + 3525 n² + 6823.3 n + 5520.33, n = (x − 0.3320) / (0.1858 − y). Its derivative
# vanishes at n = (−7050 + √(7050² − 4·1347·6823.3)) / 2694 ≈ −1.28; below that the cubic turns back up.
_MCCAMY_N_MIN = (-7050.0 + math.sqrt(7050.0**2 - 4 * 1347.0 * 6823.3)) / (2 * 1347.0)


def mccamy_cct(x: float, y: float) -> float:
    """Correlated colour temperature (K) of CIE 1931 ``(x, y)`` by McCamy, clamped (see the module)."""
    den = 0.1858 - y
    if den >= 0.0:
        return CCT_MAX if x < 0.3320 else CCT_MIN
    n = max((x - 0.3320) / den, _MCCAMY_N_MIN)
    cct = ((449.0 * n + 3525.0) * n + 6823.3) * n + 5520.33
    return float(min(max(cct, CCT_MIN), CCT_MAX))


def cct_of_linear(rgb_linear: np.ndarray) -> float:
    """CCT (K) of one linear-sRGB colour (3 values); the D65 white's for black."""
    xyz = XYZ_FROM_RGB @ np.asarray(rgb_linear, dtype=np.float64)
    total = float(xyz.sum())
    if not total > 1e-12:
        xyz = WHITE_D65
        total = float(xyz.sum())
    return mccamy_cct(float(xyz[0]) / total, float(xyz[1]) / total)


def _lab_f(t: np.ndarray) -> np.ndarray:
    """CIELAB's f(t), in place, on a float32 array of XYZ / white ratios (>= 0).

    The cube root is ``exp(log(t) / 3)``: 4x faster than ``np.cbrt`` on float32, within ~2e-7 relative.
    """
    small = np.less_equal(t, np.float32(_LAB_EPS), out=scratch("col.small", t.shape, np.bool_))
    if small.any():  # the linear segment near black: f(t) = 7.787 t + 16/116
        lin = np.multiply(t, np.float32(_LAB_KAPPA), out=scratch("col.lin", t.shape))
        lin += np.float32(16.0 / 116.0)
    else:
        lin = None
    np.maximum(t, np.float32(1e-30), out=t)
    np.log(t, out=t)
    t *= np.float32(1.0 / 3.0)
    np.exp(t, out=t)
    if lin is not None:
        np.copyto(t, lin, where=small)
    return t


def _lab_f_planes(u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(linear sRGB, f(X/Xn) f(Y/Yn) f(Z/Zn))`` of ``3×H×W`` uint8 planes, as float32 scratch planes."""
    lin = np.take(SRGB_TO_LINEAR, u8, out=scratch("col.linear", u8.shape), mode="clip")
    m = _M_NORM
    f = scratch("col.f", u8.shape)
    tmp = scratch("col.mix", u8.shape[1:])
    for i in range(3):
        out = f[i]
        np.multiply(lin[0], m[i, 0], out=out)
        np.multiply(lin[1], m[i, 1], out=tmp)
        out += tmp
        np.multiply(lin[2], m[i, 2], out=tmp)
        out += tmp
    return lin, _lab_f(f)


def lab_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """CIELAB ``H×W×3`` float32 of an RGB ``uint8`` frame (same constants as ``skimage.color.rgb2lab``)."""
    planes = np.ascontiguousarray(np.moveaxis(np.asarray(rgb, dtype=np.uint8), -1, 0))
    _, f = _lab_f_planes(planes)
    lab = np.empty_like(f)
    lab[0] = f[1] * np.float32(116.0) - np.float32(16.0)
    lab[1] = (f[0] - f[1]) * np.float32(500.0)
    lab[2] = (f[1] - f[2]) * np.float32(200.0)
    return np.moveaxis(lab, 0, -1)


def colour_metrics(rgb: np.ndarray) -> dict[str, float]:
    """Single-frame colour metrics of an ``H×W×3`` ``uint8`` RGB frame (keys: see :data:`KEYS`)."""
    u8 = np.ascontiguousarray(np.moveaxis(np.asarray(rgb, dtype=np.uint8), -1, 0))
    return colour_from_planes(u8, u8.astype(np.float32))


KEYS = (
    "lab_l_mean",
    "lab_a_mean",
    "lab_b_mean",
    "lab_chroma_mean",
    "lab_hue_deg",
    "lab_hue_chroma",
    "hsv_saturation_mean",
    "colourfulness",
    "white_cast",
    "white_cast_pixels",
    "cct_kelvin",
)
DELTA_KEYS = ("lab_l_delta", "lab_a_delta", "lab_b_delta", "lab_delta_e")


def _mean(a: np.ndarray) -> float:
    return float(a.sum(dtype=np.float64)) / a.size


def colour_from_planes(u8: np.ndarray, fp: np.ndarray) -> dict[str, float]:
    """:func:`colour_metrics` from ``3×H×W`` planes of the frame, as ``uint8`` and as float32."""
    plane = u8.shape[1:]
    n = u8[0].size
    lin, f = _lab_f_planes(u8)
    mean_lin = [_mean(lin[i]) for i in range(3)]
    fx, fy, fz = f[0], f[1], f[2]
    mean_fx, mean_fy, mean_fz = _mean(fx), _mean(fy), _mean(fz)
    l_mean = 116.0 * mean_fy - 16.0
    a_mean = 500.0 * (mean_fx - mean_fy)
    b_mean = 200.0 * (mean_fy - mean_fz)
    # per-pixel chroma, reusing f's planes as scratch
    fx -= fy
    fx *= np.float32(500.0)  # a*
    fy -= fz
    fy *= np.float32(200.0)  # b*
    fx *= fx
    fy *= fy
    fx += fy
    np.sqrt(fx, out=fx)
    chroma_mean = _mean(fx)
    hue = math.degrees(math.atan2(b_mean, a_mean)) % 360.0 if (a_mean or b_mean) else 0.0

    # HSV saturation and the bright-neutral mask, from integer max/min
    mx = np.maximum(u8[0], u8[1], out=scratch("col.max", plane, np.uint8))
    np.maximum(mx, u8[2], out=mx)
    mn = np.minimum(u8[0], u8[1], out=scratch("col.min", plane, np.uint8))
    np.minimum(mn, u8[2], out=mn)
    spread = np.subtract(mx, mn, out=scratch("col.spread", plane), dtype=np.float32)
    sat = np.maximum(mx, 1, out=scratch("col.sat", plane), dtype=np.float32)
    np.divide(spread, sat, out=sat)
    sat_mean = _mean(sat)
    spread *= np.float32(1.0 / WHITE_S_MAX)
    neutral = np.less(spread, mx, out=scratch("col.neutral", plane, np.bool_))  # S < 0.25, exact
    neutral &= np.greater_equal(mx, WHITE_V_MIN, out=scratch("col.bright", plane, np.bool_))

    # colourfulness (Hasler & Süsstrunk 2003): rg = R - G, yb = (R + G)/2 - B
    rg = np.subtract(fp[0], fp[1], out=scratch("col.rg", plane))
    yb = np.add(fp[0], fp[1], out=scratch("col.yb", plane))
    yb *= np.float32(0.5)
    yb -= fp[2]
    mu_rg, mu_yb = _mean(rg), _mean(yb)
    count = int(np.count_nonzero(neutral))
    white_cast = float(np.sum(yb, where=neutral, dtype=np.float64)) / count if count else 0.0
    sd_rg, sd_yb = _std(rg, mu_rg), _std(yb, mu_yb)
    colourfulness = math.hypot(sd_rg, sd_yb) + 0.3 * math.hypot(mu_rg, mu_yb)

    return {
        "lab_l_mean": l_mean,
        "lab_a_mean": a_mean,
        "lab_b_mean": b_mean,
        "lab_chroma_mean": chroma_mean,
        "lab_hue_deg": hue,
        "lab_hue_chroma": math.hypot(a_mean, b_mean),
        "hsv_saturation_mean": sat_mean,
        "colourfulness": colourfulness,
        "white_cast": white_cast,
        "white_cast_pixels": count / n,
        "cct_kelvin": cct_of_linear(mean_lin),
    }


def _std(v: np.ndarray, mean: float) -> float:
    """Standard deviation of ``v`` about ``mean``, in place (``v`` is scratch)."""
    v -= np.float32(mean)
    v *= v
    return math.sqrt(max(_mean(v), 0.0))


def colour_deltas(frame: Mapping[str, float], origin: Mapping[str, float]) -> dict[str, float]:
    """Mean-colour drift of a frame from the origin: L*, a*, b* differences and their CIE76 ΔE*ab."""
    dl = frame["lab_l_mean"] - origin["lab_l_mean"]
    da = frame["lab_a_mean"] - origin["lab_a_mean"]
    db = frame["lab_b_mean"] - origin["lab_b_mean"]
    return {
        "lab_l_delta": dl,
        "lab_a_delta": da,
        "lab_b_delta": db,
        "lab_delta_e": math.sqrt(dl * dl + da * da + db * db),
    }
