"""The Ray engine: chains advance on Ray actors (one per model replica); this process, the driver, stores.

Why it looks like this:
- **Same frames as the local engine.** Chains go out in the same groups (:mod:`.groups`), and an actor runs
  the very :func:`driftloop.chain.advance` the local engine runs on a group, so the same ``--batch-size``
  gives bit-identical frames.
- **One writer.** Actors send back frames (arrays, their PNG files already encoded, and their metrics rows,
  through Ray's object store), statuses, events and per-frame costs; the driver writes them in order
  through the store's :class:`~driftloop.store.FrameWriter` (atomic PNG, then row, then metrics). Encoding
  and measuring are most of the cost of storing a frame, so both are done where the frame is made (the
  same metric functions against the same frame 0, which the driver sends with each group); the driver only
  writes, and measures only frames an interruption left unmeasured. The workspace stays on the driver's
  disk.
- **Faults cost the copies in flight.** A worker that dies is replaced; its group is read back from the
  store (last stored frame of each chain) and sent again. A stored copy is never asked for twice. Ctrl-C or
  a killed driver leaves an ordinary unfinished run that either engine resumes.
- **Placement from the spec.** What a replica needs (GPU, CPUs, memory, an API key) is declared by the
  model's spec (:func:`driftloop.replicators.registry.needs`) and placed by :mod:`.placement`: CUDA models
  take one GPU per actor (on GPU nodes only, even from a CPU-only head), CPU models their CPUs and memory,
  hosted models no CPU but one unit of a custom resource per API key, with a shared rate gate and a shared
  budget so many workers together keep to the key's rpm and the run's ``--max-cost``. A local model is
  never built on the driver: :func:`remote_model` asks a worker for what the run records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
from collections import deque
from collections.abc import Callable
from typing import Any

from driftloop import chain as core
from driftloop.cost import HostedEstimate, Meters
from driftloop.engines.groups import (
    Origin,
    Pending,
    RunProgress,
    group_size,
    groups,
    needs_origin,
)
from driftloop.engines.local import Session
from driftloop.engines.placement import HOSTED_WORKERS, RayEngineError, place
from driftloop.engines.ray_pool import Pool, drive
from driftloop.engines.ray_worker import ModelProbe
from driftloop.engines.workers import WorkerBoard
from driftloop.errors import DriftloopError
from driftloop.metrics.recorder import MetricsSettings
from driftloop.replicators import registry
from driftloop.replicators.base import Needs, Replicator, device_needs
from driftloop.store import Store

INSTALL = "pip install 'driftloop[ray]'"
FORWARDED_ENV = ("OPENAI_", "GEMINI_", "GOOGLE_", "BFL_", "DRIFTLOOP_", "HF_", "NO_PROXY", "no_proxy")
"""Environment variables a worker gets from the driver (model folders, API base URLs and keys)."""


def check_available() -> None:
    """Refuse ``--engine ray`` early, with the install line, when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise RayEngineError(f"--engine ray needs Ray, which is not installed: {INSTALL}")


def key_resource(replicator: Replicator) -> str | None:
    """The custom resource naming a hosted model's API key (a hash, never the key), or None."""
    env = getattr(replicator, "key_env", "")
    if replicator.requirements.device != "api" or not env:
        return None
    return key_resource_name(env, os.environ.get(env, ""))


def key_resource_name(env: str, key: str) -> str:
    """The custom resource a cluster declares for the API key ``key`` in ``env`` (``ray start
    --resources``), on the nodes allowed to use it; its units cap the workers sharing the key."""
    return f"driftloop_key_{hashlib.sha256(f'{env}={key}'.encode()).hexdigest()[:12]}"


def connect(address: str | None, resources: dict[str, float] | None = None) -> Any:
    """The Ray module, connected: to ``address`` (``auto``, ``ray://host:port``), or a new local Ray with
    this machine's CPUs and GPUs (and ``resources``) when none is given; an open session is reused."""
    check_available()
    import ray  # optional and heavy: only the Ray engine needs it

    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, resources=resources or None)
    return ray


def nodes(ray: Any) -> list[dict[str, float]]:
    """The total resources of each live node of the cluster."""
    return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]


def needs_of(replicator: Replicator) -> Needs:
    """What a replica of this model needs: declared by its spec (a model built here, e.g. a hosted one, or
    a Replicator object passed in, falls back on its device)."""
    if isinstance(replicator, RemoteModel):
        return replicator.needs
    try:
        return registry.needs(replicator.spec)
    except DriftloopError:
        device = str(replicator.requirements.device)
        return Needs(cpus=0.0, api=True) if device == "api" else device_needs(device)


class RemoteModel:
    """A model that exists only on the cluster: what the driver holds instead of building it.

    Its :class:`~driftloop.replicators.base.Requirements`, ``describe()`` facts and notices are what one
    worker reported after building the model where the spec's needs place it (a GPU node for a CUDA model,
    whatever node the driver runs on); the driver itself never loads weights.
    """

    def __init__(self, spec: str, needs: Needs, facts: dict[str, Any]) -> None:
        self.spec, self.needs = spec, needs
        self.requirements = facts["requirements"]
        self.info, self.notices, self.where = facts["describe"], facts["notices"], facts["where"]

    def replicate(self, frames: Any, seeds: list[int]) -> Any:
        raise RayEngineError(f"{self.spec} runs on Ray workers only; use --engine ray")

    def describe(self) -> dict[str, Any]:
        return dict(self.info)


def local_threads() -> int | None:
    """The CPU threads PyTorch uses in this process by default: what a run made here with the local engine
    would use and record. A CPU model's float rounding depends on it, so a new Ray run uses it too, and its
    frames are bit-identical to the local engine's (None: PyTorch is not installed here)."""
    try:
        import torch  # heavy (no weights): only the thread count, once per run on Ray
    except ImportError:
        return None
    return int(torch.get_num_threads())


def remote_model(model: str, overrides: dict[str, Any], address: str | None) -> RemoteModel:
    """Build ``model`` on one worker placed by its declared needs, ask it what the run records, let it go.

    A placement the cluster cannot give (a CUDA model, no GPU node) is refused here, before anything is
    stored; so is a model the worker cannot build (its error comes back as it is).
    """
    needs = registry.needs(model, **overrides)
    ray = connect(address)
    placement = place(model, needs, nodes(ray), 1, 1)
    probe_cls = ray.remote(ModelProbe)
    probe = probe_cls.options(**placement.options, runtime_env={"env_vars": forwarded_env()}).remote()
    try:
        facts = ray.get(probe.facts.remote(model, overrides, {"threads": local_threads()}))
    finally:
        ray.kill(probe)
    if isinstance(facts, BaseException):
        raise facts
    return RemoteModel(facts["spec"], needs, facts)


def forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}


def execute(
    store: Store,
    run_id: str,
    replicator: Replicator,
    pending: list[Pending],
    settings: core.EngineSettings,
    progress: Callable[[core.ProgressEvent], None] | None,
    origin: Origin,
    meters: Meters | None = None,
    metrics: MetricsSettings | None = None,
    hosted: HostedEstimate | None = None,
    address: str | None = None,
    workers: int | None = None,
) -> None:
    """Advance the chains on Ray actors, a group per actor at a time, storing everything here.

    ``workers``: how many actors (default: from the model and the cluster, never more than groups).
    """
    if replicator.spec.startswith("callable:"):
        raise RayEngineError(
            f"--engine ray builds the model on each worker from its spec; {replicator.spec} is a Python "
            "callable: register it as a replicator plug-in, or use the local engine"
        )
    row = store.get_run(run_id)
    size = group_size(replicator, settings)
    inner = dataclasses.replace(settings, batch_size=size, max_cost_usd=None)  # the budget is shared
    resource = key_resource(replicator)
    ray = connect(address, {resource: workers or HOSTED_WORKERS} if resource else None)
    queue = deque(groups(pending, size))
    placement = place(replicator.spec, needs_of(replicator), nodes(ray), workers, len(queue), resource)
    wants_origin = needs_origin(replicator, settings)
    with Session(store, run_id, metrics) as session:
        tracker = RunProgress(pending, settings.n_steps, progress, session.spent_usd())
        measure = None if metrics is None else (metrics.perceptual is not None, metrics.faces is not None)
        board = WorkerBoard(store.run_dir(run_id))
        pool = Pool(ray, run_id, replicator, row.model_info, row.config["cost"]["factors"], placement,
                    settings.max_cost_usd, tracker.spent_usd, measure, forwarded_env(), board)  # fmt: skip
        try:
            drive(ray, store, run_id, pool, queue, session, tracker, inner, origin, settings, wants_origin,
                  replicator.requirements.memory)  # fmt: skip
        finally:
            pool.close()
