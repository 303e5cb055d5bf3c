"""What runs inside a Ray actor: one model replica advancing one group of chains at a time.

The actor builds the model once and keeps it loaded. For each group the driver sends, it runs the very
:func:`driftloop.chain.advance` the local engine runs, on a thread, with a sink that hands what it makes
(frames, chain statuses, events, progress) to the driver batch by batch through :meth:`ChainWorker.next`.
The hand-over queue is short, so a worker never runs more than a step ahead of what the driver stored:
a worker that dies costs at most the copies in flight.

Hosted models share two small actors across every worker: :class:`RateGate` spaces requests to one API key
(so twenty workers together keep to its requests per minute) and :class:`Budget` admits a call only while
the whole run's spending, reserved calls included, stays under ``--max-cost``. Nothing here imports Ray:
the driver (:mod:`driftloop.engines.ray`) wraps these classes as actors.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import queue
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from driftloop import chain as core
from driftloop import fmt
from driftloop.cost import Factors, pick_meters
from driftloop.errors import DriftloopError
from driftloop.frames import NewFrame, encode_png
from driftloop.metrics.recorder import FrameMeasurer, MetricsSettings, load_tools
from driftloop.replicators import registry
from driftloop.replicators.base import (
    BatchAborted,
    Copy,
    Replicator,
    align_with,
    hosted_estimate,
    next_call_usd,
    notices,
)

Message = tuple[str, Any]
Row = tuple[int, int, dict[str, float]]  # (chain, step, metrics): one stored metrics row


class RateGate:
    """At most ``rpm`` request starts per minute for one API key, whichever worker asks (an actor)."""

    def __init__(self, rpm: float) -> None:
        self.interval = 60.0 / rpm if rpm > 0 else 0.0
        self._next = 0.0
        self.starts: list[float] = []

    def slot(self) -> float:
        """Reserve the next request start; returns the wall-clock time (``time.time()``) to start at."""
        now = time.time()
        start = max(now, self._next)
        self._next = start + self.interval
        self.starts.append(start)
        return start

    def history(self) -> list[float]:
        return list(self.starts)


class Budget:
    """The run's money across every worker (an actor): a call is admitted only if what is spent, plus what
    calls in flight reserved, plus this call at the price copies really cost so far, stays within budget."""

    def __init__(self, max_cost: float | None, spent: float) -> None:
        self.max_cost = max_cost
        self.spent = spent
        self.reserved = 0.0
        self.paid, self.copies = 0.0, 0

    def reserve(self, copies: int, listed: float) -> tuple[float, str | None]:
        """(amount reserved, None), or (0, why not) when the call could take spending past the budget."""
        per_copy = max(listed, self.paid / self.copies) if self.copies else listed
        amount = per_copy * copies
        if self.max_cost is not None and self.spent + self.reserved + amount > self.max_cost + 1e-9:
            committed = self.spent + self.reserved
            return 0.0, (
                f"spent {fmt.usd(committed)} (in flight included); the next {copies} copies "
                f"(≈ {fmt.usd(amount)}) would pass --max-cost {fmt.usd(self.max_cost)}. Every finished frame "
                "is stored; resume with "
                "a higher --max-cost to continue"
            )
        self.reserved += amount
        return amount, None

    def settle(self, reserved: float, usd: float, copies: int) -> None:
        self.reserved -= reserved
        self.spent += usd
        self.paid += usd
        self.copies += copies

    def total(self) -> float:
        return self.spent


class _SharedLimiter:
    """Stands in for a hosted replicator's own rate limiter: asks the shared :class:`RateGate` for a slot."""

    def __init__(self, gate: Any, get: Any) -> None:
        self.gate, self.get = gate, get

    def acquire(self, stop: threading.Event | None = None) -> float:
        wait = self.get(self.gate.slot.remote()) - time.time()
        if wait > 0:
            (stop or threading.Event()).wait(wait)
        return max(wait, 0.0)


class Budgeted:
    """A replicator whose calls are admitted by the shared :class:`Budget` and settled with what they cost."""

    def __init__(self, inner: Replicator, budget: Any, get: Any) -> None:
        self.inner, self.budget, self.get = inner, budget, get
        self.spec = inner.spec

    @property
    def requirements(self) -> Any:
        return self.inner.requirements

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def replicate(self, frames: list[Any], seeds: list[int], **extra: Any) -> Sequence[Any]:
        listed = self.inner.requirements.cost_per_image_usd
        context = extra.get("context")
        if context is not None and context.chains and frames:  # a conversation: the next turns' own price
            total = next_call_usd(self.inner, list(context.chains), context.steps[0])
            listed = max(listed, total / len(frames)) if total is not None else listed
        reserved, refused = self.get(self.budget.reserve.remote(len(frames), listed))
        if refused:
            raise core.BudgetReached(refused)
        try:
            out = self.inner.replicate(frames, seeds, **extra)
        except BatchAborted as exc:
            self._settle(reserved, exc.outcomes, listed)
            raise
        except BaseException:
            self.get(self.budget.settle.remote(reserved, 0.0, 0))
            raise
        self._settle(reserved, out, listed)
        return out

    def _settle(self, reserved: float, outcomes: Sequence[Any], listed: float) -> None:
        made = [o for o in outcomes if o is not None and not isinstance(o, BaseException)]
        copies = [o for o in made if isinstance(o, Copy) or hasattr(o, "shape")]
        usd = sum(
            float(o.info["usd"]) if isinstance(o, Copy) and o.info.get("usd") is not None else listed
            for o in copies
        )
        self.get(self.budget.settle.remote(reserved, usd, len(copies)))


class _Stopped(Exception):
    """The driver asked the worker to stop after the batch it was making."""


class _Sink:
    """The worker's :class:`driftloop.chain.FrameSink`: everything goes to the driver, in order (through
    the worker's finishing thread, which encodes and measures the frames)."""

    def __init__(self, out: queue.Queue[Message], stop: threading.Event) -> None:
        self.out, self.stop = out, stop

    def write_frames(self, items: list[NewFrame]) -> None:
        self.out.put(("frames", items))
        if self.stop.is_set():
            raise _Stopped

    def set_status(self, chain: int, status: str, reason: str | None = None) -> None:
        self.out.put(("status", (chain, status, reason)))

    def add_event(self, chain: int, step: int, kind: str, message: str) -> None:
        self.out.put(("event", (chain, step, kind, message)))


def portable(exc: BaseException) -> BaseException:
    """The exception itself if it can travel to the driver, else a :class:`DriftloopError` saying it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return DriftloopError(f"{type(exc).__name__}: {exc}")


def _not_in_memory(chain: int, step: int) -> Any:
    raise DriftloopError(f"chain {chain} step {step}: not sent to this worker (its group was not primed)")


class _Finisher:
    """The worker's second thread: turns what the model thread made into what the driver stores, in order.

    Frames are encoded to PNG and measured here (the same :class:`~driftloop.metrics.recorder.FrameMeasurer`
    the local engine's metrics thread uses, against the same frame 0 and previous frame), overlapping the
    model's next batch, so the driver only writes; the queues are short, so the model never runs more than
    a batch or two ahead of the driver.
    """

    def __init__(self, measuring: MetricsSettings | None, out: queue.Queue[Message],
                 stop: threading.Event) -> None:  # fmt: skip
        self.measuring, self.out, self.stop = measuring, out, stop
        self.inbox: queue.Queue[Message] = queue.Queue(maxsize=2)
        self.measurer: FrameMeasurer | None = None
        threading.Thread(target=self._work, name="driftloop-ray-finish", daemon=True).start()

    def _rows(self, items: list[tuple[int, int, Any]]) -> tuple[list[Row], list[Message]]:
        rows: list[Row] = []
        problems: list[Message] = []
        for chain, step, frame in items:
            try:
                assert self.measurer is not None
                rows.append((chain, step, self.measurer.measure(chain, step, frame)))
            except Exception as exc:  # a metric bug must not cost the user their run
                problems.append(("event", (chain, step, "metrics", f"metrics of chain {chain} step {step} "
                                           f"failed: {exc}")))  # fmt: skip
        return rows, problems

    def _work(self) -> None:
        broken = False  # finishing failed: the group is over (the driver was told); skip to the next one
        while True:
            kind, body = self.inbox.get()
            if kind == "group":
                broken = False
            if broken:
                continue
            try:
                self._handle(kind, body)
            except BaseException as exc:  # a bug here must end the group, not leave the driver waiting
                broken = True
                self.stop.set()
                self.out.put(("error", portable(exc)))

    def _handle(self, kind: str, body: Any) -> None:
        if kind == "group":  # the chains of a new group: frame 0 and the frame each continues from
            states, first = body
            self.measurer = FrameMeasurer(self.measuring, _not_in_memory) if self.measuring else None
            if self.measurer is None:
                return
            for s in states:
                if s.chain not in first:
                    self.measurer.prime(s.chain, s.origin, s.step, s.frame)
            rows, problems = self._rows([(s.chain, 0, s.frame) for s in states if s.chain in first])
            for message in [("metrics", rows), *problems]:
                self.out.put(message)
        elif kind == "frames":
            items: list[NewFrame] = body
            encoded = [encode_png(f.frame) for f in items]
            rows, problems = (None, []) if self.measurer is None else self._rows(
                [(f.chain, f.step, f.frame) for f in items])  # fmt: skip
            self.out.put(("frames", (items, encoded, rows)))
            for message in problems:
                self.out.put(message)
        else:
            self.out.put((kind, body))


def where() -> dict[str, str]:
    """The node and host a worker runs on (what per-worker status shows)."""
    import ray  # the actor runs inside Ray

    context = ray.get_runtime_context()
    return {"node": context.get_node_id(), "host": socket.gethostname(), "pid": str(os.getpid())}


class ModelProbe:
    """Builds a model on a node its spec's needs chose and reports what a run records of it (an actor)."""

    def facts(
        self, spec: str, overrides: dict[str, Any], like: dict[str, Any]
    ) -> dict[str, Any] | BaseException:
        """What a run records of the model, built here and aligned ``like`` the driver's process would run
        it (its thread count), so the run's frames are those the local engine makes."""
        try:
            replicator = registry.build(spec, **overrides)
            align_with(replicator, like)
            facts = {"spec": replicator.spec, "requirements": replicator.requirements, "where": where()}
            return {**facts, "describe": replicator.describe(), "notices": notices(replicator)}
        except BaseException as exc:
            return portable(exc)


class ChainWorker:
    """One model replica (a Ray actor): advances the groups of chains the driver sends, one at a time.

    ``measure``: the run's metrics as ``(perceptual, faces)``, measured here, where the frames are made
    (their models loaded once, when the worker starts); ``None``: the run does not measure.
    """

    def __init__(
        self,
        spec: str,
        model_info: dict[str, Any],
        factors: dict[str, Any],
        gate: Any = None,
        budget: Any = None,
        measure: tuple[bool, bool] | None = None,
    ) -> None:
        import ray  # the actor runs inside Ray; only its handles need it

        self.replicator: Replicator = registry.build(spec)
        self.notes = align_with(self.replicator, model_info)
        run_factors = Factors.from_dict(factors)
        self.hosted = hosted_estimate(self.replicator, run_factors)
        self.meters = pick_meters(self.replicator.requirements.device, run_factors)
        if gate is not None and hasattr(self.replicator, "_limiter"):
            self.replicator._limiter = _SharedLimiter(gate, ray.get)  # type: ignore[attr-defined]
        if budget is not None:
            self.replicator = Budgeted(self.replicator, budget, ray.get)  # type: ignore[assignment]
        measuring = None
        if measure is not None:
            measuring, skipped = load_tools(*measure)
            self.notes += [f"{family} metrics skipped on this worker: {why}" for family, why in skipped]
        self._out: queue.Queue[Message] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._finisher = _Finisher(measuring, self._out, self._stop)
        self._thread: threading.Thread | None = None

    def ready(self) -> dict[str, Any]:
        """Once the model is built: notes for the log, and where it runs (node, host, device)."""
        return {"notes": self.notes, **where(), "device": str(self.replicator.requirements.device)}

    def begin(self, states: list[core.ChainState], settings: core.EngineSettings, spent: float,
              origins: dict[int, Any] | None = None, first: Sequence[int] = ()) -> None:  # fmt: skip
        """Start advancing a group; what it makes comes back through :meth:`next`.

        ``origins``: each chain's frame 0, when measuring (the reference of every ``*_to_origin`` metric);
        ``first``: chains whose frame 0 the driver has just stored, measured here too.
        The actor is threaded, so a ``next`` call may start before this one: it waits on the same queue,
        which the previous group left empty (the driver read it up to its last message).
        """
        if self._thread is not None:
            self._thread.join()  # the previous group's model thread (stopped early: after its batch)
        self._stop.clear()
        inbox = self._finisher.inbox
        origins = origins or {}
        primed = [dataclasses.replace(s, origin=origins.get(s.chain, s.origin)) for s in states]

        def work() -> None:
            try:
                inbox.put(("group", (primed, set(first))))
                sink = _Sink(inbox, self._stop)
                report = lambda e: inbox.put(("progress", e))  # noqa: E731
                core.advance(
                    self.replicator, states, settings, sink, report, self.meters, None, self.hosted, spent
                )
                inbox.put(("end", None))
            except _Stopped:
                inbox.put(("stopped", None))
            except BaseException as exc:
                inbox.put(("error", portable(exc)))

        self._thread = threading.Thread(target=work, name="driftloop-ray-group", daemon=True)
        self._thread.start()

    def next(self) -> list[Message]:
        """The next messages (at least one; the last is ``end``, ``stopped`` or ``error`` when the group is
        over)."""
        items = [self._out.get()]
        while items[-1][0] not in ("end", "stopped", "error"):
            try:
                items.append(self._out.get_nowait())
            except queue.Empty:
                break
        return items

    def stop(self) -> None:
        """Stop after the batch in progress (its copies are still sent)."""
        self._stop.set()
