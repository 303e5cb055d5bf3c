"""The study views in a real browser: a compare link at a step round-trips, the chains table sorts and
filters from the page, and its address reopens the same view; a published site opens from file:// with its
animations, and its bundles draw and open a chain at a step. Fails on console errors and on any request
that leaves 127.0.0.1 (the fixtures of test_browser)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from driftloop import api
from web import test_browser

server, page = test_browser.server, test_browser.page  # the same fixtures: a served gallery, a chromium tab


def test_compare_at_a_step_round_trips(
    server: str, page: tuple[Page, list[str], list[str]], gallery_ws: Path
) -> None:
    tab, errors, foreign = page
    run = api.open_run(api.runs(gallery_ws)[0].id, gallery_ws)
    tab.goto(f"{server}/compare?c={run.id}:0&c={run.id}:1&step=3")
    tab.wait_for_function("() => window.driftloopCompare && window.driftloopCompare.chains.length === 2")
    shas = tab.eval_on_selector_all("img.frame", "l => l.map(i => i.dataset.sha)")
    assert shas == [run.frame_rows(0)[3].sha256, run.frame_rows(1)[3].sha256]
    tab.fill("#slider", "7")
    tab.dispatch_event("#slider", "input")
    assert "step=7" in tab.url and f"c={run.id}%3A0" in tab.url.replace(":", "%3A")
    tab.goto(tab.url)  # the address, bookmarked
    tab.wait_for_function("() => window.driftloopCompare && window.driftloopCompare.chains.length === 2")
    assert tab.evaluate("() => window.driftloopCompare.step") == 7
    assert errors == [] and foreign == []


def test_the_chains_table_sorts_filters_and_reopens_from_its_address(
    server: str,
    page: tuple[Page, list[str], list[str]],
    gallery_ws: Path,
) -> None:
    tab, errors, foreign = page
    col = "ssim_to_origin.final"
    tab.goto(f"{server}/chains")
    tab.click(f'th[data-column="{col}"] a')  # the largest first
    tab.wait_for_url("**sort=-ssim_to_origin.final**")
    shown = tab.eval_on_selector_all(f'td[data-column="{col}"]', "l => l.map(c => Number(c.dataset.value))")
    assert len(shown) == 6 and shown == sorted(shown, reverse=True)
    cut = sorted(shown)[2]
    tab.fill("#new-where", f"{col}<{cut}")
    tab.select_option("select[name=sweep]", "tiny")
    tab.click("#apply")
    tab.wait_for_url("**where=**")
    kept = tab.eval_on_selector_all("tr[data-chain]", "l => l.map(r => r.dataset.chain)")
    sweep_runs = {r.id for r in api.runs(gallery_ws) if r.model.startswith("jpeg:quality=")}
    values = tab.eval_on_selector_all(f'td[data-column="{col}"]', "l => l.map(c => Number(c.dataset.value))")
    assert kept and all(v < cut for v in values) and {k.split(":")[0] for k in kept} <= sweep_runs
    assert values == sorted(values, reverse=True)  # the sort is kept with the filter
    bookmark = tab.url
    other = tab.context.browser.new_page()  # a fresh tab: nothing but the address
    other.goto(bookmark)
    assert other.eval_on_selector_all("tr[data-chain]", "l => l.map(r => r.dataset.chain)") == kept
    assert other.input_value("select[name=sweep]") == "tiny"
    assert errors == [] and foreign == []


def test_a_published_site_opens_from_file_with_no_request_leaving_it(
    page: tuple[Page, list[str], list[str]], gallery_ws: Path, tmp_path: Path
) -> None:
    tab, errors, foreign = page
    run = api.runs(gallery_ws)[0].id
    site = api.publish(["tiny", run], tmp_path / "site", gallery_ws, frames="every:2")
    root = site.resolve().as_uri()
    tab.goto(f"{root}/index.html")
    assert tab.locator("tbody tr").count() == 6 and tab.locator("a[href^='cards/tiny']").count() == 1
    loaded = "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    tab.wait_for_function(loaded)  # the animations as thumbnails
    assert tab.locator("tbody img[src^='animations/']").count() == 6
    tab.locator(f"a[href='chains/{run}-1.html']").first.click()
    tab.wait_for_function(loaded)
    assert tab.get_attribute("#animation", "src") == f"../animations/{run}-1.webp"
    tab.fill("#slider", "1")
    tab.dispatch_event("#slider", "input")
    assert tab.text_content("#step") == "2" and tab.get_attribute("#frame", "src").endswith("/0002.webp")
    tab.wait_for_function("() => document.getElementById('frame').naturalWidth > 0")
    tab.screenshot(path=str(test_browser.ARTIFACTS / "published-chain.png"), full_page=True)
    tab.goto(f"{root}/cards/tiny.html")
    assert "bias card" in tab.inner_text("body").lower()
    tab.goto(f"{root}/index.html")
    tab.click("a[href='bundles.html']")
    drawn = "() => window.driftloopBundle && window.driftloopBundle.drawn"
    tab.wait_for_function(drawn)
    assert tab.evaluate("() => window.driftloopBundle.chains.length") == 6
    assert tab.locator("#bundle-legend li").count() == 3  # jpeg q50, its q90 control, the q70 run
    tab.screenshot(path=str(test_browser.ARTIFACTS / "published-bundles.png"), full_page=True)
    tab.select_option("select[name=measure]", "lab_b_mean")  # another measure: another address
    tab.wait_for_url("**bundles.html?measure=lab_b_mean&by=model")
    tab.wait_for_function(drawn)
    assert tab.evaluate("() => window.driftloopBundle.data.measure") == "lab_b_mean"
    box = tab.locator("#bundle .u-over").bounding_box()
    at = tab.evaluate(  # the pixel of the first chain's curve at step 3 (not kept: every:2)
        "() => { const u = window.driftloopBundle.plot;"
        " return [u.valToPos(3, 'x'), u.valToPos(u.data[1][3], 'y')]; }"
    )
    tab.mouse.move(box["x"] + at[0], box["y"] + at[1])
    tab.wait_for_function("() => window.driftloopBundle.hover !== null")
    hovered = tab.evaluate("() => window.driftloopBundle.hover")
    chain_run, chain = hovered["chain"].rsplit(":", 1)
    with tab.expect_navigation():
        tab.mouse.click(box["x"] + at[0], box["y"] + at[1])
    assert tab.url == f"{root}/chains/{chain_run}-{chain}.html?step=3"
    assert tab.text_content("#step") == "2"  # the kept step nearest the one clicked
    assert tab.get_attribute("#frame", "src").endswith("/0002.webp")
    assert errors == []
    assert foreign and all(url.startswith(root + "/") for url in foreign), foreign  # file:// of the site only
