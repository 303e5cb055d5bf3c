"""The command line, driven as a user would: a subprocess, real weights, real files."""

from __future__ import annotations

import importlib.metadata
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import driftloop
from conftest import child_signals, run_cli


def _frame_rows(ws: Path) -> dict[tuple[int, int], str]:
    with sqlite3.connect(ws / "driftloop.db") as db:
        return {(c, s): h for c, s, h in db.execute("SELECT chain, step, sha256 FROM frames")}


def _count(ws: Path) -> int:
    try:
        with sqlite3.connect(ws / "driftloop.db", timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _only_run(ws: Path) -> Path:
    (run_dir,) = (ws / "runs").iterdir()
    return run_dir


def test_run_runs_render_models(sample_images: dict[str, Path], workspace: Path) -> None:
    res = run_cli("run", str(sample_images["astronaut.png"]), "-n", "3", "--size", "64", "--seeds", "1-2",
                  "-w", str(workspace))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "2 chain(s)" in res.stderr
    run_dir = _only_run(workspace)
    assert len(_frame_rows(workspace)) == 2 * 4
    assert (run_dir / "chain001.mp4").is_file() and (run_dir / "contact_sheet.png").is_file()

    listing = run_cli("runs", "-w", str(workspace))
    assert listing.returncode == 0
    assert run_dir.name in listing.stdout and "3/3" in listing.stdout and "done" in listing.stdout

    (run_dir / "contact_sheet.png").unlink()
    (run_dir / "chain001.gif").unlink()
    rendered = run_cli(
        "render", run_dir.name[:15], "--fps", "5", "--animations", "list:0", "-w", str(workspace)
    )
    assert rendered.returncode == 0, rendered.stderr
    assert (run_dir / "contact_sheet.png").is_file() and not (run_dir / "chain001.gif").exists()
    wrong = run_cli("render", run_dir.name[:15], "--animations", "some", "-w", str(workspace))
    assert wrong.returncode != 0 and "--animations takes all, none" in wrong.stderr

    models = run_cli("models")
    assert models.returncode == 0 and "taef2" in models.stdout and "present" in models.stdout


def test_quiet_and_non_tty_print_no_progress(sample_images: dict[str, Path], workspace: Path) -> None:
    res = run_cli("run", str(sample_images["astronaut.png"]), "-m", "jpeg", "-n", "2", "--size", "32",
                  "--no-render", "-q", "-w", str(workspace))  # fmt: skip
    assert res.returncode == 0 and res.stderr == "" and res.stdout == ""


def test_progress_bar_in_a_terminal(sample_images: dict[str, Path], workspace: Path) -> None:
    primary, secondary = os.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.run(
        [sys.executable, "-m", "driftloop", "run", str(sample_images["astronaut.png"]), "-m", "jpeg",
         "-n", "5", "--size", "32", "--no-render", "-w", str(workspace)],
        stdin=secondary, stdout=secondary, stderr=secondary, env=env, timeout=120, preexec_fn=child_signals,
    )  # fmt: skip
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "replicating" in screen and "5/5" in screen and "copies/s" in screen


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "empty"), (b"hello, not an image", "not an image"), (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "")],
)
def test_bad_input_exit_2_nothing_written(tmp_path: Path, content: bytes, problem: str) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    ws = tmp_path / "ws"
    res = run_cli("run", str(bad), "-m", "jpeg", "-n", "2", "-w", str(ws))
    assert res.returncode == 2
    assert str(bad) in res.stderr and problem in res.stderr
    assert "Traceback" not in res.stderr
    assert not ws.exists()


def test_missing_file_and_bad_spec(tmp_path: Path, sample_images: dict[str, Path]) -> None:
    res = run_cli("run", str(tmp_path / "nope.jpg"), "-m", "jpeg", "-w", str(tmp_path / "ws"))
    assert res.returncode == 2 and "nope.jpg" in res.stderr and "Traceback" not in res.stderr
    res = run_cli(
        "run", str(sample_images["astronaut.png"]), "-m", "jpeg:quality=500", "-w", str(tmp_path / "ws")
    )
    assert res.returncode == 2 and "quality must be between 1 and 100" in res.stderr
    res = run_cli("resume", "no-such-run", "-w", str(tmp_path / "ws"))
    assert res.returncode == 2 and "no driftloop workspace at" in res.stderr  # nothing was ever written
    assert run_cli("run", str(sample_images["astronaut.png"]), "-m", "jpeg", "-n", "1", "--size", "16",
                   "--no-render", "-q", "-w", str(tmp_path / "ws")).returncode == 0  # fmt: skip
    res = run_cli("resume", "no-such-run", "-w", str(tmp_path / "ws"))
    assert res.returncode == 2 and "no run 'no-such-run'" in res.stderr


def test_dtype_flag(tmp_path: Path, sample_images: dict[str, Path]) -> None:
    image = str(sample_images["astronaut.png"])
    res = run_cli("run", image, "-m", "jpeg", "--dtype", "bf16", "-w", str(tmp_path / "ws"))
    assert res.returncode == 2 and "--dtype: jpeg has no dtype parameter" in res.stderr
    res = run_cli("run", image, "-m", "jpeg", "--device", "cuda", "-w", str(tmp_path / "ws"))
    assert res.returncode == 2 and "--device: jpeg has no device parameter" in res.stderr
    res = run_cli("run", image, "-m", "taef2", "--dtype", "fp8", "-w", str(tmp_path / "ws"))
    assert res.returncode == 2 and "dtype='fp8' is not one of fp32, bf16" in res.stderr
    assert not (tmp_path / "ws").exists()
    res = run_cli("run", image, "-m", "taef2", "--dtype", "bf16", "-n", "1", "--size", "16", "--no-render",
                  "--no-metrics", "-q", "-w", str(tmp_path / "ws"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    (run,) = driftloop.runs(tmp_path / "ws")
    assert run.model == "taef2:dtype=bf16"


def test_missing_weights_exit_3(tmp_path: Path, sample_images: dict[str, Path]) -> None:
    res = run_cli("run", str(sample_images["astronaut.png"]), "-w", str(tmp_path / "ws"),
                  env={"DRIFTLOOP_MODEL_DIR": str(tmp_path / "none")})  # fmt: skip
    assert res.returncode == 3
    assert "taef2_encoder.pth" in res.stderr and "DRIFTLOOP_MODEL_DIR" in res.stderr


def test_sigkill_then_resume_is_bit_identical(sample_images: dict[str, Path], tmp_path: Path) -> None:
    """kill -9 mid-run, then resume: every frame equals the uninterrupted run's, nothing is orphaned."""
    args = [
        "run",
        str(sample_images["chelsea.jpg"]),
        "-n",
        "40",
        "--size",
        "96",
        "--seeds",
        "1,2",
        "--no-render",
    ]
    reference = run_cli(*args, "-w", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr
    expected = _frame_rows(tmp_path / "ref")
    assert len(expected) == 2 * 41

    ws = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "driftloop", *args, "-w", str(ws)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=child_signals)  # fmt: skip
    deadline = time.monotonic() + 120
    while _count(ws) < 30 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _count(ws)
    assert 30 <= done_before < 82, "the kill must land mid-run"

    listing = run_cli("runs", "-w", str(ws))
    assert "interrupted" in listing.stdout

    run_id = _only_run(ws).name
    resumed = run_cli("resume", run_id, "--no-render", "-w", str(ws))
    assert resumed.returncode == 0, resumed.stderr
    assert _frame_rows(ws) == expected

    frames_dir = _only_run(ws) / "frames"
    files = {p.relative_to(frames_dir).as_posix() for p in frames_dir.rglob("*") if p.is_file()}
    assert files == {f"c{c:03d}/{s:04d}.png" for c, s in expected}  # no orphans, no temp files
    again = run_cli("runs", "-w", str(ws))
    assert "40/40" in again.stdout and "done" in again.stdout


def test_runs_shows_whole_ids_and_typos_make_no_workspace(
    sample_images: dict[str, Path], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    image = str(sample_images["astronaut.png"])
    args = ["run", image, "-m", "jpeg:quality=33,subsampling=0", "-n", "2", "--size", "16", "--no-render",
            "--no-metrics", "-q", "-w", str(ws)]  # fmt: skip
    assert run_cli(*args).returncode == 0
    again = run_cli(*args, "--resume")  # finished: reused, not run again
    assert again.returncode == 0
    (run,) = driftloop.runs(ws)
    listed = run_cli("runs", "-w", str(ws))  # piped, as in scripts
    assert run.id in listed.stdout and "jpeg:quality=33,subsampling=0" in listed.stdout.replace("\n", "")
    typo = tmp_path / "typo"
    assert "no runs in" in run_cli("runs", "-w", str(typo)).stdout
    res = run_cli("resume", "abc", "-w", str(typo))
    assert res.returncode == 2 and "no driftloop workspace at" in res.stderr
    assert not typo.exists()


def test_max_pixels_guards_and_can_be_raised(tmp_path: Path) -> None:
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("RGB", (2000, 1500), (120, 80, 40)).save(big)
    ws = tmp_path / "ws"
    res = run_cli("run", str(big), "-m", "jpeg", "-n", "1", "--size", "16", "--max-pixels", "1000000",
                  "-w", str(ws))  # fmt: skip
    assert res.returncode == 2 and "too large" in res.stderr and "--max-pixels" in res.stderr
    assert not ws.exists()
    res = run_cli("run", str(big), "-m", "jpeg", "-n", "1", "--size", "16", "--max-pixels", "4000000",
                  "--no-render", "-q", "-w", str(ws))  # fmt: skip
    assert res.returncode == 0, res.stderr


def test_version() -> None:
    """``driftloop --version`` prints the installed package's version, fast (no library loaded)."""
    res = run_cli("--version")
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout == f"driftloop {driftloop.__version__}\n"
    assert importlib.metadata.version("driftloop") == driftloop.__version__  # one home: pyproject reads it
    probe = (
        "import sys\nfrom driftloop.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n"
        "    print(sorted({'numpy', 'torch', 'PIL'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "[]", done.stdout + done.stderr
