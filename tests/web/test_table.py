"""The chains table: columns of the vocabulary from stored summaries, sort, filters, thresholds, pages, and
an address that keeps the whole view."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from driftloop import api
from driftloop.web.app import create_app


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


def test_the_filters_offer_every_model_and_sweep(client: TestClient, gallery_ws: Path) -> None:
    page = client.get("/chains").text
    models = {r.model for r in api.runs(gallery_ws)}
    offered = set(re.findall(r"<option (?:selected)?>([^<]+)</option>", page))
    assert models <= offered and "tiny" in offered
