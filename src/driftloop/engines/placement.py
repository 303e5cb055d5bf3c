"""Where a model's replicas go on a Ray cluster, decided from what its spec declares, never from a model
built on the driver (the driver may be a CPU-only head node, and never loads weights).

A spec's :class:`~driftloop.replicators.base.Needs` (GPU required / preferred / none, CPUs, host memory, an
API key) become Ray actor options, and the nodes the cluster has say how many replicas fit: each node
holds as many as its scarcest asked-for resource allows. Nothing here imports Ray: the engine passes the
nodes' resources in (``ray.nodes()``), so placement is a plain function, tested without a cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from driftloop.errors import DriftloopError
from driftloop.replicators.base import Needs

HOSTED_WORKERS = 4  # workers per hosted model when the cluster does not say otherwise
MB = 1 << 20


class RayEngineError(DriftloopError):
    """The Ray engine cannot run here as asked (Ray missing, a model it cannot ship, no resources)."""

    exit_code = 2


@dataclasses.dataclass(frozen=True)
class Placement:
    """How many actors, and what each asks of the cluster (Ray actor options)."""

    workers: int
    options: dict[str, Any]


def _fits(node: dict[str, float], ask: dict[str, float]) -> int:
    """How many replicas asking ``ask`` one node holds (its scarcest resource decides)."""
    counts = [int(node.get(name, 0.0) / amount + 1e-9) for name, amount in ask.items() if amount > 0]
    return min(counts) if counts else 1 << 20


def _ask(options: dict[str, Any]) -> dict[str, float]:
    ask = {"CPU": float(options.get("num_cpus", 0)), "GPU": float(options.get("num_gpus", 0)),
           "memory": float(options.get("memory", 0))}  # fmt: skip
    ask.update(options.get("resources", {}))
    return ask


def _describe(ask: dict[str, float]) -> str:
    parts = [f"{ask['GPU']:g} GPU" if ask.get("GPU") else "", f"{ask['CPU']:g} CPU" if ask.get("CPU") else "",
             f"{ask['memory'] / MB / 1024:.1f} GB memory" if ask.get("memory") else ""]  # fmt: skip
    parts += [f"1 {k}" for k in ask if k not in ("CPU", "GPU", "memory")]
    return ", ".join(p for p in parts if p)


def place(
    spec: str,
    needs: Needs,
    nodes: Sequence[dict[str, float]],
    wanted: int | None,
    groups_n: int,
    key: str | None = None,
) -> Placement:
    """Actors for model ``spec`` on a cluster of ``nodes`` (each node's total resources).

    A model that needs a GPU (``device=cuda``) goes only to GPU nodes, and is refused with a clear error on a
    cluster without one; ``device=auto`` goes to GPU nodes when there are any, else to CPUs. CPU models
    take their CPUs and memory; hosted models no CPU but one unit of their API key's resource (``key``)
    where the cluster declares it, which caps the workers sharing that key. The number of workers is what
    fits (or ``wanted``), never more than there are groups of chains.
    """
    gpu_nodes = [n for n in nodes if n.get("GPU", 0) >= 1]
    memory = {"memory": needs.memory_mb * MB} if needs.memory_mb else {}
    if needs.api:
        options: dict[str, Any] = {"num_cpus": 0}
        units = int(sum(n.get(key, 0) for n in nodes)) if key else 0
        if key and units:
            options["resources"] = {key: 1}
        return Placement(max(1, min(wanted or units or HOSTED_WORKERS, groups_n)), options)
    if needs.gpu == "required" and not gpu_nodes:
        raise RayEngineError(
            f"model {spec} runs on CUDA, and no node of the Ray cluster has a GPU: add GPU nodes "
            "(ray start --num-gpus N on them), or run it with device=cpu"
        )
    on_gpu = needs.gpu == "required" or (needs.gpu == "preferred" and bool(gpu_nodes))
    options = {"num_gpus": 1} if on_gpu else {}
    options.update(num_cpus=needs.cpus, **memory)
    ask = _ask(options)
    capacity = sum(_fits(n, ask) for n in (gpu_nodes if on_gpu else nodes))
    if capacity < 1:
        biggest = max(nodes, key=lambda n: n.get("memory", 0), default={})
        raise RayEngineError(
            f"no node of the Ray cluster can hold one replica of {spec}: it needs {_describe(ask)}; the "
            f"largest node has {_describe({k: biggest.get(k, 0) for k in ask})}"
        )
    return Placement(max(1, min(wanted or capacity, groups_n)), options)
