"""The gallery in a real browser (Playwright + Debian's chromium): start a taef2 run from the page, watch it
finish, scrub to a step, compare two chains, open a sweep's bias card. Screenshots go to test-artifacts/.

Fails on any console error and on any request that leaves 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.sync_api import Page, sync_playwright

from driftloop import api
from driftloop.web.app import create_app

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(gallery_ws: Path) -> Iterator[str]:
    """The gallery served by uvicorn on 127.0.0.1 in a thread, as `driftloop serve` serves it."""
    app = create_app(gallery_ws)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < end, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.state.jobs.close()
        srv.should_exit = True
        thread.join(10)


@pytest.fixture
def page() -> Iterator[tuple[Page, list[str], list[str]]]:
    """A headless chromium page, with the console errors and the off-machine requests it saw."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium")
    errors: list[str] = []
    foreign: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))

        def check(request) -> None:
            parts = urlsplit(request.url)
            if parts.scheme not in ("data", "blob") and parts.hostname != "127.0.0.1":
                foreign.append(request.url)

        tab.on("request", check)
        try:
            yield tab, errors, foreign
        finally:
            browser.close()


def test_gallery_in_a_browser(
    server: str, page: tuple[Page, list[str], list[str]], gallery_ws: Path, sample_images: dict[str, Path]
) -> None:
    tab, errors, foreign = page
    ARTIFACTS.mkdir(exist_ok=True)

    # start a taef2 run at 64² (two seeds, so two chains to compare) from the page
    tab.goto(f"{server}/new")
    tab.set_input_files("input[name=image]", str(sample_images["astronaut.png"]))
    tab.select_option("select[name=model]", "taef2")
    tab.fill("input[name=steps]", "6")
    tab.fill("input[name=seeds]", "0,1")
    tab.fill("input[name=size]", "64")
    tab.uncheck("input[name=render]")
    tab.click("#start")
    tab.wait_for_url(f"{server}/runs/*", timeout=120_000)
    run_id = tab.url.rsplit("/", 1)[1]
    # Done, and settled: a page that watched the run end reloads itself 300 ms later (it marks the <html>
    # meanwhile), and a navigation started in that window is aborted by the reload.
    tab.wait_for_function(
        "() => document.getElementById('status')?.textContent.trim() === 'done'"
        " && !document.documentElement.dataset.reloading",
        timeout=180_000,
    )
    tab.screenshot(path=str(ARTIFACTS / "gallery-run.png"), full_page=True)
    run = api.open_run(run_id, gallery_ws)
    assert run.row.model == "taef2" and [c.last_step for c in run.chains()] == [6, 6]

    # the runs page shows it, with its thumbnails
    tab.goto(server)
    tab.wait_for_selector(f"a[href='/runs/{run_id}']")
    tab.wait_for_function("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    tab.screenshot(path=str(ARTIFACTS / "gallery-runs.png"), full_page=True)

    # the chain view: every frame cached, then scrub with the keys to step 3
    tab.goto(f"{server}/runs/{run_id}/chains/0")
    tab.wait_for_function(
        "() => window.driftloopChain && window.driftloopChain.ready && "
        "window.driftloopChain.loaded === window.driftloopChain.data.frames.length"
    )
    tab.focus("#slider")
    tab.keyboard.press("Home")
    for _ in range(3):
        tab.keyboard.press("ArrowRight")
    want = {r.step: r.sha256 for r in run.frame_rows(0)}
    shown = tab.eval_on_selector("#frame", "i => [i.dataset.step, i.dataset.sha, i.getAttribute('src')]")
    assert shown[0] == "3" and shown[1] == want[3] and shown[2].endswith(f"/{want[3]}.png")
    assert tab.text_content("#step-label") == "3"
    tab.wait_for_function("() => document.getElementById('frame').complete")
    pixels = tab.evaluate(
        "() => { const i = document.getElementById('frame'); const c = document.createElement('canvas');"
        " c.width = i.naturalWidth; c.height = i.naturalHeight; const x = c.getContext('2d');"
        " x.drawImage(i, 0, 0);"
        " return Array.from(x.getImageData(0, 0, c.width, c.height).data.slice(0, 12)); }"
    )
    frame3 = run.frame(0, 3)
    assert pixels == [int(v) for px in frame3.reshape(-1, 3)[:3] for v in (*px, 255)]  # step 3's pixels
    assert tab.locator("#plots canvas").count() >= 2 and tab.locator("#numbers tr").count() >= 3
    names = tab.eval_on_selector_all("#numbers tr", "rows => rows.map(r => r.cells[0].textContent)")
    assert "Δa* from the original" in names and "SSIM to the original" in names  # the measures' own words
    assert not [n for n in names if "_" in n], names  # no raw column name
    tab.screenshot(path=str(ARTIFACTS / "gallery-chain.png"), full_page=True)

    # the slider slides: play forward to the end
    tab.click("#play")
    tab.wait_for_function("() => window.driftloopChain.step === 6", timeout=10_000)

    # compare the taef2 chain with the JPEG (q50) chain of the same picture, at one step
    jpeg = api.open_run(next(r.id for r in api.runs(gallery_ws) if r.model == "jpeg:quality=50"), gallery_ws)
    tab.goto(f"{server}/compare?c={run_id}:0&c={jpeg.id}:0")
    tab.wait_for_function("() => window.driftloopCompare && window.driftloopCompare.chains.length === 2")
    tab.fill("#slider", "2")
    tab.dispatch_event("#slider", "input")
    shas = tab.eval_on_selector_all("img.frame", "l => l.map(i => i.dataset.sha)")
    assert shas == [run.frame_rows(0)[2].sha256, jpeg.frame_rows(0)[2].sha256]
    assert tab.locator("#plots canvas").count() >= 1
    tab.screenshot(path=str(ARTIFACTS / "gallery-compare.png"), full_page=True)

    # a sweep's bias card, with its attractors
    tab.goto(f"{server}/sweeps/tiny")
    card = tab.frame_locator("#bias-card")
    card.locator("body").wait_for()
    assert "bias card" in card.locator("body").inner_text().lower()
    assert tab.locator(".cluster img").count() >= 1
    tab.screenshot(path=str(ARTIFACTS / "gallery-sweep.png"), full_page=True)

    assert errors == [], errors
    assert foreign == [], foreign


def test_chain_view_follows_a_chain_being_written(
    server: str, page: tuple[Page, list[str], list[str]], gallery_ws: Path, sample_images: dict[str, Path]
) -> None:
    """A chain still being written grows in the open chain view through the run's server-sent events."""
    tab, errors, foreign = page
    started = threading.Event()

    def slow_copy(frames, seeds):  # a model that takes its time, so the page sees the chain grow
        started.set()
        time.sleep(0.6)
        return frames

    worker = threading.Thread(
        target=api.run, args=(sample_images["astronaut.png"],),
        kwargs={"model": slow_copy, "n": 8, "size": 32, "workspace": gallery_ws, "render": False},
    )  # fmt: skip
    worker.start()
    try:
        assert started.wait(60)
        run = max(api.runs(gallery_ws), key=lambda r: r.created_at)
        tab.goto(f"{server}/runs/{run.id}/chains/0")
        tab.wait_for_function("() => window.driftloopChain && window.driftloopChain.followed === true")
        at_open = tab.evaluate("() => window.driftloopChain.data.frames.length")
        tab.wait_for_function(
            "() => window.driftloopChain.data.frames.length === 9 && window.driftloopChain.ended === true",
            timeout=60_000,
        )
    finally:
        worker.join(120)
    assert at_open < 9
    assert tab.evaluate("() => document.getElementById('step-max').textContent") == "8"
    assert errors == [] and foreign == []
