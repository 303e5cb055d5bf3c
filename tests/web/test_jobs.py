"""The gallery stops the runs it started, and runs started from a terminal, whatever signals it inherited.

``nohup driftloop serve &`` (or a service manager) starts the server with SIGINT and SIGHUP ignored, and
every process it starts inherits that: a worker that kept it would ignore the Ctrl-C the Stop button
sends it and run to its end.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import as_under_nohup
from driftloop import api
from driftloop.web.data import GalleryData
from driftloop.web.jobs import Jobs, ignores


def _running_run(proc: subprocess.Popen, ws: Path) -> str:
    """Wait until the process has made a few frames of its run; return the run's id."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be stopped"
        ids = [r.id for r in api.runs(ws)] if (ws / "driftloop.db").is_file() else []
        if ids and api.open_run(ids[-1], ws).chains()[0].last_step > 2:
            return ids[-1]
        time.sleep(0.1)
    raise AssertionError("the run made no frames")


def test_stop_works_when_the_server_ignores_sigint(tmp_path: Path, sample_images: dict[str, Path]) -> None:
    ws = tmp_path / "ws"
    jobs = Jobs(GalleryData(ws))
    image = sample_images["astronaut.png"]
    try:
        with as_under_nohup():  # the server as `nohup driftloop serve &` started it
            job = jobs.start_run(image, "jpeg:quality=60", steps=100_000, seeds="0", size=64, render=False)
            run_id = _running_run(job.process, ws)
            assert jobs.run_of(job) == run_id
            assert jobs.stop(run_id)
            assert job.process.wait(60) == 130, job.tail()
    finally:
        jobs.close()
    run = api.open_run(run_id, ws)
    assert run.status == "interrupted" and 2 < run.chains()[0].last_step < 100_000


def test_a_terminal_run_that_ignores_sigint_is_stopped_with_sigterm(
    tmp_path: Path, sample_images: dict[str, Path]
) -> None:
    ws = tmp_path / "ws"
    image = sample_images["chelsea.jpg"]
    ignore_int = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731  (`&` in a script)
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftloop", "run", str(image), "-m", "jpeg:quality=60", "-n", "100000",
         "--size", "64", "--no-render", "-q", "-w", str(ws)],
        preexec_fn=ignore_int, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        run_id = _running_run(proc, ws)
        assert ignores(proc.pid, signal.SIGINT) and not ignores(proc.pid, signal.SIGTERM)
        assert Jobs(GalleryData(ws)).stop(run_id)
        assert proc.wait(60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    run = api.open_run(run_id, ws)
    assert run.status == "stopped" and run.chains()[0].last_step < 100_000
