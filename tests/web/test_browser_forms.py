"""The start-a-run form and the sweep page in a real browser: choosing a model swaps in its parameters and
the dry run's estimate follows them; the sweep page fits a 1280-px window. Fails on console errors and on
any request that leaves 127.0.0.1 (the fixtures of test_browser)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from web import test_browser
from web.conftest import synthetic_sweep

server, page = test_browser.server, test_browser.page  # the same fixtures: a served gallery, a chromium tab


def test_choosing_a_model_shows_its_parameters_and_the_estimate_follows(
    server: str, page: tuple[Page, list[str], list[str]], gallery_ws: Path
) -> None:
    tab, errors, foreign = page
    tab.goto(f"{server}/new")
    tab.wait_for_selector("#estimate-spec")
    assert tab.text_content("#estimate-spec") == "taef2" and tab.is_visible("select[name='p.dtype']")
    tab.fill("input[name=steps]", "4")
    tab.select_option("select[name=model]", "openai")
    tab.wait_for_selector("select[name='p.quality']")  # openai's parameters, swapped in without a reload
    assert tab.input_value("input[name=params_for]") == "openai" and not tab.is_visible("[name='p.dtype']")
    tab.wait_for_function("() => document.querySelector('#estimate-spec')?.textContent === 'openai'")
    auto = tab.text_content("#estimate-cost")
    tab.select_option("select[name='p.quality']", "low")
    tab.wait_for_function(
        "() => document.querySelector('#estimate-spec')?.textContent === 'openai:quality=low'"
    )
    low = tab.text_content("#estimate-cost")
    tab.screenshot(path=str(test_browser.ARTIFACTS / "gallery-new.png"), full_page=True)
    assert auto.startswith("$") and low.startswith("$") and float(low[1:]) < float(auto[1:])
    tab.select_option("select[name=model]", "jpeg")
    tab.wait_for_selector("input[name='p.quality']")
    tab.fill("input[name='p.quality']", "30")
    tab.dispatch_event("input[name='p.quality']", "change")
    tab.wait_for_function("() => document.querySelector('#estimate-spec')?.textContent === 'jpeg:quality=30'")
    assert "/new" in tab.url  # never reloaded or left
    assert errors == [] and foreign == []


def _overflow(tab: Page) -> dict[str, int]:
    """How far the page and each table's frame scroll sideways (0: everything fits)."""
    return tab.evaluate(
        """() => ({page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
                  ...Object.fromEntries([...document.querySelectorAll('.table-wrap')].map(
                      (w, i) => [w.firstElementChild.id || i, w.scrollWidth - w.clientWidth]))})"""
    )


def test_the_sweep_page_fits_a_1280_px_window(
    server: str, page: tuple[Page, list[str], list[str]], gallery_ws: Path
) -> None:
    tab, errors, foreign = page
    synthetic_sweep(gallery_ws)  # nine cells: hosted and local models, parameters, stabilizers
    tab.set_viewport_size({"width": 1280, "height": 900})
    for name in ("grid", "tiny"):
        tab.goto(f"{server}/sweeps/{name}")
        tab.wait_for_selector("#sweep-cells")
        assert all(v <= 0 for v in _overflow(tab).values()), (name, _overflow(tab))
        tab.screenshot(path=str(test_browser.ARTIFACTS / f"gallery-sweep-{name}.png"), full_page=True)
    assert tab.locator("#sweep-cells tbody tr").count() == 2  # tiny: its two cells
    tab.goto(f"{server}/sweeps/grid")
    tab.click("tr[data-arm='taef2'] a.cell-chains")
    tab.wait_for_selector("#chain-table")
    assert tab.locator("#chain-table tbody tr").count() == 4  # the plain taef2 cell's chains, nothing else
    assert errors == [] and foreign == []
