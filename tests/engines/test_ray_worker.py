"""The Ray worker's budgeted replicator: a conversation's calls are admitted at the price of their turns."""

from __future__ import annotations

from typing import Any

import numpy as np

from driftloop.engines.ray_worker import Budgeted
from driftloop.replicators.base import Copy, Requirements, StepContext


class _Remote:
    def __init__(self, fn: Any) -> None:
        self.remote = fn


class _Budget:
    """Records what each call reserved; admits everything."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, float]] = []
        self.reserve = _Remote(lambda copies, listed: self._reserve(copies, listed))
        self.settle = _Remote(lambda reserved, usd, copies: None)

    def _reserve(self, copies: int, listed: float) -> tuple[float, None]:
        self.asked.append((copies, listed))
        return copies * listed, None


class _Thread:
    """A conversation whose k-th turn costs k dollars, listed at 1 per copy."""

    spec = "thread-test"
    requirements = Requirements(device="api", cost_per_image_usd=1.0, wants_context=True, memory=1)

    def next_call_usd(self, chains: list[int], step: int) -> float:
        return float(step * len(chains))

    def replicate(self, frames: list[Any], seeds: list[int], context: Any = None) -> list[Any]:
        return [Copy(f, {"usd": float(context.steps[0])}) for f in frames]

    def describe(self) -> dict[str, Any]:
        return {}


def test_a_conversation_is_reserved_at_its_turns_price() -> None:
    budget = _Budget()
    worker = Budgeted(_Thread(), budget, lambda value: value)
    frames = [np.zeros((4, 4, 3), np.uint8)] * 2
    for step in (1, 5):
        context = StepContext([0, 1], [step, step], 10, [0, 1], None, None)
        worker.replicate(frames, [0, 0], context=context)
    assert budget.asked == [(2, 1.0), (2, 5.0)]  # not the listed $1 at turn 5
