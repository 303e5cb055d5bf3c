"""The chains table: columns of the vocabulary from stored summaries, sort, filters, thresholds, pages, and
an address that keeps the whole view."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from driftloop import api
from driftloop.config import InputRef, RunConfig
from driftloop.cost import load_factors
from driftloop.replicators.spec import spec_label
from driftloop.store import Store
from driftloop.web.app import create_app
from web.conftest import synthetic_sweep


@pytest.fixture
def client(gallery_ws: Path) -> TestClient:
    return TestClient(create_app(gallery_ws, extra_hosts=("testserver",)), follow_redirects=False)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-chain="([^"]+)">', html)


def values(html: str, column: str) -> list[float | None]:
    found = re.findall(rf'<td class="num" data-column="{re.escape(column)}" data-value="([^"]*)">', html)
    return [float(v) if v else None for v in found]


def truth(ws: Path) -> dict[str, dict[str, float]]:
    """Each chain's last SSIM and b* change, from its metric rows (what the stored summary must say)."""
    out = {}
    for r in api.runs(ws):
        df = api.open_run(r.id, ws).dataframe()
        for chain, g in df.groupby("chain"):
            g = g.sort_values("step")
            out[f"{r.id}:{chain}"] = {
                "ssim_to_origin.final": float(g["ssim_to_origin"].iloc[-1]),
                "lab_b_mean.change": float(g["lab_b_mean"].iloc[-1] - g["lab_b_mean"].iloc[0]),
            }
    return out


def test_every_chain_with_its_stored_numbers(client: TestClient, gallery_ws: Path) -> None:
    page = client.get("/chains", params=[("col", "ssim_to_origin.final"), ("col", "lab_b_mean.change")])
    assert page.status_code == 200
    known = truth(gallery_ws)
    listed = rows(page.text)
    assert sorted(listed) == sorted(known) and len(listed) == 6  # two sweep runs and one run, two chains each
    for chain, ssim, db in zip(
        listed, values(page.text, "ssim_to_origin.final"), values(page.text, "lab_b_mean.change"), strict=True
    ):
        assert ssim == pytest.approx(known[chain]["ssim_to_origin.final"], abs=1e-9)
        assert db == pytest.approx(known[chain]["lab_b_mean.change"], abs=1e-9)


def test_sort_filter_threshold_and_pages(client: TestClient, gallery_ws: Path) -> None:
    known = truth(gallery_ws)
    col = "ssim_to_origin.final"
    up = client.get("/chains", params={"col": col, "sort": col}).text
    assert values(up, col) == sorted(values(up, col))  # ascending
    down = client.get("/chains", params={"col": col, "sort": f"-{col}"}).text
    assert values(down, col) == sorted(values(down, col), reverse=True)
    cut = sorted(v[col] for v in known.values())[3]
    below = client.get("/chains", params={"col": col, "where": f"{col}<{cut}"}).text
    assert sorted(rows(below)) == sorted(k for k, v in known.items() if v[col] < cut)
    q50 = client.get("/chains", params={"model": "jpeg:quality=50"}).text
    assert len(rows(q50)) == 2 and all("jpeg:quality=50" in line for line in q50.split("<tr data-chain")[1:])
    tiny = client.get("/chains", params={"sweep": "tiny"}).text
    assert len(rows(tiny)) == 4
    assert rows(client.get("/chains", params={"status": "running"}).text) == []
    first = client.get("/chains", params={"per_page": 25, "sort": col}).text
    assert len(rows(first)) == 6 and "next →" not in first


def test_links_keep_the_whole_view(client: TestClient) -> None:
    params = [("col", "lab_b_mean.change"), ("sort", "-lab_b_mean.change"), ("sweep", "tiny"),
              ("where", "ssim_to_origin.final<0.99")]  # fmt: skip
    page = client.get("/chains", params=params).text
    link = re.search(r'href="([^"]+)" id="permalink"', page)[1].replace("&amp;", "&")
    again = client.get(link).text
    assert rows(again) == rows(page) and "lab_b_mean.change" in link and "where=" in link
    head = re.search(r'<th class="num" data-column="lab_b_mean.change"><a href="([^"]+)"', page)[1]
    assert "sort=lab_b_mean.change" in head and "sweep=tiny" in head  # turns the sort round, keeps filters


def test_the_forms_empty_fields_leave_the_address(client: TestClient) -> None:
    """The "apply" button sends every field, empty ones too; the page answers with the clean address."""
    params = [("col", "lab_b_mean.change"), ("sort", "-lab_b_mean.change"), ("model", ""), ("status", ""),
              ("where", ""), ("sweep", "tiny"), ("per_page", "50")]  # fmt: skip
    moved = client.get("/chains", params=params, follow_redirects=False)
    assert moved.status_code == 303
    target = moved.headers["location"]
    assert "model=" not in target and "status=" not in target and "where=" not in target
    assert "sweep=tiny" in target and "sort=-lab_b_mean.change" in target
    given = [(k, v) for k, v in params if v]
    assert rows(client.get(target).text) == rows(client.get("/chains", params=given).text) != []


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"col": "nonsense.final"}, "no column"),
        ({"sort": "-secret"}, "cannot sort by"),
        ({"where": "ssim_to_origin.final<abc"}, "not a number"),
        ({"where": "ssim_to_origin.final ~ 1"}, "expected COLUMN OP NUMBER"),
        ({"where": "x.final<1"}, "no column"),
    ],
)
def test_bad_queries_say_what_is_wrong(client: TestClient, params: dict[str, str], said: str) -> None:
    answer = client.get("/chains", params=params)
    assert answer.status_code == 400 and said in answer.text


def test_a_recompute_stores_the_numbers_again(gallery_ws: Path) -> None:
    run = api.open_run(api.runs(gallery_ws)[0].id, gallery_ws)
    before = run.store.chain_summaries(run.id)
    run.store.set_chain_summaries(run.id, {})
    assert run.store.chain_summaries(run.id) == {}
    run.recompute_metrics()
    after = run.store.chain_summaries(run.id)
    assert set(after) == {0, 1}
    assert after[1]["ssim_to_origin.final"] == pytest.approx(before[1]["ssim_to_origin.final"], abs=1e-9)


def test_a_chain_is_shown_by_its_arm_and_full_spec(tmp_path: Path) -> None:
    """A stabilized chain is named by its arm (``taef2 + stabilize=colour:lab``), a plain one by its model,
    a codec by its full spec (``webp:quality=80`` for a run stored as ``webp``); the cell narrows the
    table to exactly that arm."""
    ws = tmp_path / "ws"
    made = synthetic_sweep(ws)
    store = Store(ws)
    cost = {"factors": load_factors().to_dict()}
    config = RunConfig("webp", (InputRef("/in/w.png", "hw"),), (0,), 12, 32, 32, cost=cost, sweep="grid")
    store.create_run("20261204-130000-webp-synthetic-ffff", "webp", 12, config.to_dict(), {}, {}, {},
                     [("/in/w.png", "hw", 0)])  # fmt: skip
    store.close()
    client = TestClient(create_app(ws, extra_hosts=("testserver",)), follow_redirects=False)
    page = client.get("/chains", params={"sweep": "grid", "per_page": 200}).text
    cells = dict(re.findall(r'<tr data-chain="([^"]+):\d+">.*?class="arm"[^>]*>([^<]+)</a>', page, re.S))
    want = {run: spec_label(arm) for run, arm in made.items()}
    assert {r: html.unescape(c) for r, c in cells.items() if r in made} == want
    assert want["20261204-120007-taef2-synthetic-0007"] == "taef2 + stabilize=colour:lab"
    assert want["20261204-120006-taef2-synthetic-0006"] == "taef2"
    assert html.unescape(cells["20261204-130000-webp-synthetic-ffff"]) == "webp:quality=80"
    assert "jpeg:quality=90" in cells.values()
    for run, arm in (("20261204-120006-taef2-synthetic-0006", "taef2"),
                     ("20261204-120007-taef2-synthetic-0007", "taef2 + stabilize=colour:lab")):  # fmt: skip
        row = re.search(rf'<tr data-chain="{run}:0">.*?<a href="([^"]+)" class="arm"', page, re.S)
        narrowed = client.get(html.unescape(row[1])).text
        assert {r.rsplit(":", 1)[0] for r in rows(narrowed)} == {run}, arm  # that arm, not the other
    assert 'option value="webp" >webp:quality=80</option>' in page.replace("selected", "")


def test_the_chain_and_compare_views_name_the_arm(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    synthetic_sweep(ws)
    client = TestClient(create_app(ws, extra_hosts=("testserver",)), follow_redirects=False)
    plain, lab = "20261204-120006-taef2-synthetic-0006", "20261204-120007-taef2-synthetic-0007"
    head = re.search(r"<h1>(.*?)</h1>", client.get(f"/runs/{lab}/chains/0").text, re.S)[1]
    assert ">taef2 + stabilize=colour:lab</a>" in html.unescape(head)
    assert ">taef2</a>" in re.search(r"<h1>(.*?)</h1>", client.get(f"/runs/{plain}/chains/0").text, re.S)[1]
    compare = html.unescape(client.get(f"/compare?c={plain}:0&c={lab}:0").text)
    captions = re.findall(r'data-label="([^"]+)"', compare)
    assert captions == ["taef2 · chain 0 · seed 0", "taef2 + stabilize=colour:lab · chain 0 · seed 0"]
    assert client.get(f"/runs/{lab}/chains/0/data.json").json()["model"] == "taef2 + stabilize=colour:lab"


def test_the_filters_offer_every_model_and_sweep(client: TestClient, gallery_ws: Path) -> None:
    page = client.get("/chains").text
    models = {r.model for r in api.runs(gallery_ws)}
    offered = set(re.findall(r'<option value="([^"]+)"', page))  # models: the stored spec is the value
    offered |= set(re.findall(r"<option (?:selected)?>([^<]+)</option>", page))
    assert models <= offered and "tiny" in offered
