"""A run as a table: one row per (chain, step) with its record, cost and metrics; CSV, Parquet or JSON.

Column order is stable: identity (run, chain, input, seed, step), then the frame record, then cost, then
metrics in :data:`driftloop.metrics.ALL_COLUMNS` order. PSNR of identical frames is ``inf`` in the
DataFrame, CSV and Parquet; JSON has no infinity, so it is written as ``null`` there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from driftloop._fs import atomic_write, json_safe
from driftloop.errors import DriftloopError
from driftloop.metrics import ALL_COLUMNS

if TYPE_CHECKING:
    from driftloop.api import RunHandle

Format = Literal["csv", "parquet", "json"]
COST_FIELDS = ("wall_s", "cpu_s", "energy_j", "energy_source", "measured", "usd")


def frame_table(run: RunHandle) -> pd.DataFrame:
    """One row per stored frame, metrics included (missing metrics are NaN)."""
    chains = {c.chain: c for c in run.chains()}
    measured = run.store.metrics(run.id)
    rows = []
    for r in run.frame_rows():
        chain = chains[r.chain]
        row: dict[str, object] = {
            "run_id": r.run_id,
            "chain": r.chain,
            "input": chain.input_path,
            "chain_seed": chain.seed,
            "step": r.step,
            "step_seed": r.seed,
            "sha256": r.sha256,
            "path": str(run.path / r.path),
            "model_seconds": r.model_seconds,
        }
        cost = r.cost or {}
        row.update({f"cost_{k}": cost.get(k) for k in COST_FIELDS})
        if r.info:
            row.update({f"info_{k}": v for k, v in r.info.items() if isinstance(v, str | int | float | bool)})
        row.update(measured.get((r.chain, r.step), {}))
        rows.append(row)
    df = pd.DataFrame(rows)
    known = [c for c in ALL_COLUMNS if c in df.columns]
    others = [c for c in df.columns if c not in known]
    return df[others + known] if len(df) else df


def _atomic(path: Path, write) -> Path:
    with atomic_write(path) as tmp:
        write(tmp)
    return path


def export(run: RunHandle, fmt: Format, path: Path | None = None) -> Path:
    """Write the run's table as ``fmt`` (default path: ``RUN_FOLDER/frames.<fmt>``)."""
    if fmt not in ("csv", "parquet", "json"):
        raise DriftloopError(f"export format {fmt!r} is not one of csv, parquet, json")
    df = frame_table(run)
    target = Path(path) if path else run.path / f"frames.{fmt}"
    if fmt == "csv":
        return _atomic(target, lambda p: df.to_csv(p, index=False))
    if fmt == "parquet":
        return _atomic(target, lambda p: df.to_parquet(p, index=False))
    records = json_safe(df.to_dict(orient="records"))
    return _atomic(target, lambda p: p.write_text(json.dumps(records, indent=1, default=str)))
