"""A run's overview and animations: one contact sheet (a sample of the chains when there are many), GIF and
MP4 with a step counter for a bounded number of chains (every chain, or any one, on request), and the
compact preview a report page embeds.

What a render writes does not grow with the run: an 800-chain run gets one sheet of
:data:`MAX_SHEET_CHAINS` chains and the animations of its first :data:`DEFAULT_ANIMATIONS` chains, not 1,600
files; :func:`render_chain` makes any other chain's animation when someone asks for it (the gallery's
per-chain download does, and keeps it).

Glue between the read model (which frames exist) and the pure drawing functions of this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from driftloop.analysis.curves import evenly_spaced
from driftloop.errors import RenderError
from driftloop.frames import read_frame
from driftloop.render._frames import fit_size
from driftloop.render.animation import write_gif, write_mp4
from driftloop.render.contact_sheet import DEFAULT_SHEET_STEPS, contact_sheet, pick_steps
from driftloop.store import ChainRow, RunView

__all__ = ["ANIMATION_KINDS", "DEFAULT_ANIMATIONS", "MAX_SHEET_CHAINS", "PREVIEW", "PREVIEW_CRF",
           "PREVIEW_SIDE", "Animations", "animated_chains", "animation_path", "chain_label",
           "parse_animations", "preview_size", "render_chain", "render_run", "sheet_chains",
           "write_preview"]  # fmt: skip

# Most chains drawn as rows of the contact sheet: above this, evenly spaced chains are drawn (the sheet
# of an 800-chain run would otherwise be 170 megapixels) and its title says how many of how many.
MAX_SHEET_CHAINS = 24
# The preview a report embeds: H.264 at this quality (18 is visually lossless, 28 still shows the drift
# clearly at a quarter of the bytes) and at most this many pixels a side.
PREVIEW_CRF = 28
PREVIEW_SIDE = 512
PREVIEW = "preview.mp4"  # in the run folder: chain 0's, written with the other animations
# Chains animated (GIF and MP4 each) by a render unless told otherwise: the first ones, so a run of a few
# chains gets all of them and a sweep's run of hundreds a handful (any other on request).
DEFAULT_ANIMATIONS = 8
ANIMATION_KINDS = ("gif", "mp4")
# Which chains a render animates: "all", "none", the first N, or these chain numbers (or the text of
# ``--animations``, see :func:`parse_animations`).
Animations = int | str | Sequence[int]


def chain_label(input_path: str, seed: int) -> str:
    """How a chain is named on sheets, in reports and in the CLI: its picture and seed."""
    return f"{Path(input_path).name} · seed {seed}"


def sheet_chains(chains: Sequence[ChainRow], most: int = MAX_SHEET_CHAINS) -> list[ChainRow]:
    """The chains a contact sheet shows: all of them, or ``most`` evenly spaced ones (first and last kept)."""
    return [chains[i] for i in evenly_spaced(len(chains), most)]


def parse_animations(text: str) -> Animations:
    """``--animations``: ``all``, ``none``, ``N`` (the first N chains) or ``list:0,5,7`` (those chains)."""
    word = text.strip().lower()
    if word in ("all", "none"):
        return word
    if word.startswith("list:"):
        try:
            return sorted({int(x) for x in word[5:].split(",") if x.strip()})
        except ValueError:
            pass
    elif word.isdigit():
        return int(word)
    raise RenderError(
        f"--animations takes all, none, a number of chains (the first ones) or list:0,5,7 (those chains); "
        f"got {text!r}"
    )


def animated_chains(chains: Sequence[ChainRow], animations: Animations = DEFAULT_ANIMATIONS) -> list[int]:
    """The chain numbers a render animates (see :data:`Animations`); a chain the run lacks is an error."""
    numbers = [c.chain for c in chains]
    if isinstance(animations, str):
        animations = parse_animations(animations)
    if animations == "all":
        return numbers
    if animations == "none":
        return []
    if isinstance(animations, bool):
        raise RenderError(f"animations: all, none, a number or chain numbers, got {animations!r}")
    if isinstance(animations, int):
        if animations < 0:
            raise RenderError(f"animations: a number of chains must be 0 or more, got {animations}")
        return numbers[:animations]
    wanted = sorted({int(c) for c in animations})
    missing = sorted(set(wanted) - set(numbers))
    if missing:
        raise RenderError(f"no chain {missing[0]} in this run (chains 0–{len(numbers) - 1})")
    return wanted


def animation_path(run: RunView, chain: int, kind: str) -> Path:
    """Where a chain's animation (``gif`` or ``mp4``) lives in the run folder."""
    return run.path / f"chain{chain:03d}.{kind}"


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


def _animate(run: RunView, chain: int, kind: str, frames: list[tuple[int, np.ndarray]], fps: float) -> Path:
    write = write_gif if kind == "gif" else write_mp4
    return write(frames, animation_path(run, chain, kind), fps=fps, total=run.row.n_steps)


def render_chain(
    run: RunView, chain: int, kinds: Sequence[str] = ANIMATION_KINDS, fps: float = 10.0
) -> dict[str, Path]:
    """Write one chain's animations (``gif``, ``mp4``) into the run folder, as :func:`render_run` would, and
    return them by kind: what a request for a chain the render left out makes (and keeps)."""
    unknown = sorted(set(kinds) - set(ANIMATION_KINDS))
    if unknown:
        raise RenderError(f"no animation kind {unknown[0]!r}: choose from {', '.join(ANIMATION_KINDS)}")
    animated_chains(run.chains(), [chain])  # a clear error for a chain the run lacks
    frames = _frames(run, chain)
    if not frames:
        raise RenderError(f"run {run.id}, chain {chain}: no frames yet, so nothing to animate")
    return {kind: _animate(run, chain, kind, frames, fps) for kind in kinds}


def render_run(
    run: RunView,
    fps: float = 10.0,
    steps: Sequence[int] = DEFAULT_SHEET_STEPS,
    gif: bool = True,
    mp4: bool = True,
    sheet: bool = True,
    preview: bool = True,
    animations: Animations = DEFAULT_ANIMATIONS,
) -> dict[str, Path]:
    """Write the contact sheet (at most :data:`MAX_SHEET_CHAINS` chains, evenly spaced), a GIF and an MP4
    of the chains ``animations`` names (default: the first :data:`DEFAULT_ANIMATIONS`), and chain 0's
    compact :data:`PREVIEW` for the report to embed, into the run folder; return what was written."""
    written: dict[str, Path] = {}
    rows = []
    chains = run.chains()
    animated = set(animated_chains(chains, animations))
    on_sheet = {c.chain for c in sheet_chains(chains)}
    for chain in chains:
        moving = (gif or mp4) and chain.chain in animated
        if not (moving or (sheet and chain.chain in on_sheet) or (preview and chain.chain == 0)):
            continue
        frames = _frames(run, chain.chain)
        if not frames:
            continue
        for kind in [k for k, on in zip(ANIMATION_KINDS, (gif, mp4), strict=True) if on and moving]:
            written[f"{kind}/{chain.chain}"] = _animate(run, chain.chain, kind, frames, fps)
        if preview and chain.chain == 0:
            written["preview"] = _preview(frames, run.path / PREVIEW, fps, run.row.n_steps)
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
