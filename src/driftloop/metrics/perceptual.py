"""Learned (neural) similarity to the origin and to the previous frame: LPIPS, CLIP and DINOv2.

Optional: each family runs only when its weights are on disk, and a run says once which were skipped and
why (:meth:`PerceptualScorer.skipped`). Nothing is downloaded unless ``allow_download=True``.

* ``lpips`` — LPIPS-Alex v0.1 (:mod:`driftloop.metrics.lpips_net`), on the frame at its own size. Files
  ``alex.pth`` (the LPIPS linear layers) and ``alexnet.pth`` (torchvision's AlexNet state dict, or the
  zoo's ``alexnet-owt-7be5be79.pth``) in ``$DRIFTLOOP_MODEL_DIR/lpips/`` (or a folder passed as ``lpips=``).
* ``clip`` — cosine similarity of CLIP image embeddings (``CLIPVisionModelWithProjection.image_embeds``),
  default ``openai/clip-vit-base-patch32``.
* ``dino`` — cosine similarity of DINOv2 embeddings (``pooler_output``: the layer-normed CLS token),
  default ``facebook/dinov2-small``.

CLIP and DINOv2 load through ``transformers`` (``pip install transformers``; the PIL image-processing
backend, no torchvision): from a folder written by ``save_pretrained`` — passed as ``clip=``/``dino=``, or
``$DRIFTLOOP_MODEL_DIR/clip/`` and ``$DRIFTLOOP_MODEL_DIR/dinov2/`` — else from the Hugging Face cache by
repo id with ``local_files_only=True`` (``huggingface-cli download openai/clip-vit-base-patch32`` fills
it). With ``allow_download=True`` and not offline (``HF_HUB_OFFLINE``/``DRIFTLOOP_OFFLINE``), a missing
repo is downloaded instead.

Usage: ``scorer = PerceptualScorer()``; per frame ``emb = scorer.embed(frame)`` (keep the origin's and
the previous frame's); ``scorer.scores(emb, origin_emb, prev_emb)`` gives the columns of
:data:`~driftloop.metrics.columns.PERCEPTUAL_COLUMNS` for the available families.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from driftloop import weights
from driftloop.metrics.columns import PERCEPTUAL_COLUMNS
from driftloop.metrics.lpips_net import BACKBONE_FILES, LIN_FILE, LPIPS

FAMILIES = ("lpips", "clip", "dino")
DEFAULT_CLIP_REPO = "openai/clip-vit-base-patch32"
DEFAULT_DINO_REPO = "facebook/dinov2-small"
_FOLDER = {"lpips": "lpips", "clip": "clip", "dino": "dinov2"}
_COLUMN = {"lpips": "lpips", "clip": "clip_cosine", "dino": "dino_cosine"}


class _Skip(Exception):
    """A family cannot run; the message says why and what to do."""


@dataclass(frozen=True, eq=False)
class PerceptualEmbedding:
    """What a frame contributes to the perceptual scores: LPIPS taps and unit embedding vectors."""

    lpips: list[torch.Tensor] | None = None
    clip: torch.Tensor | None = None
    dino: torch.Tensor | None = None


def _model_dir_hint(kind: str) -> str:
    env = os.environ.get("DRIFTLOOP_MODEL_DIR")
    return f"{env}/{_FOLDER[kind]}/" if env else f"$DRIFTLOOP_MODEL_DIR/{_FOLDER[kind]}/"


def _find_lpips(explicit: str | Path | None) -> tuple[Path, Path]:
    if explicit is not None and not Path(explicit).expanduser().exists():
        raise _Skip(f"LPIPS weights folder {explicit} does not exist")
    looked = weights.candidate_dirs("lpips", explicit)
    for folder in looked:
        lin = folder / LIN_FILE
        backbone = next((folder / n for n in BACKBONE_FILES if (folder / n).is_file()), None)
        if lin.is_file() and backbone is not None:
            return lin, backbone
    raise _Skip(
        f"LPIPS weights not found; put {LIN_FILE} (lpips v0.1 linear layers) and {BACKBONE_FILES[0]} "
        f"(torchvision AlexNet state dict) in {_model_dir_hint('lpips')} "
        f"(looked in: {', '.join(str(d) for d in looked)})"
    )


def _load_lpips(explicit: str | Path | None, device: torch.device) -> LPIPS:
    lin, backbone = _find_lpips(explicit)
    net = LPIPS()
    try:
        net.load_files(lin, backbone)
    except Exception as exc:  # a wrong or damaged file: skip the family, do not stop the run
        raise _Skip(f"LPIPS weights in {lin.parent} could not be loaded ({exc})") from None
    return net.eval().to(device)


def _hf_source(kind: str, explicit: str | Path | None, repo: str) -> tuple[str, bool]:
    """Where to load a transformers model from: ``(folder or repo id, local_files_only)``."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if (path / "config.json").is_file():
            return str(path), True
        if path.exists() or str(explicit).startswith((".", "/", "~")):
            raise _Skip(f"{kind}: {explicit} is not a saved model folder (no config.json in it)")
        return str(explicit), True  # a Hugging Face repo id
    for folder in weights.candidate_dirs(_FOLDER[kind]):
        if (folder / "config.json").is_file():
            return str(folder), True
    return repo, True


def _load_hf(kind: str, explicit: str | Path | None, repo: str, allow_download: bool, device: torch.device):
    try:
        import transformers  # the perceptual extra: optional and heavy
    except ImportError:
        raise _Skip(f"{kind}: the transformers package is not installed (pip install transformers)") from None
    source, local_only = _hf_source(kind, explicit, repo)
    if allow_download and not weights.offline() and not Path(source).is_dir():
        local_only = False
    model_cls = transformers.CLIPVisionModelWithProjection if kind == "clip" else transformers.AutoModel
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a run
    try:
        model = model_cls.from_pretrained(source, local_files_only=local_only)
        try:
            processor = transformers.AutoImageProcessor.from_pretrained(
                source, local_files_only=local_only, backend="pil"
            )
        except TypeError:  # transformers < 5 has no backend switch and is PIL-based anyway
            processor = transformers.AutoImageProcessor.from_pretrained(source, local_files_only=local_only)
    except Exception as exc:  # missing, partial or foreign files: skip the family, do not stop the run
        where = (
            f"save_pretrained() a model and its image processor into {_model_dir_hint(kind)}, or fill the "
            f"Hugging Face cache (huggingface-cli download {repo})"
        )
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise _Skip(f"{kind}: no usable model at {source} ({type(exc).__name__}: {first}); {where}") from None
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    return model.eval().to(device), processor


class PerceptualScorer:
    """Loads whichever of LPIPS / CLIP / DINOv2 it can and scores frames with them.

    ``families`` picks which to try; ``lpips``, ``clip``, ``dino`` are explicit folders (for ``clip`` and
    ``dino`` also a repo id); ``device`` is a torch device string. Never raises for a missing or broken
    model: the family is listed in :meth:`skipped` with the reason.
    """

    def __init__(
        self,
        families: Iterable[str] = FAMILIES,
        *,
        lpips: str | Path | None = None,
        clip: str | Path | None = None,
        dino: str | Path | None = None,
        clip_repo: str = DEFAULT_CLIP_REPO,
        dino_repo: str = DEFAULT_DINO_REPO,
        device: str = "cpu",
        allow_download: bool = False,
    ) -> None:
        wanted = list(families)
        unknown = sorted(set(wanted) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown perceptual families {unknown}; choose from {list(FAMILIES)}")
        self.device = torch.device(device)
        self._lpips: LPIPS | None = None
        self._hf: dict[str, tuple[Any, Any]] = {}
        self._skipped: dict[str, str] = {}
        for family in FAMILIES:
            if family not in wanted:
                continue
            try:
                if family == "lpips":
                    self._lpips = _load_lpips(lpips, self.device)
                elif family == "clip":
                    self._hf["clip"] = _load_hf("clip", clip, clip_repo, allow_download, self.device)
                else:
                    self._hf["dino"] = _load_hf("dino", dino, dino_repo, allow_download, self.device)
            except _Skip as exc:
                self._skipped[family] = str(exc)

    def available(self) -> list[str]:
        """Families that loaded, in :data:`FAMILIES` order."""
        return [f for f in FAMILIES if (f == "lpips" and self._lpips is not None) or f in self._hf]

    def skipped(self) -> dict[str, str]:
        """Families asked for that could not load → why, and what to do about it."""
        return dict(self._skipped)

    def columns(self) -> dict[str, str]:
        """The columns :meth:`scores` fills (with a previous frame), with their descriptions."""
        names = {_COLUMN[f] for f in self.available()}
        return {k: v for k, v in PERCEPTUAL_COLUMNS.items() if k.rsplit("_to_", 1)[0] in names}

    @torch.inference_mode()
    def embed(self, frame: np.ndarray) -> PerceptualEmbedding:
        """Everything the scores need from one ``H×W×3`` ``uint8`` RGB frame (compute once per frame)."""
        if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3):
            raise ValueError("a frame is an H×W×3 uint8 RGB array")
        taps = None
        if self._lpips is not None:
            x = LPIPS.to_input(torch.from_numpy(np.ascontiguousarray(frame))).to(self.device)
            taps = self._lpips.features(x)
        vectors: dict[str, torch.Tensor] = {}
        for family, (model, processor) in self._hf.items():
            inputs = processor(images=[frame], return_tensors="pt")
            pixel_values = inputs["pixel_values"].to(self.device, dtype=next(model.parameters()).dtype)
            out = model(pixel_values=pixel_values)
            vec = out.image_embeds[0] if family == "clip" else out.pooler_output[0]
            vec = vec.float()
            vectors[family] = vec / vec.norm().clamp_min(1e-12)
        return PerceptualEmbedding(lpips=taps, clip=vectors.get("clip"), dino=vectors.get("dino"))

    def scores(
        self,
        frame: PerceptualEmbedding,
        origin: PerceptualEmbedding,
        prev: PerceptualEmbedding | None = None,
    ) -> dict[str, float]:
        """Perceptual columns of a frame against the origin and (when given) the previous frame."""
        out: dict[str, float] = {}
        targets = [("origin", origin)] + ([("prev", prev)] if prev is not None else [])
        for suffix, other in targets:
            if self._lpips is not None and frame.lpips is not None and other.lpips is not None:
                same = frame.lpips is other.lpips
                out[f"lpips_to_{suffix}"] = (
                    0.0 if same else float(self._lpips.distance(frame.lpips, other.lpips)[0])
                )
            for family in ("clip", "dino"):
                a, b = getattr(frame, family), getattr(other, family)
                if a is not None and b is not None:
                    cos = 1.0 if a is b else float(torch.dot(a, b))
                    out[f"{_COLUMN[family]}_to_{suffix}"] = min(max(cos, -1.0), 1.0)
        return out
