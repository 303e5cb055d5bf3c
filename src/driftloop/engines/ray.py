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
    load_group,
    needs_origin,
)
from driftloop.engines.local import Session
from driftloop.engines.placement import HOSTED_WORKERS, Placement, RayEngineError, place
from driftloop.engines.ray_worker import Budget, ChainWorker, ModelProbe, RateGate
from driftloop.errors import DriftloopError
from driftloop.frames import read_frame
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
    digest = hashlib.sha256(f"{env}={os.environ.get(env, '')}".encode()).hexdigest()[:12]
    return f"driftloop_key_{digest}"


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
        facts = ray.get(probe.facts.remote(model, overrides))
    finally:
        ray.kill(probe)
    if isinstance(facts, BaseException):
        raise facts
    return RemoteModel(facts["spec"], needs, facts)


def forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}


class _Pool:
    """The actors of one run, their shared gate and budget, and the group each is working on."""

    def __init__(self, ray: Any, run_id: str, replicator: Replicator, model_info: dict[str, Any],
                 factors: dict[str, Any], placement: Placement, max_cost: float | None,
                 spent: float, measure: tuple[bool, bool] | None) -> None:  # fmt: skip
        self.ray, self.run_id, self.made = ray, run_id, 0
        self.spec, self.model_info, self.factors = replicator.spec, model_info, factors
        self.options = {**placement.options, "max_concurrency": 4,
                        "runtime_env": {"env_vars": forwarded_env()}}  # fmt: skip
        hosted = replicator.requirements.device == "api"
        rpm = float(getattr(getattr(replicator, "config", None), "rpm", 0) or 0)
        gate_cls = ray.remote(num_cpus=0)(RateGate)
        self.gate = gate_cls.remote(rpm) if hosted and rpm > 0 else None
        budget_cls = ray.remote(num_cpus=0)(Budget)
        self.budget = budget_cls.remote(max_cost, spent) if hosted or max_cost is not None else None
        self.actor_cls = ray.remote(ChainWorker)
        self.measure = measure
        self.actors = [self.new_actor() for _ in range(placement.workers)]
        self.notes = ray.get([a.ready.remote() for a in self.actors])

    def new_actor(self) -> Any:
        """A worker, named ``driftloop:RUN:wN`` (what ``ray list actors`` shows; tests find it by name)."""
        self.made += 1
        name = f"driftloop:{self.run_id}:w{self.made - 1}"
        return self.actor_cls.options(name=name, **self.options).remote(
            self.spec, self.model_info, self.factors, self.gate, self.budget, self.measure
        )

    def close(self) -> None:
        for handle in [*self.actors, self.gate, self.budget]:
            if handle is not None:
                self.ray.kill(handle)


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
        pool = _Pool(ray, run_id, replicator, row.model_info, row.config["cost"]["factors"], placement,
                     settings.max_cost_usd, tracker.spent_usd, measure)  # fmt: skip
        try:
            _drive(ray, store, run_id, pool, queue, session, tracker, inner, origin, settings, wants_origin)
        finally:
            pool.close()


def _drive(ray: Any, store: Store, run_id: str, pool: _Pool, queue: deque[list[Pending]], session: Session,
           tracker: RunProgress, inner: core.EngineSettings, origin: Origin, settings: core.EngineSettings,
           wants_origin: bool) -> None:  # fmt: skip
    """Hand groups to idle actors and store what comes back, until every group is done or one fails."""
    idle = list(pool.actors)
    busy: dict[Any, tuple[Any, int, list[Pending]]] = {}  # next() ref -> (actor, group key, group)
    failure: BaseException | None = None
    keys = iter(range(1 << 62))

    def dispatch(actor: Any, group: list[Pending]) -> None:
        key = next(keys)
        loaded = load_group(store, run_id, group, origin, settings, wants_origin)
        tracker.start_group(key, [p for p in group if p.chain not in loaded.finished])
        if loaded.first:
            session.writer.write_frames(loaded.first)  # measured on the worker with the group's copies
        if not loaded.states:
            tracker.end_group(key, len(group))
            idle.append(actor)
            return
        origins = _origins(store, run_id, loaded.states) if pool.measure else None
        actor.begin.remote(loaded.states, inner, tracker.spent_usd, origins, [f.chain for f in loaded.first])
        busy[actor.next.remote()] = (actor, key, group)

    while queue or busy:
        while queue and idle and failure is None:
            dispatch(idle.pop(), queue.popleft())
        if not busy:
            break
        done, _ = ray.wait(list(busy), num_returns=1)
        ref = done[0]
        actor, key, group = busy.pop(ref)
        try:
            messages = ray.get(ref)
        except ray.exceptions.RayActorError:
            # the worker died: what it sent is stored; its group goes again from the store
            session.flush()
            left = {c.chain: c for c in store.chains(run_id) if c.status == "running"}
            again = [Pending(p.chain, p.seed, left[p.chain].last_step) for p in group if p.chain in left]
            store.add_event(
                run_id, "worker-lost", f"a Ray worker died; {len(again)} chain(s) continue elsewhere"
            )
            tracker.end_group(key, len(group) - len(again))
            pool.actors.remove(actor)
            replacement = pool.new_actor()
            pool.actors.append(replacement)
            if again:
                queue.appendleft(again)
            idle.append(replacement)
            continue
        over = _store(messages, key, session, tracker)
        if over is None:
            busy[actor.next.remote()] = (actor, key, group)
            continue
        kind, error = over
        tracker.end_group(key, len(group))
        session.done_with([p.chain for p in group])
        idle.append(actor)
        if kind == "error" and failure is None:
            failure = error
            for other, _, _ in busy.values():
                other.stop.remote()  # finish the batch in hand, send it, stop
    if failure is not None:
        raise failure


def _origins(store: Store, run_id: str, states: list[core.ChainState]) -> dict[int, Any]:
    """Each chain's frame 0, the reference its worker measures every copy against."""
    return {
        s.chain: s.frame if s.step == 0 else (
            s.origin if s.origin is not None else read_frame(store.frame_path(run_id, s.chain, 0)))
        for s in states
    }  # fmt: skip


def _store(messages: list[tuple[str, Any]], key: int, session: Session,
           tracker: RunProgress) -> tuple[str, BaseException | None] | None:  # fmt: skip
    """Write a worker's messages in order; ``(kind, error)`` once its group is over, else None."""
    for kind, body in messages:
        if kind == "frames":
            made, encoded, rows = body
            session.writer.write_frames(made, encoded)
            session.writer.add_metrics(rows or [])  # measured where the frame was made
            tracker.frames(made)
        elif kind == "metrics":
            session.writer.add_metrics(body)
        elif kind == "status":
            session.writer.set_status(*body)
        elif kind == "event":
            chain, step, what, message = body
            session.writer.add_event(chain, step, what, message)
        elif kind == "progress":
            tracker.group_event(key, body)
        else:
            return kind, body
    return None
