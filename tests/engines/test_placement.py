"""Placement from the spec: what a model declares, and where its replicas go on a cluster's nodes (no Ray)."""

from __future__ import annotations

import sys

import pytest

from driftloop.engines.placement import HOSTED_WORKERS, RayEngineError, place
from driftloop.replicators import registry
from driftloop.replicators.base import Needs

GB = 1 << 30
HEAD = {"CPU": 2.0, "memory": 8 * GB}  # a CPU-only head node
GPU_NODE = {"CPU": 4.0, "GPU": 2.0, "memory": 32 * GB}


def test_needs_come_from_the_spec_without_building_the_model() -> None:
    before = set(sys.modules)
    assert registry.needs("taef2:device=cuda") == Needs(gpu="required", cpus=1.0, memory_mb=1024)
    assert registry.needs("taef2").gpu == "preferred"  # device=auto
    assert registry.needs("taef2", device="cpu").gpu == "none"
    assert registry.needs("sd-turbo:device=cuda,threads=2") == Needs("required", 2.0, 4096)
    assert registry.needs("jpeg") == Needs()
    assert registry.needs("openai:gpt-image-1.5") == Needs(cpus=0.0, api=True)
    assert not {"torch", "diffusers"} & (set(sys.modules) - before)  # nothing heavy was imported


def test_a_cuda_model_from_a_cpu_only_head_goes_to_gpu_nodes() -> None:
    spot = place(
        "taef2:device=cuda", registry.needs("taef2:device=cuda"), [HEAD, GPU_NODE, GPU_NODE], None, 99
    )
    assert spot.options == {"num_gpus": 1, "num_cpus": 1.0, "memory": 1024 << 20}
    assert spot.workers == 4  # one per GPU; the head's CPUs do not count


def test_a_cuda_model_on_a_cluster_without_gpus_is_a_clear_error() -> None:
    with pytest.raises(RayEngineError, match=r"no node of the Ray cluster has a GPU.*device=cpu"):
        place("taef2:device=cuda", registry.needs("taef2:device=cuda"), [HEAD, HEAD], None, 8)


def test_auto_takes_gpus_when_there_are_some_and_cpus_otherwise() -> None:
    needs = registry.needs("taef2")
    assert place("taef2", needs, [HEAD, GPU_NODE], None, 8).options.get("num_gpus") == 1
    cpu = place("taef2", needs, [HEAD, HEAD], None, 8)
    assert "num_gpus" not in cpu.options and cpu.workers == 4


def test_memory_and_groups_cap_the_workers() -> None:
    small = {"CPU": 8.0, "memory": 2.5 * GB}
    assert place("taef2", registry.needs("taef2"), [small], None, 99).workers == 2  # 2 × 1 GB fit, not 8
    assert place("taef2", registry.needs("taef2"), [small], None, 1).workers == 1  # one group: one worker
    with pytest.raises(
        RayEngineError, match=r"no node .* can hold one replica of sd-turbo: it needs 1 CPU, 4.0 GB"
    ):
        place("sd-turbo", registry.needs("sd-turbo:device=cpu"), [small], None, 4)


def test_hosted_workers_are_capped_by_their_keys_resource() -> None:
    needs = registry.needs("openai:gpt-image-1.5")
    keyed = place("openai", needs, [HEAD, {**HEAD, "driftloop_key_abc": 3.0}], None, 99, "driftloop_key_abc")
    assert keyed == place("openai", needs, [{"driftloop_key_abc": 3.0}], None, 99, "driftloop_key_abc")
    assert keyed.workers == 3 and keyed.options == {"num_cpus": 0, "resources": {"driftloop_key_abc": 1}}
    assert place("openai", needs, [HEAD], None, 99, "driftloop_key_abc").workers == HOSTED_WORKERS
