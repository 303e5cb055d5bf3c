"""The tiny autoencoders' variants (TAESD, TAESDXL, TAESD3, TAEF1, TAEF2), their weight files and the
spec parameters of a TAE replicator: data shared by the light registration (:mod:`.tae`) and the torch
runtime (:mod:`.tae_runtime`), so neither imports the other at import time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from driftloop.errors import SpecError
from driftloop.replicators.base import Needs, device_needs
from driftloop.weights import WeightFile

UPSTREAM = "https://github.com/madebyollin/taesd/raw/5cccb12dc72074a4be35680c3b108548a7c69978"


@dataclass(frozen=True)
class Variant:
    """One member of the family: its latent width, whether it has pool branches, its pinned files."""

    name: str
    latent_channels: int
    pool: bool
    summary: str
    encoder_sha256: str | None = None
    decoder_sha256: str | None = None

    def files(self) -> list[WeightFile]:
        return [
            WeightFile(
                f"{self.name}_encoder.pth", f"{UPSTREAM}/{self.name}_encoder.pth", self.encoder_sha256
            ),
            WeightFile(
                f"{self.name}_decoder.pth", f"{UPSTREAM}/{self.name}_decoder.pth", self.decoder_sha256
            ),
        ]


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "taef2",
            32,
            True,
            "Tiny AutoEncoder for the FLUX.2 latent space (32 channels)",
            "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
            "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5",
        ),
        Variant("taef1", 16, False, "Tiny AutoEncoder for the FLUX.1 latent space (16 channels)"),
        Variant("taesd3", 16, False, "Tiny AutoEncoder for the SD3 latent space (16 channels)"),
        # taesdxl and taesd: the sha256 published for the upstream files (unchanged since before the pinned
        # commit); taef1 and taesd3 have no published hash yet, so their downloads are not checked.
        Variant(
            "taesdxl",
            4,
            False,
            "Tiny AutoEncoder for the SDXL latent space (4 channels)",
            "a5648de089aba6b641e505c0f132b2dc7ff70ab6070c31be5e624e807e711c5e",
            "a3956b8a7a763f251c7357aad6375dacdb6d971121c73e97a3069fc33a94fe1e",
        ),
        Variant(
            "taesd",
            4,
            False,
            "Tiny AutoEncoder for the SD 1/2 latent space (4 channels)",
            "15bc6128f0ac51c673d3427216082ebfa62402ffc89763af74edfe259b32d49d",
            "02873377c3f4659cd9f9adb2f718dcb434ba4c7bba3af3ee7bb95cbdabe2d3cf",
        ),
    )
}


@dataclass(frozen=True)
class TAEConfig:
    """Spec parameters of a tiny autoencoder: ``taef2:dtype=bf16,device=cuda,weights=/models``."""

    dtype: Literal["fp32", "bf16"] = "fp32"
    device: str = "auto"
    weights: str | None = None
    threads: int = 0

    def needs(self) -> Needs:
        """Where a replica can run, from the spec alone: ~0.8 GB of activations for one 512² frame in fp32."""
        return device_needs(self.device, memory_mb=1024, cpus=float(self.threads or 1))

    def validate(self, spec: str) -> None:
        if self.device != "auto" and not self.device.startswith(("cpu", "cuda", "mps")):
            raise SpecError(f"model spec {spec!r}: device={self.device!r} is not auto, cpu, cuda[:N] or mps")
        if self.threads < 0:
            raise SpecError(f"model spec {spec!r}: threads must be ≥ 0 (0 = PyTorch's default)")
