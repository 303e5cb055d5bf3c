"""How much measuring costs: the metric suite's speed, and its overhead on a real chain.

    python benchmarks/bench_metrics.py                 # 512², 101 steps of taef2, metrics on vs off
    python benchmarks/bench_metrics.py --steps 20 --size 256

Prints (1) frames per second of the full non-neural suite at the chosen size (features of the new frame,
then every pair against the original and the previous frame), single-threaded as in the engine's worker;
(2) the wall time of the same taef2 chain with metrics off and on, run in this process in the order
``--order`` (default off, on, on, off, so a machine that slowly speeds up or slows down does not favour
either), and the ratio of the means. The goal is that metrics add at most 5% to a chain's wall time.
Needs the TAEF2 weights (DRIFTLOOP_MODEL_DIR, or ../shared/models beside the checkout).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def suite_fps(size: int, repeats: int) -> tuple[float, float]:
    """Frames per second and ms per frame of the non-neural suite (median of ``repeats``)."""
    from driftloop.images import normalise
    from driftloop.metrics import FrameFeatures, frame_metrics

    photo = Image.open(REPO / "examples" / "astronaut.jpg")
    origin_frame, _ = normalise(photo, size, 8)
    rng = np.random.default_rng(0)
    noisy = [origin_frame.astype(int) + rng.integers(-8, 9, origin_frame.shape) for _ in range(repeats + 1)]
    frames = [np.clip(f, 0, 255).astype(np.uint8) for f in noisy]
    origin = FrameFeatures.of(origin_frame)
    prev = FrameFeatures.of(frames[0])
    times = []
    for frame in frames[1:]:
        started = time.perf_counter()
        feats = FrameFeatures.of(frame)
        frame_metrics(feats, origin, prev)
        times.append(time.perf_counter() - started)
        prev = feats
    ms = statistics.median(times) * 1000
    return 1000 / ms, ms


def chain_seconds(size: int, steps: int, metrics: bool, workspace: Path) -> tuple[float, float]:
    """Wall seconds of a taef2 chain (no renders) and the summed model seconds of its frames."""
    import driftloop

    started = time.perf_counter()
    run = driftloop.run(REPO / "examples" / "astronaut.jpg", model="taef2", n=steps, size=size,
                        workspace=workspace, render=False, metrics=metrics)  # fmt: skip
    wall = time.perf_counter() - started
    return wall, sum(r.model_seconds or 0.0 for r in run.frame_rows())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=101)
    parser.add_argument("--repeats", type=int, default=20, help="frames timed for the suite's speed")
    parser.add_argument(
        "--order", default="off,on,on,off", help="chains to time; ABBA cancels a slow drift of the machine"
    )
    args = parser.parse_args()
    os.environ.setdefault("DRIFTLOOP_MODEL_DIR", str(REPO.parent / "shared" / "models"))

    fps, ms = suite_fps(args.size, args.repeats)
    print(
        f"metric suite at {args.size}²: {ms:.1f} ms per frame, {fps:.1f} frames/s (median of {args.repeats})"
    )

    order = [part == "on" for part in args.order.split(",")]
    walls: dict[bool, list[float]] = {False: [], True: []}
    models: dict[bool, list[float]] = {False: [], True: []}
    print(f"taef2 chain, {args.steps} steps at {args.size}², same process, in the order {args.order}:")
    with tempfile.TemporaryDirectory() as tmp:
        chain_seconds(64, 2, True, Path(tmp) / "warm")  # load weights and warm oneDNN outside the timings
        for i, on in enumerate(order):
            wall, model = chain_seconds(args.size, args.steps, on, Path(tmp) / f"run{i}")
            walls[on].append(wall)
            models[on].append(model)
            print(f"  metrics {'on ' if on else 'off'}: {wall:7.1f} s wall ({model:.1f} s in the model)")
    off, on = statistics.mean(walls[False]), statistics.mean(walls[True])
    model_off, model_on = statistics.mean(models[False]), statistics.mean(models[True])
    print(f"  mean: off {off:.1f} s, on {on:.1f} s wall; model off {model_off:.1f} s, on {model_on:.1f} s")
    print(f"  overhead of metrics: {100 * (on / off - 1):+.1f}% of wall time (goal ≤ +5%)")


if __name__ == "__main__":
    main()
