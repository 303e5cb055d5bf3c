"""An archive of posted chains (one GIF, video or folder each) imported in one go: one sweep, one card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import driftloop
from conftest import run_cli
from driftloop import api
from driftloop.archive import archive_members, is_archive
from driftloop.sweep import sweep_chains
from sequence_fixtures import generation_loss, held, write_gif, write_mp4, write_pngs


def _archive(root: Path) -> Path:
    chain = generation_loss(n=5, size=64)
    flipped = chain[:1] + [np.ascontiguousarray(f[:, ::-1]) for f in chain[1:]]
    upside = chain[:1] + [np.ascontiguousarray(f[::-1]) for f in chain[1:]]
    archive = root / "posted"
    write_pngs(archive / "chatgpt folder", chain)
    write_gif(archive / "gemini.gif", flipped)
    write_mp4(archive / "tiktok.mp4", held(upside, 6), fps=10, crf=23)
    write_gif(archive / "again.gif", chain)  # the same chain as the folder: the later one is refused
    broken = write_gif(archive / "broken.gif", flipped)
    broken.write_bytes(broken.read_bytes()[:400])
    (archive / "notes.txt").write_text("where each came from")
    return archive


def test_an_archive_of_chains_becomes_one_sweep_with_one_card(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    assert is_archive(archive) and not is_archive(archive / "chatgpt folder")
    assert [p.name for p in archive_members(archive)] == [
        "again.gif", "broken.gif", "chatgpt folder", "gemini.gif", "tiktok.mp4",
    ]  # fmt: skip
    ws = tmp_path / "ws"
    out = run_cli("import", str(archive), "--model", "various apps", "--no-render", "-w", str(ws))
    assert out.returncode == 0, out.stderr
    assert "not imported broken.gif" in out.stderr
    assert "sweep posted: 3 chain(s) imported, 2 not" in out.stderr
    said = " ".join(out.stderr.split())  # the console wraps long lines
    assert "not imported chatgpt folder:" in said and "already stored as run" in said  # again.gif came first
    models = sorted(r.model for r in driftloop.runs(ws))
    assert len(models) == 3 and "imported:broken" not in models
    chains, control = sweep_chains(ws, "posted")
    assert len(chains) == 3 and control is False
    card = json.loads((ws / "sweeps" / "posted" / "bias_card.json").read_text())
    assert len(card["models"]) == 3 and card["settings"]["control"] is None  # one row per source
    assert card["cost"]["total"]["cost"] == "unknown"
    again = api.bias("posted", ws)[1]  # the card again, by the sweep's name
    assert len(json.loads(again.read_text())["models"]) == 3
