"""Every exit code is documented in ``driftloop --help``, and each documented code is produced by its case.

The table is :data:`driftloop.errors.EXIT_CODES`; each case below is the plainest way a user meets the
code, driven through the real CLI.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from driftloop.errors import EXIT_CODES

from .conftest import (
    SIZE,
    TALLY,
    driftloop,
    finish,
    jpeg_args,
    limit_file_size,
    send,
    spawn,
    wait_for_frames,
)


def _flat(text: str) -> str:
    """Help text without rich's box characters and line wrapping, so phrases can be searched for."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text)).strip()


def test_help_documents_every_exit_code() -> None:
    res = driftloop("--help")
    assert res.returncode == 0
    text = _flat(res.stdout)
    assert "exit code" in text.lower(), "driftloop --help must have an exit-code section"
    for code, meaning in EXIT_CODES:
        assert f"{code} {_flat(meaning)}" in text, f"exit code {code} ({meaning}) is not in driftloop --help"


def _crashing_plugin(folder: Path) -> dict[str, str]:
    """A third-party replicator (entry point ``driftloop.replicators``) with a bug: it raises RuntimeError."""
    folder.mkdir()
    (folder / "crashing_replicator.py").write_text(
        textwrap.dedent("""
        from dataclasses import dataclass
        from driftloop.replicators.base import Backend, Requirements

        @dataclass
        class Config:
            pass

        class Crashing:
            spec = "crashing"
            requirements = Requirements()

            def replicate(self, frames, seeds):
                raise RuntimeError("a bug in a plug-in")

            def describe(self):
                return {}

        backend = Backend(name="crashing", summary="always raises", config_type=Config,
                          build=lambda config: Crashing())
    """)
    )
    info = folder / "crashing_replicator-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crashing-replicator\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[driftloop.replicators]\ncrashing = crashing_replicator:backend\n"
    )
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path}


def _signal_case(sig: signal.Signals) -> Callable[[Path, Path, random.Random], tuple[int, str]]:
    def case(picture: Path, tmp: Path, rng: random.Random) -> tuple[int, str]:
        ws = tmp / "ws"
        proc = spawn(*jpeg_args(picture, 400), "-w", ws)
        wait_for_frames(proc, ws, rng.randint(2, 30))
        send(proc, sig, sig.name)
        code, _, err = finish(proc)
        return code, err

    return case


def _ok(picture: Path, tmp: Path, rng: random.Random) -> tuple[int, str]:
    res = driftloop(*jpeg_args(picture, 1), "-w", tmp / "ws")
    return res.returncode, res.stderr


def _bug(picture: Path, tmp: Path, rng: random.Random) -> tuple[int, str]:
    env = _crashing_plugin(tmp / "plugins")
    res = driftloop("run", picture, "-m", "crashing", "-n", "2", "--size", "16", "-w", tmp / "ws", env=env)
    assert "a bug in a plug-in" in res.stderr and "Traceback" in res.stderr, res.stderr
    return res.returncode, res.stderr


def _bad_input(picture: Path, tmp: Path, rng: random.Random) -> tuple[int, str]:
    text = tmp / "notes.png"
    text.write_text("not an image")
    res = driftloop("run", text, "-m", "jpeg", "-n", "1", "-w", tmp / "ws")
    return res.returncode, res.stderr


def _no_weights(picture: Path, tmp: Path, rng: random.Random) -> tuple[int, str]:
    empty = tmp / "no-models"
    empty.mkdir()
    offline = {"DRIFTLOOP_MODEL_DIR": str(empty), "DRIFTLOOP_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    res = driftloop("run", picture, "-m", "taef2", "-n", "1", "--size", SIZE, "-w", tmp / "ws", env=offline)
    return res.returncode, res.stderr


def _workspace_is_a_file(picture: Path, tmp: Path, rng: random.Random) -> tuple[int, str]:
    not_a_folder = tmp / "ws.txt"
    not_a_folder.write_text("x")
    res = driftloop(*jpeg_args(picture, 1), "-w", not_a_folder)
    return res.returncode, res.stderr


def _disk_full(picture: Path, tmp: Path, rng: random.Random) -> tuple[int, str]:
    res = driftloop(*jpeg_args(picture, 40), "-w", tmp / "ws", preexec=limit_file_size(60_000))
    TALLY.inject("EFBIG (ulimit -f)")
    return res.returncode, res.stderr


def _thread_lost(picture: Path, tmp: Path, rng: random.Random) -> tuple[int, str]:
    """A conversation whose thread the provider no longer has, through the real client against the fake."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replicators"))
    from fake_image_api import FakeImageAPI, openai_error

    with FakeImageAPI(openai_key="sk-fake-exit-6") as fake:
        fake.script(
            None, openai_error(404, "Previous response with id 'r' not found.", "previous_response_not_found")
        )
        env = {
            "OPENAI_API_KEY": "sk-fake-exit-6",
            "OPENAI_BASE_URL": fake.openai_base,
            "NO_PROXY": "127.0.0.1",
        }
        model = "openai-thread:gpt-image-2,quality=low"
        res = driftloop("run", picture, "-m", model, "-n", "3", "--size", "32", "--no-render", "-q",
                        "-w", tmp / "ws", env=env)  # fmt: skip
    return res.returncode, res.stderr


CASES: dict[int, Callable[[Path, Path, random.Random], tuple[int, str]]] = {
    0: _ok,
    1: _bug,
    2: _bad_input,
    3: _no_weights,
    4: _workspace_is_a_file,
    5: _disk_full,
    6: _thread_lost,
    129: _signal_case(signal.SIGHUP),
    130: _signal_case(signal.SIGINT),
    143: _signal_case(signal.SIGTERM),
}


def test_every_documented_code_has_a_case() -> None:
    assert sorted(CASES) == sorted(code for code, _ in EXIT_CODES)


@pytest.mark.parametrize("code", [code for code, _ in EXIT_CODES])
def test_documented_code_is_produced_by_its_case(
    code: int, picture: Path, tmp_path: Path, rng: random.Random
) -> None:
    got, stderr = CASES[code](picture, tmp_path, rng)
    assert got == code, f"expected exit {code}, got {got}: {stderr[-1500:]}"
    if code not in (0, 1):
        assert "Traceback" not in stderr, stderr
        assert len([line for line in stderr.splitlines() if line.strip()]) == 1, stderr


def test_readme_documents_every_exit_code() -> None:
    readme = _flat((Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8"))
    for code, meaning in EXIT_CODES:
        assert f"{code} {_flat(meaning)}" in readme or f"`{code}` {_flat(meaning)}" in readme, (
            f"exit code {code} ({meaning}) is not in the README"
        )
