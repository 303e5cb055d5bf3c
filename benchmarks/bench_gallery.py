"""How fast the gallery (``driftloop serve``) answers: the runs page of 1,000 runs, the chain view of a
101-step 512² chain in a real browser, and frames served per second; and the time to write that chain's
report, before and after its charts moved into the browser (``bench_report.py``).

    python benchmarks/bench_gallery.py                     # builds the workspace once in /tmp, reuses it
    python benchmarks/bench_gallery.py --workspace DIR --runs 1000 --requests 40

The workspace: one real ``jpeg:quality=75`` run of 101 steps at 512² (the chain the chain view shows), and
``--runs`` small runs (3 frames each, hard links to that run's frames, written through the store as a run
would write them) so the listing has a thousand rows. The server is uvicorn on 127.0.0.1 in a thread, the
client httpx over loopback (and headless chromium for the chain view), all on this machine.

- runs page: ``GET /`` (page 1, 50 rows, thumbnails in place) median and p95, with the listing cache
  emptied before every request (what a page costs right after the workspace changed), filtered by model,
  and page 10 of an unchanged workspace; plus the first, cold request that also makes 100 thumbnails.
- chain view (Playwright + /usr/bin/chromium, empty cache): time until the frame is on screen, and until every
  frame of the chain is preloaded into the browser's cache.
- frames/s: 4 client threads fetching frames of the chain for a few seconds (200 with the PNG), and the same
  with ``If-None-Match`` (304 revalidations).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

from bench_report import picture, report_times
from bench_study import GalleryServer as Server
from bench_study import run_all
from driftloop import api
from driftloop.store import FrameRow, Store


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", type=Path, default=Path("/tmp/driftloop-bench-gallery"))
    p.add_argument("--runs", type=int, default=1000, help="runs in the listing")
    p.add_argument("--requests", type=int, default=40, help="timed requests per runs-page variant")
    p.add_argument("--seconds", type=float, default=4.0, help="duration of each frames/s measurement")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    study = "study: the chains table at --chains, bundles of 1,000 chains, publish (bench_study.py)"
    study += "; table: the chains table alone"
    p.add_argument("--part", choices=("all", "gallery", "study", "table"), default="all", help=study)
    p.add_argument("--chains", type=int, default=100_000, help="chains in the study part's table")
    return p.parse_args(argv)


def build(ws: Path, n_runs: int) -> str:
    """The workspace (made once): the 101-step chain, then ``n_runs`` small runs. Returns the chain's run."""
    marker = ws / "bench.json"
    if marker.is_file() and json.loads(marker.read_text()).get("runs") == n_runs:
        return json.loads(marker.read_text())["chain_run"]
    ws.mkdir(parents=True, exist_ok=True)
    image = ws / "picture.png"
    Image.fromarray(picture()).save(image)
    t0 = time.perf_counter()
    big = api.run(image, model="jpeg:quality=75", n=101, size=512, workspace=ws, render=False)
    print(f"  101-step 512² jpeg chain made in {time.perf_counter() - t0:.1f} s")
    store = Store(ws)
    template = big.row
    rows = big.frame_rows(0)[:3]
    t0 = time.perf_counter()
    for i in range(n_runs):
        run_id = f"20260101-{i:06d}-bench-{i % 7}"
        model = f"jpeg:quality={50 + i % 7}"
        config = {**template.config, "model": model, "n_steps": 2}
        store.create_run(run_id, model, 2, config, template.model_info, template.versions, template.host,
                         [(str(image), template.config["inputs"][0]["sha256"], 0)])  # fmt: skip
        folder = store.run_dir(run_id) / "frames" / "c000"
        folder.mkdir(parents=True, exist_ok=True)
        for r in rows:
            os.link(big.path / r.path, folder / Path(r.path).name)
        store.add_frames([FrameRow(run_id, 0, r.step, r.seed, r.sha256, r.path, r.model_seconds, time.time(),
                                   r.info, r.cost) for r in rows])  # fmt: skip
        store.set_run_status(run_id, "done")
    print(f"  {n_runs} small runs written in {time.perf_counter() - t0:.1f} s")
    marker.write_text(json.dumps({"runs": n_runs, "chain_run": big.id}))
    return big.id


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": 1000 * statistics.median(ordered), "p95_ms": 1000 * p95, "n": len(ordered)}


def runs_page(base: str, app, n: int) -> dict[str, dict[str, float]]:
    out = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        t0 = time.perf_counter()
        html = client.get("/").text
        thumbs = [line.split('src="')[1].split('"')[0] for line in html.splitlines() if "/thumbs/" in line]
        for url in thumbs:
            client.get(url).raise_for_status()
        out["first_page_cold_with_thumbnails"] = {
            "ms": 1000 * (time.perf_counter() - t0),
            "thumbs": len(thumbs),
        }
        for name, params in (("runs_page", {}), ("runs_page_filtered", {"model": "jpeg:quality=53"})):
            samples = []
            for _ in range(n):
                app.state.data._listing = ((), [], {})  # the listing read again, as after a change
                t = time.perf_counter()
                client.get("/", params=params).raise_for_status()
                samples.append(time.perf_counter() - t)
            out[name] = percentiles(samples)
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            client.get("/", params={"page": 10}).raise_for_status()
            samples.append(time.perf_counter() - t)
        out["runs_page_10_workspace_unchanged"] = percentiles(samples)
    return out


def chain_view(base: str, run_id: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright  # a dev dependency, only for this part

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        tab = browser.new_page()
        t0 = time.perf_counter()
        tab.goto(f"{base}/runs/{run_id}/chains/0?step=50")
        tab.wait_for_function("() => { const i = document.getElementById('frame'); "
                              "return i && i.complete && i.naturalWidth > 0; }", polling=5)  # fmt: skip
        first = time.perf_counter() - t0
        tab.wait_for_function(
            "() => window.driftloopChain && window.driftloopChain.data && "
            "window.driftloopChain.loaded === window.driftloopChain.data.frames.length",
            polling=5,
            timeout=120_000,
        )
        every = time.perf_counter() - t0
        n = tab.evaluate("() => window.driftloopChain.data.frames.length")
        browser.close()
    return {"first_frame_ms": 1000 * first, "all_frames_cached_ms": 1000 * every, "frames": n}


def frames_per_second(base: str, run_id: str, ws: Path, seconds: float) -> dict[str, float]:
    shas = [r.sha256 for r in api.open_run(run_id, ws).frame_rows(0)]
    out = {}
    for name, revalidate in (("frames_per_s_200", False), ("frames_per_s_304", True)):
        stop = time.perf_counter() + seconds

        def worker(k: int, revalidate: bool = revalidate, stop: float = stop) -> tuple[int, int]:
            done = size = 0
            with httpx.Client(base_url=base, timeout=30) as client:
                while time.perf_counter() < stop:
                    sha = shas[(done * 7 + k) % len(shas)]
                    headers = {"If-None-Match": f'"{sha}"'} if revalidate else {}
                    r = client.get(f"/frames/{run_id}/{sha}.png", headers=headers)
                    assert r.status_code == (304 if revalidate else 200)
                    done += 1
                    size += len(r.content)
            return done, size

        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            counts, sizes = zip(*pool.map(worker, range(4)), strict=True)
        took = time.perf_counter() - t0
        out[name] = sum(counts) / took
        if not revalidate:
            out["mb_per_s"] = sum(sizes) / took / 1e6
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"workspace {args.workspace}")
    results: dict[str, object] = {}
    if args.part in ("all", "study", "table"):
        study_ws = args.workspace.with_name(args.workspace.name + "-study")
        table_only = args.part == "table"
        results["study"] = run_all(study_ws, args.chains, args.requests, 0 if table_only else 100, 24,
                                   bundle=not table_only)  # fmt: skip
    if args.part in ("study", "table"):
        print(json.dumps(results, indent=1))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        return
    run_id = build(args.workspace, args.runs)
    results.update({"runs": args.runs + 1, "cpus": os.cpu_count(), "load": os.getloadavg()[0]})
    results.update(report_times(api.open_run(run_id, args.workspace)))
    server = Server(args.workspace)
    with server as base:
        results.update(runs_page(base, server.app, args.requests))
        results["chain_view"] = chain_view(base, run_id)
        results.update(frames_per_second(base, run_id, args.workspace, args.seconds))
    results["load_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
