"""What a run writes, and what the bias card costs, as the chains grow.

- **render**: ``render_run`` with its defaults on real ``jpeg:quality=75`` runs of 10, 100 and 800 chains
  (32², 12 steps; 800 = 40 pictures × 20 seeds, the sweep whose runs each wrote 1,600 animations): seconds
  and bytes written per run, and the same when every chain is animated (``--animations all``, what every
  run wrote before), with the contact sheet's pixel size.
- **card**: ``bias_card`` (statistics, verdicts, attractors, cost, HTML and JSON) over synthetic sweeps of
  1,000, 10,000 and 100,000 chains (two models, jpeg the control; 40 pictures, 12 steps) written straight
  into a workspace's store: runs of 1,000 chains, their frame rows, metric rows of every measure the card
  reads (random walks), and 32² PNGs of each chain's first and last frame (the only frames the card reads).
  Prints seconds and seconds per 1,000 chains, and the ratio of each size's time to linear growth from the
  smallest (1.0 = linear, above 1 = faster than linear growth).

    python benchmarks/bench_scale.py                       # both parts, default sizes
    python benchmarks/bench_scale.py --part card --card-chains 1000 10000 100000
    python benchmarks/bench_scale.py --part render --render-chains 10 100 800

Workspaces are made once under ``--workspace`` and reused (the 100,000-chain one takes a few minutes and
about 2 GB). Times are single runs on a shared machine; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from driftloop import api
from driftloop.analysis.card import BIAS_MEASURES
from driftloop.config import InputRef, RunConfig
from driftloop.cost import load_factors
from driftloop.render.run import render_run
from driftloop.store import FrameRow, RunView, Store

CHAINS_PER_RUN = 1000
PICTURES = 40
MODELS = ("jpeg:quality=90", "taef2")  # the control first
CARD_MEASURES = [m for m in BIAS_MEASURES if not m.startswith("face_")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "driftloop-bench-scale")
    p.add_argument("--part", choices=("render", "card", "both"), default="both")
    p.add_argument("--render-chains", type=int, nargs="+", default=[10, 100, 800])
    p.add_argument("--card-chains", type=int, nargs="+", default=[1000, 10_000, 100_000])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--json", type=Path, help="also write the numbers here")
    return p.parse_args(argv)


def picture(seed: int, size: int = 32) -> np.ndarray:
    """A smooth synthetic picture with some detail, different per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    f = rng.uniform(2, 9, 6)
    channels = [np.sin(f[0] * x + f[1] * y), np.cos(f[2] * y - f[3] * x), np.sin(f[4] * x * f[5] * y)]
    rgb = np.stack(channels, -1)
    return np.clip((rgb + rng.normal(0, 0.08, rgb.shape) + 1) * 127.5, 0, 255).astype(np.uint8)


# -------------------------------------------------------------------------------------------------- render


def render_workspace(root: Path, n_chains: int, steps: int) -> RunView:
    """A real jpeg run of ``n_chains`` chains (40 pictures × seeds) at 32², made once per size."""
    ws = root / f"render-{n_chains}"
    marker = ws / "bench.json"
    if marker.is_file():
        return api.open_run(json.loads(marker.read_text())["run"], ws)
    ws.mkdir(parents=True, exist_ok=True)
    n_pics = next(p for p in (PICTURES, PICTURES // 2, n_chains) if n_chains % p == 0)  # 800: 40 × 20
    paths = []
    for i in range(n_pics):
        path = ws / f"picture{i:02d}.png"
        Image.fromarray(picture(i)).save(path)
        paths.append(path)
    seeds = list(range(n_chains // n_pics))
    run = api.run(paths, model="jpeg:quality=75", n=steps, seeds=seeds, size=32, workspace=ws, render=False)
    marker.write_text(json.dumps({"run": run.id}))
    return run


def _bytes(written: dict[str, Path]) -> int:
    return sum(p.stat().st_size for p in written.values() if p.is_file())


def render_numbers(root: Path, n_chains: int, steps: int) -> dict[str, float]:
    run = render_workspace(root, n_chains, steps)
    n = len(run.chains())
    out: dict[str, float] = {"chains": n}
    for name, kwargs in (("default", {}), ("all", {"animations": "all"})):
        for old in run.path.glob("chain*.*"):
            old.unlink()
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            t0 = time.perf_counter()
            written = render_run(run, **kwargs)
            seconds = time.perf_counter() - t0
        out[f"{name}_s"] = round(seconds, 2)
        out[f"{name}_mb"] = round(_bytes(written) / 1e6, 3)
        out[f"{name}_files"] = len(written)
        if name == "default":
            with Image.open(written["contact_sheet"]) as sheet:
                out["sheet_megapixels"] = round(sheet.width * sheet.height / 1e6, 2)
    for old in run.path.glob("chain*.*"):
        old.unlink()
    render_run(run)  # leave the run as a default render leaves it
    return out


# ---------------------------------------------------------------------------------------------------- card


def card_workspace(root: Path, n_chains: int, steps: int) -> tuple[Path, list[str]]:
    """A synthetic sweep of ``n_chains`` chains written straight into a store (see the module docstring)."""
    ws = root / f"card-{n_chains}"
    marker = ws / "bench.json"
    if marker.is_file():
        return ws, json.loads(marker.read_text())["runs"]
    rng = np.random.default_rng(0)
    store = Store(ws)
    cost = {"factors": load_factors().to_dict()}
    pictures = [picture(i) for i in range(PICTURES)]
    ids = []
    per_run = min(CHAINS_PER_RUN, n_chains)
    for r in range(max(1, n_chains // per_run)):
        model = MODELS[r % len(MODELS)]
        run = f"scale-{r:04d}"
        first_seed = r // 2 * (per_run // PICTURES)  # both models run the same seeds on the same pictures
        chains = [(f"/in/picture{c % PICTURES:02d}.png", f"sha{c % PICTURES:02d}", first_seed + c // PICTURES)
                  for c in range(per_run)]  # fmt: skip
        inputs = tuple(InputRef(p, h) for p, h, _ in chains[:PICTURES])
        config = RunConfig(model, inputs, tuple(sorted({s for *_, s in chains})), steps, 32, 32, cost=cost)
        store.create_run(run, model, steps, config.to_dict(), {}, {}, {}, chains)
        now = time.time()
        frames = [
            FrameRow(run, c, s, s, f"{run}-{c}-{s}", store.frame_relpath(c, s), 0.01 if s else None, now)
            for c in range(per_run)
            for s in range(steps + 1)
        ]
        drift = 0.3 * (r % len(MODELS))
        walks = np.cumsum(rng.normal(drift, 1.0, (per_run, len(CARD_MEASURES), steps + 1)), axis=2)
        walks[:, :, 0] = 0
        rows = [
            (c, s, {m: float(50 + walks[c, j, s]) for j, m in enumerate(CARD_MEASURES)}
             | {"white_cast_pixels": 10.0, "ssim_to_origin": float(1 - 0.02 * s)})
            for c in range(per_run)
            for s in range(steps + 1)
        ]  # fmt: skip
        for c in range(per_run):
            folder = store.frame_path(run, c, 0).parent
            folder.mkdir(parents=True, exist_ok=True)
            first = pictures[c % PICTURES]
            Image.fromarray(first).save(store.frame_path(run, c, 0), compress_level=1)
            last = np.clip(first.astype(int) + rng.integers(-40, 40, 3), 0, 255).astype(np.uint8)
            Image.fromarray(last).save(store.frame_path(run, c, steps), compress_level=1)
        store.add_frames(frames, rows)
        store.set_run_status(run, "done")
        ids.append(run)
    store.close()
    marker.write_text(json.dumps({"runs": ids}))
    return ws, ids


def card_seconds(root: Path, n_chains: int, steps: int) -> float:
    ws, ids = card_workspace(root, n_chains, steps)
    store = Store(ws)
    try:
        t0 = time.perf_counter()
        runs = [RunView(store, i) for i in ids]
        api.bias_card(runs, ws / "card", f"bias card · {n_chains} chains", MODELS[0])
        return time.perf_counter() - t0
    finally:
        store.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.workspace.mkdir(parents=True, exist_ok=True)
    out: dict[str, object] = {"load_average": os.getloadavg()[0]}
    if args.part in ("render", "both"):
        render = {}
        for n in args.render_chains:
            render[n] = render_numbers(args.workspace, n, args.steps)
            print(f"render {n:>6} chains: {json.dumps(render[n])}", flush=True)
        out["render"] = render
    if args.part in ("card", "both"):
        card = {}
        base = None
        for n in sorted(args.card_chains):
            seconds = card_seconds(args.workspace, n, args.steps)
            base = base or (n, seconds)
            ratio = (seconds / n) / (base[1] / base[0])
            card[n] = {"seconds": round(seconds, 2), "s_per_1000": round(1000 * seconds / n, 3),
                       "ratio_to_linear": round(ratio, 2)}  # fmt: skip
            print(f"card   {n:>6} chains: {json.dumps(card[n])}", flush=True)
        out["card"] = card
    out["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
