"""The study views at scale (run by ``bench_gallery.py --part study``, or alone):

- chains table (``GET /chains``) over 100,000 chains: median and p95 of every shape of query the page
  offers (plain, each kind of sort, filters, one and two thresholds with a sort, deep pages), every request
  right after another connection rewrote a run's summaries (:class:`Changer`), so no cache is warm;
- bundles of 1,000 chains × 101 steps (run 0, marked stopped so the status filter selects it) in
  headless chromium: the JSON's time and size, and the time from
  navigation until the plot is drawn;
- ``driftloop publish`` of a 100-chain run: time and size (and the size said before writing, per part:
  frames, animations, posters, bundles...), every frame and every 5th, and every 5th without posters.

    python benchmarks/bench_study.py --chains 100000 --workspace /tmp/driftloop-bench-study
    python benchmarks/bench_study.py --publish-only      # only the publish numbers

The 100,000-chain workspace is written straight into the store (runs, chains, summaries, and metric rows
for the first 1,000 chains; no frames); the publish run is a real ``jpeg:quality=75`` run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from driftloop import api
from driftloop.analysis.chains import COLOUR_MEASURES
from driftloop.config import InputRef, RunConfig
from driftloop.cost import load_factors
from driftloop.measures import MEASURES, TABLE_ORDER
from driftloop.store import Store
from driftloop.web.app import create_app

CHAINS_PER_RUN = 1000
MODELS = ("taef2", "sd-turbo", "jpeg:quality=75", "flux-kontext")
CORE = [m for m in TABLE_ORDER if MEASURES[m].group == "core"]
SHOWN = ("ssim_to_origin.final", "lab_b_mean.change", "lab_b_mean.rate", "last_step", "half_life")
EXTRA_COLUMNS = [  # what a real run stores per chain beside those: ~70 numbers (every core measure's)
    n for n in (*(f"{m}.{s}" for m in CORE for s in ("final", "change")),
                *(f"{c}.rate" for c in COLOUR_MEASURES))
    if n not in SHOWN
]  # fmt: skip


class GalleryServer:
    """The gallery on 127.0.0.1 in a thread, as ``driftloop serve`` runs it."""

    def __init__(self, ws: Path) -> None:
        self.app = create_app(ws)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", type=Path, default=Path("/tmp/driftloop-bench-study"))
    p.add_argument("--chains", type=int, default=100_000)
    p.add_argument("--requests", type=int, default=30)
    p.add_argument("--publish-chains", type=int, default=100)
    p.add_argument("--publish-steps", type=int, default=24)
    p.add_argument("--publish-only", action="store_true", help="only the publish numbers")
    p.add_argument("--json", type=Path)
    return p.parse_args(argv)


def build_table(ws: Path, n_chains: int, steps: int = 100) -> None:
    """``n_chains`` chains in runs of 1,000 (4 models, one sweep), their summaries, and the metric rows of
    the first 1,000 chains (the bundle); made once."""
    marker = ws / "bench.json"
    if marker.is_file() and json.loads(marker.read_text()).get("chains") == n_chains:
        return
    rng = np.random.default_rng(0)
    store = Store(ws)
    cost = {"factors": load_factors().to_dict()}
    for r in range(max(1, n_chains // CHAINS_PER_RUN)):
        model = MODELS[r % len(MODELS)]
        run = f"bench-{r:04d}"
        chains = [(f"/in/img{c % 40}.png", f"h{c % 40}", c // 40) for c in range(CHAINS_PER_RUN)]
        inputs = tuple(InputRef(p, h) for p, h, _ in chains[:40])
        config = RunConfig(
            model,
            inputs,
            tuple(range(25)),
            steps,
            256,
            256,
            cost=cost,
            sweep="big" if r % 2 == 0 else "small",
        )
        store.create_run(run, model, steps, config.to_dict(), {}, {}, {}, chains)
        rate = 0.002 * (1 + r % len(MODELS)) + rng.normal(0, 0.001, CHAINS_PER_RUN)
        final = np.clip(1 - rate * steps, 0, 1)
        db = rng.normal(r % 3, 1.5, CHAINS_PER_RUN)
        half = np.where(final < 0.5, np.round(0.5 / np.maximum(rate, 1e-6)), np.nan)
        numbers = {}
        extra = rng.normal(0, 1, (len(EXTRA_COLUMNS), CHAINS_PER_RUN))  # the rest of a real row's numbers
        for c in range(CHAINS_PER_RUN):
            numbers[c] = {name: float(extra[k, c]) for k, name in enumerate(EXTRA_COLUMNS)}
            numbers[c].update({
                "ssim_to_origin.final": float(final[c]),
                "lab_b_mean.change": float(db[c]),
                "lab_b_mean.rate": float(db[c] / steps),
                "last_step": float(steps),
                "half_life": None if np.isnan(half[c]) else float(half[c]),
            })  # fmt: skip
        store.set_chain_summaries(run, numbers)
        if r * CHAINS_PER_RUN < 1000:
            t = np.arange(steps + 1)
            ssim = np.clip(1 - rate[:, None] * t + rng.normal(0, 0.01, (CHAINS_PER_RUN, t.size)), 0, 1)
            store.add_metrics(
                run,
                [
                    (c, int(s), {"ssim_to_origin": float(ssim[c, s])})
                    for c in range(CHAINS_PER_RUN)
                    for s in t
                ],
            )
        store.set_run_status(run, "done")
    store.close()
    marker.write_text(json.dumps({"chains": n_chains}))


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(1000 * statistics.median(ordered), 1), "p95_ms": round(1000 * p95, 1)}


SSIM, DB, RATE = "ssim_to_origin.final", "lab_b_mean.change", "lab_b_mean.rate"
SHOWN_COLUMNS = {"col": [SSIM, DB, RATE, "half_life"]}
TABLE_QUERIES = {  # every shape the page offers: a plain page, a sort, a filter, thresholds, deep pages
    "newest_first": {},
    "sort_by_model": {"sort": "model"},
    "sort_by_input": {"sort": "-input"},
    "warmest_first": {"sort": f"-{DB}"},
    "half_life_ascending": {"sort": "half_life"},  # half the chains have none: they come last
    "filter_model": {"model": "taef2"},
    "filter_sweep": {"sweep": "small", "sort": SSIM},
    "filter_status_stopped": {"status": "stopped", "sort": f"-{DB}"},  # 1 run of 100
    "filter_status_done": {"status": "done", "sort": f"-{DB}"},  # 99 runs of 100
    "one_model_page_40": {"model": "taef2", "sort": f"-{SSIM}", "page": 40},
    "ssim_below_0.5_sorted_by_half_life": {"where": f"{SSIM}<0.5", "sort": "half_life"},
    "two_thresholds_sorted": {"where": [f"{SSIM}<0.5", f"{DB}>1"], "sort": f"-{RATE}"},
    "threshold_model_sorted": {"model": "sd-turbo", "where": f"{DB}>2", "sort": SSIM},
    "rare_threshold_sorted": {"where": f"{DB}>6", "sort": "half_life"},  # a few dozen chains
    "page_500": {"page": 500},
    "page_500_sorted": {"sort": f"-{SSIM}", "page": 500},
    "last_page_sorted": {"sort": DB, "page": 2000},
    "half_life_last_page": {"sort": "half_life", "page": 2000},  # among the chains without one
    "sort_by_seed_page_500": {"sort": "seed", "page": 500},
    "threshold_page_200": {"where": f"{SSIM}<0.5", "sort": f"-{DB}", "page": 200},
}


class Changer:
    """What "after a change" means: before each timed request another connection (as a run's report in
    another process would) rewrites one run's summaries, so SQLite's page cache of the gallery's connection
    is invalidated and the listing is read again."""

    def __init__(self, ws: Path, run: str) -> None:
        self.store, self.run, self.k = Store(ws), run, 0
        self.numbers = self.store.chain_summaries(run)

    def __call__(self) -> None:
        self.k += 1
        scale = 1 + 1e-9 * self.k
        rows = self.numbers.items()
        again = {c: {n: v if v is None else v * scale for n, v in row.items()} for c, row in rows}
        self.store.set_chain_summaries(self.run, again)

    def close(self) -> None:
        self.store.close()


def table_times(base: str, n: int, ws: Path, changed_run: str) -> dict[str, dict[str, float]]:
    """Median and p95 of each shape of ``GET /chains``, every request right after a change."""
    out = {}
    change = Changer(ws, changed_run)
    with httpx.Client(base_url=base, timeout=120) as client:
        for name, params in TABLE_QUERIES.items():
            params = {**SHOWN_COLUMNS, **params}
            client.get("/chains", params=params).raise_for_status()  # warm the process, not a cache
            samples, changed = [], []
            for _ in range(n):
                t = time.perf_counter()
                change()
                changed.append(time.perf_counter() - t)
                t = time.perf_counter()
                client.get("/chains", params=params).raise_for_status()
                samples.append(time.perf_counter() - t)
            out[name] = percentiles(samples)
            print(f"  {name:40s} median {out[name]['median_ms']:7.1f} ms  p95 {out[name]['p95_ms']:7.1f} ms"
                  f"  (change {1000 * statistics.median(changed):.0f} ms)", flush=True)  # fmt: skip
    change.close()
    return out


def bundle_times(base: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright  # a dev dependency, only for this part

    query = "status=stopped&measure=ssim_to_origin&by=model"  # run 0: the 1,000 chains with metric rows
    with httpx.Client(base_url=base, timeout=120) as client:
        t = time.perf_counter()
        body = client.get(f"/bundles.json?{query}").content
        json_s = time.perf_counter() - t
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        t = time.perf_counter()
        tab.goto(f"{base}/bundles?{query}")
        tab.wait_for_function(
            "() => window.driftloopBundle && window.driftloopBundle.drawn", polling=5, timeout=120_000
        )
        drawn = time.perf_counter() - t
        chains = tab.evaluate("() => window.driftloopBundle.chains.length")
        script_ms = tab.evaluate("() => window.driftloopBundle.ms")
        browser.close()
    return {
        "chains": chains,
        "json_ms": round(1000 * json_s),
        "json_mb": round(len(body) / 1e6, 2),
        "navigation_to_drawn_ms": round(1000 * drawn),
        "script_to_drawn_ms": round(script_ms),
    }


def publish_numbers(ws: Path, chains: int, steps: int) -> dict[str, object]:
    from PIL import Image
    from skimage import data  # sample pictures, a dev dependency

    image = ws / "astronaut.png"
    Image.fromarray(data.astronaut()).save(image)
    run = api.run(
        image,
        model="jpeg:quality=75",
        n=steps,
        seeds=range(chains),
        size=256,
        workspace=ws / "pub",
        render=False,
    )
    out: dict[str, object] = {"chains": chains, "steps": steps, "load": os.getloadavg()[0]}
    for every, posters in ((1, True), (5, True), (5, False)):
        name = f"every_{every}" + ("" if posters else "_no_posters")
        folder = ws / f"site-{name}"
        said: list[str] = []
        t = time.perf_counter()
        api.publish([run.id], folder, ws / "pub", frames=f"every:{every}", posters=posters, log=said.append)
        out[f"{name}_s"] = round(time.perf_counter() - t, 1)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        out[f"{name}_mb"] = round(size / 1e6, 1)
        out[f"{name}_said"] = said[0]  # the size said before writing, per part
    return out


def run_all(
    ws: Path, n_chains: int, requests: int, publish_chains: int, publish_steps: int, bundle: bool = True
) -> dict[str, object]:
    ws.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    build_table(ws / "table", n_chains)
    results: dict[str, object] = {
        "chains": n_chains,
        "build_s": round(time.perf_counter() - t, 1),
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0],
    }
    store = Store(ws / "table")
    store.set_run_status("bench-0000", "interrupted")  # the bundle's chains: the status filter selects them
    store.close()
    with GalleryServer(ws / "table") as base:
        last_run = f"bench-{max(1, n_chains // CHAINS_PER_RUN) - 1:04d}"
        results["table"] = table_times(base, requests, ws / "table", last_run)
        if bundle:
            results["bundle"] = bundle_times(base)
    if publish_chains:
        results["publish"] = publish_numbers(ws, publish_chains, publish_steps)
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.publish_only:
        args.workspace.mkdir(parents=True, exist_ok=True)
        results: dict[str, object] = {"publish": publish_numbers(args.workspace, args.publish_chains,
                                                                  args.publish_steps)}  # fmt: skip
    else:
        results = run_all(args.workspace, args.chains, args.requests, args.publish_chains, args.publish_steps)
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
