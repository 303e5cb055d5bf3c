"""The sweep page (``GET /sweeps/NAME``: one row per cell with its mean headline numbers and cost) at scale,
against the chains table of the same sweep (``GET /chains?sweep=NAME``, one page) as the baseline.

The workspace is :func:`bench_study.build_table`'s (runs of 1,000 chains, four models, one sweep ``big``,
stored summaries, no frames). Each page is asked ``--repeat`` times after a first request; the median and
the worst are printed. The sweep page is timed twice: computed afresh (a new gallery each time, as after
any change to the workspace) and kept (the same gallery, nothing changed since).

    python benchmarks/bench_sweep_page.py --chains 100000 --workspace /tmp/driftloop-bench-sweep
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from fastapi.testclient import TestClient

from bench_study import build_table
from driftloop.web.app import create_app


def times(ws: Path, url: str, repeat: int, fresh: bool = False) -> dict[str, float]:
    """Seconds of the first request, then the median and worst of ``repeat`` more (``fresh``: each from a
    new gallery, so nothing it kept is reused)."""
    seen = []
    client = None
    for _ in range(repeat + 1):
        if client is None or fresh:
            client = TestClient(create_app(ws, extra_hosts=("testserver",)))
        start = time.perf_counter()
        answer = client.get(url)
        seen.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.text[:300]
    return {"first_s": seen[0], "median_s": statistics.median(seen[1:]), "worst_s": max(seen[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/driftloop-bench-sweep"))
    args = parser.parse_args()
    build_table(args.workspace, args.chains, steps=20)
    fresh = times(args.workspace, "/sweeps/big", args.repeat, fresh=True)
    kept = times(args.workspace, "/sweeps/big", args.repeat)
    table = times(args.workspace, "/chains?sweep=big", args.repeat)
    print(json.dumps({"chains": args.chains, "sweep_page_afresh": fresh, "sweep_page_kept": kept,
                      "chains_table_page": table,
                      "afresh_over_table": fresh["median_s"] / table["median_s"]}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
