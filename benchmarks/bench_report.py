"""How long a run's report takes to write: a 101-step 512² chain, before and after the charts moved into
the browser.

    python benchmarks/bench_report.py                      # builds the run once in /tmp, reuses it
    python benchmarks/bench_report.py --workspace DIR --repeat 5

- after: ``write_run_report`` as every run now ends (summary.json + report.html with the chart data and
  the inlined chart module; no matplotlib).
- before: what the report did until now, in the same process on the same run: the 13 matplotlib figures
  as PNG and SVG (``render.plots.plot_run``, now ``driftloop plots``) and then the report. (The old report
  also embedded those SVGs as data URIs, a few tenths of a second more: "before" is a lower bound.)
Medians of ``--repeat`` runs each, with the machine's load average, since this machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
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


def chain_run(ws: Path) -> api.Run:
    """The 101-step 512² ``jpeg:quality=75`` chain (made once per workspace)."""
    marker = ws / "bench_report.json"
    if marker.is_file():
        return api.open_run(json.loads(marker.read_text())["run"], ws)
    ws.mkdir(parents=True, exist_ok=True)
    image = ws / "picture.png"
    Image.fromarray(picture()).save(image)
    run = api.run(image, model="jpeg:quality=75", n=101, size=512, workspace=ws, render=False)
    marker.write_text(json.dumps({"run": run.id}))
    return run


def report_times(run: RunView, repeat: int = 3) -> dict[str, float]:
    """Median seconds to write the report now, and the old way (figures, then the report)."""
    after, before = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        path = write_run_report(run)
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
        "report_mb": path.stat().st_size / 1e6,
        "repeat": repeat,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", type=Path, default=Path("/tmp/driftloop-bench-report"))
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    run = chain_run(args.workspace)
    results = {"load": os.getloadavg()[0], **report_times(run, args.repeat), "load_after": os.getloadavg()[0]}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
