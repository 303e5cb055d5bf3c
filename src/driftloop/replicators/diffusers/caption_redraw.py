"""Caption → redraw: a captioner describes the frame, a text-to-image pipeline draws the description.

``caption-redraw:captioner=<id>,pipeline=<id>``: the captioner is any transformers image-to-text model
(BLIP ``BlipForConditionalGeneration``, Florence-2, a chat VLM through ``AutoModelForImageTextToText``), the
pipeline any diffusers text-to-image pipeline (``AutoPipelineForText2Image``). Nothing of the image but its
caption survives a step, so this is the purest test of what a model's words keep. The caption of every
step is returned with its copy (``Copy.info["caption"]``) and stored with the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftloop.errors import SpecError
from driftloop.replicators.base import Backend, Frames, Outcome, StepContext, WeightsStatus
from driftloop.replicators.diffusers.captioner import Captioner
from driftloop.replicators.diffusers.hub import combined_status, ensure_available, find_model, status_of
from driftloop.replicators.diffusers.pipeline import PipelineReplicator, group_by
from driftloop.replicators.diffusers.presets import make_backends
from driftloop.replicators.diffusers.runtime import (
    RuntimeConfig,
    SeedPolicy,
    check_positive,
    dependency_note,
    require,
)
from driftloop.replicators.spec import format_spec


@dataclass(frozen=True)
class CaptionRedrawConfig(RuntimeConfig):
    """``caption-redraw:captioner=<id>,pipeline=<id>,steps=20,guidance=7.5``.

    ``caption_prompt``: text the captioner starts from (BLIP: "a photograph of"; a chat VLM: the question;
    Florence-2: a task token, default ``<MORE_DETAILED_CAPTION>``). ``prefix``/``suffix`` wrap the caption
    into the drawing prompt. ``size``: the side the pipeline draws at (0: the frame's size).
    """

    captioner: str = ""
    pipeline: str = ""
    caption_prompt: str = ""
    max_new_tokens: int = 40
    prefix: str = ""
    suffix: str = ""
    negative_prompt: str = ""
    steps: int = 20
    guidance: float | None = None
    size: int = 0
    seed_policy: SeedPolicy = "fresh"
    variant: str | None = None

    def validate(self, spec: str) -> None:
        self.validate_runtime(spec)
        if not self.captioner or not self.pipeline:
            raise SpecError(
                f"model spec {spec!r}: give both models, e.g. caption-redraw:captioner="
                "Salesforce/blip-image-captioning-base,pipeline=stabilityai/sd-turbo"
            )
        check_positive(spec, "steps", self.steps)
        check_positive(spec, "max_new_tokens", self.max_new_tokens)
        if self.size < 0:
            raise SpecError(f"model spec {spec!r}: size must be ≥ 0 (0 = the frame's size)")


class CaptionRedrawReplicator(PipelineReplicator):
    """Caption the batch in one ``generate`` call, draw the captions in one pipeline call."""

    kind = "caption-redraw"
    what = "text-to-image pipeline"

    def __init__(self, name: str, config: CaptionRedrawConfig) -> None:
        self.name = name
        spec = format_spec(name, config)
        require(spec, "diffusers", "transformers", "torch")
        # both models checked before either is loaded: one error names everything that is missing
        ensure_available(find_model(config.captioner, ("config.json",)), find_model(config.pipeline))
        super().__init__(spec, config, config.pipeline)
        self.captioner = Captioner(
            config.captioner,
            self.device,
            self.dtype,
            prompt=config.caption_prompt,
            max_new_tokens=config.max_new_tokens,
            spec=self.spec,
        )

    def load(self, hub_kwargs: dict[str, Any]) -> Any:
        from diffusers import AutoPipelineForText2Image  # heavy, optional: only when a model runs

        return AutoPipelineForText2Image.from_pretrained(
            self.model_ref.load_from, **self.pretrained_kwargs(), **hub_kwargs
        )

    def replicate(
        self, frames: Frames, seeds: list[int], context: StepContext | None = None
    ) -> list[Outcome]:
        c = self.config
        used_seeds, policy = self.noise_for(seeds, context)
        captions = self.captioner.caption(frames)
        prompts = [" ".join(p for p in (c.prefix, cap, c.suffix) if p) for cap in captions]
        out: list[Outcome | None] = [None] * len(frames)
        for idx in group_by([f.shape for f in frames]).values():
            kwargs: dict[str, Any] = {"prompt": [prompts[i] for i in idx], "num_inference_steps": c.steps}
            if c.negative_prompt:
                kwargs["negative_prompt"] = [c.negative_prompt] * len(idx)
            if c.guidance is not None:
                kwargs["guidance_scale"] = c.guidance
            copies, infos = self.call(
                [frames[i] for i in idx], [used_seeds[i] for i in idx], kwargs, image_input=False
            )
            for i, frame, info in zip(idx, copies, infos, strict=True):
                extra = {"prompt": prompts[i]} if prompts[i] != captions[i] else {}
                out[i] = self.outcome(
                    frame,
                    {
                        "caption": captions[i],
                        **extra,
                        "noise_seed": used_seeds[i],
                        "seed_policy": policy,
                        **info,
                    },
                )
        return [o for o in out if o is not None]

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {
            **self.describe_pipeline(),
            "captioner": self.captioner.describe(),
            "prefix": c.prefix,
            "suffix": c.suffix,
            "negative_prompt": c.negative_prompt,
            "steps": c.steps,
            "guidance": c.guidance,
            "seed_policy": c.seed_policy,
        }


def _status(config: CaptionRedrawConfig) -> WeightsStatus:
    return combined_status(
        status_of(config.captioner, ("config.json",)), status_of(config.pipeline, ("model_index.json",))
    )


def backends() -> list[Backend]:
    """The generic ``caption-redraw`` backend and its preset ``blip+sd-turbo``."""
    note = dependency_note("diffusers", "transformers")
    generic = Backend(
        name="caption-redraw",
        summary="caption, then draw: caption-redraw:captioner=<id>,pipeline=<id>",
        config_type=CaptionRedrawConfig,
        build=lambda config: CaptionRedrawReplicator("caption-redraw", config),
        weights_status=_status,
        notes=note or "each frame's caption is stored with it",
    )
    return [
        generic,
        *make_backends("caption-redraw", CaptionRedrawConfig, CaptionRedrawReplicator, _status, note),
    ]
