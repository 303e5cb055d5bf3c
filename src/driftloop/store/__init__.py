"""The workspace: the database (the only SQL), the frame writer, and the read model every stage uses."""

from driftloop.store.db import DB_NAME, ChainRow, FrameRow, RunListRow, RunRow, Store
from driftloop.store.locks import clear_stopped, is_live, mark_stopped, run_lock, unlocked_status
from driftloop.store.schema import SCHEMA_VERSION
from driftloop.store.workspace import RunSummary, RunView, Workspace, list_runs
from driftloop.store.writer import FrameWriter

__all__ = [
    "DB_NAME",
    "SCHEMA_VERSION",
    "ChainRow",
    "FrameRow",
    "FrameWriter",
    "RunListRow",
    "RunRow",
    "RunSummary",
    "RunView",
    "Store",
    "Workspace",
    "clear_stopped",
    "is_live",
    "list_runs",
    "mark_stopped",
    "run_lock",
    "unlocked_status",
]
