"""JPEG and WebP re-encoding: the non-AI control every drift should be compared with.

A lossy codec also loses information at each copy, but it has no learned prior to pull images toward,
so what it does to colour and shape is the baseline a model's bias is measured against.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL
from PIL import Image

from driftloop.errors import SpecError
from driftloop.replicators.base import Backend, Frames, Requirements
from driftloop.replicators.spec import format_spec


@dataclass(frozen=True)
class JPEGConfig:
    """``jpeg:quality=75,subsampling=2`` (0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0)."""

    quality: int = 75
    subsampling: int = 2

    def validate(self, spec: str) -> None:
        if not 1 <= self.quality <= 100:
            raise SpecError(f"model spec {spec!r}: quality must be between 1 and 100")
        if self.subsampling not in (0, 1, 2):
            raise SpecError(f"model spec {spec!r}: subsampling must be 0 (4:4:4), 1 (4:2:2) or 2 (4:2:0)")


@dataclass(frozen=True)
class WebPConfig:
    """``webp:quality=80,method=4``."""

    quality: int = 80
    method: int = 4

    def validate(self, spec: str) -> None:
        if not 1 <= self.quality <= 100:
            raise SpecError(f"model spec {spec!r}: quality must be between 1 and 100")
        if not 0 <= self.method <= 6:
            raise SpecError(f"model spec {spec!r}: method must be between 0 and 6")


class CodecReplicator:
    """Encode each frame with Pillow and decode it again."""

    requirements = Requirements(size_multiple=1)

    def __init__(self, name: str, config: JPEGConfig | WebPConfig) -> None:
        self.name = name
        self.config = config
        self.spec = format_spec(name, config)
        if isinstance(config, JPEGConfig):
            self._fmt, self._options = "JPEG", {"quality": config.quality, "subsampling": config.subsampling}
        else:
            self._fmt, self._options = "WEBP", {"quality": config.quality, "method": config.method}

    def _copy(self, frame: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(frame, "RGB").save(buf, self._fmt, **self._options)
        buf.seek(0)
        with Image.open(buf) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()

    def replicate(self, frames: Frames, seeds: list[int]) -> Frames:
        return [self._copy(f) for f in frames]

    def describe(self) -> dict[str, Any]:
        return {"kind": "codec", "format": self._fmt, **self._options, "pillow": PIL.__version__}


def backends() -> list[Backend]:
    return [
        Backend(
            "jpeg",
            "JPEG re-encoding (Pillow/libjpeg): the non-AI control",
            JPEGConfig,
            lambda c: CodecReplicator("jpeg", c),
        ),
        Backend(
            "webp",
            "WebP re-encoding (Pillow/libwebp): the non-AI control",
            WebPConfig,
            lambda c: CodecReplicator("webp", c),
        ),
    ]
