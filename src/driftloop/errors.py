"""Errors a user can cause.

Every one carries a message that names the thing at fault and the fix, and an exit code; the CLI prints
the message without a traceback. Anything that is not a ``DriftloopError`` is a bug.

:data:`EXIT_CODES` is the one list of what each exit code means: ``driftloop --help`` and the README print
it, and every error class below uses one of its codes (a test holds them to it).
"""

from __future__ import annotations

import errno
import signal
from pathlib import Path

#: Every exit code the CLI can end with, and what it means, in the words ``driftloop --help`` shows.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (1, "unexpected error: a bug in driftloop or a plug-in (please report it with the traceback)"),
    (2, "bad input, option, model spec or run id, or the run is being advanced by another process"),
    (3, "model weights missing, unreachable or not what was expected"),
    (4, "workspace unusable: a file instead of a folder, a foreign or damaged database, a frame file gone"),
    (5, "something ran out: the --max-cost budget, memory, or the workspace's storage (full or read-only); "
     "the run is stopped and resumable"),
    (6, "a conversation's thread is gone at the provider (expired or deleted); every frame made is stored: "
     "resume with --restart-thread"),
    (129, "stopped by SIGHUP (terminal closed); the run is stored and resumable"),
    (130, "stopped by Ctrl-C (SIGINT); the run is stored and resumable"),
    (143, "stopped by SIGTERM (timeout, systemd, docker stop, schedulers); the run is stored and resumable"),
)  # fmt: skip


def exit_codes_help() -> str:
    """The exit-code table as plain lines (``  2  bad input ...``), for ``--help`` and the README."""
    return "\n".join(f"{code:>5}  {meaning}" for code, meaning in EXIT_CODES)


#: ``errno`` values that mean "the storage holding the workspace takes no more bytes".
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
#: ``errno`` values that mean "the storage holding the workspace cannot be written at all".
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


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


class RunLockedError(DriftloopError):
    """Another process is advancing this run right now; a second one must not write into it."""

    exit_code = 2

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id} is being advanced by another process right now; "
            "wait for it to finish (see `driftloop runs`) or stop that process first"
        )


def resume_command(run_id: str, workspace: str | Path) -> str:
    """``driftloop resume RUN`` plus ``--workspace DIR`` unless DIR is the default workspace."""
    default = Path("driftloop-runs").resolve()
    ws = "" if Path(workspace).resolve() == default else f" --workspace {workspace}"
    return f"driftloop resume {run_id}{ws}"


class RunInterrupted(DriftloopError):
    """The user stopped a run (Ctrl-C); everything made so far is stored and the run can be resumed."""

    exit_code = 130

    def __init__(self, run_id: str, workspace: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id} interrupted; every finished frame is stored. Continue with: "
            f"{resume_command(run_id, workspace)}"
        )


class StopRequested(BaseException):
    """SIGTERM or SIGHUP arrived while a run advanced; raised in the main thread like ``KeyboardInterrupt``.

    A ``BaseException`` for the same reason as ``KeyboardInterrupt``: no ``except Exception`` on the way
    up may swallow it. The run's code turns it into :class:`RunStopped` once the frames are stored.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.signal_name = signal.Signals(self.signum).name
        self.exit_code = 128 + self.signum
        super().__init__(f"stopped by {self.signal_name}")


class RunStopped(DriftloopError):
    """A run was stopped by a signal (SIGTERM, SIGHUP); every finished frame is stored and it can resume.

    Exits ``128 + signal`` (143 for SIGTERM, 129 for SIGHUP), as a shell reports a process the signal
    killed, so schedulers and ``timeout`` see the usual code.
    """

    def __init__(self, run_id: str, workspace: str | Path, signum: int) -> None:
        self.run_id = run_id
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        name = signal.Signals(self.signum).name
        super().__init__(
            f"run {run_id} stopped by {name}; every finished frame is stored. Continue with: "
            f"{resume_command(run_id, workspace)}"
        )


class StorageError(DriftloopError):
    """The storage holding the workspace cannot take more (full, over quota, too large a file, read-only).

    The run is stopped with every complete frame stored and nothing half-written, so the fix is outside
    driftloop (free space, make it writable) followed by a resume.
    """

    exit_code = 5


class StorageFullError(StorageError):
    """No space left (ENOSPC, EFBIG, EDQUOT) on the device holding the workspace."""

    def __init__(self, workspace: str | Path, frames_stored: int, run_id: str) -> None:
        self.workspace = Path(workspace)
        self.frames_stored = frames_stored
        self.run_id = run_id
        super().__init__(
            f"no space left on the device holding {workspace}; {frames_stored} frames are stored; "
            f"free space and run `{resume_command(run_id, workspace)}`"
        )


class ReadOnlyWorkspaceError(StorageError):
    """The workspace (or the device holding it) cannot be written: read-only mount or no permission."""

    def __init__(
        self, workspace: str | Path, frames_stored: int | None = None, run_id: str | None = None
    ) -> None:
        self.workspace = Path(workspace)
        self.frames_stored = frames_stored
        self.run_id = run_id
        message = f"the workspace {workspace} cannot be written (read-only storage or no permission)"
        if run_id is None:
            message += "; make it writable or pass another --workspace"
        else:
            message += (
                f"; {frames_stored} frames are stored; make it writable and run "
                f"`{resume_command(run_id, workspace)}`"
            )
        super().__init__(message)


# SQLite loses the errno: a full disk is "database or disk is full", and a write refused by the file-size
# limit (EFBIG) or a full device mid-page is "disk I/O error" (SQLITE_IOERR_WRITE). The latter can also be a
# failing disk; the message's "free space and resume" is still the first thing to try.
_SQLITE_FULL_TEXTS = ("disk is full", "disk i/o error")


def storage_error(
    exc: BaseException, workspace: str | Path, frames_stored: int, run_id: str
) -> StorageError | None:
    """The :class:`StorageError` an ``OSError`` or ``sqlite3`` error stands for, or ``None`` for any other.

    An ``OSError`` is classified by its ``errno``; a ``sqlite3`` error, which has lost it, by its error name
    and text (see ``_SQLITE_FULL_TEXTS``). Chained causes are looked at too, so a wrapped error is found.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "errno", None)
        text = str(current).lower()
        name = getattr(current, "sqlite_errorname", "") or ""
        if (
            (isinstance(current, OSError) and code in NO_SPACE_ERRNOS)
            or name == "SQLITE_FULL"
            or any(t in text for t in _SQLITE_FULL_TEXTS)
        ):
            return StorageFullError(workspace, frames_stored, run_id)
        if (
            (isinstance(current, OSError) and code in READ_ONLY_ERRNOS)
            or name.startswith("SQLITE_READONLY")
            or "readonly database" in text
        ):
            return ReadOnlyWorkspaceError(workspace, frames_stored, run_id)
        current = current.__cause__ or current.__context__
    return None


def storage_problem(exc: BaseException, workspace: str | Path) -> StorageError | None:
    """Like :func:`storage_error`, for a workspace being opened (no run yet): what to do, without a run id."""
    found = storage_error(exc, workspace, 0, "")
    if isinstance(found, StorageFullError):
        return StorageError(f"no space left on the device holding {workspace}; free space and try again")
    if isinstance(found, ReadOnlyWorkspaceError):
        return ReadOnlyWorkspaceError(workspace)
    return found


class RenderError(DriftloopError):
    """A render request cannot be carried out (bad fps/size options, no frames, no usable ffmpeg)."""

    exit_code = 2
