"""Requests a careful tool answers at once and clearly: absurd sizes, empty or ambiguous run ids, a file
as workspace, image bombs, tiny and extreme inputs, and ``--no-render``.
"""

from __future__ import annotations

import resource
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from driftloop.images import DEFAULT_MAX_PIXELS

from .conftest import (
    SIZE,
    TALLY,
    assert_no_traceback,
    assert_sound,
    driftloop,
    jpeg_args,
    message_lines,
    only_run,
    run_ids,
)

MEMORY_CAP = 8 << 30  # a run that tries to allocate a 100000 px frame fails here instead of swapping the host


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def test_absurd_size_fails_fast_with_a_clear_error(picture: Path, tmp_path: Path) -> None:
    """``--size 100000`` (a 30 GB frame) is refused up front, like an oversized input, not attempted."""
    ws = tmp_path / "ws"
    started = time.monotonic()
    res = driftloop("run", picture, "-m", "jpeg", "-n", "1", "--size", "100000", "--no-render", "-w", ws,
                    preexec=_cap_memory, timeout=60)  # fmt: skip
    elapsed = time.monotonic() - started
    TALLY.inject("--size 100000")
    assert_no_traceback(res)
    assert res.returncode == 2, f"exit {res.returncode}: {res.stderr[-1500:]}"
    (line,) = message_lines(res.stderr)
    assert "--size" in line and "100000" in line, line
    assert elapsed < 30, f"took {elapsed:.1f} s to refuse"
    assert not (ws / "runs").exists() or not any((ws / "runs").iterdir()), "nothing may be written"


@pytest.fixture(scope="module")
def two_runs(picture: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A workspace with two finished runs whose ids share a prefix (the date)."""
    ws = tmp_path_factory.mktemp("two-runs") / "ws"
    for quality in ("40", "80"):
        res = driftloop("run", picture, "-m", f"jpeg:quality={quality}", "-n", "1", "--size", "16",
                        "--no-render", "--no-metrics", "-q", "-w", ws)  # fmt: skip
        assert res.returncode == 0, res.stderr
    return ws, run_ids(ws)


def test_empty_run_id_is_an_error_listing_the_runs(picture: Path, tmp_path: Path) -> None:
    """``resume ''`` must not pick a run, even when there is only one to pick."""
    ws = tmp_path / "ws"
    res = driftloop("run", picture, "-m", "jpeg", "-n", "1", "--size", "16", "--no-render", "--no-metrics",
                    "-q", "-w", ws)  # fmt: skip
    assert res.returncode == 0, res.stderr
    run_id = only_run(ws)
    for verb in (("resume", ""), ("render", ""), ("report", "")):
        res = driftloop(*verb, "-w", ws)
        assert_no_traceback(res)
        assert res.returncode == 2, f"{verb[0]} '': exit {res.returncode}; {res.stderr}"
        assert run_id in res.stderr, f"{verb[0]} '': the error must list the candidates: {res.stderr}"


def test_ambiguous_prefix_lists_the_candidates(two_runs: tuple[Path, list[str]]) -> None:
    ws, ids = two_runs
    prefix = ids[0][:8]
    assert all(i.startswith(prefix) for i in ids)
    res = driftloop("resume", prefix, "-w", ws)
    assert_no_traceback(res)
    assert res.returncode == 2
    assert "ambiguous" in res.stderr and all(i in res.stderr for i in ids), res.stderr


@pytest.mark.parametrize("verb", [("runs",), ("resume", "abc"), ("render", "abc"), ("report", "abc")])
def test_a_file_as_workspace_is_the_same_error_for_every_verb(
    verb: tuple[str, ...], picture: Path, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("not a workspace")
    expected = driftloop(*jpeg_args(picture, 1), "-w", not_a_folder)
    assert expected.returncode != 0 and "is a file" in expected.stderr, expected.stderr
    res = driftloop(*verb, "-w", not_a_folder)
    assert_no_traceback(res)
    assert (res.returncode, message_lines(res.stderr)) == (
        expected.returncode,
        message_lines(expected.stderr),
    )
    assert not_a_folder.read_text() == "not a workspace"


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width x height`` gray pixels and holds a few bytes: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


@pytest.mark.parametrize(("width", "height", "max_pixels"), [(30_000, 30_000, None), (10_000, 10_000, None),
                                                             (2_000, 1_500, 1_000_000)])  # fmt: skip
def test_bomb_message_quotes_the_limit_that_applies(
    width: int, height: int, max_pixels: int | None, tmp_path: Path
) -> None:
    bomb = _png_header_only(tmp_path / "bomb.png", width, height)
    limit = max_pixels or DEFAULT_MAX_PIXELS
    flags = ["--max-pixels", str(max_pixels)] if max_pixels else []
    res = driftloop("run", bomb, "-m", "jpeg", "-n", "1", "--size", "16", *flags, "-w", tmp_path / "ws")
    TALLY.inject("decompression bomb")
    assert_no_traceback(res)
    assert res.returncode == 2
    (line,) = message_lines(res.stderr)
    assert f"limit is {limit} pixels" in line and "--max-pixels" in line, line
    assert "178956970" not in line, "Pillow's internal (doubled) limit is not the one that applies"
    assert f"--max-pixels {width * height}" in line, "the message says what to pass to admit this file"
    assert not (tmp_path / "ws").exists()


def _image(path: Path, width: int, height: int) -> Path:
    Image.new("RGB", (width, height), (200, 40, 90)).save(path)
    return path


def test_input_below_the_models_minimum_is_refused(tmp_path: Path) -> None:
    """TAEF2 works on 8x8 blocks: a 1x1 input is refused (it would be a blurred square of one colour)."""
    dot = _image(tmp_path / "dot.png", 1, 1)
    res = driftloop("run", dot, "-m", "taef2", "-n", "1", "--size", SIZE, "-w", tmp_path / "ws")
    assert_no_traceback(res)
    assert res.returncode == 2, res.stderr
    (line,) = message_lines(res.stderr)
    assert "too small" in line and "1x1" in line and str(dot) in line, line
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(("width", "height", "words"), [
    (1, 1, ("1x1", "upscaled")),
    (10_000, 3, ("10000x3", "centre-cropped", "3x3")),
])  # fmt: skip
def test_tiny_and_extreme_inputs_are_said(
    width: int, height: int, words: tuple[str, ...], tmp_path: Path
) -> None:
    """The JPEG control copies anything, so these run, but the log says what was done to the input."""
    path = _image(tmp_path / f"{width}x{height}.png", width, height)
    ws = tmp_path / "ws"
    res = driftloop("run", path, "-m", "jpeg", "-n", "1", "--size", SIZE, "--no-render", "--no-metrics",
                    "-w", ws)  # fmt: skip
    assert res.returncode == 0, res.stderr
    warned = [
        line for line in message_lines(res.stderr) if str(path) in line and all(w in line for w in words)
    ]
    assert warned, res.stderr
    assert_sound(ws, only_run(ws))


def test_no_render_still_writes_report_and_summary(picture: Path, tmp_path: Path) -> None:
    """The README: the report is written at the end of every run; --no-render skips GIF, MP4, sheet."""
    ws = tmp_path / "ws"
    res = driftloop(*jpeg_args(picture, 3), "-w", ws)
    assert res.returncode == 0, res.stderr
    run_dir = ws / "runs" / only_run(ws)
    assert (run_dir / "report.html").is_file() and (run_dir / "summary.json").is_file(), sorted(
        p.name for p in run_dir.iterdir()
    )
    assert not list(run_dir.glob("*.gif")) and not list(run_dir.glob("*.mp4"))
    assert not (run_dir / "contact_sheet.png").exists()
    said = " ".join(driftloop("run", "--help").stdout.split("--no-render", 1)[1].split())
    assert all(word in said for word in ("GIF", "MP4", "contact sheet")), "--help says what --no-render skips"
