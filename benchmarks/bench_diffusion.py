"""Throughput of the diffusion img2img backend: copies per second against batch size, and the chain
engine (``driftloop.run(..., render=False)``) against the same pipeline called in a plain loop.

On a CUDA machine (the default model is SD-Turbo at 512², 2 steps at strength 0.5):

    python benchmarks/bench_diffusion.py                       # batch sizes 1, 2, 4, 8
    python benchmarks/bench_diffusion.py --batch-sizes 1,4,16 --chain-steps 10 --json out.json

Smoke test on a CPU with a tiny random pipeline (``python tests/replicators/diffusion_fixtures.py
/tmp/tiny``):

    python benchmarks/bench_diffusion.py --tiny /tmp/tiny/sd

For each batch size B: B chains of ``--chain-steps`` copies, once through the raw pipeline (a loop a
diffusers user would write: the outputs fed back in as PIL images) and once through ``driftloop.run`` with
the same pipeline object (so the model is loaded once and both measure the same GPU work). The ratio
engine/raw is the engine's overhead (PNG writes, hashing, SQLite; the goal is ≥ 0.9).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="stabilityai/sd-turbo", help="hub id or folder of an img2img pipeline")
    p.add_argument("--tiny", metavar="PATH", help="a tiny saved pipeline folder: CPU smoke test at 32 px")
    p.add_argument("--size", type=int, help="frame side in pixels (default 512; 32 with --tiny)")
    p.add_argument("--batch-sizes", default=None, help="comma-separated (default 1,2,4,8; 1,2,4 with --tiny)")
    p.add_argument(
        "--chain-steps", type=int, default=None, help="copies per chain (default 20; 5 with --tiny)"
    )
    p.add_argument("--steps", type=int, default=2, help="inference steps per copy")
    p.add_argument("--strength", type=float, default=0.5)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--variant", default=None, help="weights variant (default fp16 for the hub model)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    tiny = args.tiny is not None
    args.size = args.size or (32 if tiny else 512)
    args.batch_sizes = [int(b) for b in (args.batch_sizes or ("1,2,4" if tiny else "1,2,4,8")).split(",")]
    args.chain_steps = args.chain_steps or (5 if tiny else 20)
    if args.variant is None and not tiny and not Path(args.model).exists():
        args.variant = "fp16"
    return args


def synchronize(device: Any) -> None:
    import torch

    if getattr(device, "type", "") == "cuda":
        torch.cuda.synchronize(device)


def input_image(folder: Path, size: int) -> Path:
    """A photo-like input: the skimage astronaut when available, else smooth random colour."""
    try:
        from skimage import data

        array = data.astronaut()
    except ImportError:
        rng = np.random.default_rng(0)
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        array = np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))
    path = folder / "input.png"
    Image.fromarray(array).save(path)
    return path


def raw_loop(
    replicator: Any, frame: np.ndarray, batch: int, chain_steps: int, args: argparse.Namespace
) -> float:
    """Seconds for ``batch`` chains of ``chain_steps`` copies through the bare pipeline."""
    import torch

    pipe = replicator.pipe
    images = [Image.fromarray(frame)] * batch
    kwargs: dict[str, Any] = {
        "prompt": [""] * batch,
        "strength": args.strength,
        "num_inference_steps": args.steps,
        "guidance_scale": 0.0,
    }
    synchronize(replicator.device)
    started = time.perf_counter()
    for step in range(chain_steps):
        gens = [torch.Generator("cpu").manual_seed(1000 * step + i) for i in range(batch)]
        images = pipe(image=images, generator=gens, output_type="pil", **kwargs).images
    synchronize(replicator.device)
    return time.perf_counter() - started


def replicator_loop(replicator: Any, frame: np.ndarray, batch: int, chain_steps: int) -> float:
    """Seconds for the same work through ``replicate()`` alone (the backend, without the engine)."""
    frames = [frame] * batch
    synchronize(replicator.device)
    started = time.perf_counter()
    for step in range(chain_steps):
        frames = [c.frame for c in replicator.replicate(frames, [1000 * step + i for i in range(batch)])]
    synchronize(replicator.device)
    return time.perf_counter() - started


def engine_run(
    replicator: Any, image: Path, batch: int, chain_steps: int, size: int, workspace: Path
) -> float:
    """Seconds for ``batch`` chains of ``chain_steps`` copies through ``driftloop.run`` (a batch a step)."""
    import driftloop

    synchronize(replicator.device)
    started = time.perf_counter()
    driftloop.run(
        image,
        model=replicator,
        n=chain_steps,
        seeds=range(batch),
        size=size,
        batch_size=batch,
        workspace=workspace,
        render=False,
    )
    synchronize(replicator.device)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from driftloop.images import load_image
    from driftloop.replicators.diffusers.img2img import Img2ImgConfig, Img2ImgReplicator

    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.tiny or args.model
    config = Img2ImgConfig(
        model=model,
        steps=args.steps,
        strength=args.strength,
        guidance=0.0,
        device=args.device,
        dtype=args.dtype,
        variant=args.variant,
    )
    config.validate(f"img2img:{model}")
    started = time.perf_counter()
    replicator = Img2ImgReplicator("img2img", config)
    load_seconds = time.perf_counter() - started
    device = replicator.device
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    dtype = replicator.describe()["dtype"]
    print(f"model {model} ({type(replicator.pipe).__name__}) on {device} [{gpu}], {dtype}")
    print(
        f"load {load_seconds:.1f} s; {args.size}² px, {args.steps} steps × strength {args.strength}, "
        f"{args.chain_steps} copies per chain; torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-diffusion-") as tmp:
        folder = Path(tmp)
        image = input_image(folder, args.size)
        frame = load_image(image, size=args.size, multiple=replicator.requirements.size_multiple).frame
        # warm-up: kernels, autotuning, allocator pools, for every batch size
        for batch in args.batch_sizes:
            raw_loop(replicator, frame, batch, 1, args)
        header = (
            f"{'batch':>5} {'raw copies/s':>13} {'replicate()/s':>14} {'engine copies/s':>16} "
            f"{'ratio':>6} {'raw ms/call':>12} {'denoise steps/s':>16}"
        )
        print(header)
        for batch in args.batch_sizes:
            raw = raw_loop(replicator, frame, batch, args.chain_steps, args)
            rep = replicator_loop(replicator, frame, batch, args.chain_steps)
            eng = engine_run(replicator, image, batch, args.chain_steps, args.size, folder / f"ws-{batch}")
            copies = batch * args.chain_steps
            row = {
                "batch": batch,
                "raw_copies_per_s": copies / raw,
                "replicate_copies_per_s": copies / rep,
                "engine_copies_per_s": copies / eng,
                "ratio": raw / eng,
                "raw_ms_per_call": 1000 * raw / args.chain_steps,
                "denoise_steps_per_s": copies * int(args.steps * args.strength) / raw,
            }
            results.append(row)
            print(f"{batch:>5} {row['raw_copies_per_s']:>13.2f} {row['replicate_copies_per_s']:>14.2f} "
                  f"{row['engine_copies_per_s']:>16.2f} "
                  f"{row['ratio']:>6.2f} {row['raw_ms_per_call']:>12.1f} "
                  f"{row['denoise_steps_per_s']:>16.1f}")  # fmt: skip
            if device.type == "cuda":
                torch.cuda.empty_cache()
    worst = min(r["ratio"] for r in results)
    print(f"engine/raw ratio: worst {worst:.2f} (goal ≥ 0.90){'' if worst >= 0.9 else '  ← below goal'}")
    if args.json:
        facts = {"model": model, "device": str(device), "gpu": gpu, "size": args.size, "steps": args.steps,
                 "strength": args.strength, "chain_steps": args.chain_steps, "load_seconds": load_seconds,
                 "describe": replicator.describe(), "results": results}  # fmt: skip
        Path(args.json).write_text(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
