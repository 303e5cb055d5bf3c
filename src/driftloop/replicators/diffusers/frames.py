"""Frames in and out of a pipeline: uint8 arrays to PIL images at the model's size, and a pipeline's output
(floats, PIL images or arrays, maybe of another size) back to uint8 frames the shape of their inputs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from driftloop.replicators.base import Frames


def to_pil(frames: Frames, size: tuple[int, int] | None = None) -> list[Any]:
    """RGB uint8 arrays → PIL images, resized (Lanczos) to ``size`` = (width, height) when given."""
    images = [Image.fromarray(np.ascontiguousarray(f), "RGB") for f in frames]
    if size is not None:
        images = [im if im.size == size else im.resize(size, Image.Resampling.LANCZOS) for im in images]
    return images


def model_size(frame: np.ndarray, size: int, multiple: int) -> tuple[int, int] | None:
    """(width, height) with the longer side ``size`` (rounded to ``multiple``), or None (``size=0``)."""
    if not size:
        return None
    h, w = frame.shape[:2]
    scale = size / max(h, w)
    round_to = max(1, multiple)
    return (
        max(round_to, round(w * scale / round_to) * round_to),
        max(round_to, round(h * scale / round_to) * round_to),
    )


def from_output(images: Any, like: Sequence[np.ndarray]) -> tuple[Frames, list[tuple[int, int] | None]]:
    """A pipeline's output (``output_type="np"`` floats in [0, 1], PIL images or uint8 arrays) → uint8
    frames the shape of their inputs (resized back with Lanczos when the model chose another size).

    Returns the frames and, per frame, the (width, height) the model produced when it differed.
    """
    frames: Frames = []
    produced: list[tuple[int, int] | None] = []
    seq = list(images) if not isinstance(images, np.ndarray) else [images[i] for i in range(len(images))]
    for out, src in zip(seq, like, strict=True):
        if isinstance(out, Image.Image):
            arr = np.asarray(out.convert("RGB"), dtype=np.uint8)
        else:
            arr = np.asarray(out)
            if arr.dtype != np.uint8:
                arr = np.round(np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
            if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
                arr = arr.transpose(1, 2, 0)
            if arr.shape[-1] == 1:
                arr = np.repeat(arr, 3, axis=-1)
        if arr.shape != src.shape:
            produced.append((arr.shape[1], arr.shape[0]))
            im = Image.fromarray(arr, "RGB").resize((src.shape[1], src.shape[0]), Image.Resampling.LANCZOS)
            arr = np.asarray(im, dtype=np.uint8)
        else:
            produced.append(None)
        frames.append(np.ascontiguousarray(arr))
    return frames, produced


def accepted_kwargs(fn: Callable[..., Any], wanted: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The part of ``wanted`` that ``fn`` names in its signature, and the names it does not take."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return dict(wanted), []
    kept = {k: v for k, v in wanted.items() if k in params}
    return kept, [k for k in wanted if k not in params]
