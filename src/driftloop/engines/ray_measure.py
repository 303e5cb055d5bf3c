"""``metrics --recompute`` on Ray: a stored run's frames measured again by workers, written by the driver.

The workspace stays on the driver's disk, so the driver reads each chain's frames and sends the chain to a
:class:`MeasureWorker` (its face and perceptual models loaded once), which measures it with the same
:class:`~driftloop.metrics.recorder.FrameMeasurer` the engines use and sends the rows back; the driver
writes them (SQLite keeps one writer). At most two chains per worker are in flight, so the driver's memory
is bounded by the worker count, not the run's size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from driftloop.config import MetricsConfig
from driftloop.engines.ray import connect, forwarded_env
from driftloop.frames import read_frame
from driftloop.metrics.recorder import FrameMeasurer, load_tools
from driftloop.store import RunView

Rows = list[tuple[int, int, dict[str, float]]]


class MeasureWorker:
    """Measures whole chains (an actor): its measuring models are loaded once, when it starts."""

    def __init__(self, perceptual: bool, faces: bool) -> None:
        self.settings, self.skipped = load_tools(perceptual, faces)

    def notes(self) -> list[tuple[str, str]]:
        return self.skipped

    def measure(self, chain: int, frames: dict[int, np.ndarray]) -> tuple[Rows, list[str]]:
        """Rows of a chain's frames (step -> frame, frame 0 included); one message per frame that failed."""
        measurer = FrameMeasurer(self.settings, lambda c, step: frames[step])
        rows: Rows = []
        problems: list[str] = []
        for step in sorted(frames):
            try:
                rows.append((chain, step, measurer.measure(chain, step, frames[step])))
            except Exception as exc:  # a metric bug must not cost the other frames
                problems.append(f"metrics of chain {chain} step {step} failed: {exc}")
        return rows, problems


def recompute_on_ray(
    run: RunView,
    progress: Callable[[int, int], None] | None = None,
    perceptual: bool | None = None,
    address: str | None = None,
    workers: int | None = None,
) -> int:
    """Measure every stored frame of ``run`` again on Ray workers; return how many frames were measured."""
    wanted = run.run_config.metrics
    if perceptual is not None:
        wanted = MetricsConfig(enabled=True, perceptual=perceptual)
    ray = connect(address)
    rows_by_chain: dict[int, list[Any]] = {}
    for r in run.frame_rows():
        rows_by_chain.setdefault(r.chain, []).append(r)
    total = sum(len(v) for v in rows_by_chain.values())
    n = max(1, min(workers or int(ray.cluster_resources().get("CPU", 1)), len(rows_by_chain) or 1))
    cls = ray.remote(MeasureWorker).options(num_cpus=1, runtime_env={"env_vars": forwarded_env()})
    actors = [cls.remote(wanted.perceptual, wanted.faces) for _ in range(n)]
    try:
        for family, why in ray.get(actors[0].notes.remote()):
            run.store.add_event(run.id, "metrics-skipped", f"{family}: {why}")
        run.store.delete_metrics(run.id)
        todo = deque(sorted(rows_by_chain))
        free = deque(actors * 2)  # two chains in flight per worker
        busy: dict[Any, Any] = {}
        done = 0
        while todo or busy:
            while todo and free:
                chain, actor = todo.popleft(), free.popleft()
                frames = {r.step: read_frame(run.path / r.path) for r in rows_by_chain[chain]}
                busy[actor.measure.remote(chain, frames)] = actor
            (ref,), _ = ray.wait(list(busy), num_returns=1)
            free.append(busy.pop(ref))
            rows, problems = ray.get(ref)
            run.store.add_metrics(run.id, rows)
            for message in problems:
                run.store.add_event(run.id, "metrics", message)
            done += len(rows) + len(problems)
            if progress:
                progress(done, total)
    finally:
        for actor in actors:
            ray.kill(actor)
    return total
