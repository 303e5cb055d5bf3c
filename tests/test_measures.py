"""Tests for driftloop.measures: one record per column, complete where a stage reads it."""

from __future__ import annotations

import pytest

from driftloop.analysis.card import BIAS_MEASURES
from driftloop.analysis.chains import MEASURE_INFO
from driftloop.measures import GROUPS, MEASURES, PLOT_LABELS, column_descriptions
from driftloop.metrics import ALL_COLUMNS, COLUMNS, PERCEPTUAL_COLUMNS
from driftloop.metrics.face import FACE_COLUMNS


def test_every_record_is_keyed_by_its_column_and_described() -> None:
    assert all(column == m.column for column, m in MEASURES.items())
    assert all(m.group in GROUPS and m.description for m in MEASURES.values())


def test_metric_column_lists_keep_the_export_order_and_their_groups() -> None:
    # Exports write columns in ALL_COLUMNS order, which users' scripts may rely on.
    assert list(ALL_COLUMNS)[:4] == ["psnr_to_origin", "psnr_to_prev", "ssim_to_origin", "ssim_to_prev"]
    assert list(ALL_COLUMNS)[-2:] == ["dino_cosine_to_origin", "dino_cosine_to_prev"]
    assert not set(COLUMNS) & set(PERCEPTUAL_COLUMNS) and not set(ALL_COLUMNS) & set(FACE_COLUMNS)
    assert "contrast" in MEASURES and "contrast" not in ALL_COLUMNS  # read by the card, never written
    with pytest.raises(ValueError, match="unknown measure group 'colour'"):
        column_descriptions("colour")


def test_every_written_pairwise_and_core_column_has_a_plot_label() -> None:
    assert set(ALL_COLUMNS) <= set(PLOT_LABELS)
    assert all(title and axis for title, axis in PLOT_LABELS.values())
    assert PLOT_LABELS["psnr_to_prev"] == ("PSNR to the previous frame", "PSNR (dB; higher = closer)")


def test_words_come_in_pairs_for_the_measures_summaries_and_the_card_talk_about() -> None:
    for m in MEASURE_INFO.values():
        assert m.symbol.startswith("Δ") and m.name and m.up_head and m.down_head and m.up_word and m.down_word
    for m in BIAS_MEASURES.values():
        assert m.symbol.startswith("Δ") and m.noun and m.up_verb and m.down_verb and m.up_word and m.down_word
    assert MEASURES["lab_b_mean"].up_word == "warmer" and MEASURES["cct_kelvin"].unit == " K"
