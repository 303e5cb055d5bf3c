"""SIGTERM and SIGHUP, turned into an exception in the main thread while a run advances.

``timeout``, systemd, ``docker stop`` and batch schedulers send SIGTERM; closing a terminal sends SIGHUP.
Python's default for both is to die on the spot, so the run stays marked ``running`` and the user gets no
word on how to continue. Inside :func:`stop_on_signals` they instead raise
:class:`~driftloop.errors.StopRequested` in the main thread, exactly where ``KeyboardInterrupt`` would be
raised for Ctrl-C, so the code that already stores what was made on Ctrl-C does the same for them.

Only the first signal raises: a second one (an impatient ``kill`` loop) is remembered but does not
interrupt the clean-up the first one started. A signal the process was told to ignore (``nohup`` sets
SIGHUP to ignored) stays ignored. Outside the block the old handlers are back.

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
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from driftloop.errors import StopRequested

__all__ = ["STOP_SIGNALS", "StopSignals", "stop_on_signals"]

#: The signals that stop a run cleanly (SIGINT is Python's own ``KeyboardInterrupt``).
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


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
