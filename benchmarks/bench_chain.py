"""Seconds per step of the ``taef2`` replicator against a plain PyTorch loop, and the chain engine's overhead.

    python benchmarks/bench_chain.py                 # 512², 5 timed calls per variant, a 101-step run
    python benchmarks/bench_chain.py --quick         # 256², 3 timed calls, an 11-step run (~2 minutes)
    python benchmarks/bench_chain.py --compile       # also torch.compile (inductor, freezing)

Part 1, model speed. Every variant runs in its own worker process, so process-wide state (glibc malloc
settings, compile caches) cannot leak from one into another; only one worker computes at a time. Variants:

- ``reference``: the loop a PyTorch user would write: ``TinyAutoEncoder`` in its default NCHW layout, float32,
  ``torch.no_grad()``, encode → decode → clamp(0, 1) → ×255 → round → uint8, default process settings.
- ``taef2``: driftloop's replicator (``build("taef2").replicate``), what ``driftloop.run`` calls.
- ``taef2:dtype=bf16``: the bf16 mode (a different chain by design).
- diagnostics that show where the speed comes from: ``reference+malloc`` (the reference loop after
  driftloop's glibc malloc tuning), ``channels_last`` (eager channels_last + inference_mode, driftloop's
  previous path), ``compile+malloc`` (with ``--compile``: ``torch.compile`` of the reference model with
  frozen weights, plus the malloc tuning; the first call compiles).

Each worker first makes ``--check-steps`` copies in a chain from the same start frame (these are its warm-up
calls; the first one's time is shown as "first call"); the frames are compared with the reference's. Then
``--repeats`` rounds, each timing one call per worker on the start frame (worker order rotates per round).
Wall time is what matters, but this is often run on shared machines: the table shows the median, the minimum
and the process CPU time per step, and the load average before and after, so noise is visible.

Part 2, engine overhead: ``driftloop.run(image, model=<the warm replicator>, n=--steps, size=--size,
render=False)`` — wall time against the sum of ``model_seconds`` of its frames, and against the same
replicator called in a bare loop for the same number of steps, half before and half after the run (its
last frame must equal the run's).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Step = Callable[[np.ndarray], np.ndarray]

DEFAULT_VARIANTS = ["reference", "taef2", "taef2:dtype=bf16", "reference+malloc", "channels_last"]
GOALS = {"taef2": 2.5, "taef2:dtype=bf16": 4.0}  # speed-up over the reference
ENGINE_GOAL = 0.05  # engine overhead as a fraction of model time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, help="frame side in pixels (default 512; 256 with --quick)")
    p.add_argument("--repeats", type=int, help="timed calls per variant (default 5; 3 with --quick)")
    p.add_argument("--steps", type=int, help="steps of the engine run (default 101; 11 with --quick)")
    p.add_argument("--check-steps", type=int, help="chain steps compared with the reference (default 3)")
    p.add_argument("--quick", action="store_true", help="a short run: smaller frames, fewer calls and steps")
    p.add_argument("--variants", help=f"comma-separated (default {','.join(DEFAULT_VARIANTS)})")
    p.add_argument(
        "--compile", action="store_true", help="add the torch.compile variant (its first call compiles)"
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads in every process (0: default)")
    p.add_argument("--no-models", action="store_true", help="skip part 1 (the model speed table)")
    p.add_argument("--no-engine", action="store_true", help="skip part 2 (the engine overhead)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    args.size = args.size or (256 if args.quick else 512)
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.steps = args.steps or (11 if args.quick else 101)
    args.check_steps = args.check_steps or (2 if args.quick else 3)
    args.variants = args.variants.split(",") if args.variants else list(DEFAULT_VARIANTS)
    if args.compile and "compile+malloc" not in args.variants:
        args.variants.append("compile+malloc")
    if "reference" not in args.variants:
        args.variants.insert(0, "reference")
    return args


# ----------------------------------------------------------------------------------------------- inputs


def start_frame(size: int) -> np.ndarray:
    """The skimage astronaut as driftloop loads it: Lanczos resize, centre crop, RGB uint8."""
    from PIL import Image
    from skimage import data

    from driftloop.images import normalise

    frame, _ = normalise(Image.fromarray(data.astronaut()), size, 8)
    return frame


def reference_model() -> Any:
    """``TinyAutoEncoder`` with the taef2 weights driftloop resolves, default NCHW layout, float32, eval."""
    import torch

    from driftloop.replicators.tae import VARIANTS
    from driftloop.replicators.tae_model import TinyAutoEncoder
    from driftloop.weights import resolve

    variant = VARIANTS["taef2"]
    paths = resolve(variant.name, variant.files())
    model = TinyAutoEncoder(variant.latent_channels, variant.pool)
    for part, name in ((model.encoder, "taef2_encoder.pth"), (model.decoder, "taef2_decoder.pth")):
        part.load_state_dict(torch.load(paths[name], map_location="cpu", weights_only=True))
    return model.eval()


def eager_step(forward: Callable[[Any], Any], channels_last: bool = False, inference: bool = False) -> Step:
    """One plain round trip: uint8 HWC → float NCHW in [0, 1] → ``forward`` → clamp → ×255 → round → uint8."""
    import torch

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    context = torch.inference_mode if inference else torch.no_grad

    def step(frame: np.ndarray) -> np.ndarray:
        with context():
            x = torch.from_numpy(np.array(frame)).permute(2, 0, 1).unsqueeze(0)
            x = x.contiguous(memory_format=fmt).float() / 255
            y = forward(x).clamp(0, 1)
            return (y * 255).round().to(torch.uint8)[0].permute(1, 2, 0).contiguous().numpy()

    return step


def make_step(variant: str) -> Step:
    """Build one variant's step function (in the worker process)."""
    import torch

    if variant.startswith("reference") or variant in ("channels_last", "compile+malloc"):
        model = reference_model()

        def round_trip(x: Any) -> Any:
            return model.decoder(model.encoder(x))

    if variant == "reference":
        return eager_step(round_trip)
    if variant == "reference+malloc":
        from driftloop.replicators.tae_runtime import keep_freed_memory

        keep_freed_memory()
        return eager_step(round_trip)
    if variant == "channels_last":
        model.to(memory_format=torch.channels_last)
        return eager_step(round_trip, channels_last=True, inference=True)
    if variant == "compile+malloc":
        from driftloop.replicators.tae_runtime import keep_freed_memory

        keep_freed_memory()
        # inductor with frozen weights: prepacked oneDNN convolutions with fused elementwise ops
        return eager_step(torch.compile(round_trip, dynamic=False, options={"freezing": True}))
    from driftloop.replicators import build

    replicator = build(variant)
    return lambda frame: replicator.replicate([frame], [0])[0]


# ---------------------------------------------------------------------------------------------- workers


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(conn: Any, variant: str, threads: int) -> None:
    """Serve ("chain", frame, k) and ("time", frame) requests for one variant until told to stop."""
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)
        step = make_step(variant)
        conn.send(("ready", torch.get_num_threads()))
        while (msg := conn.recv())[0] != "stop":
            frame = msg[1]
            if msg[0] == "chain":
                frames, first = [], None
                for _ in range(msg[2]):
                    t0 = time.perf_counter()
                    frame = step(frame)
                    first = first if first is not None else time.perf_counter() - t0
                    frames.append(frame)
                conn.send(("chain", frames, first))
            else:
                c0, t0 = cpu_seconds(), time.perf_counter()
                step(frame)
                conn.send(("time", time.perf_counter() - t0, cpu_seconds() - c0))
    except BaseException as exc:  # report, don't hang the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


@dataclass
class Result:
    variant: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    first_call: float = 0.0
    max_diff: list[int] = field(default_factory=list)  # per checked step, vs the reference
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.wall) if self.wall else float("nan")

    @property
    def identical(self) -> bool:
        return bool(self.max_diff) and max(self.max_diff) == 0


def _receive(conn: Any, result: Result) -> tuple[Any, ...] | None:
    msg = conn.recv()
    if msg[0] == "error":
        result.error = msg[1]
        return None
    return msg


def measure_models(args: argparse.Namespace, frame: np.ndarray) -> tuple[list[Result], int]:
    ctx = mp.get_context("spawn")
    results = {v: Result(v) for v in args.variants}
    workers: dict[str, tuple[Any, Any]] = {}
    threads = 0
    for variant in args.variants:  # start (load) one at a time: loading competes for the CPU too
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(child, variant, args.threads), daemon=True)
        proc.start()
        msg = _receive(parent, results[variant])
        if msg is None:
            print(f"  {variant}: failed to start: {results[variant].error}", flush=True)
            proc.join()
            continue
        threads = msg[1]
        workers[variant] = (parent, proc)
    chains: dict[str, list[np.ndarray]] = {}
    for variant, (conn, _) in workers.items():
        conn.send(("chain", frame, args.check_steps))
        msg = _receive(conn, results[variant])
        if msg is not None:
            chains[variant], results[variant].first_call = msg[1], msg[2]
        print(f"  {variant}: {args.check_steps} chain steps done", flush=True)
    reference = chains.get("reference")
    for variant, frames in chains.items():
        if reference is not None:
            results[variant].max_diff = [
                int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())
                for a, b in zip(reference, frames, strict=True)
            ]
    live = [v for v in workers if results[v].error is None]
    for r in range(args.repeats):
        order = live[r % len(live) :] + live[: r % len(live)]
        for variant in order:
            conn = workers[variant][0]
            conn.send(("time", frame))
            msg = _receive(conn, results[variant])
            if msg is not None:
                results[variant].wall.append(msg[1])
                results[variant].cpu.append(msg[2])
        print(f"  round {r + 1}/{args.repeats} done", flush=True)
    for conn, proc in workers.values():
        with contextlib.suppress(BrokenPipeError, OSError):
            conn.send(("stop",))
        proc.join(timeout=30)
    return [results[v] for v in args.variants], threads


# ----------------------------------------------------------------------------------------------- engine


def measure_engine(args: argparse.Namespace, frame: np.ndarray, workdir: Path) -> dict[str, Any]:
    import torch
    from PIL import Image

    import driftloop
    from driftloop.replicators import build

    if args.threads:
        torch.set_num_threads(args.threads)
    replicator = build("taef2")
    replicator.describe()  # hashes the weight files: part of setup, not of the steps
    for _ in range(2):  # warm up, like the workers
        replicator.replicate([frame], [0])
    image = workdir / "astronaut.png"
    Image.fromarray(frame).save(image)

    # The bare loop is one chain of --steps copies from the same frame, split in two halves around the run,
    # so a change of machine load during the benchmark biases the comparison less.
    bare: list[float] = []
    current = frame

    def bare_steps(k: int) -> None:
        nonlocal current
        for _ in range(k):
            t0 = time.perf_counter()
            current = replicator.replicate([current], [0])[0]
            bare.append(time.perf_counter() - t0)

    bare_steps(args.steps // 2)
    events: list[tuple[float, float]] = []
    started = time.perf_counter()
    handle = driftloop.run(
        image,
        model=replicator,
        n=args.steps,
        size=args.size,
        workspace=workdir / "runs",
        render=False,
        progress=lambda e: events.append((time.perf_counter(), e.model_seconds)),
    )
    wall = time.perf_counter() - started
    bare_steps(args.steps - args.steps // 2)
    rows = [r for r in handle.frame_rows() if r.step > 0]
    model = [r.model_seconds for r in rows]
    model_sum = sum(model)
    first_start = events[0][0] - events[0][1]  # when the first model call began
    loop = events[-1][0] - first_start  # from the first model call to the last progress event
    return {
        "steps": args.steps,
        "frames": len(rows),
        "run_wall": wall,
        "setup": first_start - started,
        "loop_wall": loop,
        "model_seconds_sum": model_sum,
        "model_seconds_median": statistics.median(model),
        "bare_loop": sum(bare),
        "bare_median": statistics.median(bare),
        "overhead_vs_model": (wall - model_sum) / model_sum,
        "loop_overhead_vs_model": (loop - model_sum) / model_sum,
        "run_vs_bare": wall / sum(bare) - 1,
        "frame0_matches_input": bool(np.array_equal(handle.frame(0, 0), frame)),
        "last_frame_matches_bare_loop": bool(np.array_equal(handle.frame(0, args.steps), current)),
    }


# ---------------------------------------------------------------------------------------------- report


def print_models(results: list[Result], args: argparse.Namespace) -> None:
    ref = next(r for r in results if r.variant == "reference")
    print()
    print(f"Model speed at {args.size}², one image, {args.repeats} timed calls per variant (after warm-up)")
    head = (
        f"{'variant':<20} {'s/step med':>10} {'min':>7} {'CPU s':>7} {'× ref':>6} {'× (min)':>7}  "
        f"{'frames vs reference (' + str(args.check_steps) + ' steps)':<34} {'first call':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        if r.error or not r.wall:
            print(f"{r.variant:<20} error: {r.error}")
            continue
        if r.variant == "reference":
            frames = "(is the reference)"
        elif r.identical:
            frames = "bit-identical"
        else:
            frames = f"differ: max |Δ| per step {r.max_diff}"
        print(
            f"{r.variant:<20} {r.median:>10.3f} {min(r.wall):>7.3f} {statistics.median(r.cpu):>7.2f} "
            f"{ref.median / r.median:>6.2f} {min(ref.wall) / min(r.wall):>7.2f}  {frames:<34} "
            f"{r.first_call:>9.2f}s"
        )
    print(
        "s/step: wall seconds per call (median, min of the timed calls); CPU s: process CPU seconds per call "
        "(all threads, median); × ref: the reference's s/step over the variant's"
    )
    for variant, goal in GOALS.items():
        r = next((x for x in results if x.variant == variant and x.wall), None)
        if r is not None and ref.wall:
            ratio = ref.median / r.median
            verdict = "met" if ratio >= goal else "NOT met"
            exact = ", bit-identical" if r.identical else ", frames differ from the reference"
            print(f"goal {variant} ≥ {goal}× the reference: {ratio:.2f}× — {verdict}{exact}")


def print_engine(e: dict[str, Any]) -> None:
    print()
    print(f"Engine overhead: driftloop.run(n={e['steps']}, render=False) with the warm taef2 replicator")
    print(f"  run() wall time            {e['run_wall']:8.2f} s  ({e['frames']} frames)")
    print(f"  sum of frames' model_secs  {e['model_seconds_sum']:8.2f} s")
    print(
        f"  of which setup (store, PNG of frame 0) {e['setup']:.2f} s; first model call → last progress "
        f"{e['loop_wall']:.2f} s"
    )
    print(
        f"  bare replicate() loop      {e['bare_loop']:8.2f} s  ({e['steps']} calls, half before, half after)"
    )
    print(
        f"  per step, median: {e['model_seconds_median']:.3f} s in the run, {e['bare_median']:.3f} s bare "
        "(the writer thread's PNG encoding shares the CPU with the model)"
    )
    print(f"  overhead: run wall vs model seconds  {100 * e['overhead_vs_model']:+6.2f} %")
    print(f"            step loop vs model seconds {100 * e['loop_overhead_vs_model']:+6.2f} %")
    print(
        f"            run wall vs bare loop      {100 * e['run_vs_bare']:+6.2f} % (sensitive to load changes)"
    )
    print(
        f"  frame 0 is the input: {e['frame0_matches_input']}; last frame equals the bare loop's: "
        f"{e['last_frame_matches_bare_loop']}"
    )
    verdict = "met" if e["overhead_vs_model"] <= ENGINE_GOAL else "NOT met"
    print(f"goal engine overhead ≤ {100 * ENGINE_GOAL:.0f}% of model time: {verdict}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    print(
        f"torch {torch.__version__}, {platform.machine()} {torch.backends.cpu.get_cpu_capability()}, "
        f"{os.cpu_count()} CPUs, threads {args.threads or torch.get_num_threads()}, python "
        f"{platform.python_version()}"
    )
    load_before = os.getloadavg()
    busy = load_before[0] > 0.5
    note = " — other processes are running: timings will be noisy" if busy else ""
    print(f"load average before: {load_before[0]:.2f}{note}")
    frame = start_frame(args.size)
    results: list[Result] = []
    if not args.no_models:
        results, _ = measure_models(args, frame)
        print_models(results, args)
    engine = None
    if not args.no_engine:
        print(f"\nengine: a {args.steps}-step run between two halves of a bare loop ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
            engine = measure_engine(args, frame, Path(tmp))
        print_engine(engine)
    load_after = os.getloadavg()
    print(f"\nload average after: {load_after[0]:.2f} (1 min), {load_after[1]:.2f} (5 min)")
    if args.json:
        payload = {
            "args": {k: v for k, v in vars(args).items() if k != "json"},
            "models": [asdict(r) for r in results],
            "engine": engine,
            "load_average": [load_before, load_after],
            "torch": torch.__version__,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
