"""``driftloop publish``: a static site of runs and sweeps, its size said before it is written, frames
thinned with every:N, posters whose numbers are the stored summaries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli
from driftloop import api
from driftloop.errors import DriftloopError
from driftloop.publish import build_site, parse_every, write_site


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, sample_images: dict[str, Path]) -> tuple[Path, str]:
    ws = tmp_path_factory.mktemp("publish") / "ws"
    run = api.run(sample_images["astronaut.png"], model="jpeg:quality=40", n=7, seeds=(0, 1), size=64,
                  workspace=ws, render=False)  # fmt: skip
    return ws, run.id


def test_a_run_as_a_site(workspace: tuple[Path, str], tmp_path: Path) -> None:
    ws, run_id = workspace
    site = build_site(ws, [run_id], every=3)
    assert site.chains == 2 and site.frames == 2 * 4  # steps 0, 3, 6 and the last (7)
    assert sorted(p for p in site.files if p.startswith(f"frames/{run_id}-1/")) == [
        f"frames/{run_id}-1/{s:04d}.webp" for s in (0, 3, 6, 7)
    ]
    out = write_site(site, tmp_path / "site")
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) == site.size
    index = (out / "index.html").read_text()
    assert f'href="chains/{run_id}-0.html"' in index and "http" not in index  # relative links only
    page = (out / "chains" / f"{run_id}-0.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    wide = Image.open(out / "posters" / f"{run_id}-0.png")
    assert wide.size == (1200, 630) and Image.open(out / "posters" / f"{run_id}-0-square.png").size == (
        1080,
        1080,
    )


def test_the_numbers_are_the_stored_summaries(workspace: tuple[Path, str]) -> None:
    ws, run_id = workspace
    run = api.open_run(run_id, ws)
    stored = run.store.chain_summaries(run_id)[1]
    page = build_site(ws, [run_id]).files[f"chains/{run_id}-1.html"].decode()
    assert f"after 7 copies: {stored['ssim_to_origin.final']:.3f}" in page
    assert f"{stored['lab_b_mean.change']:+.2f}".replace("-", "−") in page


def test_the_size_is_said_before_anything_is_written(workspace: tuple[Path, str], tmp_path: Path) -> None:
    ws, run_id = workspace
    said: list[str] = []
    assert api.publish([run_id], tmp_path / "dry", ws, dry_run=True, log=said.append) is None
    assert not (tmp_path / "dry").exists() and re.match(
        r"site: 2 chain\(s\), 16 frame\(s\), \d+ files, [\d.]+ MB", said[0]
    )
    done = run_cli("publish", run_id, "--out", str(tmp_path / "cli"), "--frames", "every:2", "-w", str(ws))
    assert done.returncode == 0, done.stderr
    assert "site: 2 chain(s), 10 frame(s)" in done.stderr and (tmp_path / "cli" / "index.html").is_file()


def test_bad_arguments_are_clear(workspace: tuple[Path, str], tmp_path: Path) -> None:
    ws, run_id = workspace
    with pytest.raises(DriftloopError, match="every:N"):
        parse_every("every:0")
    with pytest.raises(DriftloopError):
        build_site(ws, ["no-such-run"])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("mine")
    with pytest.raises(DriftloopError, match="not a published site"):
        write_site(build_site(ws, [run_id], every=7), busy)
    assert (busy / "thesis.tex").read_text() == "mine"
    done = run_cli("publish", run_id, "--out", str(tmp_path / "x"), "--frames", "often", "-w", str(ws))
    assert done.returncode != 0 and "every:N" in done.stderr and not (tmp_path / "x").exists()
