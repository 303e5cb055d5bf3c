"""A run as a file: one row per (chain, step) with its record, cost and metrics; CSV, Parquet or JSON.

The table is the read model's :meth:`~driftloop.store.RunView.dataframe` (stable column order). PSNR
of identical frames is ``inf`` in the DataFrame, CSV and Parquet; JSON has no infinity, so it is
written as ``null`` there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from driftloop._fs import atomic_write, json_safe
from driftloop.errors import DriftloopError
from driftloop.store import RunView

Format = Literal["csv", "parquet", "json"]


def _atomic(path: Path, write) -> Path:
    with atomic_write(path) as tmp:
        write(tmp)
    return path


def export(run: RunView, fmt: Format, path: Path | None = None) -> Path:
    """Write the run's table as ``fmt`` (default path: ``RUN_FOLDER/frames.<fmt>``)."""
    if fmt not in ("csv", "parquet", "json"):
        raise DriftloopError(f"export format {fmt!r} is not one of csv, parquet, json")
    df = run.dataframe()
    target = Path(path) if path else run.path / f"frames.{fmt}"
    if fmt == "csv":
        return _atomic(target, lambda p: df.to_csv(p, index=False))
    if fmt == "parquet":
        return _atomic(target, lambda p: df.to_parquet(p, index=False))
    records = json_safe(df.to_dict(orient="records"))
    return _atomic(target, lambda p: p.write_text(json.dumps(records, indent=1, default=str)))
