"""Which frames of a video show which copy (cuts combined with the cadence at which copies are shown),
and which border of it stays still (an overlay to crop).

A posted chain video shows each copy for a fixed time (its *hold*: 0.1 s in driftloop's own MP4, often
0.5-1 s in videos people post). Two signals find the copies in the difference between consecutive
frames (mean |Δ| over pixels and channels, 0..255):

* **Cuts.** A frame whose difference from the one before is above a threshold starts a change; a run of
  such frames is one change (a codec at a high CRF spreads one cut over several frames as it refines the
  picture). The threshold adapts to the video: four times its quiet level (the 25th percentile of the
  differences, which is codec noise in a held video), at least 0.15 and at most 1.0.
* **Cadence.** The spacing of the changes gives the hold: the median spacing, refined over every spacing
  that is a whole multiple of it. A change off the cadence (a flicker inside a hold) is ignored, and a
  stretch between two changes lasting m holds is m copies (successive copies that differ too little to
  show a cut, *merged copies*, are split again by the cadence).

When nearly every frame changes (each copy held one frame, as in driftloop's own MP4), every changing
frame starts a copy. The stretch before the first change is the original; the stretch after the last
change is one copy however long it is shown (a video holds its last frame: driftloop's holds it 1.5 s),
unless the user gives the hold. Each copy is represented by the frame in the middle of its first hold.

This module sees only the difference signal, so it is tested on signals with known truth as well as on
real videos (:mod:`driftloop.sequences` decodes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from driftloop.errors import InputError

__all__ = ["Copies", "describe", "find_copies", "quiet_threshold", "static_border"]

#: Bounds of the adaptive change threshold (mean |Δ| 0..255): above codec noise of a still H.264 frame
#: (<0.1 at CRF 18-35 in our measurements), below the change between two copies of a chain (>0.5).
MIN_THRESHOLD = 0.15
MAX_THRESHOLD = 1.0
#: Share of changing frames above which every changing frame is a copy (a hold of one frame).
_EVERY_FRAME = 0.7
#: How far (in holds) a change may sit from the cadence and still count as a cut.
_ON_CADENCE = 0.25


@dataclass(frozen=True)
class Copies:
    """What was found: one (first, last) frame span and one picked frame per copy, and how."""

    spans: tuple[tuple[int, int], ...]
    picks: tuple[int, ...]
    hold: float | None  # frames per copy, None when fewer than two changes give no cadence
    split: int  # copies added by splitting merged stretches by the cadence
    ignored: int  # changes off the cadence, ignored as flickers
    threshold: float


def describe(copies: Copies, fps: float, given_hold: bool = False) -> str:
    """What the finder did, in words: "each held 0.60 s, 1 merged copy split by cadence, cut threshold
    0.15" (``fps``: frames per second, to say the hold in seconds)."""
    parts = []
    if copies.hold is not None:
        parts.append(f"each held {copies.hold / fps:.2f} s{' (given)' if given_hold else ''}")
    else:
        parts.append("no cadence (fewer than two cuts)")
    if copies.split:
        parts.append(f"{copies.split} merged {'copy' if copies.split == 1 else 'copies'} split by cadence")
    if copies.ignored:
        parts.append(
            f"{copies.ignored} {'change' if copies.ignored == 1 else 'changes'} off the cadence ignored"
        )
    parts.append(f"cut threshold {copies.threshold:.2f}")
    return ", ".join(parts)


def quiet_threshold(diffs: Sequence[float]) -> float:
    """The adaptive change threshold: 4 × the 25th percentile of the differences, within the bounds."""
    if not len(diffs):
        return MAX_THRESHOLD
    quiet = float(np.percentile(np.asarray(diffs, dtype=np.float64), 25))
    return min(MAX_THRESHOLD, max(MIN_THRESHOLD, 4 * quiet))


def find_copies(
    diffs: Sequence[float],
    threshold: float | None = None,
    hold: float | None = None,
    copies: int | None = None,
) -> Copies:
    """Find the copies of a video from ``diffs[i]``, the difference between frames ``i`` and ``i + 1``.

    ``threshold`` overrides the adaptive one; ``hold`` (frames per copy) overrides the cadence found;
    ``copies`` asks for exactly that many copies and raises ``InputError`` if no cadence gives them.
    """
    d = np.asarray(diffs, dtype=np.float64)
    n = len(d) + 1
    t = quiet_threshold(d) if threshold is None else float(threshold)
    change = np.concatenate([[0.0], d])  # change[p]: how much frame p differs from frame p - 1
    peaks = _peaks(change, t)
    if copies is None:
        return _copies(change, peaks, n, t, hold if hold is not None else _cadence(change, peaks))
    if copies < 2:
        raise InputError(f"--copies must be 2 or more (the original and one copy; got {copies})")
    tried = [hold] if hold is not None else _candidates(change, peaks, ranked=True)
    found = set()
    for h in tried:
        result = _copies(change, peaks, n, t, h)
        if len(result.spans) == copies:
            return result
        found.add(len(result.spans))
    raise InputError(
        f"no cadence gives {copies} copies (found {', '.join(map(str, sorted(found)))}); "
        "give the hold with --hold SECONDS, or --every SECONDS for fixed windows from the start"
    )


def _peaks(change: np.ndarray, threshold: float) -> np.ndarray:
    """The frames where a change peaks above the threshold: every changing frame when nearly all frames
    between the first and last change change (a one-frame hold), else the local maxima (a codec at a
    high CRF smears one cut over a few frames around it)."""
    active = np.flatnonzero(change > threshold)
    if len(active) < 2 or len(active) / (active[-1] - active[0] + 1) >= _EVERY_FRAME:
        return active
    padded = np.concatenate([change, [0.0]])
    return np.asarray([p for p in active if change[p] >= change[p - 1] and change[p] >= padded[p + 1]])


def _window(hold: float) -> int:
    """How many frames a cut may sit from the cadence: a quarter hold, at least one from a three-frame hold
    (shorter holds have none: neighbouring slots would share their frames)."""
    return 0 if hold < 3 else max(1, int(_ON_CADENCE * hold))


def _grid(change: np.ndarray, peaks: np.ndarray, hold: float) -> tuple[float, float]:
    """The best phase (first slot) of a ``hold`` cadence over the peaks, and its score.

    The score is the share of slots, from the first peak to the last, holding a peak, times the share of
    all peak height that those slot peaks carry: a hold too short leaves slots empty, one that matches
    the side peaks of smeared cuts instead of the cuts carries little of the height.
    """
    best = (0.0, -1.0)
    total = float(change[peaks].sum()) or 1.0
    w = _window(hold)
    for phase in np.arange(0.0, hold, 0.5 if hold < 4 else 1.0):
        first = float(peaks[0] - w + ((phase - (peaks[0] - w)) % hold))
        matched = _match(change, peaks, hold, first)
        if not matched:
            continue
        hits = [p for _, p in matched if p is not None]
        score = len(hits) / len(matched) * float(change[sorted(set(hits))].sum()) / total
        if score > best[1]:
            best = (first, score)
    return best


def _match(change: np.ndarray, peaks: np.ndarray, hold: float, first: float) -> list[tuple[int, int | None]]:
    """Each slot of the cadence from ``first`` to the last peak, with the highest peak near it (or None)."""
    w = _window(hold)
    slots = np.round(np.arange(first, peaks[-1] + w + 0.5, hold)).astype(int)
    out: list[tuple[int, int | None]] = []
    for slot in slots:
        near = [int(p) for p in peaks if abs(int(p) - slot) <= w]
        out.append((int(slot), max(near, key=lambda p: change[p]) if near else None))
    return out


def _candidates(change: np.ndarray, peaks: np.ndarray, ranked: bool = False) -> list[float]:
    """Holds worth trying: spacings of neighbouring peaks (and halves), and the span of all peaks over
    every whole number of holds (that gives a fractional hold such as 7.5 frames); ranked by score."""
    gaps = np.diff(peaks).astype(np.float64)
    span = float(peaks[-1] - peaks[0])
    values = {*gaps, *(gaps / 2), *(span / m for m in range(1, 2 * len(peaks) + 1))}
    values = {round(v, 3) for v in values if 1 <= v <= max(1.0, span)}
    scored = sorted(((_grid(change, peaks, h)[1], h) for h in values), key=lambda sh: (-sh[0], sh[1]))
    return [h for _, h in scored] if ranked else [h for s, h in scored if s >= 0.85 * scored[0][0]]


def _cadence(change: np.ndarray, peaks: np.ndarray) -> float | None:
    """Frames per copy: the shortest hold whose cadence scores within 15 % of the best (twice the hold
    scores as well as the hold), refined by least squares over the cuts on it; None below two peaks."""
    if len(peaks) < 2:
        return None
    hold = min(_candidates(change, peaks))
    first, _ = _grid(change, peaks, hold)
    cuts = [(k, p) for k, (_, p) in enumerate(_match(change, peaks, hold, first)) if p is not None]
    if len(cuts) >= 2:
        k, p = np.asarray(cuts, dtype=np.float64).T
        hold = float(np.polyfit(k, p, 1)[0])
    return hold


def _copies(change: np.ndarray, peaks: np.ndarray, n: int, threshold: float, hold: float | None) -> Copies:
    """Copies start at frame 0 and at each cut: the highest peak near each slot of the cadence. A slot
    without a cut between the first and last cut is a merged copy, split there; peaks off the cadence are
    ignored. With no cadence every peak is a cut; with a hold but no peak the hold divides the video."""
    if hold is None or hold < 1:
        cuts, splits = [int(p) for p in peaks], []
    elif not len(peaks):
        cuts, splits = [], [round(k * hold) for k in range(1, max(1, int(n / hold + 1e-9)))]
    else:
        matched = _match(change, peaks, hold, _grid(change, peaks, hold)[0])
        cuts = [p for _, p in matched if p is not None]
        splits = [slot for slot, p in matched if p is None and cuts and cuts[0] < slot < cuts[-1]]
    starts = sorted({0, *[c for c in cuts if 0 < c < n], *splits})
    ends = [s - 1 for s in starts[1:]] + [n - 1]
    spans = tuple(zip(starts, ends, strict=True))
    first_hold = hold if hold is not None and hold >= 1 else float(n)
    picks = tuple(s + int(min(e - s + 1, first_hold) // 2) for s, e in spans)
    return Copies(spans, picks, hold, len(splits), len(peaks) - len(set(cuts)), threshold)


#: A row or column is part of a still border when it changed less than this share of the picture's
#: busy (75th percentile) row or column; codec ringing next to a bar stays below it, picture rows do not.
_STILL_SHARE = 0.1
#: Smallest picture kept by the border finder, as a share of the frame side (a bar is not the picture).
_MIN_PICTURE = 0.25


def static_border(activity: np.ndarray, first: np.ndarray | None = None) -> tuple[int, int, int, int] | None:
    """The box (x, y, w, h) inside the still border of a video, or None when no border is still.

    ``activity`` is the per-pixel sum of |Δ| over the whole video. Rows (then columns) at the edges whose
    total change is under a tenth of the 75th percentile row's (column's) are a still border:
    letterbox bars, a caption strip, a frame. With the video's ``first`` frame, a still side is cut only
    where it looks different from the picture beside it (mean colour of the band against the picture's
    band of the same width, at least :data:`_EDGE_LEVELS` apart): a plain background that merely stays
    still (a white studio wall) is part of the picture. Only edges are cut: a watermark inside the
    picture stays (give ``--crop``).
    """
    height, width = activity.shape
    rows, cols = activity.sum(axis=1), activity.sum(axis=0)
    y0, y1 = _moving(rows)
    x0, x1 = _moving(cols)
    if first is not None:
        picture = first.astype(np.float64)
        y0 = y0 if _differs(picture[:y0], picture[y0 : 2 * y0]) else 0
        y1 = y1 if _differs(picture[y1:], picture[2 * y1 - height : y1]) else height
        x0 = x0 if _differs(picture[:, :x0], picture[:, x0 : 2 * x0]) else 0
        x1 = x1 if _differs(picture[:, x1:], picture[:, 2 * x1 - width : x1]) else width
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return None
    if y1 - y0 < _MIN_PICTURE * height or x1 - x0 < _MIN_PICTURE * width:
        return None
    return x0, y0, x1 - x0, y1 - y0


#: Least difference (0..255) between a still band's mean colour and the picture's beside it.
_EDGE_LEVELS = 12.0


def _differs(band: np.ndarray, beside: np.ndarray) -> bool:
    """Whether a still band looks unlike the picture next to it (an empty band never differs)."""
    if not band.size or not beside.size:
        return False
    return (
        float(np.abs(band.reshape(-1, 3).mean(axis=0) - beside.reshape(-1, 3).mean(axis=0)).mean())
        >= _EDGE_LEVELS
    )


def _moving(totals: np.ndarray) -> tuple[int, int]:
    """The first and one-past-last index whose total is above the still share of the median moving one."""
    if not totals.any():
        return 0, len(totals)
    level = float(np.percentile(totals, 75))
    moving = np.flatnonzero(totals > _STILL_SHARE * level)
    if not len(moving):
        return 0, len(totals)
    return int(moving[0]), int(moving[-1]) + 1
