"""The read model of a workspace: runs, chains, frames, metric rows, events and sweeps.

Every stage reads a stored run through :class:`RunView` (the report, the renders, the bias card, the web
gallery, exports) and a workspace through :class:`Workspace`. A view only reads: it makes no renders,
reports or measurements (those are verbs of their own stages, over a view), so it sits below all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.config import RunConfig
from driftloop.frames import read_frame
from driftloop.measures import TABLE_ORDER
from driftloop.store.db import ChainRow, FrameRow, RunRow, Store
from driftloop.store.listing import RunSummary, open_existing, summaries
from driftloop.store.locks import unlocked_status

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

COST_FIELDS = ("wall_s", "cpu_s", "energy_j", "energy_source", "measured", "usd")


class RunView:
    """A stored run: its configuration, chains, frames, metric rows and events. Reads only."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.row: RunRow = store.get_run(run_id)
        self.id = self.row.id

    @property
    def path(self) -> Path:
        return self.store.run_dir(self.id)

    @property
    def config(self) -> dict[str, Any]:
        """The configuration as stored (JSON); :attr:`run_config` is the typed form."""
        return self.row.config

    @property
    def run_config(self) -> RunConfig:
        return RunConfig.from_dict(self.row.config)

    @property
    def status(self) -> str:
        """As stored; a 'running' run no process holds reads 'interrupted' (or 'stopped', see locks)."""
        return unlocked_status(self.path, self.store.get_run(self.id).status)

    def chains(self) -> list[ChainRow]:
        return self.store.chains(self.id)

    def frame_rows(self, chain: int | None = None) -> list[FrameRow]:
        return self.store.frames(self.id, chain)

    def frame_path(self, chain: int, step: int) -> Path:
        return self.store.frame_path(self.id, chain, step)

    def frame(self, chain: int, step: int) -> np.ndarray:
        """The stored frame as an RGB uint8 array."""
        return read_frame(self.frame_path(chain, step))

    def frames(self, chain: int = 0) -> list[tuple[int, np.ndarray]]:
        """(step, frame) pairs of one chain, in order."""
        return [(r.step, read_frame(self.path / r.path)) for r in self.frame_rows(chain)]

    def metric_rows(self) -> dict[tuple[int, int], dict[str, float]]:
        """Every stored metric, by (chain, step)."""
        return self.store.metrics(self.id)

    def records(self) -> list[dict[str, Any]]:
        """One dict per stored frame (chain, step, seed, sha256, path, model_seconds, input, chain seed)."""
        chains = {c.chain: c for c in self.chains()}
        return [
            {
                "run_id": r.run_id,
                "chain": r.chain,
                "step": r.step,
                "seed": r.seed,
                "sha256": r.sha256,
                "path": str(self.path / r.path),
                "model_seconds": r.model_seconds,
                "info": r.info,
                "input": chains[r.chain].input_path,
                "chain_seed": chains[r.chain].seed,
            }
            for r in self.frame_rows()
        ]

    def events(self) -> list[dict[str, Any]]:
        return self.store.events(self.id)

    def dataframe(self) -> pd.DataFrame:
        """One row per (chain, step): the frame record, its cost and its metrics (missing metrics NaN).

        Column order is stable: identity (run, chain, input, seed, step), then the frame record, then
        cost, then metrics in the vocabulary's order (:data:`driftloop.measures.TABLE_ORDER`).
        """
        import pandas as pd  # heavy (~0.3 s): only readers that want a table pay for it

        chains = {c.chain: c for c in self.chains()}
        frames = self.frame_rows()
        root = self.path  # once: the property builds a new Path each time
        columns: dict[str, list[object]] = {
            "run_id": [r.run_id for r in frames],
            "chain": [r.chain for r in frames],
            "input": [chains[r.chain].input_path for r in frames],
            "chain_seed": [chains[r.chain].seed for r in frames],
            "step": [r.step for r in frames],
            "step_seed": [r.seed for r in frames],
            "sha256": [r.sha256 for r in frames],
            "path": [str(root / r.path) for r in frames],
            "model_seconds": [r.model_seconds for r in frames],
        }
        costs = [r.cost or {} for r in frames]
        columns.update({f"cost_{k}": [c.get(k) for c in costs] for k in COST_FIELDS})
        df = pd.DataFrame(columns)
        infos = [
            {f"info_{k}": v for k, v in (r.info or {}).items() if isinstance(v, str | int | float | bool)}
            for r in frames
        ]
        if any(infos):
            df = pd.concat([df, pd.DataFrame(infos)], axis=1)
        metrics = pd.DataFrame(self.store.metric_tuples(self.id), columns=["chain", "step", "name", "value"])
        if len(metrics) and len(df):  # one column per measure, NaN where a frame lacks it
            wide = metrics.pivot(index=["chain", "step"], columns="name", values="value")  # unique rows
            wide = wide.reindex(pd.MultiIndex.from_arrays([df["chain"], df["step"]])).reset_index(drop=True)
            df = pd.concat([df, wide.rename_axis(columns=None)], axis=1)
        known = [c for c in TABLE_ORDER if c in df.columns]
        others = [c for c in df.columns if c not in known]
        return df[others + known] if len(df) else pd.DataFrame()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r}, model={self.row.model!r}, status={self.status!r})"


class Workspace:
    """A workspace folder that exists: its runs and sweeps.

    A mistyped ``--workspace`` is an error, never a new empty workspace; a path that is a file says so.
    """

    def __init__(self, root: str | Path) -> None:
        self.store = open_existing(root)
        self.root = self.store.root

    def run(self, run_id: str) -> RunView:
        """A run by id or unique id prefix."""
        return RunView(self.store, run_id)

    def runs(self) -> list[RunSummary]:
        """Every run, newest first (see :mod:`~driftloop.store.listing`)."""
        return summaries(self.store)
