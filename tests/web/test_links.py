"""Deep links and the fixes around them: compare at a step, downloads per chain, the live page lists only
runs a process advances, and the start-a-run form's stabilizer and dry-run estimate."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from driftloop import api
from driftloop.store import Store
from driftloop.web.app import create_app
from web.conftest import record_spawns


@pytest.fixture
def client(gallery_ws: Path) -> TestClient:
    return TestClient(create_app(gallery_ws, extra_hosts=("testserver",)), follow_redirects=False)


def newest(ws: Path) -> api.RunHandle:
    return api.open_run(api.runs(ws)[0].id, ws)


def test_compare_reads_the_step_it_is_asked_for(client: TestClient, gallery_ws: Path) -> None:
    run = newest(gallery_ws).id
    asked = client.get("/compare", params=[("c", f"{run}:0"), ("c", f"{run}:1"), ("step", "4")])
    assert asked.status_code == 200 and 'data-step="4"' in asked.text
    plain = client.get("/compare", params=[("c", f"{run}:0"), ("c", f"{run}:1")])
    assert 'data-step=""' in plain.text


def test_a_multi_chain_run_offers_each_chains_animation(client: TestClient, gallery_ws: Path) -> None:
    run = newest(gallery_ws)
    for chain in (0, 1):  # stand-ins for rendered animations: the route, not the encoder, is tested here
        (run.path / f"chain{chain:03d}.gif").write_bytes(f"GIF of chain {chain}".encode())
    page = client.get(f"/runs/{run.id}").text
    assert f"/runs/{run.id}/download/gif?chain=0" in page and f"/runs/{run.id}/download/gif?chain=1" in page
    assert f'href="/runs/{run.id}/download/gif"' not in page  # no run-wide link that gives chain 0 only
    got = client.get(f"/runs/{run.id}/download/gif", params={"chain": 1})
    assert got.status_code == 200 and got.content == b"GIF of chain 1"
    assert f"{run.id}-chain001.gif" in got.headers["content-disposition"]
    assert client.get(f"/runs/{run.id}/download/gif", params={"chain": 7}).status_code == 404


def test_the_live_page_lists_only_runs_a_process_advances(client: TestClient, gallery_ws: Path) -> None:
    run = newest(gallery_ws)
    store = Store(gallery_ws)
    store.set_run_status(run.id, "created")  # created, then its process died before it ran
    store.close()
    assert run.id not in client.get("/live").text
    assert "Nothing is running" in client.get("/live").text


def _estimate(client: TestClient, **fields: str) -> str:
    form = {"csrf": client.app.state.guard.csrf, "model": "jpeg", "steps": "10", "seeds": "0-2", "size": "64",
            "stabilize": "none", **fields}  # fmt: skip
    answer = client.post("/new/estimate", data=form)
    assert answer.status_code == 200
    return answer.text


def test_the_form_offers_stabilizers_and_shows_the_dry_runs_cost_and_time(client: TestClient) -> None:
    page = client.get("/new").text
    assert '<select name="stabilize">' in page and 'value="colour:lab"' in page
    assert 'hx-post="/new/estimate"' in page
    local = _estimate(client)
    assert "3 chain(s), 30 copies" in local and "no per-image fee" in local and "not timed" in local
    hosted = _estimate(client, model="openai", steps="4", seeds="0,1")
    assert "2 chain(s), 8 copies" in hosted and 'id="estimate-cost">$' in hosted
    assert "per call (typical, an assumption)" in hosted and "square image" in hosted
    assert "expected whole numbers" in _estimate(client, seeds="a-b")
    assert "stabilize" in _estimate(client, stabilize="sepia").lower()
    no_csrf = client.post("/new/estimate", data={"model": "jpeg"})
    assert no_csrf.status_code == 403


def test_a_run_started_from_the_form_gets_its_stabilizer(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = record_spawns(client.app.state.jobs, monkeypatch)
    form = {"csrf": client.app.state.guard.csrf, "model": "jpeg", "steps": "3", "seeds": "0", "size": "64"}
    picked = next(iter(client.app.state.data.input_images()))
    bad = client.post("/new", data={**form, "picked": picked, "stabilize": "sepia"})
    assert bad.status_code == 400 and "sepia" in bad.text and "choose one of" in bad.text and not started
    answer = client.post("/new", data={**form, "picked": picked, "stabilize": "colour:lab"})
    assert answer.status_code == 303 and answer.headers["location"] == "/jobs/j"
    assert started and started[0][started[0].index("--stabilize") + 1] == "colour:lab"
