"""The Ray engine's driver loop: a pool of worker slots, each holding one actor, fed a group at a time.

A slot's actor advances one group of chains; what it sends (frames with their PNG files and metrics rows,
statuses, events, progress) is written here in order, through the run's one writer. When an actor dies (it
crashed, or its node went away) only the copies it had in flight are lost: its group is read back from the
store and goes to the next idle slot, and a replacement actor is started for the slot. The replacement
joins once Ray has placed it and its model is loaded; the run does not wait for it (after a node is lost
there may be no room for it until the others finish). The first workers join the same way: the run starts
with the first one ready, and ``--workers`` beyond what the cluster holds now wait for an autoscaler.
:class:`~driftloop.engines.workers.WorkerBoard` records each slot for ``driftloop runs --workers``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from driftloop import chain as core
from driftloop.engines.groups import Origin, Pending, RunProgress, load_group
from driftloop.engines.local import Session
from driftloop.engines.placement import Placement, RayEngineError
from driftloop.engines.ray_worker import Budget, ChainWorker, RateGate
from driftloop.engines.workers import WorkerBoard
from driftloop.frames import read_frame
from driftloop.replicators.base import Replicator
from driftloop.store import Store


class Pool:
    """The actors of one run (one per slot), their shared gate and budget, and the ones still starting."""

    def __init__(self, ray: Any, run_id: str, replicator: Replicator, model_info: dict[str, Any],
                 factors: dict[str, Any], placement: Placement, max_cost: float | None, spent: float,
                 measure: tuple[bool, bool] | None, env: dict[str, str],
                 board: WorkerBoard) -> None:  # fmt: skip
        self.ray, self.run_id, self.made, self.board = ray, run_id, 0, board
        self.spec, self.model_info, self.factors, self.measure = replicator.spec, model_info, factors, measure
        self.options = {**placement.options, "max_concurrency": 4, "runtime_env": {"env_vars": env}}
        hosted = replicator.requirements.device == "api"
        rpm = float(getattr(getattr(replicator, "config", None), "rpm", 0) or 0)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # optional, heavy: Ray

        # the shared gate and budget live on the driver's node: they go only if the whole run goes
        here = {"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=True)}  # fmt: skip
        self.gate = ray.remote(RateGate).options(**here).remote(rpm) if hosted and rpm > 0 else None
        budgeted = hosted or max_cost is not None
        self.budget = ray.remote(Budget).options(**here).remote(max_cost, spent) if budgeted else None
        self.actor_cls = ray.remote(ChainWorker)
        self.slots: list[Any] = []
        self.starting: dict[Any, int] = {}  # ready() ref -> slot
        self.notes: list[str] = []
        self.problem = ""  # why the latest worker could not start
        for slot in range(placement.workers):
            self.start(slot)  # each joins once placed and loaded; the first one starts the run

    def start(self, slot: int) -> None:
        """An actor for ``slot`` (new, or replacing one that died), named ``driftloop:RUN:wN`` (what
        ``ray list actors`` shows; tests find it by name)."""
        name = f"driftloop:{self.run_id}:w{self.made}"
        self.made += 1
        actor = self.actor_cls.options(name=name, **self.options).remote(
            self.spec, self.model_info, self.factors, self.gate, self.budget, self.measure
        )
        if slot < len(self.slots):
            self.slots[slot] = actor
        else:
            self.slots.append(actor)
        self.starting[actor.ready.remote()] = slot
        self.board.started(slot, name)

    def joined(self, slot: int, ready: dict[str, Any]) -> list[str]:
        """A worker is ready; returns its notes not heard before (a thread count aligned, metrics skipped)."""
        new = [n for n in ready["notes"] if n not in self.notes]
        self.notes += new
        self.board.ready(slot, ready)
        return new

    def close(self) -> None:
        for handle in [*self.slots, self.gate, self.budget]:
            if handle is not None:
                self.ray.kill(handle)
        self.board.close()


def drive(ray: Any, store: Store, run_id: str, pool: Pool, queue: deque[list[Pending]], session: Session,
          tracker: RunProgress, inner: core.EngineSettings, origin: Origin, settings: core.EngineSettings,
          wants_origin: bool, memory: int = 0) -> None:  # fmt: skip
    """Hand groups to idle slots and store what comes back, until every group is done or one fails."""
    idle: list[int] = []  # slots whose worker is ready and has no group
    busy: dict[Any, tuple[int, int, list[Pending]]] = {}  # next() ref -> (slot, group key, group)
    failure: BaseException | None = None
    keys = iter(range(1 << 62))
    board = pool.board

    def dispatch(slot: int, group: list[Pending]) -> None:
        key = next(keys)
        loaded = load_group(store, run_id, group, origin, settings, wants_origin, memory)
        tracker.start_group(key, [p for p in group if p.chain not in loaded.finished])
        if loaded.first:
            session.writer.write_frames(loaded.first)  # measured on the worker with the group's copies
        if not loaded.states:
            tracker.end_group(key, len(group))
            idle.append(slot)
            return
        origins = _origins(store, run_id, loaded.states) if pool.measure else None
        actor = pool.slots[slot]
        actor.begin.remote(loaded.states, inner, tracker.spent_usd, origins, [f.chain for f in loaded.first])
        busy[actor.next.remote()] = (slot, key, group)
        board.state(slot, "working")

    def lost(slot: int, group: list[Pending], key: int) -> None:
        """The slot's actor died: what it sent is stored; its group goes again from the store."""
        session.flush()
        left = {c.chain: c for c in store.chains(run_id) if c.status == "running"}
        again = [Pending(p.chain, p.seed, left[p.chain].last_step) for p in group if p.chain in left]
        store.add_event(run_id, "worker-lost", f"a Ray worker died; {len(again)} chain(s) continue elsewhere")
        tracker.end_group(key, len(group) - len(again))
        board.failed(slot)
        if again:
            queue.appendleft(again)
        pool.start(slot)

    while queue or busy:
        while queue and idle and failure is None:
            dispatch(idle.pop(), queue.popleft())
        if not busy and not (queue and pool.starting and failure is None):
            break
        done, _ = ray.wait([*busy, *pool.starting], num_returns=1)
        ref = done[0]
        if ref in pool.starting:
            slot = pool.starting.pop(ref)
            try:
                for note in pool.joined(slot, ray.get(ref)):
                    store.add_event(run_id, "ray-worker", note)
                idle.append(slot)
            except ray.exceptions.RayActorError as exc:
                board.failed(slot)
                board.state(slot, "lost")
                pool.problem = next((line for line in str(exc).splitlines() if "Error" in line), str(exc))
                store.add_event(run_id, "worker-lost", f"a Ray worker could not start: {pool.problem}")
            continue
        slot, key, group = busy.pop(ref)
        try:
            messages = ray.get(ref)
        except ray.exceptions.RayActorError:
            lost(slot, group, key)
            continue
        over = _store(messages, key, session, tracker, board, slot)
        if over is None:
            busy[pool.slots[slot].next.remote()] = (slot, key, group)
            continue
        kind, error = over
        tracker.end_group(key, len(group))
        session.done_with([p.chain for p in group])
        idle.append(slot)
        board.state(slot, "idle")
        if kind == "error":
            board.failed(slot)
            if failure is None:
                failure = error
                for other, _, _ in busy.values():
                    pool.slots[other].stop.remote()  # finish the batch in hand, send it, stop
    if failure is not None:
        raise failure
    if queue:
        raise RayEngineError(
            f"run {run_id}: no Ray worker is left ({pool.problem or 'all were lost'}); every stored frame is "
            "kept: resume the run once the cluster can run the model"
        )


def _origins(store: Store, run_id: str, states: list[core.ChainState]) -> dict[int, Any]:
    """Each chain's frame 0, the reference its worker measures every copy against."""
    return {
        s.chain: s.frame if s.step == 0 else (
            s.origin if s.origin is not None else read_frame(store.frame_path(run_id, s.chain, 0)))
        for s in states
    }  # fmt: skip


def _store(messages: list[tuple[str, Any]], key: int, session: Session, tracker: RunProgress,
           board: WorkerBoard, slot: int) -> tuple[str, BaseException | None] | None:  # fmt: skip
    """Write a worker's messages in order; ``(kind, error)`` once its group is over, else None."""
    for kind, body in messages:
        if kind == "frames":
            made, encoded, rows = body
            session.writer.write_frames(made, encoded, rows)  # rows: measured where the frames were made
            tracker.frames(made)
            board.copies(slot, sum(1 for f in made if f.step > 0))
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
