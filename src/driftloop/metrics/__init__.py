"""The measurement layer: pure, fast functions of frames, one module per family.

* :mod:`~driftloop.metrics.pixel` — PSNR, SSIM, mean absolute error, perceptual-hash distance (pairs)
* :mod:`~driftloop.metrics.colour` — CIELAB means, saturation, colourfulness, white cast, CCT
* :mod:`~driftloop.metrics.structure` — sharpness, edge density, entropy, high-frequency energy, banding
* :mod:`~driftloop.metrics.perceptual` — LPIPS, CLIP and DINOv2 similarities when their weights are there
  (imported on demand: it needs torch and, for CLIP/DINOv2, ``transformers``)

Usage: compute :class:`FrameFeatures` once per frame (keep the origin's and the previous frame's) and ask
:func:`frame_metrics` for the row::

    origin = FrameFeatures.of(frame0)
    row0 = frame_metrics(origin, origin, None)        # frame 0: to_origin is trivially "identical"
    feats = FrameFeatures.of(frame_k)
    row = frame_metrics(feats, origin, prev)          # prev = FrameFeatures of frame k-1

Every value is a finite float except ``psnr_to_*`` of identical frames, which is ``math.inf`` (stored as
``float('inf')``; SQLite keeps it in a REAL column, JSON writers need to map it, e.g. to ``null`` or
``"Infinity"``). :data:`COLUMNS` documents every key :func:`frame_metrics` returns.

Everything here is NumPy/SciPy on float32 and releases the GIL in its inner loops, so a worker thread
runs it beside the model; a :class:`FrameFeatures` is immutable once built and safe to share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from driftloop.metrics import colour, pixel, structure
from driftloop.metrics._scratch import scratch
from driftloop.metrics.columns import ALL_COLUMNS, COLUMNS, PERCEPTUAL_COLUMNS

__all__ = ["ALL_COLUMNS", "COLUMNS", "PERCEPTUAL_COLUMNS", "FrameFeatures", "frame_metrics"]


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"a frame is a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"a frame is an H×W×3 uint8 RGB array, got {frame.dtype} of shape {frame.shape}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"a frame needs at least one pixel, got shape {frame.shape}")
    return frame


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class FrameFeatures:
    """Everything derived from one frame that several metrics need, computed once.

    ``planes`` is a read-only copy of the frame as ``3×H×W`` uint8 (for PSNR/MAE), ``ssim`` its luma
    statistics, ``phash`` its 64-bit hash and ``single`` its single-frame metrics (colour and structure).
    Immutable; holds ~3.7 MB for a 512² frame.
    """

    shape: tuple[int, int]
    planes: np.ndarray
    ssim: pixel.SsimStats
    phash: np.ndarray
    single: Mapping[str, float]

    @classmethod
    def of(cls, frame: np.ndarray) -> FrameFeatures:
        """Features of an ``H×W×3`` ``uint8`` RGB frame."""
        frame = _check_frame(frame)
        h, w = frame.shape[:2]
        u8 = np.ascontiguousarray(np.moveaxis(frame, -1, 0))  # kept: PSNR/MAE of pairs
        if np.shares_memory(u8, frame):  # (1×1 or 1×W frames: already contiguous)
            u8 = u8.copy()
        u8.setflags(write=False)
        fp = scratch("feat.planes", u8.shape)
        np.copyto(fp, u8)
        y = pixel.luma_from_planes(fp, scratch("feat.luma", (h, w)))
        single = colour.colour_from_planes(u8, fp)
        single.update(structure.structure_metrics(y))
        single["histogram_gaps"] = structure.histogram_gaps(u8)
        return cls(
            shape=(h, w),
            planes=u8,
            ssim=pixel.SsimStats.of(y),
            phash=_frozen(pixel.phash_bits(y)),
            single=MappingProxyType(single),
        )


def _pair(frame: FrameFeatures, other: FrameFeatures, suffix: str) -> dict[str, float]:
    if frame.shape != other.shape:
        raise ValueError(
            f"pairwise metrics need frames of one size: {frame.shape[1]}×{frame.shape[0]} vs "
            f"{other.shape[1]}×{other.shape[0]} ({suffix})"
        )
    mae, mse = pixel.diff_stats(frame.planes, other.planes)
    return {
        f"psnr_{suffix}": pixel.psnr_from_mse(mse),
        f"ssim_{suffix}": pixel.ssim_from_stats(frame.ssim, other.ssim),
        f"mae_{suffix}": mae,
        f"phash_{suffix}": float(pixel.phash_distance(frame.phash, other.phash)),
    }


def frame_metrics(
    frame: FrameFeatures, origin: FrameFeatures, prev: FrameFeatures | None
) -> dict[str, float]:
    """Every non-neural metric of ``frame``: single-frame ones, ``*_to_origin`` and ``*_to_prev``.

    With ``prev=None`` (frame 0) the ``*_to_prev`` keys are left out. Keys are documented in
    :data:`COLUMNS`; values are floats, never NaN; PSNR of identical frames is ``math.inf``.
    """
    out = dict(frame.single)
    out.update(colour.colour_deltas(frame.single, origin.single))
    out.update(_pair(frame, origin, "to_origin"))
    if prev is not None:
        out.update(_pair(frame, prev, "to_prev"))
    return out
