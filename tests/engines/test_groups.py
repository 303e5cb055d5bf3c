"""Chains advance in groups of the batch size: frame 0 is loaded when a group starts, and an interrupted run
whose later groups never started resumes from their inputs to the same frames."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import driftloop
from conftest import noise_frame
from driftloop.errors import InputError, RunInterrupted
from driftloop.store import Store


def _inputs(tmp_path: Path, n: int = 3) -> list[Path]:
    paths = []
    for i in range(n):
        path = tmp_path / f"in{i}.png"
        Image.fromarray(noise_frame(i, 40)).save(path)
        paths.append(path)
    return paths


def _frames(ws: Path, run_id: str) -> dict[tuple[int, int], str]:
    return {(f.chain, f.step): f.sha256 for f in Store(ws).frames(run_id)}


def test_groups_run_one_after_another_and_resume_from_inputs(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    kwargs = {
        "model": "jpeg:quality=60",
        "n": 3,
        "seeds": [0, 1],
        "size": 32,
        "batch_size": 2,
        "render": False,
    }
    whole = driftloop.run(inputs, workspace=tmp_path / "a", **kwargs)
    assert len(_frames(tmp_path / "a", whole.id)) == 6 * 4

    seen = []

    def stop_after_first_group(event) -> None:
        seen.append(event)
        if event.chains_done == 2:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        driftloop.run(inputs, workspace=tmp_path / "b", progress=stop_after_first_group, **kwargs)
    (summary,) = driftloop.runs(tmp_path / "b")
    store = Store(tmp_path / "b")
    # the first group is complete; the others never started, so not even their frame 0 is stored
    assert [c.last_step for c in store.chains(summary.id)] == [3, 3, -1, -1, -1, -1]
    assert [e.frames_done for e in seen][-1] == 6 and seen[-1].frames_total == 18
    resumed = driftloop.resume(summary.id, workspace=tmp_path / "b", render=False)
    assert resumed.status == "done"
    assert _frames(tmp_path / "b", summary.id) == _frames(tmp_path / "a", whole.id)


def test_a_changed_input_of_an_unstarted_chain_is_refused_on_resume(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path, 2)

    def stop(event) -> None:
        if event.chains_done == 1:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        driftloop.run(inputs, model="jpeg", n=2, size=32, batch_size=1, workspace=tmp_path / "ws",
                      render=False, progress=stop)  # fmt: skip
    Image.fromarray(noise_frame(99, 40)).save(inputs[1])
    (summary,) = driftloop.runs(tmp_path / "ws")
    with pytest.raises(InputError, match=r"in1\.png: changed since run"):
        driftloop.resume(summary.id, workspace=tmp_path / "ws", render=False)
