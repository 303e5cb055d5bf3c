"""A run's animations and contact sheet: per-chain GIF and MP4 with a step counter, one sheet of all chains.

Glue between the read model (which frames exist) and the pure drawing functions of this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from driftloop.frames import read_frame
from driftloop.render.animation import write_gif, write_mp4
from driftloop.render.contact_sheet import DEFAULT_SHEET_STEPS, contact_sheet, pick_steps
from driftloop.store import RunView


def chain_label(input_path: str, seed: int) -> str:
    """How a chain is named on sheets, in reports and in the CLI: its picture and seed."""
    return f"{Path(input_path).name} · seed {seed}"


def render_run(
    run: RunView,
    fps: float = 10.0,
    steps: Sequence[int] = DEFAULT_SHEET_STEPS,
    gif: bool = True,
    mp4: bool = True,
    sheet: bool = True,
) -> dict[str, Path]:
    """Write the animations and the contact sheet into the run folder; return what was written."""
    written: dict[str, Path] = {}
    rows = []
    total = run.row.n_steps
    for chain in run.chains():
        records = run.frame_rows(chain.chain)
        if not records:
            continue
        frames = [(r.step, read_frame(run.path / r.path)) for r in records]
        if gif:
            written[f"gif/{chain.chain}"] = write_gif(
                frames, run.path / f"chain{chain.chain:03d}.gif", fps=fps, total=total
            )
        if mp4:
            written[f"mp4/{chain.chain}"] = write_mp4(
                frames, run.path / f"chain{chain.chain:03d}.mp4", fps=fps, total=total
            )
        chosen = set(pick_steps([s for s, _ in frames], steps))
        rows.append((chain_label(chain.input_path, chain.seed), [(s, f) for s, f in frames if s in chosen]))
    if sheet and rows:
        title = f"{run.id} · {run.row.model}"
        written["contact_sheet"] = contact_sheet(rows, run.path / "contact_sheet.png", title=title)
    return written
