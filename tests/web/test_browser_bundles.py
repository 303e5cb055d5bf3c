"""Bundles in a real browser: a sweep of 1,000 chains × 101 steps drawn as two groups with their means and
bands; hovering a curve names its chain and a click opens that chain at the step under the pointer."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from web import test_browser
from web.conftest import synthetic_study

server, page = test_browser.server, test_browser.page  # served over the workspace below, a chromium tab


@pytest.fixture
def gallery_ws(tmp_path: Path) -> Path:
    """Two models' runs of 500 chains each (20 images × 25 seeds), numbers only."""
    ws = tmp_path / "big"
    synthetic_study(ws, 1000, 100)
    return ws


def test_bundles_draw_a_thousand_chains_and_open_one_at_a_step(
    server: str, page: tuple[Page, list[str], list[str]]
) -> None:
    tab, errors, foreign = page
    tab.goto(f"{server}/bundles?sweep=big&measure=ssim_to_origin")
    tab.wait_for_function("() => window.driftloopBundle && window.driftloopBundle.drawn", timeout=30_000)
    drawn = tab.evaluate(
        "() => [window.driftloopBundle.chains.length, window.driftloopBundle.plot.series.length]"
    )
    assert drawn == [1000, 1 + 1000 + 2]  # every chain, and the two groups' means
    assert tab.locator("#bundle-legend li").count() == 2
    legend = tab.inner_text("#bundle-legend")
    assert "20 image(s)" in legend and "no band" not in legend  # 20 source images: a band for each group
    tab.screenshot(path=str(test_browser.ARTIFACTS / "gallery-bundles.png"), full_page=True)
    box = tab.locator("#bundle .u-over").bounding_box()
    target = tab.evaluate(  # the pixel of chain 0's curve at step 50
        "() => { const u = window.driftloopBundle.plot;"
        " return [u.valToPos(50, 'x'), u.valToPos(u.data[1][50], 'y')]; }"
    )
    tab.mouse.move(box["x"] + target[0], box["y"] + target[1])
    tab.wait_for_function("() => window.driftloopBundle.hover !== null")
    hovered = tab.evaluate("() => window.driftloopBundle.hover")
    assert hovered["step"] == 50 and hovered["chain"] in tab.inner_text("#bundle-tip")
    run, chain = hovered["chain"].rsplit(":", 1)
    with tab.expect_navigation():
        tab.mouse.click(box["x"] + target[0], box["y"] + target[1])
    assert tab.url.endswith(f"/runs/{run}/chains/{chain}?step=50")
    # the warmest 25 against their bundle: the table's link opens on b*, the page's rows marked on top
    tab.goto(f"{server}/chains?sweep=big&col=lab_b_mean.change&sort=-lab_b_mean.change&per_page=25")
    warmest = tab.eval_on_selector_all("#chain-table tbody tr", "rows => rows.map(r => r.dataset.chain)")
    with tab.expect_navigation():
        tab.click("#as-bundle")
    tab.wait_for_function("() => window.driftloopBundle && window.driftloopBundle.drawn", timeout=30_000)
    assert "measure=lab_b_mean" in tab.url and tab.url.count("mark=") == 25  # bookmarkable
    marked = tab.evaluate(
        "() => { const s = window.driftloopBundle, u = s.plot, n = s.chains.length;"
        " const at = k => s.chains.findIndex(c => c.chain === k), curve = i => JSON.stringify(u.data[i]);"
        " return { names: s.marked, series: u.series.length, widths: u.series.slice(n + 3).map(x => x.width),"
        " thin: u.series[1].width, same: s.marked.every((k, i) => curve(n + 3 + i) === curve(at(k) + 1)),"
        " attr: document.getElementById('bundle').dataset.marked }; }"
    )
    assert marked["names"] == warmest and len(warmest) == 25
    assert marked["series"] == 1 + 1000 + 2 + 25 and marked["attr"] == "25"  # the marked curves, on top
    assert marked["widths"] == [2] * 25 and marked["thin"] == 1 and marked["same"]
    assert "marked: the 25 chains of the table's page" in tab.inner_text("#bundle-marked")
    assert tab.locator("#bundle-legend li").count() == 3  # the two groups and the marked chains
    with tab.expect_navigation():  # a new grouping keeps the marks
        tab.select_option("#bundle-form select[name=by]", "image")
    tab.wait_for_function("() => window.driftloopBundle && window.driftloopBundle.drawn", timeout=30_000)
    assert tab.url.count("mark=") == 25 and "by=image" in tab.url
    assert tab.evaluate("() => window.driftloopBundle.marked.length") == 25
    tab.screenshot(path=str(test_browser.ARTIFACTS / "gallery-bundles-marked.png"), full_page=True)
    assert [e for e in errors if "404" not in e] == [] and foreign == []
