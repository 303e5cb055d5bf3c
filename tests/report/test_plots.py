"""The static figures of ``driftloop plots`` (driftloop.render.plots): awkward data, fixed names,
deterministic files, and the verb itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from driftloop.metrics.columns import ALL_COLUMNS
from driftloop.render.plots import plot_ab_trajectory, plot_fidelity_log, plot_metric, plot_run

from .conftest import metrics_df


@pytest.fixture(scope="module")
def fake_plots(fake_run: dict) -> list[Path]:
    return [p for pair in plot_run(fake_run["df"], fake_run["folder"] / "plots") for p in pair]


# ------------------------------------------------------------------------------------------------ plots


def _valid_png(path: Path) -> None:
    with Image.open(path) as im:
        im.verify()
        assert im.format == "PNG"


def _valid_svg(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "<svg" in text and text.rstrip().endswith("</svg>")


EDGE_CASES = {
    "many_chains": lambda: metrics_df(3, 12),
    "one_chain": lambda: metrics_df(1, 12),
    "one_step": lambda: metrics_df(3, 0),
    "all_nan": lambda: metrics_df(2, 4).assign(lab_b_mean=np.nan, lab_a_mean=np.nan, ssim_to_origin=np.nan),
    "no_metric_columns": lambda: metrics_df(2, 4)[["chain", "step"]],
    "all_inf_psnr": lambda: metrics_df(2, 4).assign(psnr_to_origin=np.inf),
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_plots_handle_awkward_data(case: str, tmp_path: Path) -> None:
    df = EDGE_CASES[case]()
    outputs = [
        plot_metric(df, "lab_b_mean", tmp_path / "b"),
        plot_metric(df, "psnr_to_origin", tmp_path / "psnr"),
        plot_ab_trajectory(df, tmp_path / "ab"),
        plot_fidelity_log(df, tmp_path / "fid"),
    ]
    for png, svg in outputs:
        _valid_png(png)
        _valid_svg(svg)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ab.png", "ab.svg", "b.png", "b.svg", "fid.png", "fid.svg", "psnr.png", "psnr.svg",
    ]  # fmt: skip


def test_plot_names_and_content_are_deterministic(fake_run: dict, fake_plots: list, tmp_path: Path) -> None:
    names = [p.name for p in fake_plots]
    assert names[:4] == ["fidelity_log.png", "fidelity_log.svg", "ab_trajectory.png", "ab_trajectory.svg"]
    assert "metric_lab_b_mean.svg" in names and "metric_white_cast.png" in names
    assert "metric_lpips_to_origin.png" not in names  # column absent
    assert names[-2:] == ["all_metrics.png", "all_metrics.svg"]  # every measured column, small multiples
    svg = (fake_run["folder"] / "plots" / "all_metrics.svg").read_text()
    measured = [c for c in fake_run["df"].columns if c in ALL_COLUMNS]
    assert svg.count('<g id="axes_') == len(measured) and len(measured) >= 9
    df = metrics_df(3, 12)
    first = plot_run(df, tmp_path / "a", columns=("lab_b_mean",))
    second = plot_run(df, tmp_path / "b", columns=("lab_b_mean",))
    assert [png.name for png, _ in first] == [
        "fidelity_log.png",
        "ab_trajectory.png",
        "metric_lab_b_mean.png",
    ]
    for (png1, svg1), (png2, svg2) in zip(first, second, strict=True):
        assert png1.read_bytes() == png2.read_bytes()
        assert svg1.read_bytes() == svg2.read_bytes()


def test_infinite_psnr_is_not_drawn_but_counted(tmp_path: Path) -> None:
    df = metrics_df(2, 6)
    _, svg = plot_metric(df, "psnr_to_prev", tmp_path / "p")
    # Two step-0 rows are ∞ and not drawn; the note about them is drawn as paths, so compare with a plot
    # of the same finite points without the ∞ rows.
    _, svg_finite = plot_metric(df[df["step"] > 0], "psnr_to_prev", tmp_path / "q")
    assert svg.read_bytes() != svg_finite.read_bytes()
