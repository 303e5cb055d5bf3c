"""Stable metric column names and their one-line descriptions (units included), by metrics module.

The names and descriptions live in the vocabulary of measures (:mod:`driftloop.measures`); these are its
views per group. Users plot these names, so they never change meaning; a new definition gets a new name.
Pairwise metrics come in two flavours: ``*_to_origin`` (against frame 0) and ``*_to_prev`` (against the
previous frame, absent for frame 0).
"""

from __future__ import annotations

from driftloop.measures import column_descriptions

COLUMNS: dict[str, str] = column_descriptions("core")
PERCEPTUAL_COLUMNS: dict[str, str] = column_descriptions("perceptual")
ALL_COLUMNS: dict[str, str] = {**COLUMNS, **PERCEPTUAL_COLUMNS}
