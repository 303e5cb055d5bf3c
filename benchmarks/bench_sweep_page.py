"""The sweep page (``GET /sweeps/NAME``: one row per cell with its mean headline numbers and cost) at scale,
against the chains table of the same sweep (``GET /chains?sweep=NAME``, one page) as the baseline.

The workspace is :func:`bench_study.build_table`'s (runs of 1,000 chains, four models, one sweep ``big``,
stored summaries, no frames). Each page is asked ``--repeat`` times after a first request; the median and
the worst are printed, and the ratio of the medians.

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


def times(client: TestClient, url: str, repeat: int) -> dict[str, float]:
    """Seconds of the first request, then the median and worst of ``repeat`` more."""
    seen = []
    for _ in range(repeat + 1):
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
    client = TestClient(create_app(args.workspace, extra_hosts=("testserver",)))
    sweep = times(client, "/sweeps/big", args.repeat)
    table = times(client, "/chains?sweep=big", args.repeat)
    print(json.dumps({"chains": args.chains, "sweep_page": sweep, "chains_table": table,
                      "ratio": sweep["median_s"] / table["median_s"]}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
