"""The self-contained HTML report (driftloop.report.html): checked statically (no URL out, everything escaped,
the CSP allows exactly the inline scripts by hash) and in a real headless Chromium (through Playwright), where
its charts must be drawn offline with no console error.

Chromium is Debian's package (``apt-get install chromium``, binary /usr/bin/chromium; override with
DRIFTLOOP_CHROMIUM). Without it the browser test fails with a message saying so; it is never skipped.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from driftloop.analysis.chains import summarize_run
from driftloop.analysis.text import sentences
from driftloop.render.animation import write_mp4
from driftloop.report.html import ReportContext, html_table, img_tag, write_report

REPO = Path(__file__).resolve().parents[2]
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


# ----------------------------------------------------------------------------------------------- report


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str | None]] = []
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []  # (attributes, inline text)
        self._script: dict[str, str | None] | None = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self.scripts.append((self._script, data))
            self._script = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "script":
            self._script = dict(attrs)
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
    assert "link" not in parser.tags and "iframe" not in parser.tags
    # Scripts: all inline (no src), each allowed by its sha256 in the CSP, which keeps default-src 'none'.
    assert not any(tag == "script" for tag, _, _ in parser.urls)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert policy.startswith("default-src 'none'; img-src data:;") and "unsafe-inline' 'sha" not in policy
    code = [body for attrs, body in parser.scripts if attrs.get("type") != "application/json"]
    assert len(code) == 3 and any("uPlot" in c for c in code) and any("DriftCharts" in c for c in code)
    allowed = re.findall(r"'sha256-([A-Za-z0-9+/=]+)'", policy)
    assert sorted(allowed) == sorted(
        base64.b64encode(hashlib.sha256(c.encode()).digest()).decode() for c in code
    )
    # The chart data: the metric rows as JSON (every chart the report draws), nothing that closes the element.
    (data,) = [json.loads(body) for attrs, body in parser.scripts if attrs.get("type") == "application/json"]
    kinds = [c["kind"] for c in data["charts"]]
    assert kinds[:3] == ["metric", "metric", "trajectory"] and kinds.count("metric") >= 9

    # Every image decodes: GIF/PNG through Pillow, SVG as XML with an <svg> root.
    kinds = set()
    assert len(parser.imgs) == 2 + 1 + 1 + 1  # frames, GIF, sheet, caption image: plots are charts now
    for img in parser.imgs:
        mime, data = _decode_data_uri(img["src"] or "")
        kinds.add(mime)
        assert img.get("alt")
        if mime == "image/svg+xml":
            assert b"<svg" in data[:2000] and data.rstrip().endswith(b"</svg>")
        else:
            with Image.open(io.BytesIO(data)) as im:
                im.verify()
    assert kinds == {"image/png", "image/gif"}

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
            ARTIFACTS.mkdir(exist_ok=True)
            drawn = page.evaluate(
                "() => ({charts: JSON.parse(document.getElementById('chart-data').textContent).charts.length,"
                " canvases: document.querySelectorAll('#charts canvas').length,"
                " titles: Array.from(document.querySelectorAll('#charts .u-title')).map(t => t.textContent),"
                " drawn: Array.from(document.querySelectorAll('#charts canvas')).filter(c => c.width > 100 &&"
                " c.height > 100).length})"
            )
            page.locator("#plots").screenshot(path=str(ARTIFACTS / "report-charts.png"))
            images = page.evaluate(
                "() => Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,"
                " w: i.naturalWidth, h: i.naturalHeight}))"
            )
            width = page.evaluate("() => document.documentElement.scrollWidth")
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()

    assert errors == []
    # Every chart of the data was drawn by uPlot (one canvas each, of real size), titled as in the data.
    assert drawn["charts"] >= 12 and drawn["canvases"] == drawn["charts"] == drawn["drawn"]
    assert (
        "Mean b* (blue–yellow)" in drawn["titles"]
        and "Colour trajectory in the a*–b* plane" in drawn["titles"]
    )
    assert len(images) == 5
    bad = [i for i in images if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert bad == []
    # Only the report itself and its data: URIs were requested: nothing over the network.
    assert all(u.startswith(("file:", "data:")) for u in requests), [u[:80] for u in requests]
    assert width <= 1200  # no horizontal overflow at a desktop width (wide tables scroll in their box)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_report_video_plays_and_axis_labels_fit_in_chromium(fake_run: dict, tmp_path: Path) -> None:
    """The embedded MP4 decodes and plays in Chromium (offline, under the page's CSP), and every chart's
    y axis label fits the height of its plot."""
    from playwright.sync_api import sync_playwright

    mp4 = write_mp4([(s, np.asarray(Image.open(p))) for s, p in enumerate(fake_run["frames"])],
                    tmp_path / "chain.mp4", total=12)  # fmt: skip
    df = fake_run["df"].assign(sharpness=lambda d: 100 + d["step"], contrast_rms=lambda d: 40 - d["step"])
    ctx = ReportContext(title="t", run_id="r", model="m", df=df, summaries=summarize_run(df),
                        animation=mp4, animation_size=(48, 48))  # fmt: skip
    out = write_report(tmp_path / "report.html", ctx)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(out.as_uri(), wait_until="load")
            page.locator("video").scroll_into_view_if_needed()
            page.wait_for_function("() => document.querySelector('video').currentTime > 0.3", timeout=15_000)
            video = page.evaluate(
                "() => { const v = document.querySelector('video');"
                " return {w: v.videoWidth, h: v.videoHeight, error: v.error && v.error.code,"
                " paused: v.paused}; }"
            )
            labels = page.evaluate(
                "() => Array.from(document.querySelectorAll('#charts .chart:not(.trajectory)')).map(d => {"
                " const c = document.createElement('canvas').getContext('2d'); c.font = d.dataset.yLabelFont;"
                " return [d.dataset.yLabel, c.measureText(d.dataset.yLabel).width, Number(d.dataset.yRoom),"
                " d.querySelector('.u-over').getBoundingClientRect().height]; })"
            )
        finally:
            browser.close()
    assert errors == []
    assert video == {"w": 48, "h": 48, "error": None, "paused": False}
    assert len(labels) >= 10 and "variance of the Laplacian" in [label for label, *_ in labels]
    for label, width, room, plot_height in labels:
        assert not label.endswith("…") and width <= room <= plot_height, (label, width, room, plot_height)
