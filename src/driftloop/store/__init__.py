"""The workspace: the database (the only SQL), the frame writer, and the read model every stage uses."""

from driftloop.store.db import DB_NAME, SCHEMA_VERSION, ChainRow, FrameRow, RunListRow, RunRow, Store
from driftloop.store.locks import is_live, run_lock
from driftloop.store.workspace import RunSummary, RunView, Workspace
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
    "is_live",
    "run_lock",
]
