"""The README study's figure: mean ΔL* and Δb* against the step for each model, with a 95% band.

python examples/study/figure.py WORKSPACE docs/study.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import driftloop
from driftloop.sweep import sweep_runs


def main(workspace: str, out: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for run_id in sweep_runs(workspace, "study"):
        run = driftloop.open_run(run_id, workspace)
        df = run.dataframe()
        for ax, column, label in zip(
            axes, ("lab_l_delta", "lab_b_delta"), ("ΔL* (lightness)", "Δb* (+ yellow, − blue)"), strict=True
        ):
            stats = df.groupby("step")[column].agg(["mean", "std", "count"])
            half = 1.96 * stats["std"] / stats["count"] ** 0.5
            ax.plot(stats.index, stats["mean"], label=run.row.model)
            ax.fill_between(stats.index, stats["mean"] - half, stats["mean"] + half, alpha=0.2)
            ax.set_xlabel("step")
            ax.set_title(label)
    axes[0].legend(frameon=False)
    fig.suptitle("10 sample pictures × 3 seeds, 256², mean and 95% band across chains")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
