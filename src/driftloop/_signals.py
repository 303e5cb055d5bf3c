"""SIGTERM and SIGHUP, turned into an exception in the main thread while a run advances.

``timeout``, systemd, ``docker stop`` and batch schedulers send SIGTERM; closing a terminal sends SIGHUP.
Python's default for both is to die on the spot, so the run stays marked ``running`` and the user gets no
word on how to continue. Inside :func:`stop_on_signals` they instead raise
:class:`~driftloop.errors.StopRequested` in the main thread, exactly where ``KeyboardInterrupt`` would be
raised for Ctrl-C, so the code that already stores what was made on Ctrl-C does the same for them.

Only the first signal raises: a second one (an impatient ``kill`` loop) is remembered but does not
interrupt the clean-up the first one started. A signal the process was told to ignore (``nohup`` sets
SIGHUP to ignored) stays ignored. Outside the block the old handlers are back.

A *worker* process driftloop starts itself (a run the gallery started) is another matter: its parent
stops it with SIGINT, and must be able to whatever the parent inherited (``nohup driftloop serve &``
ignores SIGINT and SIGHUP, and children inherit that). Such a process is started with
:func:`worker_env`; :func:`as_worker`, called first thing by the command line, then gives it back the
default dispositions (:func:`handle_stop_signals`): SIGINT is ``KeyboardInterrupt``, SIGTERM and SIGHUP
stop the run.

Typical use, around the loop that advances the chains::

    with stop_on_signals() as stop:
        try:
            advance(...)
        except StopRequested as exc:
            ...  # store what was made, mark the run stopped
            raise RunStopped(run_id, workspace, exc.signum) from None
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from driftloop.errors import StopRequested

__all__ = [
    "STOP_SIGNALS",
    "WORKER_ENV",
    "StopSignals",
    "as_worker",
    "handle_stop_signals",
    "stop_on_signals",
    "worker_env",
]

#: The signals that stop a run cleanly (SIGINT is Python's own ``KeyboardInterrupt``).
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


#: Set in the environment of a worker process driftloop starts: "handle stop signals, ignored or not".
WORKER_ENV = "DRIFTLOOP_WORKER"


def handle_stop_signals() -> None:
    """SIGINT back to ``KeyboardInterrupt`` and SIGTERM/SIGHUP to their defaults (which
    :func:`stop_on_signals` then turns into a clean stop), whatever this process inherited.

    Also usable as a ``preexec_fn``: a disposition set between fork and exec survives the exec as the
    default, and Python installs ``KeyboardInterrupt`` for a SIGINT it finds at its default.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def worker_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a worker process driftloop starts: ``env`` (default: this one's) with the
    marker that makes the worker's :func:`as_worker` restore its stop signals."""
    return {**(os.environ if env is None else env), WORKER_ENV: "1"}


def as_worker() -> bool:
    """In a process started with :func:`worker_env`: restore the stop signals and return True (the marker is
    removed, so the worker's own children are ordinary processes again)."""
    if os.environ.pop(WORKER_ENV, "") != "1":
        return False
    handle_stop_signals()
    return True


class StopSignals:
    """What :func:`stop_on_signals` yields: which signal arrived (if any), and a way to hold it back.

    ``received`` is the first signal's number, or ``None``; ``count`` how many arrived in all.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.count = 0
        self._held = 0
        self._pending = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.received is not None:
            return  # the first one is being acted on; do not interrupt its clean-up
        self.received = signum
        if self._held:
            self._pending = True
            return
        raise StopRequested(signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Defer a signal that arrives inside this block to its end (for a write that must not be cut)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if not self._held and self._pending:
            self._pending = False
            assert self.received is not None
            raise StopRequested(self.received)

    def check(self) -> None:
        """Raise :class:`StopRequested` now if a signal arrived and was not raised yet (a held one)."""
        if self._pending and not self._held:
            self._pending = False
            assert self.received is not None
            raise StopRequested(self.received)


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[StopSignals]:
    """Turn ``signals`` into :class:`StopRequested` in the main thread for the duration of the block.

    Handlers can only be installed from the main thread; called from another thread (a web server's
    worker, a test runner's thread) this changes nothing and still yields a usable :class:`StopSignals`.
    The previous handlers are restored on the way out, whatever happens inside.
    """
    state = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous: dict[int, signal.Handlers | object] = {}
    try:
        for signum in signals:
            old = signal.getsignal(signum)
            if old is signal.SIG_IGN:
                continue  # nohup and friends asked for this signal to be ignored: keep it so
            previous[signum] = old
            signal.signal(signum, state._handle)
        yield state
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)  # type: ignore[arg-type]
