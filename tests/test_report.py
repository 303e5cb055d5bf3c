"""Tests for driftloop.render.plots and driftloop.render.report: plots of awkward data, and a self-contained
HTML report checked statically and in a real headless Chromium (through Playwright).

Chromium is Debian's package (``apt-get install chromium``, binary /usr/bin/chromium; override with
DRIFTLOOP_CHROMIUM). Without it the browser test fails with a message saying so; it is never skipped.
"""

from __future__ import annotations

import base64
import io
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from driftloop.analysis.chains import summarize_run
from driftloop.analysis.text import sentences
from driftloop.metrics.columns import ALL_COLUMNS
from driftloop.render.plots import plot_ab_trajectory, plot_fidelity_log, plot_metric, plot_run
from driftloop.report.html import ReportContext, html_table, img_tag, write_report

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("DRIFTLOOP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# ------------------------------------------------------------------------------------------- fake run


def metrics_df(n_chains: int = 3, n_steps: int = 12) -> pd.DataFrame:
    """A plausible metrics table: fidelity decays, b* drifts down, PSNR ∞ at step 0, one NaN."""
    rows = []
    for c in range(n_chains):
        for s in range(n_steps + 1):
            wiggle = 0.05 * np.sin(1.3 * s + c)
            rows.append(
                {
                    "chain": c,
                    "step": s,
                    "ssim_to_origin": 1 / (1 + s / (4 + c)),
                    "psnr_to_origin": np.inf if s == 0 else 38 - 6 * np.log1p(s) + wiggle,
                    "psnr_to_prev": np.inf if s == 0 else 33.0 + wiggle,
                    "mae_to_prev": 0.0 if s == 0 else 1.2,
                    "lab_l_mean": 55 + 0.3 * s + c,
                    "lab_a_mean": 4 + 0.05 * s * (c - 1) + wiggle,
                    "lab_b_mean": 20 - 0.24 * s + wiggle + c,
                    "white_cast": 8 + 0.5 * s,
                    "cct_kelvin": 6000 + 15 * s,
                }
            )
    df = pd.DataFrame(rows)
    df.loc[5, "lab_a_mean"] = np.nan
    return df


def frame(step: int, size: int = 48) -> np.ndarray:
    """A gradient that drifts bluer and brighter with the step."""
    y, x = np.mgrid[0:size, 0:size]
    r = np.clip(x * 5 + step * 4, 0, 255)
    g = np.clip(y * 5 + step * 3, 0, 255)
    b = np.clip(120 + step * 8, 0, 255) + 0 * x
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 3-chain, 12-step run: frames, GIF, contact sheet, metrics table and its plots (made once)."""
    folder = tmp_path_factory.mktemp("fake") / "run"
    (folder / "frames").mkdir(parents=True)
    n_steps = 12
    paths = []
    for s in range(n_steps + 1):
        p = folder / "frames" / f"c0_{s:04d}.png"
        Image.fromarray(frame(s)).save(p, "PNG")
        paths.append(p)
    images = [Image.fromarray(frame(s)) for s in range(n_steps + 1)]
    gif = folder / "chain0.gif"
    images[0].save(gif, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    sheet = Image.new("RGB", (5 * 50, 3 * 50), "white")
    for row in range(3):
        for col, s in enumerate((0, 1, 2, 5, 12)):
            sheet.paste(Image.fromarray(frame(s + row)), (col * 50 + 1, row * 50 + 1))
    sheet_path = folder / "contact_sheet.png"
    sheet.save(sheet_path, "PNG")
    df = metrics_df(3, n_steps)
    plots = [p for pair in plot_run(df, folder / "plots") for p in pair]
    return {"folder": folder, "frames": paths, "gif": gif, "sheet": sheet_path, "df": df, "plots": plots}


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


def test_plot_names_and_content_are_deterministic(fake_run: dict, tmp_path: Path) -> None:
    names = [p.name for p in fake_run["plots"]]
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


# ----------------------------------------------------------------------------------------------- report


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str | None]] = []
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        d = dict(attrs)
        if tag == "img":
            self.imgs.append(d)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "poster", "data") and value is not None:
                self.urls.append((tag, name, value))


def _decode_data_uri(uri: str) -> tuple[str, bytes]:
    match = re.fullmatch(r"data:([\w.+/-]+);base64,([A-Za-z0-9+/=]+)", uri)
    assert match, uri[:80]
    return match.group(1), base64.b64decode(match.group(2), validate=True)


def build_report(fake_run: dict, out: Path) -> tuple[Path, ReportContext]:
    df = fake_run["df"]
    summaries = summarize_run(df)
    ctx = ReportContext(
        title='Astronaut × taef2 <b>"drift"</b> & more',
        run_id="20250101-taef2-abc123",
        model="taef2",
        created=1735732800.0,
        config={"model": "taef2", "steps": 12, "seeds": [0, 1, 2], "note": "<script>alert(1)</script>"},
        versions={"python": "3.11.7", "driftloop": "0.1.0", "torch": "2.13.0"},
        host={"hostname": "box", "cpus": 2, "platform": "Linux-x86_64"},
        sentences=sentences(summaries, df),
        summaries=summaries,
        df=df,
        animation=fake_run["gif"],
        contact_sheet=fake_run["sheet"],
        first_frame=fake_run["frames"][0],
        last_frame=fake_run["frames"][-1],
        plots=fake_run["plots"],
        notes=["LPIPS skipped: weights not found in /models/lpips <vgg.pth>"],
        extra_sections=[
            ("Cost", html_table(["Item", "Value"], [["Energy", "1.2 Wh"], ["Water", "4 mL"]])),
            ("Captions", "<p>" + img_tag(fake_run["frames"][3], "step 3") + "a copy of a copy</p>"),
        ],
    )
    return write_report(out, ctx), ctx


def test_report_is_self_contained_and_escaped(fake_run: dict, tmp_path: Path) -> None:
    out = tmp_path / "report" / "index.html"
    path, _ = build_report(fake_run, out)
    assert path == out
    assert sorted(os.listdir(out.parent)) == ["index.html"]  # atomic write left no temp file
    text = out.read_text(encoding="utf-8")

    parser = _Collector()
    parser.feed(text)
    # Every URL is a data: URI or an in-page anchor: nothing to fetch, nothing on the network.
    for tag, attr, value in parser.urls:
        assert value.startswith(("data:", "#")), (tag, attr, value[:80])
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", text, re.I)
    assert "url(" not in text and "@import" not in text
    assert "script" not in parser.tags and "link" not in parser.tags and "iframe" not in parser.tags

    # Every image decodes: GIF/PNG through Pillow, SVG as XML with an <svg> root.
    kinds = set()
    assert len(parser.imgs) >= 2 + 1 + 1 + 9 + 1  # frames, GIF, sheet, plots, caption image
    for img in parser.imgs:
        mime, data = _decode_data_uri(img["src"] or "")
        kinds.add(mime)
        assert img.get("alt")
        if mime == "image/svg+xml":
            assert b"<svg" in data[:2000] and data.rstrip().endswith(b"</svg>")
        else:
            with Image.open(io.BytesIO(data)) as im:
                im.verify()
    assert kinds == {"image/png", "image/gif", "image/svg+xml"}

    # Text from the run is escaped; extra sections are inserted as given.
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;&quot;drift&quot;&lt;/b&gt; &amp; more" in text
    assert "&lt;vgg.pth&gt;" in text
    for heading in ("Summary", "Original and last copy", "Animation", "Contact sheet", "Plots"):
        assert f"<h2>{heading}</h2>" in text
    for heading in (
        "Chain summaries",
        "Metrics at selected steps",
        "Cost",
        "Captions",
        "Configuration and versions",
    ):
        assert f"<h2>{heading}</h2>" in text
    assert text.index("<h2>Cost</h2>") < text.index("<h2>Configuration and versions</h2>")
    assert "Cooler" in text or "cooler" in text
    assert "2025-01-01T12:00:00+00:00" in text


def test_missing_image_file_is_a_visible_placeholder(fake_run: dict, tmp_path: Path) -> None:
    ctx = ReportContext(
        title="t", run_id="r", model="m", first_frame=fake_run["frames"][0], last_frame=tmp_path / "gone.png"
    )
    text = write_report(tmp_path / "r.html", ctx).read_text(encoding="utf-8")
    assert "file not found" in text and text.count("<img ") == 1


def test_report_in_headless_chromium(fake_run: dict, tmp_path: Path) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    out, _ = build_report(fake_run, tmp_path / "report.html")
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install chromium) or set "
            "DRIFTLOOP_CHROMIUM to a Chromium binary"
        )
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            pytest.fail(f"Chromium at {CHROMIUM} could not start: {exc}")
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on(
                "console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None
            )
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("requestfailed", lambda req: errors.append(f"requestfailed: {req.url[:80]}"))
            page.on("request", lambda req: requests.append(req.url))
            page.goto(out.as_uri(), wait_until="load")
            images = page.evaluate(
                "() => Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,"
                " w: i.naturalWidth, h: i.naturalHeight}))"
            )
            width = page.evaluate("() => document.documentElement.scrollWidth")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()

    assert errors == []
    assert len(images) >= 14
    bad = [i for i in images if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert bad == []
    # Only the report itself and its data: URIs were requested: nothing over the network.
    assert all(u.startswith(("file:", "data:")) for u in requests), [u[:80] for u in requests]
    assert width <= 1200  # no horizontal overflow at a desktop width (wide tables scroll in their box)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
