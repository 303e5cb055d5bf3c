"""The sweep page as one row per cell: readable factor columns, short run links, status, chains, the cells'
mean headline numbers from the stored summaries, cost, and links into the chains table and the bundles that
select exactly the cell's chains."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from driftloop import fmt
from driftloop.web.app import create_app
from driftloop.web.cells import factors_of, short_id, sweep_cells
from web.conftest import GRID_ARMS, synthetic_sweep


@pytest.fixture
def client(gallery_ws: Path) -> TestClient:
    return TestClient(create_app(gallery_ws, extra_hosts=("testserver",)), follow_redirects=False)


def _rows(page: str) -> dict[str, str]:
    body = page.split('id="sweep-cells"')[1].split("</table>")[0]
    return {
        html.unescape(arm): row for arm, row in re.findall(r'<tr data-arm="([^"]+)">(.*?)</tr>', body, re.S)
    }


def test_one_row_per_cell_with_its_factors_numbers_and_links(client: TestClient, gallery_ws: Path) -> None:
    runs = synthetic_sweep(gallery_ws)
    page = client.get("/sweeps/grid")
    assert page.status_code == 200
    rows = _rows(page.text)
    assert set(rows) == set(runs.values()) and len(rows) == len(GRID_ARMS)
    head = page.text.split('id="sweep-cells"')[1].split("</thead>")[0]
    for column in ("model", "parameters", "stabilizer", "SSIM at the end", "half-life", "cost"):
        assert f">{column}</th>" in head
    for i, (run, arm) in enumerate(runs.items()):
        row = rows[arm]
        assert f'href="/runs/{run}"' in row and f">{short_id(run)}</a>" in row  # a short name, the full link
        assert run not in re.sub(r'(href|title)="[^"]*"', "", row)  # the long id is not printed
        assert f">{fmt.significant(0.9 - 0.05 * i, 3)}<" in row  # the mean of the cell's four chains
        assert "(2/4)" in row  # half-life: two of its four chains reached it
        assert '<span class="badge done">done</span>' in row and '<td class="num">4</td>' in row
    sd = rows["sd-turbo:strength=0.3,steps=4 + stabilize=colour:lab"]
    assert ">sd-turbo<" in sd and ">colour:lab<" in sd and ">strength=0.3 · steps=4<" in sd
    assert ">quality=low<" in rows["openai:gpt-image-2.6-sunburst,quality=low"]


def test_a_cells_links_select_exactly_its_chains(client: TestClient, gallery_ws: Path) -> None:
    runs = synthetic_sweep(gallery_ws)
    rows = _rows(client.get("/sweeps/grid").text)
    for run, arm in runs.items():
        link = html.unescape(re.search(r'href="(/chains\?[^"]+)" class="cell-chains"', rows[arm])[1])
        assert parse_qs(urlsplit(link).query)["sweep"] == ["grid"]
        listed = re.findall(r'data-chain="([^"]+)"', client.get(link).text)
        assert sorted(listed) == [
            f"{run}:{c}" for c in range(4)
        ]  # the plain taef2 cell: not its stabilized twin
        curves = html.unescape(re.search(r'href="(/bundles\?[^"]+)" class="cell-bundles"', rows[arm])[1])
        got = client.get(curves.replace("/bundles?", "/bundles.json?")).json()
        assert got["total"] == 4


def test_the_tiny_sweep_with_its_card(client: TestClient, gallery_ws: Path) -> None:
    page = client.get("/sweeps/tiny").text
    rows = _rows(page)
    assert set(rows) == {"jpeg:quality=50", "jpeg:quality=90"}
    assert '<span class="tag">control</span>' in rows["jpeg:quality=90"]
    assert "2 cell(s) · 4 chain(s)" in page and "stabilizer none" in page  # a factor all cells share
    assert 'class="sweep-chains"' not in page  # no list of every chain: the table links to them


def test_cells_of_plain_records() -> None:
    assert factors_of("jpeg:quality=50 + stabilize=colour:lab") == (
        "jpeg", {"quality": "50", "stabilizer": "colour:lab"})  # fmt: skip
    assert factors_of("webp")[1]["quality"] == "80"  # the parameters that name a model, at their defaults
    assert factors_of("imported:gpt-image (chat)")[0] == "imported gpt-image (chat)"
    arms = {"r1": "a:x=1", "r2": "a:x=2", "r3": "a:x=2"}
    statuses = {"r1": "done", "r2": "done", "r3": "running"}
    sums = {("r1", "ssim_to_origin.final"): (2, 1.0), ("r2", "ssim_to_origin.final"): (1, 0.8)}
    chains = {"r1": [0, 1], "r2": [0], "r3": [0]}
    cells = sweep_cells(arms, chains, statuses, {"r1": 0.5, "r2": 1.0, "r3": None}, sums)
    one, two = cells.cells
    assert cells.columns == ["x"] and cells.shared == {"stabilizer": "none"}
    assert one.numbers["ssim_to_origin.final"] == pytest.approx(0.5)
    assert two.numbers["ssim_to_origin.final"] == pytest.approx(0.8) and two.reached["half_life"] == 0
    assert (one.usd, two.usd, two.status, two.chains) == (0.5, None, "running", 2)  # an unknown cost: none
    assert short_id("20261204-101500-sd-turbo-9f2c") == "9f2c"


def test_the_page_follows_new_numbers(client: TestClient, gallery_ws: Path) -> None:
    from driftloop.store import Store

    runs = synthetic_sweep(gallery_ws)
    run, arm = next(iter(runs.items()))
    assert f">{fmt.significant(0.9, 3)}<" in _rows(client.get("/sweeps/grid").text)[arm]
    store = Store(gallery_ws)  # another process recomputes the run's summaries
    store.set_chain_summaries(run, {c: {"ssim_to_origin.final": 0.25} for c in range(4)})
    store.close()
    assert f">{fmt.significant(0.25, 3)}<" in _rows(client.get("/sweeps/grid").text)[arm]


def test_a_cells_cost_is_what_its_runs_spent(client: TestClient, gallery_ws: Path) -> None:
    import sqlite3

    from driftloop import api
    from driftloop.cost import run_totals
    from driftloop.store import DB_NAME, RunView, Store
    from driftloop.store.listing import usd_spent

    q50 = next(r.id for r in api.runs(gallery_ws) if r.model == "jpeg:quality=50")
    with sqlite3.connect(gallery_ws / DB_NAME) as db:  # as if each copy had been priced at 1.25 cents
        db.execute(
            "UPDATE frames SET cost = json_set(cost, '$.usd', 0.0125) WHERE run_id = ? AND step > 0", (q50,)
        )
        db.execute(
            "UPDATE frames SET cost = json_set(cost, '$.usd', NULL) WHERE run_id = ? AND step = 3", (q50,)
        )
    store = Store(gallery_ws)
    expected = run_totals(RunView(store, q50))[1].usd
    assert usd_spent(store, [q50]) == {q50: pytest.approx(expected)} and expected == pytest.approx(
        0.0125 * 10
    )
    store.close()
    row = _rows(client.get("/sweeps/tiny").text)["jpeg:quality=50"]
    assert fmt.usd(expected) in row
