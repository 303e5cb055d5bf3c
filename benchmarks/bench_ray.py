"""The Ray engine against the local one, the driver's write throughput, and memory against the chain count.

    python benchmarks/bench_ray.py                                    # everything (~5 minutes on 2 cores)
    python benchmarks/bench_ray.py --only memory                      # peak RSS, 100 vs 1,000 chains

1. **Copies per second**: the same run (``--model``, ``--chains`` chains of ``--steps`` copies at ``--size``,
   ``--batch-size``) on the local engine and on Ray with 1 and 2 workers. "steady" counts copies between the
   first and the last progress event, so model loading and actor start-up are left out; "wall" is all of it.
   Overhead per copy = 1/steady(Ray, 1 worker) − 1/steady(local); scaling efficiency =
   steady(2) / 2·steady(1).
   Every Ray run's frames are checked against the local run's.
2. **Driver write throughput**: frames per second the driver commits through the store's writer (atomic
   PNG, then row) at 512², for photo-like frames: the most copies per second any number of workers can feed
   one workspace. From it, how many GPU workers one driver keeps busy at ``--copy-seconds`` per sd-turbo copy.
   With metrics on (the default), through the Ray driver's own code (its session and message handling):
   ``metrics_on_worker`` (rows measured where the frame is made, the driver only writes them) against
   ``metrics_on_driver`` (the driver measures every frame itself, as before), in frames per wall-clock second
   and per CPU second of the driver (which the load of other processes changes less); and what a worker
   spends per frame to encode and measure it (``worker_ms_per_frame``), overlapping its model's next batch.
3. **Memory**: peak RSS of ``driftloop run`` (jpeg, 64², 10 steps, metrics on) with 100 and 1,000 chains,
   each in a fresh process. Goal: 1,000 chains ≤ 1.2 × the peak of 100.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

MEMORY_GOAL = 1.2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="taef2")
    p.add_argument("--chains", type=int, default=8)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--write-frames", type=int, default=200, help="frames written in the throughput test")
    p.add_argument("--copy-seconds", type=float, default=0.25,
                   help="assumed s per sd-turbo 512² copy on one GPU (2 steps, A100-class)")  # fmt: skip
    p.add_argument("--only", choices=["engines", "writes", "memory"])
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def images(folder: Path, n: int, size: int) -> list[Path]:
    """Photo-like inputs: smooth gradients with texture (PNG), different per image."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        yy, xx = np.mgrid[0:size, 0:size] / size
        base = np.stack([200 * xx + 30 * i, 180 * yy, 120 * (xx + yy) / 2 + 60], axis=-1)
        frame = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"in{i}.png"
        Image.fromarray(frame).save(path)
        out.append(path)
    return out


def timed_run(args: argparse.Namespace, inputs: list[Path], ws: Path, **engine: Any) -> dict[str, Any]:
    import driftloop

    events: list[tuple[float, int]] = []
    seeds = range(args.chains // len(inputs))
    started = time.perf_counter()
    run = driftloop.run(inputs, model=args.model, n=args.steps, seeds=seeds, size=args.size, workspace=ws,
                        batch_size=args.batch_size, render=False, metrics=False,
                        progress=lambda e: events.append((time.perf_counter(), e.frames_done)),
                        **engine)  # fmt: skip
    wall = time.perf_counter() - started
    (t0, d0), (t1, d1) = events[0], events[-1]
    copies = args.chains * args.steps
    return {
        "wall_s": round(wall, 2),
        "wall_copies_per_s": round(copies / wall, 2),
        "steady_copies_per_s": round((d1 - d0) / (t1 - t0), 2) if t1 > t0 else None,
        "frames": {(f.chain, f.step): f.sha256 for f in run.frame_rows()},
    }


def bench_engines(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import ray

    inputs = images(tmp / "inputs", 2, args.size)
    results: dict[str, Any] = {"local": timed_run(args, inputs, tmp / "local")}
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        for workers in (1, 2):
            results[f"ray×{workers}"] = timed_run(args, inputs, tmp / f"ray{workers}", engine="ray",
                                                  workers=workers)  # fmt: skip
    finally:
        ray.shutdown()
    reference = results["local"].pop("frames")
    for name in ("ray×1", "ray×2"):
        results[name]["identical_to_local"] = results[name].pop("frames") == reference
    local, one, two = (results[k]["steady_copies_per_s"] for k in ("local", "ray×1", "ray×2"))
    results["overhead_ms_per_copy"] = round(1000 * (1 / one - 1 / local), 2)
    results["scaling_efficiency_2_workers"] = round(two / (2 * one), 2)
    return results


def photo_frames(folder: Path, seed: int) -> list[np.ndarray]:
    """Eight photo-like 512² frames, slightly different (as consecutive copies are)."""
    base = np.asarray(Image.open(images(folder, 1, 512)[0]))
    rng = np.random.default_rng(seed)
    return [np.clip(base.astype(int) + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
            for _ in range(8)]  # fmt: skip


def bench_writes(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from driftloop.frames import NewFrame, encode_png, frame_sha256
    from driftloop.store import FrameWriter, Store

    store = Store(tmp / "writes")
    frames = photo_frames(tmp / "big", 1)
    out: dict[str, Any] = {"assumed_sd_turbo_copy_s": args.copy_seconds}
    # frames per write_frames call (one transaction per call), and whether the driver encodes the PNGs (the
    # local engine) or writes the ones the workers encoded (the Ray engine)
    for mode, batch in (("arrays", 1), ("arrays", 8), ("png", 8)):
        run_id = f"bench-{mode}-{batch}"
        store.create_run(run_id, "bench", args.write_frames, {}, {}, {}, {}, [("x", "0" * 64, 0)])
        pngs = [encode_png(f) for f in frames] if mode == "png" else None
        writer = FrameWriter(store, run_id)
        started = time.perf_counter()
        for first in range(1, args.write_frames + 1, batch):
            steps = range(first, first + batch)
            made = [NewFrame(0, s, 0, frames[s % 8], frame_sha256(frames[s % 8])) for s in steps]
            writer.write_frames(made, [pngs[s % 8] for s in steps] if pngs else None)
        writer.close()
        fps = args.write_frames / (time.perf_counter() - started)
        out[f"{mode}_batch{batch}_frames_per_s_512"] = round(fps, 1)
        out[f"{mode}_batch{batch}_gpu_workers_kept_busy"] = int(fps * args.copy_seconds)
    return out


def bench_driver_metrics(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The Ray driver's store path at 512² with metrics on: worker-measured rows against driver-measured."""
    from driftloop.engines.groups import Pending, RunProgress
    from driftloop.engines.local import Session
    from driftloop.engines.ray_pool import _store
    from driftloop.engines.workers import WorkerBoard
    from driftloop.frames import NewFrame, encode_png, frame_sha256
    from driftloop.metrics.recorder import FrameMeasurer, MetricsSettings
    from driftloop.store import Store

    store = Store(tmp / "driver")
    frames = photo_frames(tmp / "big-m", 2)
    chains, batch = 8, 8  # eight chains in lockstep: one message of eight frames per step
    steps = max(1, args.write_frames // chains)
    measurer = FrameMeasurer(MetricsSettings(), lambda c, s: frames[0])
    for c in range(chains):
        measurer.measure(c, 0, frames[0])
    started = time.perf_counter()
    messages = []  # (frame 0 of every chain is frames[0], stored before the clock starts)
    for step in range(1, steps + 1):  # what the workers send (made on the worker: timed apart)
        made = [NewFrame(c, step, c, frames[(c + step) % 8], frame_sha256(frames[(c + step) % 8]))
                for c in range(chains)]  # fmt: skip
        pngs = [encode_png(f.frame) for f in made]
        rows = [(f.chain, f.step, measurer.measure(f.chain, f.step, f.frame)) for f in made]
        messages.append((made, pngs, rows))
    worker_ms = 1000 * (time.perf_counter() - started) / (steps * chains)
    out: dict[str, Any] = {"worker_ms_per_frame_encode_and_measure": round(worker_ms, 1)}
    for where in ("on_worker", "on_driver"):
        run_id = f"bench-metrics-{where}"
        sources = [(f"in{c}.png", "0" * 64, c) for c in range(chains)]
        store.create_run(run_id, "bench", steps, {}, {}, {}, {}, sources)
        tracker = RunProgress([Pending(c, c, 0) for c in range(chains)], steps, None)
        tracker.start_group(0, [Pending(c, c, 0) for c in range(chains)])
        board = WorkerBoard(store.run_dir(run_id))
        board.started(0, "w0")
        with Session(store, run_id, MetricsSettings()) as session:
            first = [NewFrame(c, 0, None, frames[0], frame_sha256(frames[0])) for c in range(chains)]
            session.writer.write_frames(first)
            session.writer.add_metrics([(c, 0, measurer.measure(c, 0, frames[0])) for c in range(chains)])
            session.flush()
            started, cpu = time.perf_counter(), time.process_time()
            for made, pngs, rows in messages:
                if where == "on_worker":
                    _store([("frames", (made, pngs, rows))], 0, session, tracker, board, 0)
                else:  # the driver measures every frame itself (the Ray engine before metrics moved)
                    session.store_frames(made, pngs)
        fps = steps * chains / (time.perf_counter() - started)
        cpu_ms = 1000 * (time.process_time() - cpu) / (steps * chains)  # every thread of this process
        assert len(store.measured_steps(run_id)) == (steps + 1) * chains, "every frame has its metrics row"
        out[f"metrics_{where}_frames_per_s_512"] = round(fps, 1)
        out[f"metrics_{where}_gpu_workers_kept_busy"] = int(fps * args.copy_seconds)
        # what the load of other processes does not change: the driver's CPU per frame (its fsync waits
        # are not CPU, so this is an upper bound of what one free core commits)
        out[f"metrics_{where}_driver_cpu_ms_per_frame"] = round(cpu_ms, 2)
        out[f"metrics_{where}_frames_per_cpu_s"] = round(1000 / cpu_ms, 1)
    out["batch"] = batch
    return out


MEMORY_SCRIPT = """
import resource, sys
from pathlib import Path
import driftloop
inputs = sorted(Path(sys.argv[2]).glob("*.png"))
driftloop.run(inputs, model="jpeg", n=10, seeds=range(int(sys.argv[1]) // len(inputs)), size=64,
              workspace=sys.argv[3], render=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bench_memory(tmp: Path) -> dict[str, Any]:
    inputs = images(tmp / "mem-inputs", 10, 64)[0].parent
    out: dict[str, Any] = {}
    for chains in (100, 1000):
        started = time.perf_counter()
        command = [sys.executable, "-c", MEMORY_SCRIPT, str(chains), str(inputs), str(tmp / f"m{chains}")]
        res = subprocess.run(command, capture_output=True, text=True, check=True)
        out[f"{chains}_chains_peak_mb"] = int(res.stdout.split()[-1]) // 1024
        out[f"{chains}_chains_s"] = round(time.perf_counter() - started, 1)
    out["growth"] = round(out["1000_chains_peak_mb"] / out["100_chains_peak_mb"], 2)
    out["goal_met"] = out["growth"] <= MEMORY_GOAL
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.only in (None, "writes"):
            results["writes"] = bench_writes(args, tmp)
            print("driver writes:", results["writes"], flush=True)
            results["driver_metrics"] = bench_driver_metrics(args, tmp)
            print("driver with metrics on:", results["driver_metrics"], flush=True)
        if args.only in (None, "engines"):
            results["engines"] = bench_engines(args, tmp)
            print("engines:", results["engines"], flush=True)
        if args.only in (None, "memory"):
            results["memory"] = bench_memory(tmp)
            print("memory:", results["memory"], flush=True)
    results["load_after"] = os.getloadavg()[0]
    results["peak_rss_mb_this_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
