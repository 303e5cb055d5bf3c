"""The replicator protocol: what the chain engine needs from a model, and nothing more.

A replicator takes a batch of frames (RGB ``uint8`` H×W×3) with one seed per frame and returns one copy per
frame. It declares what it needs (size multiple, batch limit, device, cost) so the engine never guesses.
Typed configs are plain dataclasses; :mod:`driftloop.replicators.spec` turns spec strings into them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

if TYPE_CHECKING:  # NumPy only for the annotations: describing a backend (`driftloop models`) needs none
    import numpy as np

Frames = list["np.ndarray"]
ReplicateFn = Callable[[Frames, list[int]], Frames]


@dataclass(frozen=True)
class Copy:
    """A copy with facts about how it was made, stored with its frame as JSON.

    A replicator may return these instead of bare arrays when it has something to say per frame: the
    caption a caption→redraw model drew from, the money a hosted model charged, the prompt it sent.
    """

    frame: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    """The model declined to copy this frame (a content-policy refusal).

    The engine records it on the chain, asks again up to ``refusal_retries`` times, then ends the chain
    with status ``refused``; other chains go on. ``retryable=False``: asking again would give the same
    answer (a deterministic model's own checker), so the chain ends at once.
    """

    reason: str
    info: dict[str, Any] = field(default_factory=dict)
    retryable: bool = True


@dataclass(frozen=True)
class Failure:
    """This frame could not be made (a malformed response, retries exhausted). Ends its chain as ``error``."""

    message: str
    info: dict[str, Any] = field(default_factory=dict)


Outcome = Union["np.ndarray", Copy, Refusal, Failure]  # a string member (NumPy not imported) needs Union


class BatchAborted(Exception):
    """A problem that concerns every frame (a revoked key, an exhausted quota, Ctrl-C) stopped a batch
    part-way, after some copies were already made.

    ``outcomes`` has one entry per frame of the call: what was made (with a hosted model: already paid for)
    or ``None`` where nothing was. The engine stores what was made, then re-raises ``cause``; so no finished
    copy is lost, and a resume never buys it twice.
    """

    def __init__(self, cause: BaseException, outcomes: Sequence[Outcome | None]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.outcomes = list(outcomes)


@dataclass(frozen=True)
class Memory:
    """A chain's stored past, for a replicator that continues a conversation (``Requirements.memory``):
    given once, with the first call after the chain was loaded from the store (a resume, a new group).

    ``frames``: (step, frame, info) of the chain's last stored frames, oldest first, ending with the frame
    being copied now; ``info`` is what the replicator stored with that copy (a response id, the model's turn).
    ``restart``: begin a new conversation from the last frame instead of continuing the stored one
    (``resume --restart-thread``, when the provider no longer has the thread).
    """

    frames: list[tuple[int, np.ndarray, dict[str, Any] | None]]
    restart: bool = False


@dataclass(frozen=True)
class StepContext:
    """Where each frame of a ``replicate`` call stands in its chain (one entry per frame), for replicators
    that declare ``Requirements(wants_context=True)``: seed policies and strength schedules need it.

    ``chain_seeds[i]``: the seed of frame i's chain; ``steps[i]``: the step being made (1 = the first copy of
    the input); ``n_steps``: the run's length; ``chains[i]``: the chain's index in the run; ``origins[i]``:
    the chain's frame 0 (what ``prompt=auto`` captions, the same on a resumed run); ``memories[i]``: the
    chain's stored past on the first call after it was loaded, else ``None`` (see :class:`Memory`).
    """

    chain_seeds: list[int]
    steps: list[int]
    n_steps: int
    chains: list[int] | None = None
    origins: list[np.ndarray] | None = None
    memories: list[Memory | None] | None = None


@dataclass(frozen=True)
class Requirements:
    """What a replicator asks of the engine.

    ``size_multiple``: frame sides must be a multiple of this (the engine rounds ``--size`` to it).
    ``max_batch``: the most frames one ``replicate`` call accepts (``None``: no limit).
    ``deterministic``: same frames and seeds give bit-identical copies (what makes resume exact).
    ``cost_per_image_usd``: money per copy, for hosted models.
    ``wants_context``: ``replicate`` is also called with ``context=StepContext(...)``.
    ``memory``: how many of a chain's last stored frames the replicator needs to continue it after a load
    (a conversation's earlier turns); ``-1``: all of them; ``0``: none (every call stands alone).
    """

    size_multiple: int = 1
    max_batch: int | None = None
    device: str = "cpu"
    deterministic: bool = True
    cost_per_image_usd: float = 0.0
    wants_context: bool = False
    memory: int = 0


@dataclass(frozen=True)
class Needs:
    """What one replica of a model asks of the machine it runs on, declared from its spec's config alone
    (nothing built, no weights loaded), so a cluster can place it before any model exists.

    ``gpu``: ``"required"`` (``device=cuda``), ``"preferred"`` (``device=auto``: a GPU when the cluster has
    one, else a CPU) or ``"none"``. ``cpus``: CPU cores a replica keeps busy. ``memory_mb``: host memory a
    replica needs (weights and activations at a typical 512² batch), 0 when negligible. ``api``: a hosted
    model, which needs an API key (one unit of the key's custom resource on a Ray cluster) and no CPU.
    A config declares them with a ``needs()`` method; one without it runs on one CPU, or by its ``device``.
    """

    gpu: str = "none"
    cpus: float = 1.0
    memory_mb: int = 0
    api: bool = False


def device_needs(device: str, memory_mb: int = 0, cpus: float = 1.0) -> Needs:
    """The needs of a model that runs where ``device`` (``auto``, ``cpu``, ``cuda[:N]``, ``mps``) says."""
    gpu = "required" if device.startswith("cuda") else "preferred" if device == "auto" else "none"
    return Needs(gpu=gpu, cpus=cpus, memory_mb=memory_mb)


def declared_needs(config: Any) -> Needs:
    """A config's :class:`Needs`: its own ``needs()``, else from its ``device`` field, else one CPU."""
    hook = getattr(config, "needs", None)
    if callable(hook):
        return hook()
    device = getattr(config, "device", None)
    return device_needs(device) if isinstance(device, str) else Needs()


@runtime_checkable
class Replicator(Protocol):
    """One model that copies images. ``spec`` is the canonical spec string it was built from."""

    spec: str
    requirements: Requirements

    def replicate(self, frames: Frames, seeds: list[int]) -> Sequence[Outcome]:
        """One outcome per frame: a copy (an array, or a :class:`Copy` with facts about it), or a
        :class:`Refusal` / :class:`Failure` for that frame alone. ``seeds[i]`` is the step seed of
        ``frames[i]``. Raise only for problems that concern every frame (configuration, a bug); if some
        frames were already made when that happens, raise :class:`BatchAborted` with them."""
        ...

    def describe(self) -> dict[str, Any]:
        """Facts recorded with the run: weights hash, dtype, device, library versions."""
        ...


class OptionalHooks(Protocol):
    """Hooks a replicator may define besides the :class:`Replicator` protocol; the engine and the API reach
    them only through the functions below, which give the default when a replicator has none.

    ``price_model``: the replicator's key in the cost table (``openai:gpt-image-1``), named when a budget
    (``--max-cost``) needs a price the table lacks. Default: the replicator's ``spec``.

    ``hosted_estimate(factors)``: a hosted model's per-image energy and price estimate
    (:class:`driftloop.cost.HostedEstimate`) under the run's cost factor table
    (:class:`driftloop.cost.Factors`), which the replicator also adopts for the prices it puts on each copy.
    Default: ``None`` (a local model, whose energy is metered where it runs).

    ``align_with(model_info)``: on resume, given the facts :meth:`Replicator.describe` recorded when the run
    was made, adjust what changes the numerics without being part of the spec (e.g. a CPU thread count,
    which changes oneDNN's float rounding), so resumed frames stay bit-identical; returns one message per
    change made, for the log. Default: nothing changes (``[]``).

    ``call_estimate(height, width, factors)``: a hosted model's price and time for one call on a frame of
    that size, input tokens included (``CallEstimate``); it also becomes the per-copy price a budget is
    checked against. ``notices``: warnings about the model (retired, deprecated), logged and stored with
    the run. Defaults: ``None`` and ``[]``.

    ``next_call_usd(chains, step)``: what the next call on these chains is expected to cost in all, for a
    model whose price changes from call to call (a conversation grows each turn); the budget is checked
    against it before the call. Default: ``None`` (the per-copy price applies).
    """

    price_model: str
    notices: list[str]

    def hosted_estimate(self, factors: Any) -> Any: ...

    def call_estimate(self, height: int, width: int, factors: Any) -> Any: ...

    def align_with(self, model_info: dict[str, Any]) -> list[str]: ...


def price_model(replicator: Replicator) -> str:
    """The replicator's key in the cost table (see :class:`OptionalHooks`); its spec when it names none."""
    return getattr(replicator, "price_model", replicator.spec)


def hosted_estimate(replicator: Replicator, factors: Any) -> Any | None:
    """A hosted model's per-image energy and price estimate under ``factors``; ``None`` for local models."""
    hook = getattr(replicator, "hosted_estimate", None)
    return hook(factors) if callable(hook) else None


def call_estimate(replicator: Replicator, height: int, width: int, factors: Any) -> Any | None:
    """A hosted model's price and time for one call on a height×width frame (it also sets the per-copy price
    a budget is checked against); ``None`` for local models."""
    hook = getattr(replicator, "call_estimate", None)
    return hook(height, width, factors) if callable(hook) else None


def next_call_usd(replicator: Replicator, chains: list[int], step: int) -> float | None:
    """The expected price of the next call on ``chains`` making ``step`` (see :class:`OptionalHooks`);
    ``None``: the replicator's per-copy price applies."""
    hook = getattr(replicator, "next_call_usd", None)
    return hook(chains, step) if callable(hook) else None


def notices(replicator: Replicator) -> list[str]:
    """Warnings about the model itself (a retired or deprecated hosted model), to log and store."""
    return list(getattr(replicator, "notices", ()) or ())


def align_with(replicator: Replicator, model_info: dict[str, Any]) -> list[str]:
    """Align a resumed replicator with what its run recorded; the messages to log (``[]``: nothing to do)."""
    hook = getattr(replicator, "align_with", None)
    return list(hook(model_info)) if callable(hook) else []


@dataclass(frozen=True)
class WeightsStatus:
    """Whether a backend can run here without downloading anything, and where its weights are."""

    present: bool
    where: str = ""


@dataclass(frozen=True)
class Backend:
    """A registered family of replicators.

    ``config_type`` is a dataclass whose fields are the spec parameters; ``positional`` names the field a bare
    spec argument fills (``openai:gpt-image-1`` → ``model``). ``build`` turns a config into a replicator.
    """

    name: str
    summary: str
    config_type: type
    build: Callable[[Any], Replicator]
    positional: str | None = None
    weights_status: Callable[[Any], WeightsStatus] = field(default=lambda config: WeightsStatus(True, "none"))
    notes: str = ""
    aliases: Sequence[str] = ()


class CallableReplicator:
    """Wraps a plain Python callable ``(frames, seeds) -> frames`` so it can be passed as the model."""

    requirements = Requirements()

    def __init__(self, fn: ReplicateFn, name: str | None = None) -> None:
        self._fn = fn
        qual = getattr(fn, "__qualname__", type(fn).__name__)
        self.spec = name or f"callable:{getattr(fn, '__module__', '?')}.{qual}"

    def replicate(self, frames: Frames, seeds: list[int]) -> Frames:
        return self._fn(frames, seeds)

    def describe(self) -> dict[str, Any]:
        return {"kind": "callable", "name": self.spec, "code_sha256": code_fingerprint(self._fn)}


def code_fingerprint(fn: object) -> str | None:
    """sha256 of a function's bytecode and constants (None for callables without ``__code__``): tells, on
    resume, whether the callable passed again is the one the run was made with."""
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object: its class's __call__
        code = getattr(vars(type(fn)).get("__call__"), "__code__", None)
    if code is None:
        return None
    parts = [code.co_code, repr(code.co_consts).encode(), repr(code.co_names).encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()
