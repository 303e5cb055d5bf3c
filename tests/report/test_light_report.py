"""A light report: the animation as a compact MP4 (not the GIF inlined), stills as WebP, a contact sheet of a
bounded number of chains, chart axes that fit, hue unwrapped, constant series on their own range, and the
configuration folded into a table."""

from __future__ import annotations

import base64
import itertools
import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import driftloop
from driftloop.analysis.chains import summarize_run
from driftloop.render.contact_sheet import sheet_layout
from driftloop.render.run import MAX_SHEET_CHAINS, PREVIEW, preview_size, sheet_chains, write_preview
from driftloop.report.charts import MAX_CHART_CHAINS, chart_data
from driftloop.report.html import ReportContext, render_report
from driftloop.report.sections import MAX_METRIC_TABLES


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A noisy 128² picture: JPEG has detail to chew on, so the GIF is as heavy as a real one."""
    y, x = np.mgrid[0:128, 0:128] / 128
    rgb = np.stack([np.sin(7 * x + 3 * y), np.cos(5 * y - 2 * x), np.sin(11 * x * y)], axis=-1)
    noise = np.random.default_rng(0).normal(0, 0.1, rgb.shape)
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(np.clip((rgb + noise + 1) * 127.5, 0, 255).astype(np.uint8)).save(path)
    return path


def _frame_count(mp4: Path) -> int:
    """Frames ffmpeg decodes from the file (it must decode: a broken video fails here)."""
    reader = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(reader)
    assert meta["size"][0] > 0
    return sum(1 for _ in reader)


def test_report_embeds_a_compact_video_not_the_gif(photo: Path, tmp_path: Path) -> None:
    run = driftloop.run(photo, model="jpeg:quality=60", n=20, size=128, workspace=tmp_path / "ws")
    report = run.path / "report.html"
    gif = run.path / "chain000.gif"
    text = report.read_text(encoding="utf-8")
    assert "data:image/gif" not in text  # the GIF stays in the run folder
    (src,) = re.findall(r'<video src="data:video/mp4;base64,([A-Za-z0-9+/=]+)"', text)
    video = tmp_path / "embedded.mp4"
    video.write_bytes(base64.b64decode(src, validate=True))
    # the animation costs the page a fraction of the GIF it used to inline (~10× less at 512²)
    assert video.stat().st_size < 0.5 * gif.stat().st_size, (video.stat().st_size, gif.stat().st_size)
    assert report.stat().st_size < 500_000  # charts module, data, stills and video of a small chain
    assert _frame_count(video) >= 21  # every copy (and the held last frame)
    assert video.read_bytes() == (run.path / PREVIEW).read_bytes()  # made once, by the render
    assert re.search(r"<video [^>]*autoplay loop muted playsinline controls", text)
    assert "media-src data:" in text  # the CSP lets the page play its own data: video, and nothing else
    (run.path / PREVIEW).unlink()  # a run rendered before there were previews: the report makes one
    assert "<video " in run.report().read_text(encoding="utf-8") and not (run.path / PREVIEW).exists()


def test_large_stills_are_embedded_as_webp(photo: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (400, 400, 3), dtype=np.uint8)).save(big)
    html = render_report(ReportContext(title="t", run_id="r", model="m", first_frame=big, last_frame=photo))
    kinds = re.findall(r'<img src="data:(image/[a-z]+);base64', html)
    assert kinds == ["image/webp", "image/png"]  # the 400² frame compressed, the small one as it is


def test_contact_sheet_samples_chains_and_says_so(photo: Path, tmp_path: Path) -> None:
    n = MAX_SHEET_CHAINS + 6
    run = driftloop.run(photo, model="jpeg", n=1, seeds=range(n), size=32, workspace=tmp_path / "ws")
    picked = sheet_chains(run.chains())
    assert len(picked) == MAX_SHEET_CHAINS and picked[0].chain == 0 and picked[-1].chain == n - 1
    with Image.open(run.path / "contact_sheet.png") as sheet:
        height = sheet.height
    text = (run.path / "report.html").read_text(encoding="utf-8")
    assert f"{MAX_SHEET_CHAINS} of {n} chains, evenly spaced" in text
    assert height == sheet_layout(MAX_SHEET_CHAINS, 2, title=True).height  # rows of the sample only
    assert text.count("<video ") == 1  # one animation, whatever the number of chains


def _df(column: str, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"chain": 0, "step": range(len(values)), column: values})


def _chart(df: pd.DataFrame, column: str) -> dict:
    (spec,) = [c for c in chart_data(df)["charts"] if c.get("column") == column]
    return spec


def test_long_axis_labels_are_shortened_and_given_in_full_in_the_caption() -> None:
    spec = _chart(_df("sharpness", [100.0, 90.0, 80.0, 60.0]), "sharpness")
    assert spec["axis"] == "variance of the Laplacian"
    assert "y axis: variance of the Laplacian ((8-bit levels)²)" in spec["caption"]
    short = _chart(_df("lab_l_mean", [50.0, 52.0, 55.0]), "lab_l_mean")
    assert short["axis"] == "L* (CIELAB, 0–100)" and "y axis" not in short["caption"]


def test_hue_is_unwrapped() -> None:
    spec = _chart(_df("lab_hue_deg", [350.0, 356.0, 2.0, 9.0, 15.0, 358.0]), "lab_hue_deg")
    values = spec["chains"][0]["values"]
    assert values == pytest.approx([350.0, 356.0, 362.0, 369.0, 375.0, 358.0])
    assert max(abs(b - a) for a, b in itertools.pairwise(values)) < 180
    assert "unwrapped" in spec["note"]


def test_a_constant_series_gets_its_own_range() -> None:
    gaps = _chart(_df("histogram_gaps", [0.0, 0.0, 0.0, 0.0]), "histogram_gaps")
    assert gaps["y_range"] == [0.0, 1.0] and "constant" in gaps["note"]  # its stated 0–1, not 0–100
    cct = _chart(_df("cct_kelvin", [6500.0] * 4), "cct_kelvin")
    assert cct["y_range"][0] < 6500 < cct["y_range"][1] and cct["y_range"][1] - cct["y_range"][0] < 1000
    moving = _chart(_df("lab_l_mean", [50.0, 52.0, 55.0]), "lab_l_mean")
    assert moving["y_range"] is None  # a series that changes keeps the chart's own scaling


def test_configuration_is_folded_into_a_table() -> None:
    config = {"model": "taef2", "n_steps": 101, "seeds": [0, 1], "metrics": {"faces": False},
              "cost": {"factors": {"pue": {"value": 1.58, "unit": "PUE", "source": "survey"}}}}  # fmt: skip
    html = render_report(ReportContext(title="t", run_id="r", model="m", config=config))
    section = html[html.index('<section id="config">') :]
    assert section.index('<details class="config">') < section.index("<table>")
    assert '<td class="text">n_steps</td><td class="text">101</td>' in section
    assert '<td class="text">seeds</td><td class="text">0, 1</td>' in section
    assert "metrics.faces" in section and "1.58 PUE" in section
    pre = section.index("<pre>")
    assert section.rfind("<details>", 0, pre) > section.index('<details class="config">')  # JSON folded too


def test_ffmpeg_decodes_what_write_preview_writes(photo: Path, tmp_path: Path) -> None:
    """The preview is scaled down to at most 512 a side; at 1024² it is half the size."""
    big = tmp_path / "big.png"
    Image.open(photo).resize((1024, 1024)).save(big)
    run = driftloop.run(big, model="jpeg", n=2, size=1024, workspace=tmp_path / "ws", render=False)
    path = write_preview(run, 0, tmp_path / "p.mp4")
    assert path is not None and preview_size(1024, 1024) == (512, 512) and preview_size(75, 33) == (76, 34)
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    assert "512x512" in probe.stderr and "h264" in probe.stderr


def _many(n_chains: int, n_steps: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(n_chains)
    chain, step = np.repeat(np.arange(n_chains), n_steps + 1), np.tile(np.arange(n_steps + 1), n_chains)
    k = len(chain)
    return pd.DataFrame(
        {
            "chain": chain,
            "step": step,
            "input": [f"img{c % 7}.png" for c in chain],
            "ssim_to_origin": 1 / (1 + step * rng.uniform(0.1, 1, k)),
            "lab_l_mean": 50 + step * rng.normal(size=k),
            "lab_a_mean": rng.normal(size=k),
            "lab_b_mean": 10 - step * rng.uniform(size=k),
            "sharpness": 100 - step * rng.uniform(size=k),
        }
    )


def test_report_does_not_grow_with_chains_beyond_a_table() -> None:
    sizes = {}
    for n in (80, 400):
        df = _many(n)
        charts = chart_data(df)["charts"]
        assert all(len(c["chains"]) <= MAX_CHART_CHAINS for c in charts)
        ssim = next(c for c in charts if c.get("column") == "ssim_to_origin")
        assert ssim["n_chains"] == n and f"{MAX_CHART_CHAINS} of {n} chains drawn" in ssim["note"]
        ctx = ReportContext(title="t", run_id="r", model="m", df=df, summaries=summarize_run(df))
        html = render_report(ctx)
        assert html.count("<details") <= MAX_METRIC_TABLES + 1
        sizes[n] = len(html.encode())
    per_chain = (sizes[400] - sizes[80]) / 320
    assert per_chain < 1_500, per_chain  # the rows of the chain tables, not curves and tables per chain
