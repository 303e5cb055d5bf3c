"""The chain engine: step seeds, batching, fixed points, the replicator contract, the writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import noise_frame
from driftloop.chain import ChainState, EngineSettings, advance, step_seed
from driftloop.errors import DriftloopError
from driftloop.frames import frame_sha256, read_frame
from driftloop.replicators.base import CallableReplicator, Requirements
from driftloop.store import FrameWriter, Store


def test_step_seeds_depend_only_on_chain_seed_and_step() -> None:
    assert step_seed(1, 5) == step_seed(1, 5)
    seeds = {step_seed(c, s) for c in range(5) for s in range(50)}
    assert len(seeds) == 250
    assert all(0 <= s < 2**63 for s in seeds)


def _setup(tmp_path: Path, n_chains: int) -> tuple[Store, list[ChainState]]:
    store = Store(tmp_path / "ws")
    store.create_run("r1", "test", 5, {}, {}, {}, {}, [("x.png", "0" * 64, i) for i in range(n_chains)])
    states = [ChainState(i, i, 0, noise_frame(i)) for i in range(n_chains)]
    return store, states


class Recorder:
    """Adds the low byte of each step seed, and records every call's batch size."""

    requirements = Requirements(max_batch=2)
    spec = "recorder"

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def replicate(self, frames, seeds):
        self.calls.append(list(seeds))
        return [(f.astype(np.uint16) + (s & 7)).astype(np.uint8) for f, s in zip(frames, seeds, strict=True)]

    def describe(self):
        return {}


def test_advance_batches_and_writes_every_frame(tmp_path: Path) -> None:
    store, states = _setup(tmp_path, 5)
    rep = Recorder()
    writer = FrameWriter(store, "r1")
    events = []
    advance(rep, states, EngineSettings(n_steps=3, batch_size=None), writer, events.append)
    writer.close()
    assert [len(c) for c in rep.calls] == [2, 2, 1] * 3  # the replicator's max_batch is honoured
    rows = store.frames("r1")
    assert len(rows) == 15 and {r.step for r in rows} == {1, 2, 3}
    for r in rows:
        assert r.seed == step_seed(r.chain, r.step)
        assert frame_sha256(read_frame(store.run_dir("r1") / r.path)) == r.sha256
        assert r.model_seconds is not None and r.model_seconds >= 0
    assert events[-1].frames_done == events[-1].frames_total == 15
    assert {c.status for c in store.chains("r1")} == {"done"}


def test_user_batch_size_smaller_than_limit(tmp_path: Path) -> None:
    store, states = _setup(tmp_path, 3)
    rep = Recorder()
    writer = FrameWriter(store, "r1")
    advance(rep, states, EngineSettings(n_steps=1, batch_size=1), writer)
    writer.close()
    assert [len(c) for c in rep.calls] == [1, 1, 1]


def test_fixed_point_stops_chain(tmp_path: Path) -> None:
    store, states = _setup(tmp_path, 2)
    calls = []

    def settle(frames, seeds):
        calls.append(len(frames))
        return [(f // 2).astype(np.uint8) for f in frames]  # reaches all-zero after 8 steps, then stays

    writer = FrameWriter(store, "r1")
    advance(
        CallableReplicator(settle), states, EngineSettings(20, stop_on_fixed_point=True, patience=3), writer
    )
    writer.close()
    chains = store.chains("r1")
    assert [c.status for c in chains] == ["fixed_point", "fixed_point"]
    assert all(c.last_step == 11 for c in chains)  # zero at step 8, unchanged at 9, 10, 11
    assert len(calls) == 11


def test_without_stop_rule_chain_runs_to_n(tmp_path: Path) -> None:
    store, states = _setup(tmp_path, 1)
    writer = FrameWriter(store, "r1")
    advance(CallableReplicator(lambda fs, ss: [f // 2 for f in fs]), states, EngineSettings(12), writer)
    writer.close()
    assert store.chains("r1")[0].last_step == 12


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda fs, ss: fs[:-1], "returned 1 frames for 2 inputs"),
        (lambda fs, ss: [f.astype(np.float32) for f in fs], "returned a float32 array"),
        (lambda fs, ss: [f[:-1] for f in fs], "expected uint8 (32, 32, 3)"),
        (lambda fs, ss: None, "returned NoneType frames"),
    ],
)
def test_replicator_contract_violations_are_clear(tmp_path: Path, fn, message: str) -> None:
    store, states = _setup(tmp_path, 2)
    writer = FrameWriter(store, "r1")
    with pytest.raises(DriftloopError, match=None) as info:
        advance(CallableReplicator(fn, name="bad"), states, EngineSettings(2), writer)
    writer.close()
    assert message in str(info.value)
    assert store.frames("r1") == []


def test_writer_error_surfaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, states = _setup(tmp_path, 1)

    def boom(path, frame, compress_level=1):
        raise OSError("disk full")

    monkeypatch.setattr("driftloop.store.writer.write_png_atomic", boom)
    writer = FrameWriter(store, "r1")
    with pytest.raises(OSError, match="disk full"):
        advance(CallableReplicator(lambda fs, ss: fs), states, EngineSettings(5), writer)
        writer.close()
    assert store.frames("r1") == []


def test_copy_info_is_stored_with_its_frame(tmp_path: Path) -> None:
    from driftloop.replicators.base import Copy

    store, states = _setup(tmp_path, 2)
    rep = CallableReplicator(lambda fs, ss: [Copy(f, {"caption": f"copy {i}"}) for i, f in enumerate(fs)])
    writer = FrameWriter(store, "r1")
    advance(rep, states, EngineSettings(2), writer)
    writer.close()
    rows = store.frames("r1")
    assert [r.info for r in rows] == [{"caption": "copy 0"}] * 2 + [{"caption": "copy 1"}] * 2
