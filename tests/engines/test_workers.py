"""Per-worker status of a Ray run: what the driver records of each worker slot, and how it is read back
(``driftloop runs --workers RUN``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from driftloop.engines import workers as board_module
from driftloop.engines.workers import WorkerBoard, read_workers
from driftloop.errors import StoreError
from driftloop.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import run_cli


def _board(tmp_path: Path, clock: list[float], monkeypatch: pytest.MonkeyPatch) -> WorkerBoard:
    monkeypatch.setattr(board_module.time, "time", lambda: clock[0])
    return WorkerBoard(tmp_path)


def test_a_slot_adds_up_copies_failures_and_restarts_across_its_workers(tmp_path, monkeypatch) -> None:
    clock = [100.0]
    board = _board(tmp_path, clock, monkeypatch)
    board.started(0, "driftloop:R:w0")
    board.started(1, "driftloop:R:w1")
    clock[0] = 104.0
    board.ready(0, {"node": "n-gpu-1", "host": "h1", "device": "cuda:0"})
    board.ready(1, {"node": "n-gpu-2", "host": "h2", "device": "cuda:0"})
    clock[0] = 106.0
    board.copies(0, 8)
    board.copies(1, 4)
    board.failed(1)  # its node went away: a replacement takes the slot
    board.started(1, "driftloop:R:w2")
    clock[0] = 110.0
    board.ready(1, {"node": "n-gpu-3", "host": "h3", "device": "cuda:0"})
    board.copies(0, 8)  # the board is written at most every EVERY_S; close writes the last state
    board.copies(1, 4)
    board.close()
    w0, w1 = read_workers(tmp_path)
    assert (w0["name"], w0["node"], w0["device"], w0["state"]) == (
        "driftloop:R:w0",
        "n-gpu-1",
        "cuda:0",
        "done",
    )
    assert (w0["copies"], w0["failures"], w0["restarts"]) == (16, 0, 0)
    assert w0["copies_per_s"] == pytest.approx(16 / 6)  # from its model loaded (104) to its last copy (110)
    assert (w1["name"], w1["node"], w1["host"]) == ("driftloop:R:w2", "n-gpu-3", "h3")
    assert (w1["copies"], w1["failures"], w1["restarts"]) == (8, 1, 1)


def test_a_worker_still_starting_at_the_end_was_not_needed(tmp_path, monkeypatch) -> None:
    board = _board(tmp_path, [100.0], monkeypatch)
    board.started(0, "driftloop:R:w0")
    board.started(1, "driftloop:R:w1")
    board.ready(0, {"node": "n1", "host": "h1", "device": "cpu"})
    board.state(0, "working")
    board.copies(0, 24)
    board.close()  # w1's model was still loading when w0 had made every copy
    w0, w1 = read_workers(tmp_path)
    assert (w0["state"], w0["node"]) == ("done", "n1")
    assert (w1["state"], w1["node"], w1["copies"]) == ("not needed", "", 0)


def test_reading_workers(tmp_path: Path) -> None:
    assert read_workers(tmp_path) == []  # a local run: no board
    (tmp_path / "workers.json").write_text("{not json")
    with pytest.raises(StoreError, match=r"workers\.json: cannot read the workers' status"):
        read_workers(tmp_path)


def test_runs_workers_prints_one_line_per_worker(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    store.create_run("r1", "taef2", 4, {}, {}, {}, {}, [("x.png", "0" * 64, 0)])
    board = WorkerBoard(store.run_dir("r1"))
    board.started(0, "driftloop:r1:w0")
    board.ready(0, {"node": "abcdef0123456789", "host": "gpu-box", "device": "cuda:0"})
    board.copies(0, 3)
    board.failed(0)
    board.close()
    out = run_cli("runs", "--workers", "r1", "-w", str(tmp_path / "ws"))
    assert out.returncode == 0, out.stderr
    header, line = [x.split() for x in out.stdout.strip().splitlines()]
    assert header == [
        "worker",
        "node",
        "host",
        "device",
        "state",
        "copies",
        "copies/s",
        "failures",
        "restarts",
    ]
    assert line[:6] == ["w0", "abcdef012345", "gpu-box", "cuda:0", "done", "3"] and line[7:] == ["1", "0"]
    store.create_run("r2", "taef2", 4, {}, {}, {}, {}, [("x.png", "0" * 64, 0)])
    out = run_cli("runs", "--workers", "r2", "-w", str(tmp_path / "ws"))
    assert out.returncode == 0 and "has no Ray workers" in out.stdout
