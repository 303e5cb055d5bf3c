"""Out of space (ENOSPC, EFBIG) at random points of a run, and a read-only workspace.

Either must end in one clear error (exit 5) naming the workspace, the frames stored and the resume
command; the run marked ``stopped``; nothing half-written; and, once there is room again, a resume that is
bit-identical to a run that never ran out.

ENOSPC comes from a small tmpfs workspace (root only); EFBIG from ``RLIMIT_FSIZE`` (``ulimit -f``), which
works anywhere. Where tmpfs cannot be mounted, the ENOSPC test uses ``RLIMIT_FSIZE`` instead (same error
path, EFBIG), and says so in its output, rather than skipping.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import (
    TALLY,
    Reference,
    SmallDisk,
    assert_no_traceback,
    assert_same_frames,
    assert_sound,
    driftloop,
    finish,
    frame_count,
    jpeg_args,
    limit_file_size,
    message_lines,
    only_run,
    run_ids,
    running_as_root,
    spawn,
    wait_for_frames,
)

STEPS = 40
FULL = re.compile(
    r"no space left on the device holding (?P<ws>\S+); (?P<n>\d+) frames are stored; "
    r"free space and run `driftloop resume (?P<run>\S+)"
)


def listed_status(ws: Path, run_id: str) -> str:
    """The run's status as ``driftloop runs`` shows it: what the user sees, wherever the store keeps it
    (a full disk may take no database write, so the stop may have to be recorded some other way)."""
    res = driftloop("runs", "-w", ws)
    assert res.returncode == 0, res.stderr
    (line,) = [line for line in res.stdout.splitlines() if run_id in line]
    return line.split()[-3]  # id, model, chains, steps, STATUS, created (date and time)


def _check_full(res: subprocess.CompletedProcess[str], ws: Path, ref: Reference, kind: str) -> str | None:
    """The aftermath of running out of space. Returns the run id, or None if it ran out before the run
    was created (then nothing may be left that looks like a run)."""
    TALLY.inject(kind)
    assert_no_traceback(res)
    assert res.returncode == 5, f"{kind}: exit {res.returncode}; stderr: {res.stderr[-2000:]}"
    lines = message_lines(res.stderr)
    assert len(lines) == 1, lines
    if not run_ids(ws):
        assert f"no space left on the device holding {ws}" in lines[0], lines[0]
        return None
    found = FULL.search(lines[0])
    assert found, f"not the out-of-space message: {lines[0]}"
    run_id = only_run(ws)
    assert found["run"] == run_id and str(ws) in found["ws"]
    stored = frame_count(ws)
    assert int(found["n"]) == stored, f"the message says {found['n']} frames, the store has {stored}"
    assert_sound(ws, run_id)  # nothing half-written: no orphan, no temp file, no row without its file
    status = listed_status(ws, run_id)
    if stored < len(ref.frames):
        assert status == "stopped", f"{stored} of {len(ref.frames)} frames stored, status {status}"
    else:  # out of space while writing the report: every frame is there, the outputs are not
        assert status in ("stopped", "done"), status
    print(f"{kind}: {stored} of {len(ref.frames)} frames stored")
    return run_id


def _resume_or_rerun(run_id: str | None, ws: Path, ref: Reference) -> None:
    """With room again: resume the stopped run (or, if none was created, run again); bit-identical."""
    args = ("resume", run_id, "--no-render", "-q") if run_id else ref.args
    res = driftloop(*args, "-w", ws)
    assert res.returncode == 0, res.stderr
    assert_same_frames(ws, only_run(ws), ref.frames)


@pytest.mark.parametrize("attempt", range(3))
def test_efbig_at_a_random_point_then_resume(
    attempt: int, picture: Path, reference: Callable[..., Reference], tmp_path: Path, rng: random.Random
) -> None:
    """``ulimit -f``: a write past the limit fails with EFBIG in whichever file reaches it first."""
    ref = reference(*jpeg_args(picture, STEPS))
    ws = tmp_path / "ws"
    limit = rng.randint(40_000, 400_000)
    res = driftloop(*ref.args, "-w", ws, preexec=limit_file_size(limit))
    run_id = _check_full(res, ws, ref, "EFBIG (ulimit -f)")
    _resume_or_rerun(run_id, ws, ref)


@pytest.mark.parametrize("attempt", range(3))
def test_enospc_at_a_random_point_then_resume(
    attempt: int,
    picture: Path,
    reference: Callable[..., Reference],
    small_disk: SmallDisk,
    tmp_path: Path,
    rng: random.Random,
) -> None:
    """A workspace on a small tmpfs: the device fills up part-way, is grown, and the run resumes."""
    ref = reference(*jpeg_args(picture, STEPS))
    size = rng.randint(300_000, 900_000)
    if small_disk.available:
        small_disk.resize(size)
        ws = small_disk.path / "ws"
        res = driftloop(*ref.args, "-w", ws)
        kind = "ENOSPC (tmpfs)"
    else:
        print(f"tmpfs unavailable ({small_disk.why_not}): filling up through RLIMIT_FSIZE instead")
        ws = tmp_path / "ws"
        res = driftloop(*ref.args, "-w", ws, preexec=limit_file_size(size // 4))
        kind = "EFBIG (ulimit -f, for ENOSPC)"
    run_id = _check_full(res, ws, ref, kind)
    if small_disk.available:
        small_disk.resize(64 << 20)  # "free space"
    _resume_or_rerun(run_id, ws, ref)


def _make_read_only(small_disk: SmallDisk, ws: Path) -> Callable[[bool], None]:
    """A switch that makes ``ws`` read-only and back: a read-only remount, or permissions for non-root."""
    if small_disk.available:
        return small_disk.read_only
    if running_as_root():
        pytest.fail(
            f"cannot make a read-only workspace: tmpfs failed ({small_disk.why_not}) and root ignores modes"
        )

    def chmod(flag: bool) -> None:
        for folder, dirs, files in os.walk(ws):
            for name in [*dirs, *files, "."]:
                path = Path(folder) / name
                mode = path.stat().st_mode
                path.chmod(mode & ~0o222 if flag else mode | 0o200)

    return chmod


def test_read_only_workspace(
    picture: Path,
    reference: Callable[..., Reference],
    small_disk: SmallDisk,
    tmp_path: Path,
    rng: random.Random,
) -> None:
    """A run stopped part-way, then its workspace read-only: resume and run say so (exit 5), runs lists.

    The stopped run comes from kill -9 (the one stop that needs no help from the code under test), and the
    workspace is then remounted read-only, as an archive copy or a full-then-remounted disk would be.
    """
    ref = reference(*jpeg_args(picture, STEPS))
    base = small_disk.path if small_disk.available else tmp_path
    if small_disk.available:
        small_disk.resize(64 << 20)
    ws = base / "ws"
    proc = spawn(*ref.args, "-w", ws)
    wait_for_frames(proc, ws, rng.randint(2, len(ref.frames) - 10))
    proc.kill()
    finish(proc)
    run_id = only_run(ws)
    set_read_only = _make_read_only(small_disk, ws)
    set_read_only(True)
    TALLY.inject("read-only workspace")
    try:
        for args in (("resume", run_id, "--no-render", "-q"), jpeg_args(picture, STEPS)):
            res = driftloop(*args, "-w", ws)
            assert_no_traceback(res)
            assert res.returncode == 5, f"{args[0]}: exit {res.returncode}; {res.stderr[-1500:]}"
            (line,) = message_lines(res.stderr)
            assert "cannot be written" in line and str(ws) in line, line
        (line,) = message_lines(driftloop("resume", run_id, "-q", "-w", ws).stderr)
        assert f"driftloop resume {run_id}" in line, "the message says how to continue once it is writable"
        listing = driftloop("runs", "-w", ws)
        assert listing.returncode == 0 and run_id in listing.stdout, listing.stderr
        assert run_ids(ws) == [run_id], "nothing may be created in a read-only workspace"
    finally:
        set_read_only(False)
    assert_sound(ws, run_id, allow_leftovers=True)
    resumed = driftloop("resume", run_id, "--no-render", "-q", "-w", ws)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_frames(ws, run_id, ref.frames)
