"""Bundles of curves: each chain's curve of a measure grouped by model, stabilizer or image, with each
group's mean over source images and its mean_ci band (none below three images)."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient

from driftloop import api
from driftloop.analysis.intervals import mean_ci
from driftloop.replicators.spec import spec_label
from driftloop.report.bundles import build_bundle
from driftloop.store.chain_table import ChainTableRow
from driftloop.web.app import create_app
from web.conftest import synthetic_sweep


@pytest.fixture
def client(gallery_ws: Path) -> TestClient:
    return TestClient(create_app(gallery_ws, extra_hosts=("testserver",)), follow_redirects=False)


def test_a_sweep_as_bundles_by_model(client: TestClient, gallery_ws: Path) -> None:
    got = client.get("/bundles.json", params={"sweep": "tiny", "measure": "ssim_to_origin"}).json()
    assert [g["name"] for g in got["groups"]] == ["jpeg:quality=50", "jpeg:quality=90"]
    assert got["n_chains"] == 4 and got["steps"] == list(range(7))
    q50 = got["groups"][0]
    run = api.open_run(q50["chains"][0].rsplit(":", 1)[0], gallery_ws)
    df = run.dataframe()
    for k, chain in enumerate(q50["chains"]):
        want = df[df["chain"] == int(chain.rsplit(":", 1)[1])].sort_values("step")["ssim_to_origin"]
        assert q50["values"][k] == pytest.approx(want.tolist(), rel=1e-4)
    both = np.array(q50["values"], dtype=float)
    assert q50["mean"] == pytest.approx(both.mean(axis=0).tolist(), rel=1e-4)  # one image: the mean of seeds
    assert q50["n_images"] == 1 and all(v is None for v in q50["low"])  # one image: no band
    page = client.get("/bundles", params={"sweep": "tiny"})
    assert page.status_code == 200 and "/assets/bundles.js" in page.text and 'id="as-table"' in page.text
    assert client.get("/bundles.json", params={"measure": "nonsense"}).status_code == 400
    assert client.get("/bundles.json", params={"by": "colour"}).status_code == 400


def row(run: str, chain: int, model: str, image: str, seed: int) -> ChainTableRow:
    return ChainTableRow(run, chain, model, "done", f"/in/{image}.png", seed, 0.0)


def test_the_band_is_mean_ci_over_source_images() -> None:
    rng = np.random.default_rng(3)
    rows, values = [], []
    for i, image in enumerate("abcd"):
        for seed in (0, 1):
            chain = 2 * i + seed
            rows.append(row("r", chain, "m", image, seed))
            values += [("r", chain, s, float(1 - 0.1 * s + rng.normal(0, 0.05))) for s in range(5)]
    rows.append(row("r2", 0, "other", "a", 0))
    values += [("r2", 0, s, 0.5) for s in range(3)]  # a shorter chain: None after step 2
    got = build_bundle(rows, values, "model", {})
    m, other = got["groups"]
    assert m["name"] == "m" and other["name"] == "other" and other["values"][0][3:] == [None, None]
    at2 = [v for (_r, _c, s, v) in values[:40] if s == 2]
    want = mean_ci(at2, [r.input_path for r in rows[:8]])
    assert m["mean"][2] == pytest.approx(want.mean, rel=1e-4)
    assert m["low"][2] == pytest.approx(want.ci_low, rel=1e-4) and m["high"][2] == pytest.approx(
        want.ci_high, rel=1e-4
    )
    assert other["low"] == [None] * 5  # one image: no band
    by_image = build_bundle(rows, values, "image", {})
    assert [g["name"] for g in by_image["groups"]] == ["a.png", "b.png", "c.png", "d.png"]
    by_stabilizer = build_bundle(rows, values, "stabilizer", {"r": "colour:lab"})
    assert [g["name"] for g in by_stabilizer["groups"]] == ["colour:lab", "none"]


def test_a_stabilized_arm_is_a_group_of_its_own() -> None:
    """Grouped "by model", taef2 and taef2 + colour:lab are two groups, each with the mean and band of its
    own chains exactly as a bundle of that arm alone; a codec stored as ``jpeg`` reads ``jpeg:quality=75``."""
    rng = np.random.default_rng(5)
    rows, values = [], []
    for k, (model, stabilize) in enumerate([("taef2", "none"), ("taef2", "colour:lab"), ("jpeg", "none")]):
        for i, image in enumerate("abcd"):
            rows.append(replace(row(f"r{k}", i, model, image, 0), stabilize=stabilize))
            drift = 0.1 * (k + 1)
            values += [(f"r{k}", i, s, float(1 - drift * s + rng.normal(0, 0.05))) for s in range(5)]
    got = build_bundle(rows, values, "model", {})
    assert [g["name"] for g in got["groups"]] == ["jpeg:quality=75", "taef2", "taef2 + stabilize=colour:lab"]
    for group in got["groups"]:
        alone = [r for r in rows if spec_label(r.arm) == group["name"]]
        (want,) = build_bundle(alone, values, "model", {})["groups"]
        assert group["chains"] == want["chains"] and len(group["chains"]) == 4
        assert [group[k] for k in ("mean", "low", "high")] == [want[k] for k in ("mean", "low", "high")]
        assert all(v is not None for v in group["low"])  # four images: a band per group
    plain, lab = got["groups"][1:]
    assert plain["mean"][4] > lab["mean"][4]  # the two arms' means are apart, not one mixed mean
    by_stabilizer = build_bundle(rows, values, "stabilizer", {})  # the rows' own stabilizers
    assert [len(g["chains"]) for g in by_stabilizer["groups"]] == [4, 8]


def test_chains_grouped_by_their_conversation_context() -> None:
    """The context of a conversation model (the whole thread, a window, fresh requests) groups its chains
    across models; a model that is not a conversation is its own group."""
    specs = ["openai-thread:gpt-image-2", "openai-thread:gpt-image-2,window=4",
             "gemini-thread:gemini-3-pro-image", "openai-thread:gpt-image-2,window=0", "jpeg"]  # fmt: skip
    rows = [row(f"r{k}", 0, spec, "a", 0) for k, spec in enumerate(specs)]
    values = [(f"r{k}", 0, s, 1.0 - 0.1 * k * s) for k in range(len(specs)) for s in range(3)]
    got = {g["name"]: len(g["chains"]) for g in build_bundle(rows, values, "context", {})["groups"]}
    assert got == {"thread": 2, "window=4": 1, "fresh": 1, "no conversation": 1}


def test_the_tables_page_is_marked_in_its_bundle(client: TestClient) -> None:
    """ "these chains as bundles" opens on the sorted column's measure with the page's rows marked; the
    bundle's data names them, its groups are unchanged, and the mark stays in the page's form."""
    params = {"sweep": "tiny", "col": "lab_b_mean.change", "sort": "-lab_b_mean.change", "per_page": 25}
    table = client.get("/chains", params=params).text
    shown = re.findall(r'<tr data-chain="([^"]+)">', table)
    link = html.unescape(re.search(r'href="([^"]+)" id="as-bundle"', table)[1])
    query = parse_qs(urlsplit(link).query)
    assert link.startswith("/bundles?") and query["measure"] == ["lab_b_mean"] and query["mark"] == shown
    assert query["sort"] == ["-lab_b_mean.change"] and query["sweep"] == ["tiny"] and len(shown) == 4
    got = client.get(link.replace("/bundles?", "/bundles.json?")).json()
    plain = client.get("/bundles.json", params={"sweep": "tiny", "measure": "lab_b_mean"}).json()
    assert got["measure"] == "lab_b_mean" and got["marked"] == shown and plain["marked"] == []
    assert got["groups"] == plain["groups"]  # marks draw on top; the means and bands are the groups'
    page = client.get(link).text
    assert re.findall(r'<input type="hidden" name="mark" value="([^"]+)">', page) == shown  # kept on change
    assert "4 marked" in page
    by_half_life = client.get("/chains", params={**params, "sort": "-half_life"}).text
    assert "measure=ssim_to_origin" in re.search(r'href="([^"]+)" id="as-bundle"', by_half_life)[1]
    assert client.get("/bundles.json", params={"mark": "no-chain-here"}).status_code == 400


def test_only_the_page_shown_is_marked(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    synthetic_sweep(ws)  # 9 arms × 4 chains
    client = TestClient(create_app(ws, extra_hosts=("testserver",)), follow_redirects=False)
    params = {"sweep": "grid", "sort": "-ssim_to_origin.final", "per_page": 25, "page": 2}
    table = client.get("/chains", params=params).text
    shown = re.findall(r'<tr data-chain="([^"]+)">', table)
    link = html.unescape(re.search(r'href="([^"]+)" id="as-bundle"', table)[1])
    assert len(shown) == 11 and parse_qs(urlsplit(link).query)["mark"] == shown  # page 2 of 36 chains
    got = client.get(link.replace("/bundles?", "/bundles.json?")).json()
    assert got["marked"] == shown and got["n_chains"] == 36  # every chain selected, the page's marked
    names = [g["name"] for g in got["groups"]]
    assert "taef2" in names and "taef2 + stabilize=colour:lab" in names
    too_many = [("mark", f"r:{i}") for i in range(201)]
    answer = client.get("/bundles.json", params=too_many)
    assert answer.status_code == 400 and "at most 200" in answer.text
