"""The hosted configs share their common fields through one base class, and their spec strings (what stored
runs, resume and sweeps match on) are the ones earlier releases wrote."""

from __future__ import annotations

import dataclasses

import pytest

from driftloop.replicators.hosted import bfl, gemini, openai_images
from driftloop.replicators.hosted.config import SHARED, HostedConfig, canonical_spec

EVERY_FIELD = {
    "openai": "openai:gpt-image-2,prompt=hi,size=1024x1024,quality=high,input_fidelity=high,"
    "output_format=jpeg,pad=grey,resample=nearest,retries=1,timeout=7.0,backoff=0.5,max_wait=3.0,concurrency=2,rpm=5.0",
    "gemini": "gemini:gemini-3-pro-image,prompt=hi,aspect_ratio=1:1,image_size=2K,aspect=1:1,"
    "modalities=text+image,seed=true,pad=grey,resample=nearest,retries=1,timeout=7.0,backoff=0.5,"
    "max_wait=3.0,concurrency=2,rpm=5.0",
    "bfl": "bfl:flux-2-pro,prompt=hi,safety_tolerance=3,output_format=jpeg,prompt_upsampling=true,seed=false,"
    "pad=grey,resample=nearest,retries=1,timeout=7.0,deadline=100.0,poll=1.0,poll_max=9.0,backoff=0.5,"
    "max_wait=3.0,concurrency=2,rpm=5.0",
}
VALUES = {"prompt": "hi", "pad": "grey", "resample": "nearest", "retries": 1, "timeout": 7.0, "backoff": 0.5,
          "max_wait": 3.0, "concurrency": 2, "rpm": 5.0, "size": "1024x1024", "quality": "high",
          "input_fidelity": "high", "output_format": "jpeg", "aspect_ratio": "1:1", "image_size": "2K",
          "aspect": "1:1", "modalities": "text+image", "safety_tolerance": 3, "prompt_upsampling": True,
          "deadline": 100.0, "poll": 1.0, "poll_max": 9.0}  # fmt: skip


@pytest.mark.parametrize("module", [openai_images, gemini, bfl])
def test_every_field_keeps_the_stored_spec_order(module) -> None:
    backend = module.backends()[0]
    cls = backend.config_type
    assert issubclass(cls, HostedConfig)
    names = {f.name for f in dataclasses.fields(cls)}
    assert set(SHARED) <= names
    values = {k: v for k, v in VALUES.items() if k in names}
    if "seed" in names:
        values["seed"] = not cls().seed
    config = cls(**values)
    assert canonical_spec(backend.name, config) == EVERY_FIELD[backend.name]


def test_shared_defaults_live_in_one_place() -> None:
    for module in (openai_images, gemini):
        config = module.backends()[0].config_type()
        assert all(getattr(config, n) == getattr(HostedConfig(), n) for n in SHARED)
    assert bfl.BFLConfig().timeout == 60.0  # BFL's own default, per request of its submit-then-poll API
