"""SIGTERM/SIGHUP become StopRequested in the main thread inside stop_on_signals, and only there.

Each test starts from a terminal's dispositions, whatever the suite inherited (under ``nohup pytest &``
SIGHUP and SIGINT are ignored, and stop_on_signals rightly keeps an ignored signal ignored).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from driftloop._signals import WORKER_ENV, as_worker, handle_stop_signals, stop_on_signals, worker_env
from driftloop.errors import StopRequested


@pytest.fixture(autouse=True)
def _as_in_a_terminal() -> Iterator[None]:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    handle_stop_signals()
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _raise_self(sig: signal.Signals) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(1.0)  # the handler runs between bytecodes, long before this ends
    pytest.fail(f"{sig.name} did not interrupt")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_becomes_stop_requested_and_handlers_are_restored(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    with pytest.raises(StopRequested) as exc, stop_on_signals() as stop:
        _raise_self(sig)
    assert exc.value.signum == sig and exc.value.exit_code == 128 + sig
    assert stop.received == sig and stop.count == 1
    assert signal.getsignal(sig) is before


def test_a_second_signal_does_not_interrupt_the_clean_up() -> None:
    cleaned = False
    with pytest.raises(StopRequested), stop_on_signals() as stop:
        try:
            _raise_self(signal.SIGTERM)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # an impatient second kill while storing what was made
            time.sleep(0.05)
            cleaned = True
    assert cleaned and stop.count == 2


def test_held_defers_the_signal_to_the_end_of_the_block() -> None:
    done = []
    with pytest.raises(StopRequested), stop_on_signals() as stop:
        with stop.held():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
            done.append("write finished")
        done.append("never")
    assert done == ["write finished"]


def test_ignored_signals_stay_ignored() -> None:
    """``nohup`` ignores SIGHUP; a run started under it must not stop when the terminal closes."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_on_signals() as stop:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
        assert stop.received is None
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_outside_the_main_thread_nothing_is_installed() -> None:
    seen = []

    def worker() -> None:
        with stop_on_signals() as stop:
            seen.append((signal.getsignal(signal.SIGTERM), stop.received))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [(before, None)]


def test_a_worker_handles_stop_signals_its_parent_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process driftloop started (worker_env) restores SIGINT/SIGTERM/SIGHUP however it inherited them."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        for sig in before:
            signal.signal(sig, signal.SIG_IGN)  # as under `nohup … &`
        monkeypatch.delenv(WORKER_ENV, raising=False)
        assert not as_worker() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a user's own run
        assert worker_env({"PATH": "/bin"}) == {"PATH": "/bin", WORKER_ENV: "1"}
        monkeypatch.setenv(WORKER_ENV, "1")
        assert as_worker() and WORKER_ENV not in os.environ  # its own children are ordinary again
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL is signal.getsignal(signal.SIGHUP)
        with pytest.raises(StopRequested), stop_on_signals():
            _raise_self(signal.SIGHUP)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
