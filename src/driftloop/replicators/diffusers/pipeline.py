"""A diffusers pipeline as a replicator: loaded once, placed on its device, called once per batch of
same-shaped frames with one generator per frame, its output turned back into uint8 frames. What the img2img,
instruct and caption→redraw replicators share.
"""

from __future__ import annotations

import hashlib
import inspect
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from driftloop.errors import SpecError
from driftloop.replicators.base import Copy, Frames, Refusal, StepContext
from driftloop.replicators.diffusers.frames import accepted_kwargs, from_output, model_size, to_pil
from driftloop.replicators.diffusers.hub import find_model, load_model
from driftloop.replicators.diffusers.runtime import (
    MissingDependencyError,
    SeedPolicy,
    diffusers_dtype_kwarg,
    dtype_name,
    generators,
    library_versions,
    make_requirements,
    missing_dependencies,
    noise_seeds,
    oom_guard,
    pick_device,
    pick_dtype,
    require,
    set_threads,
)


def place_pipeline(pipe: Any, device: Any, cpu_offload: bool, spec: str) -> Any:
    """Move a pipeline to its device (or let accelerate offload it); no progress bars per call."""
    if cpu_offload:
        if missing_dependencies("accelerate"):
            raise MissingDependencyError(
                f"model {spec!r}: cpu_offload=true needs accelerate: pip install accelerate"
            )
        with oom_guard(spec, [], device):
            pipe.enable_model_cpu_offload(device=device)
    else:
        with oom_guard(spec, [], device):
            pipe.to(device)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe


def size_multiple(pipe: Any) -> int:
    """Frame sides the pipeline takes without cropping: the VAE factor, ×2 for patchified transformers."""
    factor = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    if getattr(pipe, "transformer", None) is not None:
        factor *= 2
    return factor


def config_hash(folder: Path | None) -> str | None:
    """sha256 over a model folder's JSON configs (cheap; weights are identified by the hub revision)."""
    if folder is None or not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.json")):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class PipelineReplicator:
    """What the img2img, instruct and caption→redraw replicators share: a diffusers pipeline on a device,
    called once per batch with one generator per frame, its output turned back into uint8 frames.

    Subclasses give ``what`` (for messages), ``kind`` (for ``describe``) and ``load`` (the from_pretrained).
    """

    kind = "pipeline"
    what = "pipeline"

    def __init__(self, spec: str, config: Any, ref: str) -> None:
        require(spec, "diffusers", "transformers", "torch")
        self.spec = spec
        self.config = config
        self.model_ref = find_model(ref, ("model_index.json",))
        self.device = pick_device(config.device)
        if config.cpu_offload and self.device.type == "cpu":
            raise SpecError(f"model spec {spec!r}: cpu_offload=true needs a GPU; PyTorch sees none here")
        self.dtype = pick_dtype(config.dtype, self.device)
        set_threads(config.threads)
        pipe = load_model(self.model_ref, self.what, self.load)
        self.pipe = place_pipeline(pipe, self.device, config.cpu_offload, spec)
        self.multiple = size_multiple(self.pipe)
        self.requirements = make_requirements(
            size_multiple=self.multiple,
            max_batch=config.max_batch or None,
            device=str(self.device),
            deterministic=self.device.type == "cpu",
        )
        try:
            self.call_params = set(inspect.signature(self.pipe.__call__).parameters)
        except (TypeError, ValueError):
            self.call_params = set()
        self.ignored: set[str] = set()

    def noise_for(self, seeds: Sequence[int], context: StepContext | None) -> tuple[list[int], SeedPolicy]:
        """The noise seed of each frame under the config's seed policy; ``fixed`` needs the engine's
        context (chain seeds) and falls back to fresh noise, once with a warning, when called without it."""
        used, policy = noise_seeds(seeds, context, self.config.seed_policy)
        if self.config.seed_policy != policy and not getattr(self, "_warned_fixed", False):
            self._warned_fixed = True
            warnings.warn(
                f"{self.spec}: seed_policy=fixed needs the chain seeds from the engine; using fresh noise",
                stacklevel=3,
            )
        return used, policy

    def load(self, hub_kwargs: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def pretrained_kwargs(self) -> dict[str, Any]:
        """Keywords of ``from_pretrained`` shared by every pipeline: dtype and weight variant."""
        out: dict[str, Any] = diffusers_dtype_kwarg(self.dtype)
        variant = getattr(self.config, "variant", None)
        if variant:
            out["variant"] = variant
        return out

    def call(
        self, frames: Frames, seeds: Sequence[int], kwargs: dict[str, Any], image_input: bool = True
    ) -> tuple[Frames, list[dict[str, Any]]]:
        """One pipeline call for frames of one shape: ``kwargs`` hold per-call options (lists are per frame).

        Options the pipeline does not take are dropped (and listed in ``describe``); the output is resized
        back to the frames' shape when the model produced another size.
        """
        import torch  # heavy, optional: only when a model runs

        size = model_size(frames[0], getattr(self.config, "size", 0), self.multiple)
        width, height = size or (frames[0].shape[1], frames[0].shape[0])
        wanted = dict(kwargs)
        if image_input:
            wanted["image"] = to_pil(frames, size)
        wanted.update(generator=generators(seeds), output_type="np")
        wanted.setdefault("height", height)
        wanted.setdefault("width", width)
        kept, dropped = (wanted, []) if not self.call_params else accepted_kwargs(self.pipe.__call__, wanted)
        self.ignored.update(k for k in dropped if k not in ("height", "width", "max_area"))
        with oom_guard(self.spec, frames, self.device), torch.inference_mode():
            result = self.pipe(**kept)
        images = result.images if hasattr(result, "images") else result[0]
        copies, produced = from_output(images, frames)
        nsfw = getattr(result, "nsfw_content_detected", None) or [None] * len(frames)
        infos: list[dict[str, Any]] = []
        for made, flagged in zip(produced, nsfw, strict=True):
            info: dict[str, Any] = {}
            if made is not None:
                info["model_output_size"] = list(made)
            if flagged:
                info["nsfw_content_detected"] = True
            infos.append(info)
        return copies, infos

    @staticmethod
    def outcome(frame: np.ndarray, info: dict[str, Any]) -> Copy | Refusal:
        """A pipeline's copy, or a :class:`Refusal` when its safety checker blacked it out: a black frame is
        not a copy, and the chain must not go on from it (the engine asks again, then ends it ``refused``)."""
        if info.get("nsfw_content_detected"):  # the same seed would be flagged again: no retry
            reason = "the pipeline's safety checker flagged the copy and blacked it out"
            return Refusal(reason, info, retryable=False)
        return Copy(frame, info)

    def describe_pipeline(self) -> dict[str, Any]:
        scheduler = getattr(self.pipe, "scheduler", None)
        return {
            "kind": self.kind,
            **self.model_ref.describe(),
            "pipeline": type(self.pipe).__name__,
            "scheduler": type(scheduler).__name__ if scheduler is not None else None,
            "config_sha256": config_hash(self.model_ref.path),
            "device": str(self.device),
            "dtype": dtype_name(self.dtype),
            "cpu_offload": self.config.cpu_offload,
            "variant": getattr(self.config, "variant", None),
            "ignored_options": sorted(self.ignored),
            **library_versions("diffusers", "transformers", "torch", "huggingface_hub"),
        }


def group_by(keys: Sequence[Any]) -> dict[Any, list[int]]:
    """Indices of equal keys, in first-seen order (frames that can share one pipeline call)."""
    groups: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups
