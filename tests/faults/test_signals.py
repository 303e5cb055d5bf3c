"""SIGTERM and SIGHUP at random moments of a run, and kill -9 during a TAEF2 run.

SIGTERM is what ``timeout``, systemd, ``docker stop`` and batch schedulers send; SIGHUP what a closed
terminal sends. Either must end the run like Ctrl-C: the frame in flight finished or dropped whole, the
run marked ``stopped``, one line saying how to resume, exit 128 + signal; then the resume is bit-identical
to a run that was never stopped. kill -9 cannot be handled: nothing may be lost or corrupt all the same.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import as_under_nohup

from .conftest import (
    SIZE,
    Reference,
    assert_same_frames,
    assert_sound,
    driftloop,
    finish,
    frame_count,
    jpeg_args,
    message_lines,
    only_run,
    run_status,
    send,
    spawn,
    wait_for_frames,
)

JPEG_STEPS = 60


def _stop_once(
    sig: signal.Signals, picture: Path, ref: Reference, ws: Path, rng: random.Random
) -> tuple[int, int]:
    """Start a run, send ``sig`` after a random number of frames, check the aftermath and the resume."""
    total = len(ref.frames)
    target = rng.randint(2, total - 12)
    proc = spawn(*ref.args, "-w", ws)
    wait_for_frames(proc, ws, target)
    time.sleep(rng.uniform(0.0, 0.004))  # land anywhere in a step, not just after a commit
    send(proc, sig, sig.name)
    code, _, err = finish(proc)
    stored = frame_count(ws)

    assert code == 128 + sig, f"{sig.name}: exit {code}, expected {128 + sig}; stderr: {err[-2000:]}"
    run_id = only_run(ws)
    lines = message_lines(err)
    assert len(lines) == 1 and f"driftloop resume {run_id}" in lines[0], (
        f"expected one line saying how to resume, got: {lines}"
    )
    assert_sound(ws, run_id)  # integrity, no orphan, no temp file, no row without its file, none corrupt
    assert 0 < stored < total, f"the signal must land mid-run ({stored} of {total} frames stored)"
    assert run_status(ws, run_id) == "stopped"

    resumed = driftloop("resume", run_id, "--no-render", "-q", "-w", ws)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_frames(ws, run_id, ref.frames)
    assert run_status(ws, run_id) == "done"
    return stored, total


def _repeat(
    sig: signal.Signals,
    times: int,
    picture: Path,
    reference: Callable[..., Reference],
    tmp_path: Path,
    rng: random.Random,
) -> None:
    ref = reference(*jpeg_args(picture, JPEG_STEPS))
    for i in range(times):
        _stop_once(sig, picture, ref, tmp_path / f"{sig.name.lower()}-{i:02d}", rng)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_stops_the_run_cleanly_and_resume_is_bit_identical(
    sig: signal.Signals,
    picture: Path,
    reference: Callable[..., Reference],
    tmp_path: Path,
    rng: random.Random,
) -> None:
    _repeat(sig, 1, picture, reference, tmp_path, rng)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_at_20_random_moments(
    sig: signal.Signals,
    picture: Path,
    reference: Callable[..., Reference],
    tmp_path: Path,
    rng: random.Random,
) -> None:
    _repeat(sig, 20, picture, reference, tmp_path, rng)


def test_sigint_is_still_ctrl_c(picture: Path, reference: Callable[..., Reference], tmp_path: Path,
                                rng: random.Random) -> None:  # fmt: skip
    """Ctrl-C (SIGINT) exits 130 with the resume line, and the resume is bit-identical."""
    ref = reference(*jpeg_args(picture, JPEG_STEPS))
    ws = tmp_path / "sigint"
    proc = spawn(*ref.args, "-w", ws)
    wait_for_frames(proc, ws, rng.randint(2, len(ref.frames) - 12))
    send(proc, signal.SIGINT, "SIGINT")
    code, _, err = finish(proc)
    run_id = only_run(ws)
    assert code == 130, err
    assert f"driftloop resume {run_id}" in err
    assert_sound(ws, run_id)
    assert driftloop("resume", run_id, "--no-render", "-q", "-w", ws).returncode == 0
    assert_same_frames(ws, run_id, ref.frames)


# --------------------------------------------------------------------------------------------------
# kill -9 during a TAEF2 run (the JPEG case is in tests/cli/test_cli.py)

TAEF2_STEPS = 16
KILL_HEADROOM = 8  # frames still to come when the kill is sent: 4 steps of 2 chains, ~100 ms of a run


def _taef2_args(picture: Path) -> tuple[str, ...]:
    return ("run", str(picture), "-m", "taef2", "-n", str(TAEF2_STEPS), "--size", SIZE, "--seeds", "1,2",
            "--no-render", "-q")  # fmt: skip


def _kill_once(ref: Reference, ws: Path, rng: random.Random) -> None:
    total = len(ref.frames)
    proc = spawn(*ref.args, "-w", ws)
    wait_for_frames(proc, ws, rng.randint(1, total - KILL_HEADROOM))  # a late kill could miss the run's end
    time.sleep(rng.uniform(0.0, 0.02))  # a TAEF2 step at 64 px takes a few tens of ms on a CPU
    send(proc, signal.SIGKILL, "SIGKILL (taef2)")
    finish(proc)
    stored = frame_count(ws)
    assert 0 < stored < total, f"the kill must land mid-run ({stored} of {total} frames stored)"
    run_id = only_run(ws)
    # A kill between a PNG's rename and its row's commit leaves a file without a row: allowed until resume.
    assert_sound(ws, run_id, allow_leftovers=True)

    listing = driftloop("runs", "-w", ws)
    assert run_id in listing.stdout and "interrupted" in listing.stdout, listing.stdout
    resumed = driftloop("resume", run_id, "--no-render", "-q", "-w", ws)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_frames(ws, run_id, ref.frames)


def test_kill_9_during_a_taef2_run(
    picture: Path, reference: Callable[..., Reference], tmp_path: Path, rng: random.Random
) -> None:
    ref = reference(*_taef2_args(picture))
    _kill_once(ref, tmp_path / "kill", rng)


@pytest.mark.slow
def test_kill_9_at_20_random_moments_of_a_taef2_run(
    picture: Path, reference: Callable[..., Reference], tmp_path: Path, rng: random.Random
) -> None:
    ref = reference(*_taef2_args(picture))
    for i in range(20):
        _kill_once(ref, tmp_path / f"kill-{i:02d}", rng)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP], ids=["SIGINT", "SIGHUP"])
def test_a_run_the_suite_starts_under_nohup_still_stops(
    sig: signal.Signals, picture: Path, reference: Callable[..., Reference], tmp_path: Path,
    rng: random.Random,
) -> None:  # fmt: skip
    """The suite itself run as ``nohup pytest &``: the runs it starts must still answer Ctrl-C and SIGHUP
    (they get default stop signals), or every signal test above would fail for a reason not driftloop's."""
    ref = reference(*jpeg_args(picture, JPEG_STEPS))
    ws = tmp_path / "nohup"
    with as_under_nohup():
        proc = spawn(*ref.args, "-w", ws)
    wait_for_frames(proc, ws, rng.randint(2, len(ref.frames) - 12))
    send(proc, sig, f"{sig.name} (nohup)")
    code, _, err = finish(proc)
    assert code == 128 + sig, f"exit {code}; stderr: {err[-2000:]}"
    assert_sound(ws, only_run(ws))
