"""Tiny autoencoders (TAESD, TAESDXL, TAESD3, TAEF1, TAEF2) as replicators: the family, its spec parameters,
where its weights are, and its registration. Nothing here imports PyTorch; the model and how it runs are in
:mod:`driftloop.replicators.tae_runtime`, imported when a TAE replicator is built.

One replication is ``decode(encode(x))`` clamped to [0, 1] and quantised to 8 bits: the part of a latent
diffusion model that every image passes through, small enough to run 101 times on a laptop CPU.
"""

from __future__ import annotations

from driftloop.replicators.base import Backend, Replicator, WeightsStatus
from driftloop.replicators.tae_variants import VARIANTS, TAEConfig, Variant
from driftloop.weights import explicit_missing, find_local


def build(variant: Variant, config: TAEConfig) -> Replicator:
    """A TAE replicator (its weights found, not yet loaded)."""
    # torch is heavy (~1.5 s, ~250 MB): imported only when a TAE replicator is built
    from driftloop.replicators.tae_runtime import TAEReplicator

    return TAEReplicator(variant, config)


def _status(variant: Variant):
    def status(config: TAEConfig) -> WeightsStatus:
        found = find_local(variant.name, variant.files(), config.weights)
        if found:
            return WeightsStatus(True, str(next(iter(found.values())).parent))
        if config.weights:
            return WeightsStatus(False, explicit_missing(variant.name, variant.files(), config.weights))
        return WeightsStatus(
            False, "download on first use" + (" (sha256 pinned)" if variant.encoder_sha256 else "")
        )

    return status


def backends() -> list[Backend]:
    """One backend per variant."""
    return [
        Backend(
            name=v.name,
            summary=v.summary,
            config_type=TAEConfig,
            build=lambda config, v=v: build(v, config),
            weights_status=_status(v),
            notes="dtype=bf16 is faster on hardware with bf16 support but changes the chain's frames",
        )
        for v in VARIANTS.values()
    ]
