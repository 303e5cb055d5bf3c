"""The exit-code table and the errors that carry those codes."""

from __future__ import annotations

import errno
import signal
import sqlite3
from pathlib import Path

import pytest

import driftloop  # noqa: F401 - imports every module, so every DriftloopError subclass is defined
from driftloop.errors import (
    EXIT_CODES,
    DriftloopError,
    ReadOnlyWorkspaceError,
    RunInterrupted,
    RunLockedError,
    RunStopped,
    StopRequested,
    StorageFullError,
    exit_codes_help,
    storage_error,
)


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


def test_every_error_class_uses_a_documented_code() -> None:
    documented = {code for code, _ in EXIT_CODES}
    for cls in _subclasses(DriftloopError):
        if "exit_code" in vars(cls):
            assert cls.exit_code in documented, (
                f"{cls.__qualname__}.exit_code {cls.exit_code} is not documented"
            )
    assert RunStopped("r", "ws", signal.SIGTERM).exit_code == 143
    assert RunStopped("r", "ws", signal.SIGHUP).exit_code == 129
    assert RunInterrupted("r", "ws").exit_code == 130
    assert RunLockedError("r").exit_code == 2


def test_help_table_lists_each_code_once() -> None:
    lines = exit_codes_help().splitlines()
    assert [int(line.split()[0]) for line in lines] == [code for code, _ in EXIT_CODES]
    assert len({code for code, _ in EXIT_CODES}) == len(EXIT_CODES)


def test_storage_full_message_says_what_is_stored_and_how_to_go_on(tmp_path: Path) -> None:
    err = StorageFullError(tmp_path / "ws", 17, "20261201-abc")
    assert str(err) == (
        f"no space left on the device holding {tmp_path / 'ws'}; 17 frames are stored; "
        f"free space and run `driftloop resume 20261201-abc --workspace {tmp_path / 'ws'}`"
    )
    assert err.exit_code == 5


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), StorageFullError),
        (OSError(errno.EFBIG, "File too large"), StorageFullError),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), StorageFullError),
        (sqlite3.OperationalError("database or disk is full"), StorageFullError),
        (sqlite3.OperationalError("disk I/O error"), StorageFullError),
        (OSError(errno.EROFS, "Read-only file system"), ReadOnlyWorkspaceError),
        (sqlite3.OperationalError("attempt to write a readonly database"), ReadOnlyWorkspaceError),
        (OSError(errno.ENOENT, "No such file"), type(None)),
        (ValueError("something else"), type(None)),
    ],
)
def test_storage_error_classifies_what_the_os_and_sqlite_say(exc: BaseException, kind: type) -> None:
    assert isinstance(storage_error(exc, "ws", 3, "run"), kind)


def test_storage_error_looks_through_chained_causes() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("writing frames failed") from inner
    except RuntimeError as outer:
        found = storage_error(outer, "ws", 3, "run")
    assert isinstance(found, StorageFullError) and found.frames_stored == 3


def test_stop_requested_is_not_an_exception() -> None:
    """Like KeyboardInterrupt, no ``except Exception`` on the way up may swallow it."""
    stop = StopRequested(signal.SIGTERM)
    assert not isinstance(stop, Exception)
    assert (stop.signal_name, stop.exit_code) == ("SIGTERM", 143)
