"""The Ray engine against the local one: same frames, same bias card, faults, and hosted models sharing a key.

One local Ray session (2 CPUs, no dashboard, no network) serves the whole module; chains are small (64²,
a few steps).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import driftloop
from conftest import child_signals
from driftloop import api
from driftloop.chain import BudgetReached
from driftloop.engines import ray as ray_engine
from driftloop.engines.start import Engine
from driftloop.errors import DriftloopError
from driftloop.replicators import registry
from driftloop.store import Store
from driftloop.sweep import load_sweep, run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replicators"))
from fake_image_api import FakeImageAPI, openai_error

ray = pytest.importorskip("ray", reason="the Ray engine needs driftloop[ray]")
REPO = Path(__file__).resolve().parents[2]
OPENAI_KEY = "sk-test-SECRET-ray-0123456789abcdef"
SPEC = """
name = "rays"
images = ["pics/"]
seeds = [1, 2]
steps = 4
size = 64
batch_size = 2
control = "jpeg:quality=90"
models = ["taef2"]
"""


@pytest.fixture(scope="module")
def ray_session():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never another's Ray
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("study")
    (folder / "pics").mkdir()
    rng = np.random.default_rng(7)
    for i in range(2):
        yy, xx = np.mgrid[0:80, 0:80]
        base = np.stack([xx * 3, yy * 3, (xx + yy) * 1.5], axis=-1) + rng.normal(0, 12, (80, 80, 3))
        Image.fromarray(np.clip(base + 40 * i, 0, 255).astype(np.uint8)).save(folder / "pics" / f"p{i}.png")
    (folder / "sweep.toml").write_text(SPEC)
    return folder


def frames_of(ws: Path) -> dict[tuple[str, str, int, int], str]:
    """Every stored frame by (model, input sha256, seed, step) -> sha256; a duplicate is an error."""
    store = Store(ws)
    out: dict[tuple[str, str, int, int], str] = {}
    for run in store.runs():
        chains = {c.chain: c for c in store.chains(run.id)}
        for f in store.frames(run.id):
            c = chains[f.chain]
            key = (run.model, c.input_sha256, c.seed, f.step)
            assert key not in out, f"frame stored twice: {key}"
            out[key] = f.sha256
    return out


def card_of(ws: Path, name: str) -> Any:
    """The bias card JSON without what differs between two runs of the same chains (ids, times, costs)."""
    api.bias(name, ws)
    card = json.loads((ws / "sweeps" / name / "bias_card.json").read_text())

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in {"cost", "runs", "run", "created"}}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            return re.sub(r"\d{8}-\d{6}-[a-z0-9-]+?-[0-9a-f]{4}\b", "RUN", value)  # run ids
        return value

    return clean(card)


@pytest.fixture(scope="module")
def local_reference(study: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("local") / "ws"
    run_sweep(load_sweep(study / "sweep.toml"), ws, render=False)
    return ws


def test_sweep_on_ray_matches_the_local_engine(ray_session, study: Path, local_reference: Path, tmp_path):
    ws = tmp_path / "ws"
    progress: list[Any] = []
    ids = run_sweep(load_sweep(study / "sweep.toml"), ws, lambda _m: progress.append, render=False,
                    engine=Engine("ray"))  # fmt: skip
    assert len(ids) == 2
    want = frames_of(local_reference)
    assert len(want) == 2 * 2 * 2 * 5  # models × images × seeds × (frame 0 + 4 copies)
    assert frames_of(ws) == want
    assert card_of(ws, "rays") == card_of(local_reference, "rays")
    last = progress[-1]
    assert last.frames_done == last.frames_total == 16 and last.chains_done == last.chains_total == 4


def _stored(ws: Path) -> int:
    store = Store(ws)
    return sum(len(store.frames(r.id)) for r in store.runs())


def _kill_first_worker_after(ws: Path, frames: int, killed: list[str]) -> threading.Thread:
    def watch() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            names = [n for n in ray.util.list_named_actors() if n.startswith("driftloop:")]
            if (
                names
                and Store.exists(ws)
                and sum(len(Store(ws).frames(r.id)) for r in Store(ws).runs()) >= frames
            ):
                ray.kill(ray.get_actor(sorted(names)[0]))
                killed.append(sorted(names)[0])
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_killed_worker_costs_only_its_copies_in_flight(ray_session, study: Path, local_reference: Path,
                                                         tmp_path: Path) -> None:  # fmt: skip
    ws = tmp_path / "ws"
    killed: list[str] = []
    watcher = _kill_first_worker_after(ws, 6, killed)
    run_sweep(load_sweep(study / "sweep.toml"), ws, render=False, models=["taef2"], engine=Engine("ray"))
    watcher.join()
    assert killed, "no worker was killed"
    store = Store(ws)
    (run,) = store.runs()
    assert run.status == "done" and all(c.status == "done" for c in store.chains(run.id))
    assert any(e["kind"] == "worker-lost" for e in store.events(run.id))
    want = {k: v for k, v in frames_of(local_reference).items() if k[0] == "taef2"}
    assert frames_of(ws) == want  # none missing, none twice, all identical


@pytest.mark.slow
def test_a_killed_driver_leaves_a_sweep_either_engine_continues(
    ray_session, study: Path, local_reference: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftloop", "sweep", str(study / "sweep.toml"), "--engine", "ray",
         "--address", "auto", "--no-render", "-q", "-w", str(ws)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=child_signals,
    )  # fmt: skip
    deadline = time.time() + 150
    while time.time() < deadline and proc.poll() is None:
        if Store.exists(ws) and _stored(ws) >= 6:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(ws)
    stored = frames_of(ws)
    assert 6 <= len(stored) < len(frames_of(local_reference))
    assert [r.status for r in store.runs()] == ["running"]  # as the killed driver left it
    run_sweep(load_sweep(study / "sweep.toml"), ws, render=False, models=["taef2"], engine=Engine("ray"))
    run_sweep(load_sweep(study / "sweep.toml"), ws, render=False)  # the rest (the control) on the local one
    assert frames_of(ws) == frames_of(local_reference)
    assert all(r.status == "done" for r in Store(ws).runs())


# ------------------------------------------------------------------------------------------ hosted


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    with FakeImageAPI(openai_key=OPENAI_KEY) as api:
        for name in (
            "OPENAI_ORG_ID",
            "OPENAI_PROJECT_ID",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", api.openai_base)
        yield api


def _hosted_images(tmp_path: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        array = np.full((32, 32, 3), (40 * i, 120, 200 - 30 * i), np.uint8)
        path = tmp_path / f"h{i}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


def _hosted(tmp_path: Path, spec: str, n: int = 2, **kwargs: Any) -> driftloop.Run:
    return driftloop.run(_hosted_images(tmp_path, 4), model=spec, n=n, seeds=[0, 1], size=32,
                         workspace=tmp_path / "ws", render=False, metrics=False, batch_size=2, engine="ray",
                         workers=4, **kwargs)  # fmt: skip


def _copies(ws: Path) -> list[Any]:
    store = Store(ws)
    return [f for r in store.runs() for f in store.frames(r.id) if f.step > 0]


def test_hosted_workers_sharing_a_key_keep_to_its_rpm(
    ray_session, fake: FakeImageAPI, tmp_path: Path
) -> None:
    rpm = 240  # one request start every 0.25 s, across all four workers
    run = _hosted(tmp_path, f"openai:gpt-image-1,quality=low,concurrency=2,rpm={rpm}")
    assert run.status == "done" and len(_copies(tmp_path / "ws")) == 16 == len(fake.received)
    starts = sorted(r.started for r in fake.received)
    gaps = np.diff(starts)
    assert starts[-1] - starts[0] >= 15 * 60 / rpm * 0.95, gaps
    assert gaps.min() >= 60 / rpm * 0.6, gaps  # arrival jitter aside, never two at once


@pytest.mark.slow
def test_hosted_budget_stops_every_worker(ray_session, fake: FakeImageAPI, tmp_path: Path) -> None:
    """Listed at $0.011, each answer costs ~$0.0138: 24 copies are estimated at $0.264, under a $0.27 budget,
    but cost $0.33. The shared budget stops all four workers before it is passed, and every copy bought is
    stored; a resume with more money buys only what is missing."""
    spec = "openai:gpt-image-1,quality=low,size=1024x1024,concurrency=1"
    with pytest.raises(BudgetReached, match="would pass --max-cost"):
        _hosted(tmp_path, spec, n=3, max_cost=0.27)
    copies = _copies(tmp_path / "ws")
    assert len(copies) == len(fake.received) < 24
    assert sum(f.cost["usd"] for f in copies) <= 0.27 + 1e-9
    (summary,) = driftloop.runs(tmp_path / "ws")
    assert summary.status == "budget"
    resumed = driftloop.resume(
        summary.id, workspace=tmp_path / "ws", render=False, max_cost=1.0, engine="ray"
    )
    assert resumed.status == "done" and len(_copies(tmp_path / "ws")) == 24 == len(fake.received)


@pytest.mark.slow
def test_a_quota_error_on_one_worker_keeps_what_every_worker_bought(ray_session, fake: FakeImageAPI,
                                                                    tmp_path: Path) -> None:  # fmt: skip
    ok = lambda req: None  # noqa: E731 - the default copy
    quota = openai_error(429, "You exceeded your current quota", "insufficient_quota", {"Retry-After": "0"})
    fake.script(ok, ok, ok, ok, ok, quota)
    spec = "openai:gpt-image-1,quality=low,backoff=0.01,concurrency=1"
    with pytest.raises(DriftloopError, match="insufficient_quota"):
        _hosted(tmp_path, spec, n=3)
    ws = tmp_path / "ws"
    bought = len(fake.received) - 1
    assert len(_copies(ws)) == bought >= 5
    (summary,) = driftloop.runs(ws)
    resumed = driftloop.resume(summary.id, workspace=ws, render=False, engine="ray", workers=4)
    assert resumed.status == "done"
    assert len(_copies(ws)) == 24 == len(fake.received) - 1  # nothing bought twice


@pytest.mark.slow
def test_a_conversation_stays_sequential_within_each_chain(
    ray_session, fake: FakeImageAPI, tmp_path: Path
) -> None:
    """Eight chains of one key over four workers: every chain's turn k continues turn k-1's response, and a
    resume on Ray continues each thread from its stored response id."""
    ok = lambda req: None  # noqa: E731 - the default copy
    quota = openai_error(429, "You exceeded your current quota", "insufficient_quota", {"Retry-After": "0"})
    fake.script(
        ok, ok, ok, ok, ok, ok, ok, ok, ok, ok, quota
    )  # every first turn, two second turns, then none
    spec = "openai-thread:gpt-image-2,quality=low,backoff=0.01,concurrency=1"
    with pytest.raises(DriftloopError, match="insufficient_quota"):
        _hosted(tmp_path, spec, n=3)
    (summary,) = driftloop.runs(tmp_path / "ws")
    resumed = driftloop.resume(summary.id, workspace=tmp_path / "ws", render=False, engine="ray", workers=4)
    assert resumed.status == "done"
    store = Store(tmp_path / "ws")
    for chain in store.chains(summary.id):
        infos = [f.info for f in store.frames(summary.id, chain.chain) if f.step > 0]
        assert [i["thread"]["turn"] for i in infos] == [1, 2, 3]
        assert "previous_response_id" not in infos[0]
        assert [i["previous_response_id"] for i in infos[1:]] == [i["response_id"] for i in infos[:-1]]
    assert len(_copies(tmp_path / "ws")) == 24 == len(fake.billed)  # nothing bought twice


def test_without_ray_the_engine_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_engine.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DriftloopError, match=r"pip install 'driftloop\[ray\]'"):
        Engine("ray")
    with pytest.raises(DriftloopError, match="--engine 'dask'"):
        Engine("dask")


# ------------------------------------------------------------------------------------------ metrics


def _metrics_run(study: Path, ws: Path, **engine: Any) -> dict[tuple[int, int], dict[str, float]]:
    run = driftloop.run(sorted((study / "pics").glob("*.png")), model="taef2", n=3, seeds=[1, 2], size=32,
                        workspace=ws, render=False, batch_size=2, **engine)  # fmt: skip
    return Store(ws).metrics(run.id)


def test_metrics_measured_on_the_workers_equal_the_local_engines(ray_session, study: Path,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    """Every row (frame 0 included) is measured on the worker that made the frame and equals the local
    engine's: the same functions on the same uint8 frames against the same frame 0 and previous frame. The
    numbers are compared to 1e-9 relative, not bit for bit: the worker's process may run NumPy/SciPy with
    another thread count, which may change the order of a float sum (on this machine they are equal)."""
    local = _metrics_run(study, tmp_path / "local")
    with pytest.MonkeyPatch.context() as mp:  # the driver never builds the model (nor loads its weights)
        mp.setattr(registry, "build", lambda *a, **k: pytest.fail("the driver built the model"))
        remote = _metrics_run(study, tmp_path / "ray", engine="ray", workers=2)
    assert len(local) == 4 * 4 and set(remote) == set(local)
    for key, row in local.items():
        assert set(remote[key]) == set(row), key
        for name, value in row.items():
            assert remote[key][name] == pytest.approx(value, rel=1e-9, abs=1e-12), (key, name)
    events = Store(tmp_path / "ray").events(Store(tmp_path / "ray").runs()[0].id)
    assert not [e for e in events if e["kind"] == "metrics"]  # no metric failed


def test_metrics_recompute_on_ray_writes_the_local_engines_rows(ray_session, study: Path,
                                                                tmp_path: Path) -> None:  # fmt: skip
    local = _metrics_run(study, tmp_path / "ws")
    run = api.open_run(Store(tmp_path / "ws").runs()[0].id, tmp_path / "ws")
    run.store.delete_metrics(run.id)
    seen: list[tuple[int, int]] = []
    assert run.recompute_metrics(lambda i, n: seen.append((i, n)), engine="ray", workers=2) == 16
    assert seen[-1] == (16, 16)
    again = run.store.metrics(run.id)
    assert set(again) == set(local)
    for key, row in local.items():
        assert again[key] == pytest.approx(row, rel=1e-9, abs=1e-12), key
