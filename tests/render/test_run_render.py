"""What a render writes for a run of many chains: one contact sheet of a bounded size, animations of the first
chains only, and any other chain's animation when asked for."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import driftloop
from driftloop.errors import RenderError
from driftloop.render.contact_sheet import sheet_layout
from driftloop.render.run import (
    DEFAULT_ANIMATIONS,
    MAX_SHEET_CHAINS,
    animated_chains,
    parse_animations,
    render_chain,
    render_run,
)

N_CHAINS = MAX_SHEET_CHAINS + 16


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A jpeg run of 40 chains (one picture × 40 seeds, 2 steps at 32²), not rendered; built once."""
    root = tmp_path_factory.mktemp("many")
    picture = root / "picture.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(picture)
    driftloop.run(picture, model="jpeg", n=2, seeds=range(N_CHAINS), size=32, workspace=root / "ws",
                  render=False)  # fmt: skip
    return root / "ws"


@pytest.fixture
def run(many: Path, tmp_path: Path) -> driftloop.RunHandle:
    ws = tmp_path / "ws"
    shutil.copytree(many, ws)
    return driftloop.open_run(driftloop.runs(ws)[0].id, ws)


def _animations(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("chain*.*"))


def test_a_many_chain_run_writes_one_bounded_sheet_and_a_few_animations(run: driftloop.RunHandle) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        written = render_run(run)
        with Image.open(written["contact_sheet"]) as sheet:
            size = sheet.size
    layout = sheet_layout(MAX_SHEET_CHAINS, 3, title=True)  # steps 0, 1, 2
    assert size == (layout.width, layout.height)  # the sample's rows, not one row per chain
    first = [f"chain{c:03d}.{kind}" for c in range(DEFAULT_ANIMATIONS) for kind in ("gif", "mp4")]
    assert _animations(run.path) == sorted(first)
    assert "preview" in written and sum(k.startswith(("gif/", "mp4/")) for k in written) == len(first)


def test_animations_on_request(run: driftloop.RunHandle) -> None:
    assert render_run(run, animations="none", sheet=False, preview=False) == {}
    written = render_run(run, animations=[3, 31], sheet=False, preview=False)
    assert sorted(written) == ["gif/3", "gif/31", "mp4/3", "mp4/31"]
    made = render_chain(run, N_CHAINS - 1, ["gif"])
    assert made["gif"].name == f"chain{N_CHAINS - 1:03d}.gif"
    with Image.open(made["gif"]) as gif:
        assert gif.n_frames == 3  # steps 0, 1, 2
    written = run.render(report=False, animations="all", sheet=False, preview=False)
    assert len([k for k in written if k.startswith("gif/")]) == N_CHAINS
    with pytest.raises(RenderError, match="no chain 99"):
        render_chain(run, 99)
    with pytest.raises(RenderError, match="animation kind"):
        render_chain(run, 0, ["webm"])


def test_the_animations_option_reads_every_form() -> None:
    chains = [type("C", (), {"chain": i})() for i in range(5)]
    assert animated_chains(chains, parse_animations("all")) == [0, 1, 2, 3, 4]
    assert animated_chains(chains, parse_animations("none")) == []
    assert animated_chains(chains, parse_animations("2")) == [0, 1]
    assert animated_chains(chains, "list:4,1,4") == [1, 4]
    assert animated_chains(chains) == list(range(min(5, DEFAULT_ANIMATIONS)))
    for bad in ("some", "-1", "list:a", "2.5"):
        with pytest.raises(RenderError, match="--animations"):
            parse_animations(bad)
    with pytest.raises(RenderError, match="no chain 7"):
        animated_chains(chains, [7])
