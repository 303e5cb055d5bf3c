"""Per-frame metrics, computed while the model works on the next step.

The chain engine hands every new frame to a :class:`MetricsRecorder`; a worker thread turns it into
:mod:`driftloop.metrics` features (each frame's computed once and reused as the next frame's "previous")
and stores one row of numbers per frame. The queue is bounded: if metrics ever fall behind the model the
engine waits, so memory stays flat and the cost shows up honestly in the wall time.

A frame's metrics only need the original and the previous frame, both on disk, so the worker heals
itself: after a resume, or for frames measured out of order, it reads what it has not cached.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftloop.background import yield_to_model
from driftloop.config import MetricsConfig
from driftloop.frames import read_frame
from driftloop.metrics import FrameFeatures, face, frame_metrics
from driftloop.store import RunView, Store


@dataclass
class _ChainCache:
    origin: FrameFeatures | None = None
    origin_emb: Any = None
    prev_step: int = -1
    prev: FrameFeatures | None = None
    prev_emb: Any = None


@dataclass(frozen=True)
class MetricsSettings:
    """What to measure: the non-neural suite always; perceptual scores and face landmarks when given."""

    perceptual: Any = None  # a driftloop.metrics.perceptual.PerceptualScorer, or None
    faces: Any = None  # a driftloop.metrics.face.FaceMeasurer, or None
    batch_rows: int = 8
    depth: int = 16


class FrameMeasurer:
    """One frame's metrics against its chain's origin and previous frame, with both kept per chain.

    Store-free, so the same code measures in the local engine's metrics thread and on a Ray worker (where
    the frame is made): the same functions on the same frames give the same row. ``load(chain, step)``
    reads a frame the cache does not hold (after a resume, or for frames measured out of order);
    :meth:`prime` fills the cache from frames already in memory instead.
    """

    def __init__(self, settings: MetricsSettings, load: Callable[[int, int], np.ndarray]) -> None:
        self.settings, self.load = settings, load
        self._cache: dict[int, _ChainCache] = {}

    def _features(self, frame: np.ndarray) -> tuple[FrameFeatures, Any]:
        scorer = self.settings.perceptual
        return FrameFeatures.of(frame), (scorer.embed(frame) if scorer is not None else None)

    def prime(self, chain: int, origin: np.ndarray, step: int, frame: np.ndarray) -> None:
        """Cache a chain's frame 0 and its frame at ``step`` (the one the next copy is made from)."""
        cache = self._cache.setdefault(chain, _ChainCache())
        cache.origin, cache.origin_emb = self._features(origin)
        if step == 0:
            cache.prev_step, cache.prev, cache.prev_emb = 0, cache.origin, cache.origin_emb
        else:
            cache.prev_step, (cache.prev, cache.prev_emb) = step, self._features(frame)

    def measure(self, chain: int, step: int, frame: np.ndarray) -> dict[str, float]:
        """One frame's metrics against the chain's origin and its previous frame."""
        cache = self._cache.setdefault(chain, _ChainCache())
        feats, emb = self._features(frame)
        if step == 0:
            cache.origin, cache.origin_emb = feats, emb
        elif cache.origin is None:
            cache.origin, cache.origin_emb = self._features(self.load(chain, 0))
        prev, prev_emb = None, None
        if step > 0:
            if cache.prev_step == step - 1 and cache.prev is not None:
                prev, prev_emb = cache.prev, cache.prev_emb
            else:
                prev, prev_emb = self._features(self.load(chain, step - 1))
        assert cache.origin is not None
        row = frame_metrics(feats, cache.origin, prev)
        scorer = self.settings.perceptual
        if scorer is not None:
            row.update(scorer.scores(emb, cache.origin_emb, prev_emb))
        if self.settings.faces is not None:
            row.update(self.settings.faces.measure(frame))
        cache.prev_step, cache.prev, cache.prev_emb = step, feats, emb
        return row

    def forget(self, chains: Iterable[int]) -> None:
        for c in chains:
            self._cache.pop(c, None)


@dataclass
class MetricsRecorder:
    """Worker thread computing and storing metrics for (chain, step, frame) items in submission order."""

    store: Store
    run_id: str
    settings: MetricsSettings = field(default_factory=MetricsSettings)
    on_error: Callable[[str], None] | None = None
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: queue.Queue[tuple[int, int, np.ndarray] | None] = queue.Queue(self.settings.depth)
        self.measurer = FrameMeasurer(self.settings, self._load)
        self._pending: list[tuple[int, int, dict[str, float]]] = []
        self._thread = threading.Thread(target=self._work, name="driftloop-metrics", daemon=True)
        self._thread.start()

    # ---- feeding ----------------------------------------------------------------------------------
    def submit(self, chain: int, step: int, frame: np.ndarray) -> None:
        self._queue.put((chain, step, frame))

    def submit_many(self, items: Iterable[tuple[int, int, np.ndarray]]) -> None:
        for item in items:
            self.submit(*item)

    def forget(self, chains: Iterable[int]) -> None:
        """Drop the cached features of finished chains (after what is queued for them), so the cache holds
        only the chains in flight."""
        self._queue.put(("forget", tuple(chains)))  # type: ignore[arg-type]

    def close(self) -> None:
        """Measure everything queued, store it, stop the worker."""
        self._queue.put(None)
        self._thread.join()
        self._flush()

    # ---- worker -----------------------------------------------------------------------------------
    def _load(self, chain: int, step: int) -> np.ndarray:
        return read_frame(self.store.frame_path(self.run_id, chain, step))

    def measure(self, chain: int, step: int, frame: np.ndarray) -> dict[str, float]:
        return self.measurer.measure(chain, step, frame)

    def _work(self) -> None:
        yield_to_model()
        while (item := self._queue.get()) is not None:
            if item[0] == "forget":
                self.measurer.forget(item[1])  # type: ignore[arg-type]
                continue
            chain, step, frame = item
            try:
                self._pending.append((chain, step, self.measure(chain, step, frame)))
            except Exception as exc:  # a metric bug must not cost the user their run
                message = f"metrics of chain {chain} step {step} failed: {exc}"
                self.errors.append(message)
                if self.on_error:
                    self.on_error(message)
            if len(self._pending) >= self.settings.batch_rows or self._queue.empty():
                try:
                    self._flush()
                except (
                    Exception
                ) as exc:  # e.g. a full disk: the engine stops the run; a resume measures again
                    self.errors.append(f"metrics not stored: {exc}")

    def _flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []
            self.store.add_metrics(self.run_id, rows)


def missing_frames(store: Store, run_id: str) -> list[tuple[int, int]]:
    """Stored frames without metrics (left by an interruption), in chain/step order."""
    done = store.measured_steps(run_id)
    return [(r.chain, r.step) for r in store.frames(run_id) if (r.chain, r.step) not in done]


Logger = Callable[[str], None]


def load_tools(perceptual: bool, faces: bool) -> tuple[MetricsSettings, list[tuple[str, str]]]:
    """The measuring tools a run asks for, their models loaded (once per process: a run's metrics thread,
    or a Ray worker), and ``(family, why)`` for each one that cannot run here."""
    skipped: list[tuple[str, str]] = []
    measurer = None
    if faces:
        ok, why = face.available()
        if ok:
            measurer = face.FaceMeasurer()
        else:
            skipped.append(("faces", why))
    scorer = None
    if perceptual:
        from driftloop.metrics.perceptual import PerceptualScorer  # torch / transformers: heavy

        scorer = PerceptualScorer(device="cpu")
        skipped.extend(scorer.skipped().items())
        if not scorer.available():
            scorer = None
    return MetricsSettings(perceptual=scorer, faces=measurer), skipped


def metrics_settings(store: Store, run_id: str, wanted: MetricsConfig, say: Logger) -> MetricsSettings | None:
    """What the run measures, saying once (in the log and as an event) which metrics are skipped and why."""
    if not wanted.enabled:
        return None
    settings, skipped = load_tools(wanted.perceptual, wanted.faces)
    for family, reason in skipped:
        say(f"{family} metrics skipped: {reason}")
        store.add_event(run_id, "metrics-skipped", f"{family}: {reason}")
    if not wanted.perceptual:
        store.add_event(run_id, "metrics-skipped", "perceptual metrics (LPIPS, CLIP, DINOv2) not requested")
    return settings


def recompute(
    run: RunView,
    progress: Callable[[int, int], None] | None = None,
    perceptual: bool | None = None,
    faces: bool | None = None,
) -> int:
    """Measure every stored frame of a run again (after a metrics upgrade, or with perceptual metrics or
    face measures added); return how many frames were measured."""
    wanted = run.run_config.metrics
    if perceptual is not None or faces is not None:
        wanted = MetricsConfig(
            enabled=True,
            perceptual=wanted.perceptual if perceptual is None else perceptual,
            faces=wanted.faces if faces is None else faces,
        )
    settings = metrics_settings(run.store, run.id, wanted, lambda _m: None) or MetricsSettings()
    run.store.delete_metrics(run.id)
    recorder = MetricsRecorder(run.store, run.id, settings)
    rows = run.frame_rows()
    try:
        for i, r in enumerate(rows, 1):
            recorder.submit(r.chain, r.step, read_frame(run.path / r.path))
            if progress:
                progress(i, len(rows))
    finally:  # the worker must not outlive this call, even on an unreadable frame
        recorder.close()
    return len(rows)
