"""Reading a colour drift right: a chain that loses its colour is not turning "cooler" or "greener".

The CIELAB means a* and b*, the white cast and the colour temperature of the mean colour all move toward
their grey value when a picture loses saturation: an orange cat fading to grey has a* and b* falling toward
0 and a colour temperature rising toward a grey's ~6500 K. Said with those measures' own words that is
"greener", "cooler (bluer)" and "bluer light", which is wrong: nothing turned blue, the colour drained. So
the words look at two things before a direction:

* **chroma loss**: the chains' mean per-pixel chroma C* (``lab_chroma_mean``) falls by at least
  :data:`~driftloop.measures.DRAIN_SHARE` of its start (and by more than
  :data:`~driftloop.measures.NEGLIGIBLE_LAB`). Then a measure with a grey value
  (:attr:`~driftloop.measures.Measure.neutral`) that moves toward it is said as the colour draining;
* **hue** where chroma means something: the hue angle of the mean colour (ā*, b̄*) is read only while that
  colour's chroma √(ā*² + b̄*²) is at least :data:`~driftloop.measures.HUE_MIN_CHROMA`; a turn of more than
  :data:`~driftloop.measures.HUE_NEGLIGIBLE_DEG` is named by the hue it turns toward (orange, yellow, ...).

Across chains the reading uses the means over chains of the values at step 0 and at each chain's last step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from driftloop.analysis.chains import ChainSummary
from driftloop.measures import DRAIN_SHARE, HUE_MIN_CHROMA, HUE_NAMES, MEASURES, NEGLIGIBLE_LAB

__all__ = ["ColourReading", "hue_name", "hue_turn", "read_colour", "reading_of"]

CHROMA = "lab_chroma_mean"


def hue_name(degrees: float) -> str:
    """The named hue nearest a CIELAB hue angle (see :data:`~driftloop.measures.HUE_NAMES`)."""
    return min(HUE_NAMES, key=lambda item: abs(hue_turn(item[0], degrees)))[1]


def hue_turn(start: float, end: float) -> float:
    """The signed shortest turn from hue angle ``start`` to ``end``, degrees in (−180, 180]."""
    turn = (end - start) % 360.0
    return turn - 360.0 if turn > 180.0 else turn


def _hue(a: float, b: float) -> float | None:
    """Hue angle of a mean colour, or None where its chroma is too small for the angle to mean anything."""
    if not math.hypot(a, b) >= HUE_MIN_CHROMA:
        return None
    return math.degrees(math.atan2(b, a)) % 360.0


@dataclass(frozen=True)
class ColourReading:
    """What the chains' colour did, from step 0 to each chain's last step (means over chains).

    ``start`` and ``end`` map a measure to its mean at step 0 and at the last step, for the measures every
    chain has at both ends. ``drained``: the chroma loss rule of the module holds. ``hue_start`` and
    ``hue_end`` are the hue angles of the mean colour, None where its chroma is below the hue threshold.
    """

    start: dict[str, float]
    end: dict[str, float]
    drained: bool
    hue_start: float | None
    hue_end: float | None

    @property
    def chroma_loss(self) -> float | None:
        """The share of the start's mean chroma lost by the end (negative: gained); None if not measured."""
        if CHROMA not in self.start or not self.start[CHROMA] > 0:
            return None
        return 1.0 - self.end[CHROMA] / self.start[CHROMA]

    def drains(self, measure: str) -> bool:
        """True when ``measure``'s change is the colour draining: the chroma falls (see the module) and the
        measure moves toward its grey value, ending no further past it than a quarter of where it began."""
        info = MEASURES.get(measure)
        if not self.drained or info is None or info.neutral is None or measure not in self.start:
            return False
        before = self.start[measure] - info.neutral
        after = self.end[measure] - info.neutral
        return abs(after) < abs(before) and (after * before >= 0 or abs(after) <= abs(before) / 4)

    @property
    def cast_start(self) -> float | None:
        """Chroma of the mean colour √(ā*² + b̄*²) at step 0 (None without a*, b*)."""
        return self._cast(self.start)

    @property
    def cast_end(self) -> float | None:
        return self._cast(self.end)

    @staticmethod
    def _cast(values: dict[str, float]) -> float | None:
        if "lab_a_mean" not in values or "lab_b_mean" not in values:
            return None
        return math.hypot(values["lab_a_mean"], values["lab_b_mean"])


def read_colour(summaries: Sequence[ChainSummary]) -> ColourReading:
    """The colour reading of a set of chains (one chain, or a run's): see the module."""
    chains = [s for s in summaries if s.n_frames > 0]
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    for m in sorted({m for s in chains for m in s.start}):
        pairs = [
            (s.start[m], s.start[m] + s.drift[s.last_step][m])
            for s in chains
            if m in s.start and m in s.drift.get(s.last_step, {})
        ]
        if chains and len(pairs) == len(chains):
            start[m] = float(np.mean([p[0] for p in pairs]))
            end[m] = float(np.mean([p[1] for p in pairs]))
    return reading_of(start, end)


def reading_of(start: dict[str, float], end: dict[str, float]) -> ColourReading:
    """The colour reading from the measures' means at step 0 and at the last step (the bias card's way in)."""
    drained = False
    if CHROMA in start and CHROMA in end:
        lost = start[CHROMA] - end[CHROMA]
        drained = lost > NEGLIGIBLE_LAB and lost >= DRAIN_SHARE * start[CHROMA]
    hues = [
        _hue(values["lab_a_mean"], values["lab_b_mean"])
        if "lab_a_mean" in values and "lab_b_mean" in values
        else None
        for values in (start, end)
    ]
    return ColourReading(dict(start), dict(end), drained, hues[0], hues[1])
