"""Runs started from the gallery: each one an ordinary ``driftloop run`` / ``resume`` / ``render`` worker
process, so the server stays responsive and the CLI can list, resume and render what it made.

A worker is stopped as a user stops a run in a terminal, with SIGINT: the run stores every finished
frame, marks itself interrupted and can be resumed. A worker handles SIGINT whatever the server inherited
(``nohup driftloop serve &`` ignores it, and children inherit that): it is started with
:func:`~driftloop._signals.worker_env` and restores its stop signals first thing. A run started from a
terminal that ignores SIGINT is sent SIGTERM instead (it ends ``stopped``, just as resumable). Its output
goes to ``WORKSPACE/.gallery/jobs/ID.log`` so the page can show why a run did not start (a bad input,
missing weights).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from driftloop._signals import worker_env
from driftloop.web.data import GalleryData

LOG_TAIL_BYTES = 4000


def ignores(pid: int, signum: int) -> bool:
    """Whether process ``pid`` ignores ``signum`` (Linux: the SigIgn mask of /proc/PID/status; elsewhere
    unknown, so False)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


@dataclass
class Job:
    """A worker process the gallery started."""

    id: str
    kind: str  # run / resume / render
    argv: list[str]
    process: subprocess.Popen[bytes]
    log: Path
    started: float
    input_path: Path | None = None
    known: frozenset[str] = frozenset()
    run_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def tail(self) -> str:
        """The end of the worker's output (its error message, when it failed)."""
        if not self.log.is_file():
            return ""
        data = self.log.read_bytes()[-LOG_TAIL_BYTES:]
        return data.decode("utf-8", errors="replace")


class Jobs:
    """The gallery's worker processes, by job id."""

    def __init__(self, data: GalleryData) -> None:
        self.data = data
        self.folder = data.root / ".gallery" / "jobs"
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def _spawn(self, kind: str, args: list[str], **kw: object) -> Job:
        job_id = secrets.token_hex(6)
        self.folder.mkdir(parents=True, exist_ok=True)
        log = self.folder / f"{job_id}.log"
        argv = [sys.executable, "-m", "driftloop", *args, "--workspace", str(self.data.root)]
        with open(log, "wb") as out:
            process = subprocess.Popen(  # own session: stopping the server does not stop its runs
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=worker_env(),
            )
        job = Job(job_id, kind, argv, process, log, time.time(), **kw)  # type: ignore[arg-type]
        with self._lock:
            self._jobs[job_id] = job
        return job

    def start_run(
        self,
        image: Path,
        model: str,
        steps: int,
        seeds: str,
        size: int,
        render: bool = True,
        stabilize: str = "none",
    ) -> Job:
        known = frozenset(card.id for card in self.data.runs(per_page=10**9).items)
        args = ["run", str(image), "--model", model, "--steps", str(steps), "--seeds", seeds,
                "--size", str(size), "--stabilize", stabilize, "--quiet",
                "--render" if render else "--no-render"]  # fmt: skip
        return self._spawn("run", args, input_path=image, known=known)

    def resume(self, run_id: str, render: bool = True) -> Job:
        args = ["resume", run_id, "--quiet", "--render" if render else "--no-render"]
        return self._spawn("resume", args, run_id=run_id)

    def render(self, run_id: str) -> Job:
        return self._spawn("render", ["render", run_id, "--quiet"], run_id=run_id)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def run_of(self, job: Job) -> str | None:
        """The run a job works on: for a new run, the first run made after it started from its image."""
        if job.run_id is None and job.input_path is not None:
            job.run_id = self.data.new_run_from(job.known, job.input_path)
        return job.run_id

    def stop(self, run_id: str) -> bool:
        """Interrupt the process advancing a run (started here or from a terminal); False if none is."""
        with self._lock:
            mine = [j for j in self._jobs.values() if j.run_id == run_id and j.returncode is None]
        if mine:
            for job in mine:
                job.process.send_signal(signal.SIGINT)
            return True
        pid = self.data.live_pid(run_id)  # holds the run's lock right now: it is that run's process
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGTERM if ignores(pid, signal.SIGINT) else signal.SIGINT)
        except ProcessLookupError:
            return False
        return True

    def close(self, wait_s: float = 10.0) -> None:
        """Interrupt every worker still running, waiting a little for each (for tests and embedders: the
        server itself leaves its runs going when it stops, as ordinary runs)."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.returncode is None]
        for job in jobs:
            job.process.send_signal(signal.SIGINT)
        for job in jobs:
            try:
                job.process.wait(wait_s)
            except subprocess.TimeoutExpired:
                job.process.kill()
