"""Conversation replicators: each chain is one thread with the model, as the viral chains were made in a chat.

A chain's copies are asked for in one conversation: the first turn carries the picture and the trend's
prompt, every later turn the prompt alone, so the model draws each copy seeing every earlier one. Three
context modes, part of the spec string (so sweeps and resume match on them):

* ``thread`` (default): the whole conversation, kept by the provider (OpenAI ``previous_response_id``) or
  resent each turn (Gemini's history, with the thought signatures the model requires);
* ``window=K``: a new conversation each turn carrying only the last K turns (the frame to copy and the K
  frames before it), for budgets or providers where a whole thread is impossible;
* ``window=0``: every turn alone on the same endpoint, the control (the ``openai:`` / ``gemini:`` backends
  are the fresh-request control on the image endpoints).

The engine hands a chain's stored past over once after it loads the chain (a resume: :class:`Memory`), so a
thread continues where it stopped; with ``resume --restart-thread`` a new thread begins from the last
stored frame, and that copy's info says so (``thread.restarted``).

Cost grows with the thread (input tokens rise turn by turn). :class:`ThreadReplicator` prices each turn
from the usage the answer reports, predicts the next turn's price for ``--max-cost`` (the larger of the
model's estimate and the last turn's price plus its growth), and gives the dry run a per-turn curve
(:meth:`turn_usd`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftloop.errors import SpecError
from driftloop.replicators.base import Copy, Frames, Memory, Outcome, Requirements, StepContext
from driftloop.replicators.hosted.canvas import encode_png, place
from driftloop.replicators.hosted.outcomes import Answer, HostedConfigError, Job, Problem
from driftloop.replicators.hosted.replicator import CallEstimate, HostedReplicator


def context_mode(window: int | None) -> str:
    """``thread``, ``window=K`` or ``fresh`` (``window=0``): the context mode's name in records."""
    if window is None:
        return "thread"
    return "fresh" if window == 0 else f"window={window}"


def check_window(spec: str, window: int | None) -> None:
    if window is not None and window < 0:
        raise SpecError(f"model spec {spec!r}: window must be 0 (fresh requests) or more earlier turns")


@dataclass
class Shown:
    """A frame as the conversation showed it: its step, the PNG sent (the frame on the API's canvas), the
    info stored with it when it was a copy, and the provider's own record of that turn (kept in memory:
    the model's full answer, e.g. Gemini's parts with their thought signatures)."""

    step: int
    png: bytes
    info: dict[str, Any] | None = None
    raw: Any = None


@dataclass
class Conversation:
    """One chain's thread: the frames it has shown (oldest first), what the provider keeps of it
    (``state``: a response id), and the copy just made, waiting for the next turn to show it."""

    shown: list[Shown]
    thread_id: str | None = None
    turn: int = 0  # turns asked in this thread so far
    restarted: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    made: tuple[int, dict[str, Any], Any] | None = None  # (step, info, raw) of the last copy
    usd: list[float] = field(default_factory=list)  # what each turn of this chain cost


class ThreadReplicator(HostedReplicator):
    """The shared half of a conversation replicator; a provider module supplies the request from the
    conversation (:meth:`_send_turn`), what to remember of a copy (:meth:`_remember`), how to pick a thread
    up from stored info (:meth:`_resume_state`) and the per-turn token model (:meth:`turn_counts`)."""

    memory_depth = 1  # stored frames a thread needs to continue (OpenAI: the last response id)

    def __init__(self, name: str, config: Any, secrets: Any) -> None:
        super().__init__(name, config, secrets)
        self.window: int | None = config.window
        self.mode = context_mode(self.window)
        self.conversations: dict[int, Conversation] = {}
        self._turns: dict[int, tuple[int, int]] = {}  # job index -> (chain, step), for the batch in flight
        self._canvas_of: tuple[int, int] | None = None
        self.requirements = self._requirements(self.requirements.cost_per_image_usd)

    def _requirements(self, usd: float) -> Requirements:
        depth = self.memory_depth if self.window is None else self.window + 1
        return Requirements(
            size_multiple=1, device="api", deterministic=False, cost_per_image_usd=usd, wants_context=True,
            memory=depth,
        )  # fmt: skip

    # ------------------------------------------------------------------ the batch

    def replicate(
        self, frames: Frames, seeds: list[int], context: StepContext | None = None
    ) -> list[Outcome]:
        if context is None or context.chains is None:
            raise HostedConfigError(f"{self.spec} continues a conversation per chain: call it through a run")
        for i, chain in enumerate(context.chains):
            memory = context.memories[i] if context.memories else None
            if memory is not None:
                self._resume(chain, memory)
        self._turns = {i: (c, s) for i, (c, s) in enumerate(zip(context.chains, context.steps, strict=True))}
        return super().replicate(frames, seeds)

    def _resume(self, chain: int, memory: Memory) -> None:
        """Pick a chain's thread up from its stored frames (or, restarting, begin a new one at the last)."""
        canvas = None
        shown = []
        for step, frame, info in memory.frames:
            canvas = canvas or self._canvas(frame)
            array, _ = place(frame, canvas, self.config.pad, self.config.resample)
            shown.append(Shown(step, encode_png(array), info))
        last = (memory.frames[-1][2] or {}) if memory.frames else {}
        thread = last.get("thread") or {}
        if memory.restart or not thread or memory.frames[-1][0] == 0:
            self.conversations[chain] = Conversation(shown[-1:], restarted=memory.restart)
            return
        conv = Conversation(shown, thread_id=thread.get("id"), turn=int(thread.get("turn", 0)))
        conv.state = self._resume_state(last)
        self.conversations[chain] = conv

    def _conversation(self, job: Job) -> tuple[int, int, Conversation]:
        """The job's chain, step and conversation, brought up to the frame this job shows."""
        chain, step = self._turns[job.index]
        conv = self.conversations.get(chain)
        if conv is not None and conv.made is not None and conv.made[0] == step - 1:
            _, info, raw = conv.made
            conv.shown.append(Shown(step - 1, job.png, info, raw))
            conv.made = None
        if conv is None or conv.shown[-1].step != step - 1:  # nothing stored to continue: a new thread
            conv = Conversation([Shown(step - 1, job.png)], restarted=conv is not None or step > 1)
            self.conversations[chain] = conv
        else:
            conv.shown[-1] = Shown(step - 1, job.png, conv.shown[-1].info, conv.shown[-1].raw)
        keep = self._requirements(0.0).memory  # frames worth keeping: the window, or what a thread resends
        if keep > 0:
            del conv.shown[:-keep]
        return chain, step, conv

    def context(self, conv: Conversation) -> list[Shown]:
        """The frames this turn's request carries when it is rebuilt (window modes, Gemini's history): all
        of them for a thread, else the last K+1 (the frame to copy and the K before it)."""
        if self.window is None:
            return list(conv.shown)
        return list(conv.shown[-(self.window + 1) :])

    def new_thread(self, conv: Conversation) -> bool:
        """Whether this turn begins a conversation (a thread's first turn, or every windowed turn)."""
        return self.window is not None or conv.turn == 0

    def _send(self, job: Job) -> Answer:
        conv = self._conversation(job)[2]
        answer = self._send_turn(job, conv)
        context = len(self.context(conv)) if self.window is not None else conv.turn + 1
        answer.facts["thread"] = {
            "mode": self.mode,
            "id": conv.thread_id,
            "turn": conv.turn + 1 if self.window is None else 1,
            "images_sent": context if self.new_thread(conv) else 1,
            "images_in_context": context,
            **({"restarted": True} if conv.restarted and conv.turn == 0 else {}),
        }
        return answer

    def _read_copy(self, job: Job, answer: Answer, info: dict[str, Any]) -> Copy | Problem:
        made = super()._read_copy(job, answer, info)
        if isinstance(made, Copy):
            chain, step = self._turns[job.index]
            conv = self.conversations[chain]
            if self.window is None:
                conv.turn += 1
                conv.thread_id = conv.thread_id or answer.facts.get("response_id") or f"chain-{chain}"
                made.info["thread"]["id"] = conv.thread_id
            self._remember(conv, answer)
            conv.made = (step, made.info, answer.raw)
            conv.restarted = False
            conv.usd.append(float(made.info.get("usd") or 0.0))
        return made

    # ------------------------------------------------------------------ provider hooks

    def _send_turn(self, job: Job, conv: Conversation) -> Answer:
        raise NotImplementedError

    def _remember(self, conv: Conversation, answer: Answer) -> None:
        """Keep what the provider needs to continue the thread after this copy."""

    def _resume_state(self, info: dict[str, Any]) -> dict[str, Any]:
        """The provider's thread state from the last stored copy's info (a thread continued on resume)."""
        return {}

    def turn_counts(self, turn: int, canvas: tuple[int, int]) -> dict[str, int]:
        """Tokens the ``turn``-th turn of a conversation is expected to bill (by the price table's kinds)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ cost as the thread grows

    def turn_usd(self, turn: int, canvas: tuple[int, int] | None = None) -> float:
        """The expected price of a chain's ``turn``-th copy (1 = the first), its context included: a thread
        grows turn by turn, a window stops growing after K+1 turns, fresh requests do not grow."""
        canvas = canvas or self._canvas_of or (1024, 1024)
        context = turn if self.window is None else min(turn, self.window + 1)
        price = self.factors.token_price(self.price_model, self.turn_counts(context, canvas), cite=False)
        return price.usd if price is not None else self.estimate_usd_per_image()

    def call_estimate(self, height: int, width: int, factors: Any = None) -> CallEstimate:
        """The first turn's price, with :meth:`turn_usd` for every later one (``CallEstimate.turn_usd``)."""
        self.factors = factors or self.factors
        self._canvas_of = self._canvas(np.zeros((height, width, 3), np.uint8))
        first = self.turn_usd(1)
        self.requirements = self._requirements(first)
        latency = self.entry.get("latency_s") if self.entry else None
        detail = f"{self.mode}: turn 1 ${first:.3f}, growing with the context (prices of {self.price_model})"
        return CallEstimate(
            first, float(latency) if latency else None, detail, self._canvas_of, self.config.concurrency,
            self.config.rpm, turn_usd=self.turn_usd,
        )  # fmt: skip

    def next_call_usd(self, chains: list[int], step: int) -> float:
        """What the next turn of these chains should cost: the model's estimate for its turn, or the last
        turn's price plus its growth when the answers bill more."""
        total = 0.0
        for chain in chains:
            conv = self.conversations.get(chain)
            turn = (conv.turn + 1) if conv is not None and self.window is None else step
            estimate = self.turn_usd(turn)
            paid = conv.usd if conv is not None else []
            if len(paid) >= 2:
                estimate = max(estimate, paid[-1] + max(0.0, paid[-1] - paid[-2]))
            elif paid:
                estimate = max(estimate, paid[-1])
            total += estimate
        return total

    def _describe_thread(self) -> dict[str, Any]:
        return {"context": self.mode, "window": self.window}
