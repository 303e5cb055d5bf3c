"""The workspace store: schema, lookups, the frame/row invariant."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from conftest import noise_frame
from driftloop.errors import RunNotFoundError, StoreError
from driftloop.frames import write_png_atomic
from driftloop.store import FrameRow, Store


def _run(store: Store, run_id: str) -> None:
    store.create_run(run_id, "jpeg", 3, {"k": 1}, {"m": 2}, {"v": 3}, {"h": 4}, [("a.png", "ab" * 32, 7)])


def test_run_roundtrip_and_prefix_lookup(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _run(store, "20260101-aaa")
    _run(store, "20260101-abb")
    row = store.get_run("20260101-aa")
    assert row.id == "20260101-aaa" and row.config == {"k": 1} and row.host == {"h": 4}
    with pytest.raises(RunNotFoundError, match="ambiguous"):
        store.get_run("20260101-a")
    with pytest.raises(RunNotFoundError, match="driftloop runs"):
        store.get_run("zzz")
    assert store.chains("20260101-aaa")[0].last_step == -1
    assert (tmp_path / "driftloop.db").is_file()
    assert store._query("PRAGMA journal_mode")[0][0] == "wal"


def test_prefix_with_like_wildcards_is_literal(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _run(store, "run_1")
    with pytest.raises(RunNotFoundError):
        store.get_run("r%")


def test_clean_orphans(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _run(store, "r")
    kept = store.frame_path("r", 0, 0)
    orphan = store.frame_path("r", 0, 1)
    kept.parent.mkdir(parents=True)
    write_png_atomic(kept, noise_frame(0))
    write_png_atomic(orphan, noise_frame(1))
    leftover = kept.parent / ".tmp-abc.png.part"
    leftover.write_bytes(b"half")
    store.add_frames([FrameRow("r", 0, 0, None, "x", store.frame_relpath(0, 0), None, time.time())])
    removed = store.clean_orphans("r")
    assert sorted(removed) == sorted([orphan, leftover])
    assert kept.exists() and not orphan.exists() and not leftover.exists()


def test_missing_frame_file_is_an_error(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _run(store, "r")
    store.add_frames([FrameRow("r", 0, 0, None, "x", store.frame_relpath(0, 0), None, time.time())])
    with pytest.raises(StoreError, match="recorded but missing"):
        store.clean_orphans("r")


def test_workspace_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        Store(tmp_path / "f")


def test_foreign_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "driftloop.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="cannot be opened"):
        Store(tmp_path)


def test_duplicate_frame_rejected(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _run(store, "r")
    row = FrameRow("r", 0, 0, None, "x", store.frame_relpath(0, 0), None, time.time())
    store.add_frames([row])
    with pytest.raises(Exception, match="UNIQUE"):
        store.add_frames([row])
    assert len(store.frames("r")) == 1


def test_run_list_reads_the_listing_columns_and_the_sweep_in_sql(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.create_run("r1", "jpeg", 3, {"k": 1}, {}, {}, {}, [("a.png", "ab" * 32, 7)])
    store.create_run("r2", "taef2", 5, {"sweep": "colours", "n": 2}, {}, {}, {}, [("a.png", "ab" * 32, 7)])
    store.create_run("r3", "jpeg", 1, {"sweep": ""}, {}, {}, {}, [("a.png", "ab" * 32, 7)])
    store.set_run_status("r2", "done")
    listed = store.run_list()
    assert [r.id for r in listed] == [r.id for r in store.runs()] == ["r3", "r2", "r1"]  # newest first
    assert [(r.model, r.n_steps, r.status, r.sweep) for r in listed] == [
        ("jpeg", 1, "created", None), ("taef2", 5, "done", "colours"), ("jpeg", 3, "created", None),
    ]  # fmt: skip
    assert [r.created_at for r in listed] == [r.created_at for r in store.runs()]


def test_data_version_moves_when_another_connection_commits(tmp_path: Path) -> None:
    reader, writer = Store(tmp_path), Store(tmp_path)
    before = reader.data_version()
    assert reader.data_version() == before  # nothing changed: the same number
    _run(writer, "r1")
    after = reader.data_version()
    assert after != before
    reader.run_list()  # reading does not move it
    assert reader.data_version() == after
    writer.set_run_status("r1", "done")
    assert reader.data_version() != after


def _open_together(root: Path, start: Barrier, answers: Queue[str]) -> None:
    start.wait()
    try:
        Store(root).close()
        answers.put("opened")
    except Exception as exc:  # the answer under test, sent back to the parent
        answers.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_workspace_at_once_all_get_it(tmp_path: Path) -> None:
    """Two ``run --resume`` started together both create the workspace: switching it to WAL answers
    "database is locked" at once (no busy wait) to all but one, so the store must wait and try again."""
    ctx = multiprocessing.get_context("fork")
    for trial in range(10):
        root = tmp_path / f"ws{trial}"
        start, answers = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_open_together, args=(root, start, answers)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        got = [answers.get(timeout=5) for _ in procs]
        assert got == ["opened"] * 4, f"trial {trial}: {got}"
        assert Store(root).runs() == []
