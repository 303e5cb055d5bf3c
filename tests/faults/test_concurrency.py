"""Two processes on one workspace: started at the same moment, or one advancing a run the other asks for."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from .conftest import (
    TALLY,
    Reference,
    assert_no_traceback,
    assert_same_frames,
    assert_sound,
    driftloop,
    finish,
    jpeg_args,
    message_lines,
    only_run,
    run_ids,
    spawn,
    wait_for_frames,
)

STEPS = 20
LOCKED = "is being advanced by another process right now"


def test_two_runs_started_at_the_same_moment(
    picture: Path, reference: Callable[..., Reference], tmp_path: Path
) -> None:
    """Both create the workspace, each makes its own run, and both runs are whole and bit-identical."""
    ref = reference(*jpeg_args(picture, STEPS))
    ws = tmp_path / "ws"
    procs = [spawn(*ref.args, "-w", ws) for _ in range(2)]
    TALLY.inject("two runs at once")
    results = [finish(p) for p in procs]
    for code, _, err in results:
        assert_no_traceback(err)
        assert code == 0, err
    ids = run_ids(ws)
    assert len(ids) == 2 and ids[0] != ids[1]
    for run_id in ids:
        assert_same_frames(ws, run_id, ref.frames)


def test_two_resuming_runs_at_the_same_moment(
    picture: Path, reference: Callable[..., Reference], tmp_path: Path
) -> None:
    """``run --resume`` twice at once: each does the work or is refused (exit 2)."""
    ref = reference(*jpeg_args(picture, STEPS))
    ws = tmp_path / "ws"
    procs = [spawn(*ref.args, "--resume", "-w", ws) for _ in range(2)]
    TALLY.inject("two resuming runs at once")
    results = [finish(p) for p in procs]
    for code, _, err in results:
        assert_no_traceback(err)
        assert code in (0, 2), err
        if code == 2:
            assert LOCKED in err, err
    assert any(code == 0 for code, _, _ in results)
    for run_id in run_ids(ws):
        assert_same_frames(ws, run_id, ref.frames)


def test_lock_refusal_exits_2(picture: Path, tmp_path: Path, rng: random.Random) -> None:
    """While one process advances a run, ``resume`` and ``run --resume`` are refused: exit 2, one line."""
    args = jpeg_args(picture, 100_000, "--no-metrics")
    ws = tmp_path / "ws"
    owner = spawn(*args, "-w", ws)
    try:
        wait_for_frames(owner, ws, rng.randint(2, 20))
        assert owner.poll() is None, "the first run must still be going"
        run_id = only_run(ws)
        for second in (("resume", run_id, "-q"), (*args, "--resume")):
            res = driftloop(*second, "-w", ws)
            TALLY.inject("second process on a locked run")
            assert_no_traceback(res)
            assert res.returncode == 2, f"{second[0]}: exit {res.returncode}; {res.stderr}"
            (line,) = message_lines(res.stderr)
            assert run_id in line and LOCKED in line, line
    finally:
        if owner.poll() is None:
            owner.kill()  # clean-up, not a fault under test
        finish(owner)
    assert_sound(ws, only_run(ws), allow_leftovers=True)
