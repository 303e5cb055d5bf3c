"""Presets: the diffusion models users type by name, as configs of the generic backends with other defaults.

``sd-turbo`` is ``img2img:stabilityai/sd-turbo,steps=2,strength=0.5,guidance=0,variant=fp16``; every
parameter of the generic backend can still be given (``sd-turbo:strength=0.3,steps=4``), and a bare argument
replaces the hub id with a local copy (``sd-turbo:/models/sd-turbo``). Download sizes are in
:data:`driftloop.replicators.diffusers.hub.KNOWN_MODELS`, shown by ``driftloop models``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from driftloop.replicators.base import Backend
from driftloop.replicators.diffusers.hub import DEFAULT_CAPTIONER, model_info
from driftloop.replicators.diffusers.runtime import preset_config

INSTRUCTION = "Create the exact replica of this image, don't change a thing."


@dataclass(frozen=True)
class Preset:
    """A named configuration of a backend family (``img2img``, ``instruct``, ``vae``, ``caption-redraw``)."""

    name: str
    family: str
    summary: str
    defaults: dict[str, Any] = field(default_factory=dict)
    positional: str | None = "model"

    @property
    def models(self) -> list[str]:
        keys = ("model", "captioner", "pipeline")
        return [self.defaults[k] for k in keys if k in self.defaults]

    @property
    def size(self) -> str:
        sizes = [model_info(m).size for m in self.models]
        return " + ".join(sizes)

    def notes(self, dependency_note: str = "") -> str:
        """The ``driftloop models`` note: what to install, else the family and the download size."""
        return dependency_note or f"{self.family} preset, {self.size}"


PRESETS: list[Preset] = [
    Preset(
        "sd-turbo",
        "img2img",
        "SD-Turbo img2img: 2 steps × strength 0.5, no guidance",
        {"model": "stabilityai/sd-turbo", "steps": 2, "strength": 0.5, "guidance": 0.0, "variant": "fp16"},
    ),
    Preset(
        "sdxl-turbo",
        "img2img",
        "SDXL-Turbo img2img: 2 steps × strength 0.5, no guidance",
        {"model": "stabilityai/sdxl-turbo", "steps": 2, "strength": 0.5, "guidance": 0.0, "variant": "fp16"},
    ),
    Preset(
        "sd15",
        "img2img",
        "Stable Diffusion 1.5 img2img: 30 steps × strength 0.5",
        {
            "model": "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "steps": 30,
            "strength": 0.5,
            "variant": "fp16",
        },
    ),
    Preset(
        "sdxl",
        "img2img",
        "SDXL base 1.0 img2img: 30 steps × strength 0.5",
        {
            "model": "stabilityai/stable-diffusion-xl-base-1.0",
            "steps": 30,
            "strength": 0.5,
            "variant": "fp16",
        },
    ),
    Preset(
        "flux-kontext",
        "instruct",
        "FLUX.1 Kontext dev asked for an exact replica (gated on the hub)",
        {"model": "black-forest-labs/FLUX.1-Kontext-dev", "steps": 28, "guidance": 2.5, "dtype": "bf16"},
    ),
    Preset(
        "qwen-image-edit",
        "instruct",
        "Qwen-Image-Edit asked for an exact replica",
        {
            "model": "Qwen/Qwen-Image-Edit",
            "steps": 50,
            "true_cfg": 4.0,
            "negative_prompt": " ",
            "dtype": "bf16",
        },
    ),
    Preset(
        "sd-vae",
        "vae",
        "SD 1.x/2.x VAE (ft-MSE) round trip, no prompt",
        {"model": "stabilityai/sd-vae-ft-mse"},
    ),
    Preset(
        "blip+sd-turbo",
        "caption-redraw",
        "BLIP captions each frame, SD-Turbo draws it (1 step)",
        {
            "captioner": DEFAULT_CAPTIONER,
            "pipeline": "stabilityai/sd-turbo",
            "steps": 1,
            "guidance": 0.0,
            "variant": "fp16",
        },
        positional=None,
    ),
]


def presets(family: str | None = None) -> list[Preset]:
    return [p for p in PRESETS if family is None or p.family == family]


def make_backends(
    family: str,
    base_config: type,
    replicator: Callable[[str, Any], Any],
    status: Callable[[Any], Any],
    dependency_note: str = "",
) -> list[Backend]:
    """One Backend per preset of ``family``, built by ``replicator(name, config)``."""
    out = []
    for p in presets(family):
        config_type = preset_config(base_config, p.name, p.summary, **p.defaults)
        out.append(
            Backend(
                name=p.name,
                summary=p.summary,
                config_type=config_type,
                build=lambda config, name=p.name: replicator(name, config),
                positional=p.positional,
                weights_status=status,
                notes=p.notes(dependency_note),
            )
        )
    return out
