"""A run's animations and contact sheet: per-chain GIF and MP4 with a step counter, one sheet of all chains
(a sample of them when there are many), and the compact preview a report page embeds.

Glue between the read model (which frames exist) and the pure drawing functions of this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from driftloop.analysis.curves import evenly_spaced
from driftloop.frames import read_frame
from driftloop.render._frames import fit_size
from driftloop.render.animation import write_gif, write_mp4
from driftloop.render.contact_sheet import DEFAULT_SHEET_STEPS, contact_sheet, pick_steps
from driftloop.store import ChainRow, RunView

__all__ = ["MAX_SHEET_CHAINS", "PREVIEW", "PREVIEW_CRF", "PREVIEW_SIDE", "chain_label", "preview_size",
           "render_run", "sheet_chains", "write_preview"]  # fmt: skip

# Most chains drawn as rows of the contact sheet: above this, evenly spaced chains are drawn (the sheet
# of an 800-chain run would otherwise be 170 megapixels) and its title says how many of how many.
MAX_SHEET_CHAINS = 24
# The preview a report embeds: H.264 at this quality (18 is visually lossless, 28 still shows the drift
# clearly at a quarter of the bytes) and at most this many pixels a side.
PREVIEW_CRF = 28
PREVIEW_SIDE = 512
PREVIEW = "preview.mp4"  # in the run folder: chain 0's, written with the other animations


def chain_label(input_path: str, seed: int) -> str:
    """How a chain is named on sheets, in reports and in the CLI: its picture and seed."""
    return f"{Path(input_path).name} · seed {seed}"


def sheet_chains(chains: Sequence[ChainRow], most: int = MAX_SHEET_CHAINS) -> list[ChainRow]:
    """The chains a contact sheet shows: all of them, or ``most`` evenly spaced ones (first and last kept)."""
    return [chains[i] for i in evenly_spaced(len(chains), most)]


def _frames(run: RunView, chain: int) -> list[tuple[int, np.ndarray]]:
    return [(r.step, read_frame(run.path / r.path)) for r in run.frame_rows(chain)]


def preview_size(width: int, height: int) -> tuple[int, int]:
    """The pixel size of the preview of frames of this size (scaled to fit, padded to even sides)."""
    w, h = fit_size(width, height, PREVIEW_SIDE)
    return w + w % 2, h + h % 2


def write_preview(run: RunView, chain: int, path: Path, fps: float = 10.0) -> Path | None:
    """A compact MP4 of one chain for a page to embed (:data:`PREVIEW_CRF`, at most :data:`PREVIEW_SIDE`
    a side: about a tenth of the GIF's bytes); None when the chain has no frames."""
    frames = _frames(run, chain)
    return _preview(frames, path, fps, run.row.n_steps) if frames else None


def _preview(frames: list[tuple[int, np.ndarray]], path: Path, fps: float, total: int) -> Path:
    return write_mp4(frames, path, fps=fps, total=total, crf=PREVIEW_CRF, max_side=PREVIEW_SIDE)


def render_run(
    run: RunView,
    fps: float = 10.0,
    steps: Sequence[int] = DEFAULT_SHEET_STEPS,
    gif: bool = True,
    mp4: bool = True,
    sheet: bool = True,
    preview: bool = True,
) -> dict[str, Path]:
    """Write the animations and the contact sheet into the run folder, and chain 0's compact
    :data:`PREVIEW` for the report to embed; return what was written."""
    written: dict[str, Path] = {}
    rows = []
    total = run.row.n_steps
    chains = run.chains()
    on_sheet = {c.chain for c in sheet_chains(chains)}
    for chain in chains:
        if not (gif or mp4 or (sheet and chain.chain in on_sheet) or (preview and chain.chain == 0)):
            continue
        frames = _frames(run, chain.chain)
        if not frames:
            continue
        if gif:
            written[f"gif/{chain.chain}"] = write_gif(
                frames, run.path / f"chain{chain.chain:03d}.gif", fps=fps, total=total
            )
        if mp4:
            written[f"mp4/{chain.chain}"] = write_mp4(
                frames, run.path / f"chain{chain.chain:03d}.mp4", fps=fps, total=total
            )
        if preview and chain.chain == 0:
            written["preview"] = _preview(frames, run.path / PREVIEW, fps, total)
        if chain.chain in on_sheet:
            chosen = set(pick_steps([s for s, _ in frames], steps))
            label = chain_label(chain.input_path, chain.seed)
            rows.append((label, [(s, f) for s, f in frames if s in chosen]))
    if sheet and rows:
        title = f"{run.id} · {run.row.model}"
        if len(on_sheet) < len(chains):
            title += f" · {len(on_sheet)} of {len(chains)} chains, evenly spaced"
        written["contact_sheet"] = contact_sheet(rows, run.path / "contact_sheet.png", title=title)
    return written
