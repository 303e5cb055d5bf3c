"""Which chains show the same picture: one source image across runs, and one chain imported twice.

A chain imported from a GIF and the same chain imported from its PNGs (or from a re-encoded video) have
different files and frame hashes but the same pictures. Two pictures are *the same* when their 24×24
thumbnails differ by at most 3 levels (0..255) at the median pixel: a GIF palette, an H.264 encode or a
step counter burnt into a corner changes little or few pixels, while two copies of a chain after a few
steps, or two different photos, differ at most pixels by far more.

Used by the importer (an import whose frames match a stored chain is refused, naming the run) and by the
bias card (an imported chain's source image is the stored input it shows, so the card counts one source
image once, and a chain imported twice once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

from driftloop.frames import read_frame
from driftloop.store import RunView

__all__ = ["SAME_PICTURE_LEVELS", "matching_chain", "same_picture", "source_images", "thumbnail"]

SAME_PICTURE_LEVELS = 3.0
_THUMB = 24


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """The frame as a 24×24 RGB thumbnail (box filter), int16 for differences."""
    picture = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    small = picture.resize((_THUMB, _THUMB), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.int16)


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two thumbnails show the same picture (median |Δ| at most :data:`SAME_PICTURE_LEVELS`)."""
    return float(np.median(np.abs(a - b))) <= SAME_PICTURE_LEVELS


def matching_chain(
    runs: Iterable[RunView], steps: Sequence[int], frames: Sequence[np.ndarray]
) -> tuple[str, int] | None:
    """The first stored (run id, chain) with the same steps whose first, middle and last frames show the
    same pictures as ``frames``: the same chain, stored before. Only chains with the same last step are
    read, so a large workspace costs a database query per run and three small reads per candidate."""
    picks = sorted({0, len(frames) // 2, len(frames) - 1})
    wanted = [thumbnail(frames[i]) for i in picks]
    for run in runs:
        for chain in run.chains():
            if chain.last_step != steps[-1]:
                continue
            rows = run.frame_rows(chain.chain)
            if [r.step for r in rows] != list(steps):
                continue
            stored = (thumbnail(read_frame(run.path / rows[i].path)) for i in picks)
            if all(same_picture(s, t) for s, t in zip(stored, wanted, strict=True)):
                return run.id, chain.chain
    return None


def source_images(runs: Sequence[RunView], imported: set[str]) -> dict[tuple[str, int], str]:
    """The source-image key of every chain: its input's sha256, except that a chain of an ``imported`` run
    whose frame 0 shows the same picture as another chain's takes that chain's key (a GIF and a folder of
    one chain, or a posted copy of a photo the sweep also ran, are one source image)."""
    keys: dict[tuple[str, int], str] = {}
    seen: list[tuple[str, np.ndarray]] = []
    seen_keys: set[str] = set()
    ordered = sorted(runs, key=lambda r: (r.id in imported, r.id))  # the sweep's own inputs first
    compare = bool(imported & {r.id for r in runs})  # nothing imported: every key is its input's
    for run in ordered:
        chains = run.chains()
        for chain in chains:
            keys[(run.id, chain.chain)] = chain.input_sha256 or chain.input_path
        if not compare:
            continue
        firsts = {}
        for r in run.frame_rows():  # one query per run, in (chain, step) order
            firsts.setdefault(r.chain, r)
        for chain in chains:
            key = keys[(run.id, chain.chain)]
            first = firsts.get(chain.chain)
            if first is None or first.step != 0:
                continue
            if run.id not in imported and key in seen_keys:
                continue
            thumb = thumbnail(read_frame(run.path / first.path))
            match = next((k for k, t in seen if same_picture(t, thumb)), None) if run.id in imported else None
            if match is None:
                seen.append((key, thumb))
                seen_keys.add(key)
            else:
                keys[(run.id, chain.chain)] = match
    return keys
