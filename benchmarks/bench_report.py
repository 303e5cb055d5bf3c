"""How long a run's report takes to write, and how big it is: a 101-step 512² chain, before and after the
charts moved into the browser, and the size of the page against the GIF it used to inline.

    python benchmarks/bench_report.py                      # builds the run once in /tmp, reuses it
    python benchmarks/bench_report.py --workspace DIR --repeat 5
    python benchmarks/bench_report.py --model taef2        # the real model (weights needed)

Size: ``report_mb`` (the whole page), ``video_mb`` (the embedded MP4, decoded from the page) against
``gif_mb`` (the chain's GIF, which the page inlined as base64 until it embedded the compact MP4: the old
page was at least ``gif_mb`` × 4/3).

- after: ``write_run_report`` as every run now ends (summary.json + report.html with the chart data and
  the inlined chart module; no matplotlib).
- before: what the report did until now, in the same process on the same run: the 13 matplotlib figures
  as PNG and SVG (``render.plots.plot_run``, now ``driftloop plots``) and then the report. (The old report
  also embedded those SVGs as data URIs, a few tenths of a second more: "before" is a lower bound.)
Medians of ``--repeat`` runs each, with the machine's load average, since this machine is shared.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from driftloop import api
from driftloop.render.plots import plot_run
from driftloop.report.run import write_run_report
from driftloop.store import RunView


def picture(size: int = 512) -> np.ndarray:
    """A smooth synthetic picture with detail (JPEG has something to chew on); bench_gallery's too."""
    y, x = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([np.sin(7 * x + 3 * y), np.cos(5 * y - 2 * x), np.sin(11 * x * y)], axis=-1)
    noise = np.random.default_rng(0).normal(0, 0.08, rgb.shape)
    return np.clip((rgb + noise + 1) * 127.5, 0, 255).astype(np.uint8)


def chain_run(ws: Path, model: str = "jpeg:quality=75") -> api.Run:
    """The 101-step 512² chain of ``model`` (made and rendered once per workspace and model)."""
    marker = ws / f"bench_report-{model.replace(':', '-').replace('=', '-')}.json"
    if marker.is_file():
        return api.open_run(json.loads(marker.read_text())["run"], ws)
    ws.mkdir(parents=True, exist_ok=True)
    image = ws / "picture.png"
    Image.fromarray(picture()).save(image)
    run = api.run(image, model=model, n=101, size=512, workspace=ws, render=True)
    marker.write_text(json.dumps({"run": run.id}))
    return run


def report_sizes(run: RunView) -> dict[str, float]:
    """The page, the MP4 inside it and the GIF it used to inline, in MB."""
    text = write_run_report(run).read_text(encoding="utf-8")
    video = re.search(r'<video src="data:video/mp4;base64,([A-Za-z0-9+/=]+)"', text)
    gif = run.path / "chain000.gif"
    return {
        "report_mb": len(text.encode("utf-8")) / 1e6,
        "video_mb": len(base64.b64decode(video.group(1))) / 1e6 if video else 0.0,
        "gif_mb": gif.stat().st_size / 1e6 if gif.is_file() else 0.0,
    }


def report_times(run: RunView, repeat: int = 3) -> dict[str, float]:
    """Median seconds to write the report now, and the old way (figures, then the report)."""
    after, before = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        write_run_report(run)
        after.append(time.perf_counter() - t)
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            plot_run(run.dataframe(), Path(tmp) / "plots")
            write_run_report(run)
            before.append(time.perf_counter() - t)
    return {
        "report_s_before": statistics.median(before),
        "report_s_after": statistics.median(after),
        "repeat": repeat,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", type=Path, default=Path("/tmp/driftloop-bench-report"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--model", default="jpeg:quality=75", help="the chain's model (taef2: weights needed)")
    args = p.parse_args(argv)
    run = chain_run(args.workspace, args.model)
    results = {"model": args.model, "load": os.getloadavg()[0], **report_times(run, args.repeat),
               **report_sizes(run), "load_after": os.getloadavg()[0]}  # fmt: skip
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
