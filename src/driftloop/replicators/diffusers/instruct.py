"""Instruction editors ("recreate this image exactly") as replicators.

``instruct:<hub id or folder>`` loads any diffusers pipeline whose call takes an image and a text
instruction — FLUX.1 Kontext (``FluxKontextPipeline``), Qwen-Image-Edit (``QwenImageEditPipeline``),
InstructPix2Pix, ... — with ``DiffusionPipeline.from_pretrained`` and calls it with ``image=`` and
``prompt=`` (the instruction; default: the trend's "Create the exact replica of this image, don't change
a thing."). The presets ``flux-kontext`` and ``qwen-image-edit`` are this backend with other defaults.

These models choose their own working resolution (Kontext ≈1 MP whatever the input); the copy is resized
back to the frame's size with Lanczos, and the size the model produced is stored with the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftloop.errors import SpecError
from driftloop.replicators.base import Backend, Frames, Outcome, StepContext
from driftloop.replicators.diffusers.hub import status_of
from driftloop.replicators.diffusers.pipeline import PipelineReplicator, group_by
from driftloop.replicators.diffusers.presets import INSTRUCTION, make_backends
from driftloop.replicators.diffusers.runtime import RuntimeConfig, SeedPolicy, check_positive, dependency_note
from driftloop.replicators.spec import format_spec


@dataclass(frozen=True)
class InstructConfig(RuntimeConfig):
    """``instruct:<hub id or folder>,instruction=...,steps=28,guidance=2.5``.

    ``guidance`` → ``guidance_scale``, ``true_cfg`` → ``true_cfg_scale`` (Qwen-Image-Edit, Kontext with a
    negative prompt), ``image_guidance`` → ``image_guidance_scale`` (InstructPix2Pix); unset: the pipeline's
    defaults. ``size``: the side the model works at (0: the frame's size where the pipeline lets it).
    """

    model: str = ""
    instruction: str = INSTRUCTION
    negative_prompt: str = ""
    steps: int = 28
    guidance: float | None = None
    true_cfg: float | None = None
    image_guidance: float | None = None
    size: int = 0
    seed_policy: SeedPolicy = "fresh"
    variant: str | None = None

    def validate(self, spec: str) -> None:
        self.validate_runtime(spec)
        if not self.model:
            raise SpecError(
                f"model spec {spec!r}: give the pipeline, e.g. instruct:black-forest-labs/FLUX.1-Kontext-dev "
                "or instruct:/path/to/saved/pipeline"
            )
        check_positive(spec, "steps", self.steps)
        if self.size < 0:
            raise SpecError(f"model spec {spec!r}: size must be ≥ 0 (0 = the frame's size)")


class InstructReplicator(PipelineReplicator):
    """A pipeline called with ``image=`` and ``prompt=`` (the instruction), the batch in one call."""

    kind = "instruct"
    what = "instruction-editing pipeline"

    def __init__(self, name: str, config: InstructConfig) -> None:
        self.name = name
        super().__init__(format_spec(name, config, "model"), config, config.model)
        missing = {"image", "prompt"} - self.call_params
        if self.call_params and missing:
            raise SpecError(
                f"model {config.model!r} ({type(self.pipe).__name__}) is not an instruction editor: its call "
                f"takes no {' or '.join(sorted(missing))}= argument (for image-to-image use img2img:)"
            )

    def load(self, hub_kwargs: dict[str, Any]) -> Any:
        from diffusers import DiffusionPipeline  # heavy, optional: only when a model runs

        return DiffusionPipeline.from_pretrained(
            self.model_ref.load_from, **self.pretrained_kwargs(), **hub_kwargs
        )

    def replicate(
        self, frames: Frames, seeds: list[int], context: StepContext | None = None
    ) -> list[Outcome]:
        c = self.config
        used_seeds, policy = self.noise_for(seeds, context)
        out: list[Outcome | None] = [None] * len(frames)
        for idx in group_by([f.shape for f in frames]).values():
            kwargs: dict[str, Any] = {"prompt": [c.instruction] * len(idx), "num_inference_steps": c.steps}
            if c.negative_prompt:
                kwargs["negative_prompt"] = [c.negative_prompt] * len(idx)
            for key, value in (
                ("guidance_scale", c.guidance),
                ("true_cfg_scale", c.true_cfg),
                ("image_guidance_scale", c.image_guidance),
            ):
                if value is not None:
                    kwargs[key] = value
            if c.size:
                h, w = frames[idx[0]].shape[:2]
                scale = c.size / max(h, w)
                kwargs["max_area"] = round(w * scale) * round(h * scale)
            copies, infos = self.call([frames[i] for i in idx], [used_seeds[i] for i in idx], kwargs)
            for i, frame, info in zip(idx, copies, infos, strict=True):
                out[i] = self.outcome(frame, {"noise_seed": used_seeds[i], "seed_policy": policy, **info})
        return [o for o in out if o is not None]

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {
            **self.describe_pipeline(),
            "instruction": c.instruction,
            "negative_prompt": c.negative_prompt,
            "steps": c.steps,
            "guidance": c.guidance,
            "true_cfg": c.true_cfg,
            "image_guidance": c.image_guidance,
            "seed_policy": c.seed_policy,
        }


def _status(config: InstructConfig):
    return status_of(config.model, ("model_index.json",))


def backends() -> list[Backend]:
    """The generic ``instruct`` backend and its presets (flux-kontext, qwen-image-edit)."""
    note = dependency_note("diffusers", "transformers")
    generic = Backend(
        name="instruct",
        summary="an instruction editor (image + prompt): instruct:<hub id or folder>",
        config_type=InstructConfig,
        build=lambda config: InstructReplicator("instruct", config),
        positional="model",
        weights_status=_status,
        notes=note or "instruction=, steps, guidance, true_cfg",
    )
    return [generic, *make_backends("instruct", InstructConfig, InstructReplicator, _status, note)]
