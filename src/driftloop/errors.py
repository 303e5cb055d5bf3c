"""Errors a user can cause.

Every one carries a message that names the thing at fault and the fix, and an exit code; the CLI prints
the message without a traceback. Anything that is not a ``DriftloopError`` is a bug.
"""

from __future__ import annotations

from pathlib import Path


class AnimatedImageWarning(UserWarning):
    """An input had several frames and only the first is used (its own class so callers can filter it)."""


class DriftloopError(Exception):
    """Base class of user-facing errors."""

    exit_code: int = 1


class InputError(DriftloopError):
    """An input image cannot be used (missing, corrupt, truncated, too large, not an image)."""

    exit_code = 2


class SpecError(DriftloopError):
    """A replicator spec string or one of its parameters is invalid."""

    exit_code = 2


class WeightsError(DriftloopError):
    """Model weights are missing, unreachable or do not match their pinned hash."""

    exit_code = 3


class RunNotFoundError(DriftloopError):
    """A run id does not exist in the workspace."""

    exit_code = 2


class StoreError(DriftloopError):
    """The workspace is damaged or inconsistent (a frame row without its file, a foreign database)."""

    exit_code = 4


class RunInterrupted(DriftloopError):
    """The user stopped a run (Ctrl-C); everything made so far is stored and the run can be resumed."""

    exit_code = 130

    def __init__(self, run_id: str, workspace: str) -> None:
        self.run_id = run_id
        default = Path("driftloop-runs").resolve()
        ws = "" if Path(workspace).resolve() == default else f" --workspace {workspace}"
        super().__init__(
            f"run {run_id} interrupted; every finished frame is stored. Continue with: "
            f"driftloop resume {run_id}{ws}"
        )


class RenderError(DriftloopError):
    """A render request cannot be carried out (bad fps/size options, no frames, no usable ffmpeg)."""

    exit_code = 2


class RunLockedError(DriftloopError):
    """Another process is advancing the run right now (two resumes at once)."""

    exit_code = 2
