"""Fault injection against the real CLI: helpers to start ``driftloop`` in a subprocess, hit it with a fault
at a random (seeded) moment, and audit the workspace it leaves behind.

The audit is the promise every fault test checks: the database passes ``PRAGMA integrity_check``, every
frame row has its file and every file its row, no temp file is left, and every stored frame's pixels hash
to the sha256 in its row. After a resume, every frame equals the uninterrupted run's, bit for bit.

Every fault injected and every frame checked is counted in :data:`TALLY`; the totals (faults, frames lost,
corrupt, duplicated) are printed at the end of the session, and any frame lost, corrupt or duplicated
fails its test.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import child_signals

#: One seed for every random choice of the suite (which frame a fault lands after, how big a disk is).
SEED = int(os.environ.get("DRIFTLOOP_FAULT_SEED", "20261201"))
#: Frame side of every fault run: small, so a run takes milliseconds a step.
SIZE = "64"
#: How long any one CLI call may take before the test calls it a hang.
CLI_TIMEOUT = 180.0


# --------------------------------------------------------------------------------------------------
# counting


@dataclass
class Tally:
    """Faults injected (by kind) and frames audited, lost, corrupt and duplicated, over the session."""

    injected: Counter[str] = field(default_factory=Counter)
    frames_checked: int = 0
    lost: int = 0
    corrupt: int = 0
    duplicated: int = 0

    def inject(self, kind: str) -> None:
        self.injected[kind] += 1


TALLY = Tally()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.injected and not TALLY.frames_checked:
        return
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(TALLY.injected.items())) or "none"
    terminalreporter.write_sep("-", "fault injection")
    terminalreporter.write_line(f"faults injected: {sum(TALLY.injected.values())} ({kinds})")
    terminalreporter.write_line(
        f"frames checked: {TALLY.frames_checked}; lost: {TALLY.lost}, corrupt: {TALLY.corrupt}, "
        f"duplicated: {TALLY.duplicated}"
    )


# --------------------------------------------------------------------------------------------------
# running the CLI


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: the test's (weights folder, offline), a wide terminal."""
    return {**os.environ, "COLUMNS": "250", "PYTHONUNBUFFERED": "1", **(extra or {})}


def driftloop(
    *args: str | Path,
    preexec: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = CLI_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m driftloop ARGS`` to its end; a hang fails the test instead of blocking the suite.
    ``preexec`` runs in the child after its stop signals are reset (:func:`conftest.child_signals`)."""

    def prepare() -> None:
        child_signals()
        if preexec is not None:
            preexec()

    try:
        return subprocess.run(
            [sys.executable, "-m", "driftloop", *map(str, args)],
            capture_output=True,
            text=True,
            env=cli_env(env),
            preexec_fn=prepare,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`driftloop {' '.join(map(str, args))}` did not answer within {timeout:.0f} s: {exc}")


def spawn(
    *args: str | Path, env: dict[str, str] | None = None, preexec: Callable[[], None] = child_signals
) -> subprocess.Popen[str]:
    """Start ``python -m driftloop ARGS`` in the background, its output captured, with default stop
    signals (``preexec``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "driftloop", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(env),
        preexec_fn=preexec,
    )


def finish(proc: subprocess.Popen[str], timeout: float = CLI_TIMEOUT) -> tuple[int, str, str]:
    """Wait for a spawned CLI; kill it and fail if it hangs."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"driftloop (pid {proc.pid}) did not end within {timeout:.0f} s")
    return proc.returncode, out, err


def limit_file_size(max_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes every write past ``max_bytes`` in one file fail with EFBIG (``ulimit -f``).

    Python ignores SIGXFSZ, so the write returns EFBIG instead of the process being killed by it.
    """

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def message_lines(stderr: str) -> list[str]:
    """The non-empty lines the CLI wrote to stderr."""
    return [line for line in stderr.splitlines() if line.strip()]


def assert_no_traceback(result: subprocess.CompletedProcess[str] | str) -> None:
    stderr = result if isinstance(result, str) else result.stderr
    assert "Traceback" not in stderr, stderr


# --------------------------------------------------------------------------------------------------
# reading a workspace


def connect(ws: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{ws / 'driftloop.db'}?mode=ro", uri=True, timeout=10)


def frame_count(ws: Path) -> int:
    """Frames committed so far (0 while the database does not exist yet or is locked for a moment)."""
    if not (ws / "driftloop.db").is_file():
        return 0
    try:
        with contextlib.closing(connect(ws)) as db:
            return db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def run_ids(ws: Path) -> list[str]:
    """The stored runs; none when space ran out before the new workspace's tables were written."""
    with contextlib.closing(connect(ws)) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "runs" not in tables:
            return []
        return [r[0] for r in db.execute("SELECT id FROM runs ORDER BY created_at, id")]


def only_run(ws: Path) -> str:
    ids = run_ids(ws)
    assert len(ids) == 1, ids
    return ids[0]


def run_status(ws: Path, run_id: str) -> str:
    with contextlib.closing(connect(ws)) as db:
        return db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]


def frame_rows(ws: Path, run_id: str) -> dict[tuple[int, int], str]:
    with contextlib.closing(connect(ws)) as db:
        rows = db.execute("SELECT chain, step, sha256 FROM frames WHERE run_id = ?", (run_id,)).fetchall()
    return {(c, s): h for c, s, h in rows}


def pixel_sha256(path: Path) -> str:
    """The identity of a stored frame (sha256 of its RGB pixel bytes), read back from its PNG."""
    with Image.open(path, formats=["PNG"]) as img:
        img.load()
        assert img.mode == "RGB", f"{path}: mode {img.mode}"
        return hashlib.sha256(np.ascontiguousarray(np.asarray(img, dtype=np.uint8)).tobytes()).hexdigest()


@dataclass
class Audit:
    """What a workspace holds for one run, and everything wrong with it."""

    integrity: str
    rows: dict[tuple[int, int], str]
    orphans: list[str]  # frame files without a row
    missing: list[str]  # rows without their file
    temp_files: list[str]
    corrupt: list[str]  # files whose pixels do not hash to their row's sha256
    duplicated: list[tuple[int, int]]
    gaps: list[tuple[int, int]]  # (chain, step) missing below a chain's last stored step

    def problems(self, allow_leftovers: bool = False) -> list[str]:
        """Everything that breaks "a frame exists iff its row exists, intact". ``allow_leftovers``: a kill -9
        may leave a file whose row was never committed, or a temp file; the next resume removes them."""
        out = []
        if self.integrity != "ok":
            out.append(f"integrity_check: {self.integrity}")
        if self.orphans and not allow_leftovers:
            out.append(f"orphan files: {self.orphans}")
        if self.temp_files and not allow_leftovers:
            out.append(f"temp files: {self.temp_files}")
        for name, items in (("rows without file", self.missing), ("corrupt", self.corrupt),
                            ("duplicated", self.duplicated), ("gaps", self.gaps)):  # fmt: skip
            if items:
                out.append(f"{name}: {items}")
        return out


def audit(ws: Path, run_id: str) -> Audit:
    """Check one run of a workspace against the store's invariant (see the module docstring)."""
    with contextlib.closing(connect(ws)) as db:
        integrity = "; ".join(r[0] for r in db.execute("PRAGMA integrity_check"))
        rows = db.execute(
            "SELECT chain, step, sha256, path FROM frames WHERE run_id = ? ORDER BY chain, step", (run_id,)
        ).fetchall()
    run_dir = ws / "runs" / run_id
    counts = Counter((c, s) for c, s, _, _ in rows)
    by_path = {p: h for _, _, h, p in rows}
    on_disk = {
        p.relative_to(run_dir).as_posix(): p for p in sorted((run_dir / "frames").rglob("*")) if p.is_file()
    }
    temp = [name for name in on_disk if Path(name).name.startswith(".tmp-")]
    orphans = [name for name in on_disk if name not in by_path and name not in temp]
    missing = [p for p in by_path if p not in on_disk]
    corrupt = []
    for rel, sha in by_path.items():
        if rel in on_disk:
            try:
                if pixel_sha256(on_disk[rel]) != sha:
                    corrupt.append(rel)
            except (OSError, ValueError, AssertionError) as exc:
                corrupt.append(f"{rel} ({exc})")
    steps: dict[int, set[int]] = {}
    for c, s, _, _ in rows:
        steps.setdefault(c, set()).add(s)
    gaps = [(c, s) for c, got in steps.items() for s in range(max(got) + 1) if s not in got]
    TALLY.frames_checked += len(rows)
    return Audit(
        integrity=integrity,
        rows={(c, s): h for c, s, h, _ in rows},
        orphans=orphans,
        missing=missing,
        temp_files=temp,
        corrupt=corrupt,
        duplicated=[k for k, n in counts.items() if n > 1],
        gaps=gaps,
    )


def assert_sound(ws: Path, run_id: str, allow_leftovers: bool = False) -> Audit:
    result = audit(ws, run_id)
    TALLY.corrupt += len(result.corrupt)
    TALLY.duplicated += len(result.duplicated)
    problems = result.problems(allow_leftovers)
    assert not problems, f"workspace {ws}, run {run_id}: " + "; ".join(problems)
    return result


def assert_same_frames(ws: Path, run_id: str, expected: dict[tuple[int, int], str]) -> None:
    """After a resume: every frame of the uninterrupted run is there, with its sha256, and nothing else."""
    result = assert_sound(ws, run_id)
    lost = [k for k in expected if k not in result.rows]
    differ = [k for k in expected if k in result.rows and result.rows[k] != expected[k]]
    extra = [k for k in result.rows if k not in expected]
    TALLY.lost += len(lost)
    TALLY.corrupt += len(differ)
    TALLY.duplicated += len(extra)
    assert not lost and not differ and not extra, (
        f"run {run_id}: lost {lost[:5]} ({len(lost)}), differing {differ[:5]} ({len(differ)}), "
        f"extra {extra[:5]} ({len(extra)})"
    )


def wait_for_frames(proc: subprocess.Popen[str], ws: Path, at_least: int, timeout: float = 120.0) -> int:
    """Poll until the run has committed ``at_least`` frames (or ended); return how many it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        n = frame_count(ws)
        if n >= at_least:
            return n
        time.sleep(0.003)
    return frame_count(ws)


# --------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A random source seeded by :data:`SEED` and the test's name: reproducible, different per test."""
    return random.Random(f"{SEED}:{request.node.nodeid}")


@pytest.fixture(scope="session")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A photo-like input (skimage's astronaut) as a user would have it."""
    from skimage import data

    path = tmp_path_factory.mktemp("faults-input") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@dataclass(frozen=True)
class Reference:
    """An uninterrupted run: the arguments that made it and the sha256 of every frame."""

    args: tuple[str, ...]
    frames: dict[tuple[int, int], str]


_REFERENCES: dict[tuple[str, ...], Reference] = {}


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Reference]:
    """``reference(*run_args)``: run once without faults (cached for the session) and keep its frames."""

    def make(*args: str) -> Reference:
        if args not in _REFERENCES:
            ws = tmp_path_factory.mktemp("reference")
            res = driftloop(*args, "-w", ws)
            assert res.returncode == 0, res.stderr
            run_id = only_run(ws)
            assert_sound(ws, run_id)
            _REFERENCES[args] = Reference(args, frame_rows(ws, run_id))
        return _REFERENCES[args]

    return make


def jpeg_args(picture: Path, steps: int = 40, *extra: str) -> tuple[str, ...]:
    """A run where the model does not matter: the JPEG control, two chains, 64 px, quiet."""
    return ("run", str(picture), "-m", "jpeg:quality=60", "-n", str(steps), "--size", SIZE,
            "--seeds", "1,2", "--no-render", "-q", *extra)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# storage: small and read-only filesystems


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


class SmallDisk:
    """A folder on a filesystem of a chosen size that can be grown and made read-only: a tmpfs mount.

    Only root can mount; :attr:`available` says whether it worked here, and :attr:`why_not` why not, so
    that a test can use another mechanism (``RLIMIT_FSIZE``, permissions) rather than skip.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mounted = False
        self.why_not = ""
        path.mkdir(parents=True, exist_ok=True)
        if shutil.which("mount") is None:
            self.why_not = "no mount command"
            return
        res = _mount("-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(path))
        self.mounted = res.returncode == 0
        self.why_not = "" if self.mounted else (res.stderr.strip() or f"mount exited {res.returncode}")

    @property
    def available(self) -> bool:
        return self.mounted

    def remount(self, options: str) -> None:
        res = _mount("-o", f"remount,{options}", str(self.path))
        assert res.returncode == 0, f"mount -o remount,{options} {self.path}: {res.stderr}"

    def resize(self, size_bytes: int) -> None:
        self.remount(f"size={size_bytes}")

    def read_only(self, flag: bool = True) -> None:
        self.remount("ro" if flag else "rw")

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)
            self.mounted = False


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "disk")
    try:
        yield disk
    finally:
        disk.close()


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def send(proc: subprocess.Popen[str], sig: signal.Signals, kind: str) -> None:
    """Deliver ``sig`` to a still-running CLI and count it as a fault injected."""
    assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {sig.name} could be sent"
    proc.send_signal(sig)
    TALLY.inject(kind)
