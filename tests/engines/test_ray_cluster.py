"""The Ray engine on a real multi-node cluster started on this machine (``ray.cluster_utils.Cluster``): a
CPU-only head and nodes declaring fake GPUs and an API key's custom resource.

Checked: GPU-placed actors land only on GPU nodes (and run there on the CPU, as PyTorch sees no CUDA, so
their frames are bit-identical to the local engine's); an API key's resource caps the hosted workers that
share it; losing a whole node costs only the copies in flight; a SIGKILLed driver leaves a run that resumes.
One cluster serves the module (~10 s to start); runs are tiny (32², 3-4 steps).
"""

from __future__ import annotations

import os
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
from driftloop.engines import ray as ray_engine
from driftloop.engines.workers import read_workers
from driftloop.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replicators"))
from fake_image_api import FakeImageAPI

ray = pytest.importorskip("ray", reason="the Ray engine needs driftloop[ray]")
cluster_utils = pytest.importorskip("ray.cluster_utils")

REPO = Path(__file__).resolve().parents[2]
OPENAI_KEY = "sk-test-cluster-0123456789abcdef"
KEY = ray_engine.key_resource_name("OPENAI_API_KEY", OPENAI_KEY)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A head with 1 CPU and no GPU; two nodes with 1 CPU and 1 (fake) GPU each, one of them holding two
    units of the API key's resource."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        ray.shutdown()
    c = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    keyed = c.add_node(num_cpus=1, num_gpus=1, resources={KEY: 2})
    other = c.add_node(num_cpus=1, num_gpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False)
    yield c, {"keyed": keyed.node_id, "other": other.node_id}
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def pics(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("pics")
    rng = np.random.default_rng(3)
    out = []
    for i in range(3):
        yy, xx = np.mgrid[0:40, 0:40]
        base = np.stack([xx * 6, yy * 6, (xx + yy) * 3], axis=-1) + rng.normal(0, 12, (40, 40, 3)) + 30 * i
        out.append(folder / f"p{i}.png")
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(out[-1])
    return out


def _run(pics: list[Path], ws: Path, n: int = 4, **kwargs: Any) -> driftloop.Run:
    return driftloop.run(pics, model="taef2", n=n, seeds=[1, 2], size=32, workspace=ws, render=False,
                         batch_size=2, **kwargs)  # fmt: skip


def _frames(ws: Path) -> dict[tuple[int, int], str]:
    store = Store(ws)
    (run,) = store.runs()
    return {(f.chain, f.step): f.sha256 for f in store.frames(run.id)}


@pytest.fixture(scope="module")
def local(pics: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], str]:
    ws = tmp_path_factory.mktemp("local") / "ws"
    _run(pics, ws)
    return _frames(ws)


LONG = 12  # steps of the runs a test interrupts: long enough to be caught in the middle


@pytest.fixture(scope="module")
def local_long(pics: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], str]:
    ws = tmp_path_factory.mktemp("local") / "ws"
    _run(pics, ws, n=LONG)
    return _frames(ws)


def test_gpu_actors_land_only_on_gpu_nodes_with_frames_identical_to_local(cluster, pics, local, tmp_path):
    _c, nodes = cluster
    run = _run(pics, tmp_path / "ws", engine="ray", address="auto")
    assert run.status == "done" and _frames(tmp_path / "ws") == local
    workers = read_workers(run.path)
    assert len(workers) == 2  # one per GPU; the head's CPU takes none
    # A worker whose model was still loading when the other had made every copy (a loaded machine) was not
    # needed: it never reported its node. Every worker that joined is on a GPU node, on a node of its own.
    joined = [w for w in workers if w["state"] == "done"]
    assert joined and all(w["state"] == "not needed" and not w["copies"] for w in workers if w not in joined)
    on = [w["node"] for w in joined]
    assert set(on) <= set(nodes.values()) and len(set(on)) == len(on)
    assert all(w["device"] == "cpu" for w in joined)  # fake GPUs: torch sees none
    assert sum(w["copies"] for w in workers) == 6 * 4
    assert Store(tmp_path / "ws").get_run(run.id).model_info["device"] == "cpu"  # the probe worker's facts


def test_a_cuda_model_is_built_on_a_gpu_node_never_on_the_driver(cluster, pics, tmp_path):
    """device=cuda is placed on a GPU node (not refused for the CPU-only head), where PyTorch reports what
    is true of these fake GPUs; on a cluster without GPUs placement itself refuses (test_placement)."""
    with pytest.raises(driftloop.DriftloopError, match="PyTorch sees no CUDA device"):
        _run(pics, tmp_path / "ws", engine="ray", address="auto", device="cuda")


def test_an_api_keys_resource_caps_the_hosted_workers_sharing_it(cluster, pics, tmp_path, monkeypatch):
    _c, nodes = cluster
    with FakeImageAPI(openai_key=OPENAI_KEY) as fake:
        for name in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                     "https_proxy"):  # fmt: skip
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base)
        run = driftloop.run(pics, model="openai:gpt-image-1.5,quality=low,concurrency=1", n=2, seeds=[0, 1],
                            size=32, workspace=tmp_path / "ws", render=False, metrics=False, batch_size=1,
                            engine="ray", address="auto")  # fmt: skip
        assert run.status == "done" and len(fake.received) == 12
    workers = read_workers(run.path)
    assert len(workers) == 2  # the key's two units, not HOSTED_WORKERS, not one per chain
    assert {w["node"] for w in workers} == {nodes["keyed"]}  # only the node that holds the key


def _stored(ws: Path) -> int:
    return sum(len(Store(ws).frames(r.id)) for r in Store(ws).runs()) if Store.exists(ws) else 0


def _working_on(ws: Path, node: str) -> bool:
    """Whether the worker on ``node`` holds a group now (removing the node then loses copies in flight)."""
    for folder in (ws / "runs").glob("*"):
        try:
            rows = read_workers(folder)
        except (OSError, ValueError):
            continue
        if any(w["node"] == node and w["state"] == "working" for w in rows):
            return True
    return False


@pytest.mark.slow
def test_losing_a_node_costs_only_its_copies_in_flight(cluster, pics, local_long, tmp_path):
    c, _nodes = cluster
    doomed = c.add_node(num_cpus=1, num_gpus=1)  # three GPU nodes: one worker each
    c.wait_for_nodes()
    ws, removed = tmp_path / "ws", []

    def kill_node() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not removed:
            if _stored(ws) >= 9 and _working_on(ws, doomed.node_id):  # frames 0, a few copies, one in flight
                c.remove_node(doomed, allow_graceful=False)
                removed.append(time.time())
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_node, daemon=True)
    watcher.start()
    run = _run(pics, ws, n=LONG, engine="ray", address="auto")
    watcher.join()
    assert removed and run.status == "done"
    assert _frames(ws) == local_long  # none missing, none twice, all identical
    store = Store(ws)
    assert any(e["kind"] == "worker-lost" for e in store.events(run.id))
    workers = read_workers(run.path)
    assert len(workers) == 3 and sum(w["copies"] for w in workers) == 6 * LONG  # each stored copy once
    # the lost worker, and its replacement if Ray placed it on the node before it was marked dead
    assert 1 <= sum(w["failures"] for w in workers) <= 2 and sum(w["restarts"] for w in workers) >= 1


@pytest.mark.slow
def test_a_sigkilled_driver_leaves_a_run_the_local_engine_finishes(cluster, pics, local_long, tmp_path):
    c, _nodes = cluster
    ws = tmp_path / "ws"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "RAY_AUTH_MODE": "disabled"}
    command = [sys.executable, "-m", "driftloop", "run", *map(str, pics), "-m", "taef2", "-n", str(LONG),
               "--seeds", "1,2", "--size", "32", "--batch-size", "2", "--engine", "ray", "--address",
               c.address, "--no-render", "-q", "-w", str(ws)]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and _stored(ws) < 9:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (row,) = Store(ws).runs()
    assert row.status == "running" and 9 <= _stored(ws) < len(local_long)
    resumed = driftloop.resume(row.id, workspace=ws, render=False)
    assert resumed.status == "done" and _frames(ws) == local_long
    assert len(Store(ws).metrics(row.id)) == len(
        local_long
    )  # rows the driver died before writing: measured now
    deadline = time.time() + 60  # the dead driver's actors go with it: the GPUs are free again
    while time.time() < deadline and ray.available_resources().get("GPU", 0) < 2:
        time.sleep(0.5)
    assert ray.available_resources().get("GPU", 0) >= 2
