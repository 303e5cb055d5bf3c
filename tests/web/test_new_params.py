"""Start a run: the chosen model's parameters (from the static description), checked on the server, in the
run's spec and in the dry run's estimate."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from driftloop.web.app import create_app
from web.conftest import record_spawns


@pytest.fixture
def client(gallery_ws: Path) -> TestClient:
    return TestClient(create_app(gallery_ws, extra_hosts=("testserver",)), follow_redirects=False)


def _estimate(client: TestClient, model: str, params: dict[str, str], params_for: str | None = None) -> str:
    form = {"csrf": client.app.state.guard.csrf, "model": model, "steps": "4", "seeds": "0,1", "size": "64",
            "stabilize": "none", "params_for": params_for or model,
            **{f"p.{k}": v for k, v in params.items()}}  # fmt: skip
    answer = client.post("/new/estimate", data=form)
    assert answer.status_code == 200
    return html.unescape(answer.text)


def _cost(text: str) -> float:
    return float(re.search(r'id="estimate-cost">\$([0-9.]+)', text)[1])


def test_the_form_shows_the_default_models_parameters(client: TestClient) -> None:
    page = client.get("/new").text
    assert 'name="params_for" value="taef2"' in page and 'name="p.dtype"' in page
    assert 'hx-get="/new/params"' in page and "params-ready from:body" in page
    jpeg = client.get("/new", params={"model": "jpeg"}).text
    assert 'name="p.quality" value="75"' in jpeg and 'min="1"' in jpeg and "JPEG quality" in jpeg


def test_choosing_a_model_swaps_in_its_parameters(client: TestClient) -> None:
    got = client.get("/new/params", params={"model": "openai"})
    assert got.status_code == 200 and got.headers["hx-trigger-after-settle"] == "params-ready"
    assert 'name="params_for" value="openai"' in got.text
    quality = got.text.split('name="p.quality"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]*)"', quality) == [
        "auto",
        "low",
        "medium",
        "high",
        "xhigh",
        "max",
    ]
    assert 'value="gpt-image-2" selected' in got.text and 'name="p.concurrency"' in got.text
    assert "<html" not in got.text  # a fragment
    turbo = client.get("/new/params", params={"model": "sd-turbo"}).text
    for name in ("strength", "steps", "guidance", "size", "prompt"):
        assert f'name="p.{name}"' in turbo
    assert client.get("/new/params", params={"model": "nope"}).status_code == 404


def test_the_estimate_reflects_the_parameters(client: TestClient) -> None:
    low = _estimate(client, "openai", {"model": "gpt-image-2", "quality": "low"})
    high = _estimate(client, "openai", {"model": "gpt-image-2", "quality": "high"})
    assert "openai:quality=low" in low and "openai:quality=high" in high
    assert 0 < _cost(low) < _cost(high)  # a high-quality copy costs more than a low one
    stale = _estimate(client, "openai", {"quality": "50"}, params_for="jpeg")  # the fields of jpeg, just left
    assert 'id="estimate-spec">openai</code>' in stale  # dropped: the defaults until openai's fields are in
    bad = _estimate(client, "jpeg", {"quality": "300"})
    assert 'id="estimate-error"' in bad and "quality=300 is outside 1 to 100" in bad
    assert "jpeg:quality=40" in _estimate(client, "jpeg", {"quality": "40"})
    assert "subsampling='9' is not one of 0, 1, 2" in _estimate(client, "jpeg", {"subsampling": "9"})


def test_more_parameters_are_checked_by_the_models_spec_parser(client: TestClient) -> None:
    form = {"csrf": client.app.state.guard.csrf, "model": "webp", "steps": "3", "seeds": "0", "size": "64",
            "params_for": "webp", "params_extra": "nonsense=1"}  # fmt: skip
    text = html.unescape(client.post("/new/estimate", data=form).text)
    assert "unknown parameter 'nonsense'" in text and "method" in text  # the parser lists what it takes


def test_a_run_started_from_the_form_gets_its_parameters(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = record_spawns(client.app.state.jobs, monkeypatch)
    picked = next(iter(client.app.state.data.input_images()))
    form = {"csrf": client.app.state.guard.csrf, "model": "jpeg", "steps": "3", "seeds": "0", "size": "64",
            "picked": picked, "params_for": "jpeg"}  # fmt: skip
    bad = client.post("/new", data={**form, "p.quality": "0", "p.subsampling": "0"})
    assert bad.status_code == 400 and "quality=0 is outside 1 to 100" in bad.text and not started
    assert '<option value="jpeg"  selected>' in bad.text or 'value="jpeg"  selected' in bad.text
    assert 'name="p.quality" value="0"' in bad.text  # the form comes back as it was sent
    answer = client.post("/new", data={**form, "p.quality": "40", "p.subsampling": "0"})
    assert answer.status_code == 303
    assert started[0][started[0].index("--model") + 1] == "jpeg:quality=40,subsampling=0"
