"""Bundles of curves: each chain's curve of a measure grouped by model, stabilizer or image, with each
group's mean over source images and its mean_ci band (none below three images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from driftloop import api
from driftloop.analysis.intervals import mean_ci
from driftloop.report.bundles import build_bundle
from driftloop.store.chain_table import ChainTableRow
from driftloop.web.app import create_app


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
