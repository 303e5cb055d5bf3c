"""The workspace: the database (the only SQL), the frame writer, and the read model every stage uses.

Names are imported on first use (:mod:`driftloop._lazy`): the run list (:mod:`~driftloop.store.listing`)
needs only the database, the read model of frames needs NumPy and Pillow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_names

if TYPE_CHECKING:
    from driftloop.store.db import DB_NAME, ChainRow, FrameRow, RunListRow, RunRow, Store
    from driftloop.store.listing import RunSummary, list_runs
    from driftloop.store.locks import clear_stopped, is_live, mark_stopped, run_lock, unlocked_status
    from driftloop.store.schema import SCHEMA_VERSION
    from driftloop.store.workspace import RunView, Workspace
    from driftloop.store.writer import FrameWriter

_WHERE = {
    "DB_NAME": "driftloop.store.db",
    "ChainRow": "driftloop.store.db",
    "FrameRow": "driftloop.store.db",
    "RunListRow": "driftloop.store.db",
    "RunRow": "driftloop.store.db",
    "Store": "driftloop.store.db",
    "RunSummary": "driftloop.store.listing",
    "list_runs": "driftloop.store.listing",
    "clear_stopped": "driftloop.store.locks",
    "is_live": "driftloop.store.locks",
    "mark_stopped": "driftloop.store.locks",
    "run_lock": "driftloop.store.locks",
    "unlocked_status": "driftloop.store.locks",
    "SCHEMA_VERSION": "driftloop.store.schema",
    "RunView": "driftloop.store.workspace",
    "Workspace": "driftloop.store.workspace",
    "FrameWriter": "driftloop.store.writer",
}
__getattr__ = lazy_names(__name__, _WHERE)

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
