"""A workspace written by driftloop 0.1.0 (database schema 1) opens, resumes and reports the same numbers.

The fixture (tests/fixtures/legacy_v1, see its README) was made by that release: a sweep of taef2 and
jpeg:quality=90 chains at 64² with metrics and a bias card, and a jpeg run interrupted after step 3.

Numbers are compared at a stated precision (:data:`REL`), never byte for byte: the last bits of a float
differ between CPUs and BLAS builds.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import driftloop
from driftloop.errors import StoreError
from driftloop.frames import frame_sha256
from driftloop.store import SCHEMA_VERSION, Store

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v1"
TAEF2, JPEG90, INTERRUPTED = (
    "20261201-150828-taef2-a9c6",
    "20261201-150833-jpeg-quality-90-5d26",
    ("20261201-150846-jpeg-2d4f"),
)


#: Relative precision numbers must agree to: nine significant digits (and 1e-12 absolute, near zero).
REL, ABS = 1e-9, 1e-12


def assert_same_numbers(got: Any, want: Any, where: str = "") -> None:
    """Same structure, keys, strings, integers and nulls; floats equal to :data:`REL`."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{where}: keys {got!r} vs {want!r}"
        for key in want:
            assert_same_numbers(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} vs {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same_numbers(g, w, f"{where}[{i}]")
    elif isinstance(want, float) or isinstance(got, float):
        assert isinstance(got, int | float) and not isinstance(got, bool), f"{where}: {got!r} vs {want!r}"
        assert math.isclose(got, want, rel_tol=REL, abs_tol=ABS), f"{where}: {got!r} vs {want!r}"
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} vs {want!r}"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def legacy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the fixture (opening migrates the database, so never the committed one); the run inputs
    are recorded relative to the fixture folder, so tests run from there."""
    root = tmp_path / "legacy"
    shutil.copytree(FIXTURE, root)
    monkeypatch.chdir(root)
    return root / "workspace"


def user_version(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def test_the_fixture_is_schema_1_and_opening_migrates_it(legacy: Path) -> None:
    assert user_version(legacy / "driftloop.db") == 0  # 0.1.0 kept its version in meta only
    runs = {r.id: r for r in driftloop.runs(legacy)}
    assert user_version(legacy / "driftloop.db") == SCHEMA_VERSION
    assert {k: (r.status, r.steps_done, r.n_steps) for k, r in runs.items()} == {
        TAEF2: ("done", 4, 4),
        JPEG90: ("done", 4, 4),
        INTERRUPTED: ("interrupted", 3, 6),
    }
    with sqlite3.connect(legacy / "driftloop.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert ("schema_version", str(SCHEMA_VERSION)) in conn.execute(
            "SELECT key, value FROM meta"
        ).fetchall()
    run = driftloop.open_run(TAEF2, legacy)
    assert run.run_config.model == "taef2" and run.run_config.size == 64
    assert run.frame(0, 4).shape == (64, 64, 3)


@pytest.mark.parametrize("run_id", [TAEF2, JPEG90])
def test_reports_the_same_numbers(legacy: Path, run_id: str) -> None:
    run = driftloop.open_run(run_id, legacy)
    run.report()
    expected = FIXTURE / "expected" / f"{run_id}.summary.json"
    assert_same_numbers(_json(run.path / "summary.json"), _json(expected))


def test_the_sweep_bias_card_has_the_same_numbers(legacy: Path) -> None:
    _, js = driftloop.api.bias("legacy", legacy)
    assert_same_numbers(_json(js), _json(FIXTURE / "expected" / "bias_card.json"))


def test_a_difference_beyond_the_stated_precision_is_caught() -> None:
    want = _json(FIXTURE / "expected" / f"{TAEF2}.summary.json")
    got = json.loads(json.dumps(want))
    rate = got["chains"][0]["rates"]["lab_b_mean"]
    rate["slope"] = rate["slope"] * (1 + 1e-15)  # another CPU's last bits: the same number
    assert_same_numbers(got, want)
    rate["slope"] = rate["slope"] * (1 + 1e-7)  # a changed computation: not the same
    with pytest.raises(AssertionError, match="slope"):
        assert_same_numbers(got, want)


def test_the_interrupted_run_resumes_bit_identical(legacy: Path, tmp_path: Path) -> None:
    resumed = driftloop.resume(INTERRUPTED, workspace=legacy, render=False)
    assert resumed.status == "done"
    assert [c.last_step for c in resumed.chains()] == [6]
    fresh = driftloop.run(
        "astronaut96.png", model="jpeg:quality=75", n=6, seeds=[3], size=64, workspace=tmp_path / "fresh",
        render=False,
    )  # fmt: skip
    assert [frame_sha256(f) for _, f in resumed.frames(0)] == [frame_sha256(f) for _, f in fresh.frames(0)]
    assert [r.sha256 for r in resumed.frame_rows()] == [r.sha256 for r in fresh.frame_rows()]
    assert len(resumed.metric_rows()) == 7  # the frames measured before and after the interruption


def test_a_newer_database_is_refused_not_half_read(legacy: Path) -> None:
    with sqlite3.connect(legacy / "driftloop.db") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade driftloop"):
        Store(legacy)
