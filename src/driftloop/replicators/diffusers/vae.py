"""A full VAE round trip (🧨 diffusers ``AutoencoderKL``): the part of every latent diffusion model that never
sees a prompt.

``vae:<hub id or folder>`` (``vae:stabilityai/sd-vae-ft-mse``, a FLUX or SDXL pipeline's ``vae`` folder)
does, per frame, what a pipeline does around its denoiser: encode → the latent distribution's mode (or a
sample drawn with the step seed: ``sample=true``) → ``(z − shift_factor) · scaling_factor`` →
``/ scaling_factor + shift_factor`` → decode, with both factors read from the VAE's config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from driftloop.errors import SpecError
from driftloop.replicators.base import Backend, Copy, Frames, StepContext, WeightsStatus
from driftloop.replicators.diffusers.hub import VAE_MARKERS as _MARKERS
from driftloop.replicators.diffusers.hub import find_model, load_model, status_of
from driftloop.replicators.diffusers.presets import make_backends
from driftloop.replicators.diffusers.runtime import (
    RuntimeConfig,
    dependency_note,
    diffusers_dtype_kwarg,
    dtype_name,
    generators,
    library_versions,
    make_requirements,
    noise_seeds,
    oom_guard,
    pick_device,
    pick_dtype,
    require,
    set_threads,
)
from driftloop.replicators.spec import format_spec


@dataclass(frozen=True)
class VAEConfig(RuntimeConfig):
    """``vae:<hub id or folder>,sample=false,tiling=false,subfolder=vae``.

    ``subfolder``: where the VAE is inside a pipeline repo (found automatically: the root, else ``vae``).
    ``dtype=auto`` is fp16 on a GPU unless the VAE's config asks to run in fp32 (``force_upcast``).
    """

    model: str = ""
    subfolder: str | None = None
    sample: bool = False
    tiling: bool = False
    variant: str | None = None

    def validate(self, spec: str) -> None:
        self.validate_runtime(spec)
        if not self.model:
            raise SpecError(
                f"model spec {spec!r}: give the VAE, e.g. vae:stabilityai/sd-vae-ft-mse or vae:/path/to/vae"
            )
        if self.cpu_offload:
            raise SpecError(
                f"model spec {spec!r}: cpu_offload is for pipelines; a VAE alone runs on its device"
            )


class VAEReplicator:
    """Encode and decode each frame with an ``AutoencoderKL``; one batched round trip per call."""

    def __init__(self, name: str, config: VAEConfig) -> None:
        self.name = name
        self.config = config
        self.spec = format_spec(name, config, "model")
        require(self.spec, "diffusers", "torch")
        import torch  # heavy, optional: only when a model runs

        self.model_ref = find_model(config.model, _MARKERS)
        self.device = pick_device(config.device)
        set_threads(config.threads)
        self.subfolder = config.subfolder if config.subfolder is not None else self._find_subfolder()
        self.vae = load_model(self.model_ref, "VAE", self._load)
        vae_config = self.vae.config
        wanted = pick_dtype(config.dtype, self.device)
        if config.dtype == "auto" and getattr(vae_config, "force_upcast", False):
            wanted = torch.float32
        self.dtype = wanted
        with oom_guard(self.spec, [], self.device):
            self.vae = self.vae.to(self.device).eval()
            if self.dtype != torch.float32:
                self.vae = self.vae.to(self.dtype)
        self.vae.requires_grad_(False)
        if config.tiling:
            self.vae.enable_tiling()
        self.scaling_factor = float(getattr(vae_config, "scaling_factor", 1.0) or 1.0)
        shift = getattr(vae_config, "shift_factor", None)
        self.shift_factor = float(shift) if shift is not None else 0.0
        self.requirements = make_requirements(
            size_multiple=2 ** (len(vae_config.block_out_channels) - 1),
            max_batch=config.max_batch or None,
            device=str(self.device),
            deterministic=self.device.type == "cpu",
        )

    def _find_subfolder(self) -> str | None:
        """The VAE of a pipeline folder or repo lives in ``vae/``; a VAE repo has its config at the root."""
        path = self.model_ref.path
        if path is None:
            return None  # a hub download: _load tries the root, then vae/
        if (path / "config.json").is_file():
            return None
        if (path / "vae" / "config.json").is_file():
            return "vae"
        return None

    def _load(self, hub_kwargs: dict[str, Any]) -> Any:
        import torch  # heavy, optional: only when a model runs
        from diffusers import AutoencoderKL  # heavy, optional: only when a model runs

        kwargs: dict[str, Any] = {**diffusers_dtype_kwarg(torch.float32), **hub_kwargs}
        if self.config.variant:
            kwargs["variant"] = self.config.variant
        if self.subfolder is None and self.model_ref.source == "hub":
            try:
                return AutoencoderKL.from_pretrained(self.model_ref.load_from, **kwargs)
            except OSError as exc:
                if "config.json" not in str(exc):
                    raise
                self.subfolder = "vae"  # a pipeline repo
        if self.subfolder:
            kwargs["subfolder"] = self.subfolder
        return AutoencoderKL.from_pretrained(self.model_ref.load_from, **kwargs)

    def replicate(
        self, frames: Frames, seeds: list[int], context: StepContext | None = None
    ) -> list[np.ndarray] | list[Copy]:
        import torch  # heavy, optional: only when a model runs

        with oom_guard(self.spec, frames, self.device), torch.inference_mode():
            x = torch.from_numpy(np.stack(frames)).to(self.device)
            x = x.permute(0, 3, 1, 2).to(self.dtype).div(127.5).sub(1.0)
            dist = self.vae.encode(x).latent_dist
            if self.config.sample:
                used, _ = noise_seeds(seeds, None, "fresh")
                latents = dist.sample(generator=generators(used))
            else:
                latents = dist.mode()
            z = (latents - self.shift_factor) * self.scaling_factor
            decoded = self.vae.decode(z / self.scaling_factor + self.shift_factor).sample
            images = decoded.float().div(2).add(0.5).clamp(0, 1).mul(255).round().to(torch.uint8)
            array = images.permute(0, 2, 3, 1).contiguous().cpu().numpy()
        out = [np.ascontiguousarray(a) for a in array]
        if self.config.sample:
            return [Copy(f, {"noise_seed": s}) for f, s in zip(out, used, strict=True)]
        return out

    def describe(self) -> dict[str, Any]:
        c = self.vae.config
        return {
            "kind": "vae",
            **self.model_ref.describe(),
            "subfolder": self.subfolder,
            "class": type(self.vae).__name__,
            "latent_channels": c.latent_channels,
            "scaling_factor": self.scaling_factor,
            "shift_factor": self.shift_factor,
            "sample": self.config.sample,
            "device": str(self.device),
            "dtype": dtype_name(self.dtype),
            **library_versions("diffusers", "torch", "huggingface_hub"),
        }


def _status(config: VAEConfig) -> WeightsStatus:
    return status_of(config.model, _MARKERS)


def backends() -> list[Backend]:
    """The generic ``vae`` backend and its preset ``sd-vae``."""
    note = dependency_note("diffusers")
    generic = Backend(
        name="vae",
        summary="an AutoencoderKL round trip: vae:<hub id or folder>",
        config_type=VAEConfig,
        build=lambda config: VAEReplicator("vae", config),
        positional="model",
        weights_status=_status,
        notes=note or "sample=true draws the latent (default: its mode)",
    )
    return [generic, *make_backends("vae", VAEConfig, VAEReplicator, _status, note)]
