"""Image-to-image diffusion (🧨 diffusers ``AutoPipelineForImage2Image``) as a replicator.

``img2img:<hub id or folder>,strength=0.4,steps=20`` loads any image-to-image pipeline (SD 1.5, SD 2.x,
SDXL, the turbos, FLUX img2img, ...) the way diffusers users do: a hub id resolved through the Hugging Face
cache (``HF_HUB_OFFLINE=1`` honoured) or a local ``save_pretrained`` folder. The presets ``sd-turbo``,
``sdxl-turbo``, ``sd15`` and ``sdxl`` are this backend with other defaults (see :mod:`.presets`).

One step: the batch of chains goes through ONE pipeline call, with one ``torch.Generator`` per frame seeded
from that frame's step seed (``seed_policy=fresh``), or from its chain seed (``seed_policy=fixed``: the same
noise at every step, which tends to pull a chain to a fixed point). ``strength`` may follow a schedule from
``strength`` (step 1) to ``strength_end`` (the run's last step), ``linear`` or ``cosine``, as in A1111's
loopback. ``prompt=auto`` captions each chain's input once with ``captioner`` and reuses the caption; it is
stored with every frame (``info["prompt"]``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from driftloop.errors import SpecError
from driftloop.frames import frame_sha256
from driftloop.replicators.base import Backend, Frames, Outcome, StepContext
from driftloop.replicators.diffusers.captioner import DEFAULT_CAPTIONER, Captioner
from driftloop.replicators.diffusers.hub import combined_status, status_of
from driftloop.replicators.diffusers.pipeline import PipelineReplicator, group_by
from driftloop.replicators.diffusers.presets import make_backends
from driftloop.replicators.diffusers.runtime import (
    RuntimeConfig,
    Schedule,
    SeedPolicy,
    check_fraction,
    check_positive,
    dependency_note,
    scheduled,
)
from driftloop.replicators.spec import format_spec

_AUTO_PROMPTS_KEPT = 100_000


@dataclass(frozen=True)
class Img2ImgConfig(RuntimeConfig):
    """``img2img:<hub id or folder>,prompt=...,strength=0.5,steps=20,guidance=7.5,size=512``.

    ``prompt=auto`` captions each chain's input with ``captioner``. ``strength_end`` + ``schedule`` (linear,
    cosine) move the strength from ``strength`` at step 1 to ``strength_end`` at the run's last step
    (``schedule_steps``, if set, instead). ``size``: the side the model works at (0: the frame's size).
    ``guidance``: the pipeline's default when unset. ``variant``: a weights variant such as fp16.
    ``safety_checker=false`` drops the checker of pipelines that ship one (it blacks out flagged frames).
    """

    model: str = ""
    prompt: str = ""
    negative_prompt: str = ""
    strength: float = 0.5
    strength_end: float | None = None
    schedule: Schedule = "constant"
    schedule_steps: int = 0
    steps: int = 20
    guidance: float | None = None
    size: int = 0
    seed_policy: SeedPolicy = "fresh"
    captioner: str = DEFAULT_CAPTIONER
    variant: str | None = None
    safety_checker: bool = True

    def validate(self, spec: str) -> None:
        self.validate_runtime(spec)
        if not self.model:
            raise SpecError(
                f"model spec {spec!r}: give the pipeline, e.g. img2img:stabilityai/sd-turbo or "
                "img2img:/path/to/saved/pipeline"
            )
        check_fraction(spec, "strength", self.strength)
        check_fraction(spec, "strength_end", self.strength_end)
        check_positive(spec, "steps", self.steps)
        if self.size < 0 or self.schedule_steps < 0:
            raise SpecError(f"model spec {spec!r}: size and schedule_steps must be ≥ 0 (0 = automatic)")
        if self.schedule != "constant" and self.strength_end is None:
            raise SpecError(f"model spec {spec!r}: schedule={self.schedule} needs strength_end=")
        if self.schedule == "constant" and self.strength_end is not None:
            raise SpecError(f"model spec {spec!r}: strength_end needs schedule=linear or schedule=cosine")
        low = min(self.strength, self.strength_end if self.strength_end is not None else 1.0)
        if int(self.steps * low) < 1:
            need = int(1 / low) + (0 if (1 / low).is_integer() else 1)
            raise SpecError(
                f"model spec {spec!r}: steps×strength must be at least 1 (diffusers denoises int(steps × "
                f"strength) steps; {self.steps}×{low} gives none): use steps={need} or more"
            )


class Img2ImgReplicator(PipelineReplicator):
    """A diffusers image-to-image pipeline; one ``replicate`` call is one pipeline call per strength."""

    kind = "img2img"
    what = "img2img pipeline"

    def __init__(self, name: str, config: Img2ImgConfig) -> None:
        self.name = name
        super().__init__(format_spec(name, config, "model"), config, config.model)
        self._auto_prompts: OrderedDict[str, str] = OrderedDict()

    def load(self, hub_kwargs: dict[str, Any]) -> Any:
        from diffusers import AutoPipelineForImage2Image  # heavy, optional: only when a model runs

        extra = self.pretrained_kwargs()
        if not self.config.safety_checker:
            extra.update(safety_checker=None, requires_safety_checker=False)
        return AutoPipelineForImage2Image.from_pretrained(self.model_ref.load_from, **extra, **hub_kwargs)

    @cached_property
    def captioner(self) -> Captioner:
        """Loaded on first use of ``prompt=auto``, on the pipeline's device."""
        return Captioner(self.config.captioner, self.device, self.dtype, spec=self.spec)

    def strength_at(self, step: int | None, n_steps: int | None) -> float:
        """The strength of ``step``; without a step (no engine context) the start value."""
        c = self.config
        if step is None or n_steps is None:
            return c.strength
        return scheduled(c.strength, c.strength_end, c.schedule, step, c.schedule_steps or n_steps)

    def _prompts(self, frames: Frames, context: StepContext | None) -> tuple[list[str], list[dict[str, Any]]]:
        """Per-frame prompts; with ``prompt=auto`` each chain's frame 0 is captioned once.

        The engine's context names each chain's frame 0 (read back from the store on a resumed run, so a
        resumed chain gets the very prompt it started with); called without one, the frame itself is
        captioned.
        """
        n = len(frames)
        if self.config.prompt != "auto":
            return [self.config.prompt] * n, [{} for _ in range(n)]
        origins = context.origins if context is not None and context.origins is not None else frames
        shas = [frame_sha256(f) for f in origins]
        new = list({sha: i for i, sha in enumerate(shas) if sha not in self._auto_prompts}.values())
        if new:
            captions = self.captioner.caption([origins[i] for i in new])
            for i, caption in zip(new, captions, strict=True):
                self._remember(shas[i], caption)
        prompts = [self._auto_prompts[sha] for sha in shas]
        return prompts, [{"prompt": prompt} for prompt in prompts]

    def _remember(self, sha: str, prompt: str) -> None:
        self._auto_prompts[sha] = prompt
        self._auto_prompts.move_to_end(sha)
        while len(self._auto_prompts) > _AUTO_PROMPTS_KEPT:
            self._auto_prompts.popitem(last=False)

    def replicate(
        self, frames: Frames, seeds: list[int], context: StepContext | None = None
    ) -> list[Outcome]:
        c = self.config
        n = len(frames)
        used_seeds, policy = self.noise_for(seeds, context)
        steps = context.steps if context is not None else [None] * n
        n_steps = context.n_steps if context is not None else None
        strengths = [self.strength_at(s, n_steps) for s in steps]
        prompts, prompt_infos = self._prompts(frames, context)
        out: list[Outcome | None] = [None] * n
        for (_, strength), idx in group_by(
            [(f.shape, s) for f, s in zip(frames, strengths, strict=True)]
        ).items():
            kwargs: dict[str, Any] = {
                "prompt": [prompts[i] for i in idx],
                "strength": strength,
                "num_inference_steps": c.steps,
            }
            if c.negative_prompt:
                kwargs["negative_prompt"] = [c.negative_prompt] * len(idx)
            if c.guidance is not None:
                kwargs["guidance_scale"] = c.guidance
            copies, infos = self.call([frames[i] for i in idx], [used_seeds[i] for i in idx], kwargs)
            for i, frame, info in zip(idx, copies, infos, strict=True):
                info = {"noise_seed": used_seeds[i], "seed_policy": policy, "strength": strength,
                        **prompt_infos[i], **info}  # fmt: skip
                out[i] = self.outcome(frame, info)
        return [o for o in out if o is not None]

    def describe(self) -> dict[str, Any]:
        c = self.config
        out = {
            **self.describe_pipeline(),
            "prompt": c.prompt,
            "negative_prompt": c.negative_prompt,
            "strength": c.strength,
            "strength_end": c.strength_end,
            "schedule": c.schedule,
            "steps": c.steps,
            "guidance": c.guidance,
            "seed_policy": c.seed_policy,
        }
        if c.prompt == "auto":
            out["captioner"] = c.captioner
        return out


def _status(config: Img2ImgConfig):
    main = status_of(config.model, ("model_index.json",))
    if config.prompt == "auto":
        return combined_status(main, status_of(config.captioner, ("config.json",)))
    return main


def backends() -> list[Backend]:
    """The generic ``img2img`` backend and its presets (sd-turbo, sdxl-turbo, sd15, sdxl)."""
    note = dependency_note("diffusers", "transformers")
    generic = Backend(
        name="img2img",
        summary="any diffusers img2img pipeline: img2img:<hub id or folder>",
        config_type=Img2ImgConfig,
        build=lambda config: Img2ImgReplicator("img2img", config),
        positional="model",
        weights_status=_status,
        notes=note or "strength, steps, prompt=auto, seed_policy, schedule",
    )
    return [generic, *make_backends("img2img", Img2ImgConfig, Img2ImgReplicator, _status, note)]
