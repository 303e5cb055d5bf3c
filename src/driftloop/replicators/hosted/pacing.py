"""Pacing and retries of hosted requests: a requests-per-minute limit shared by every thread (retries count),
exponential backoff with jitter capped at ``max_wait``, or exactly as long as a ``Retry-After`` header asks
(up to :data:`RETRY_AFTER_LIMIT`; a longer wait ends the frame as a failure, to resume later).
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

RETRY_STATUSES = frozenset({408, 409, 429})
"""HTTP statuses asked again besides 5xx: timeout, conflict, rate limit."""


class RateLimiter:
    """At most ``rpm`` requests per minute across all threads: a minimum interval between request starts.

    ``rpm <= 0`` means no limit. The first request goes at once; the k-th waits until k·60/rpm seconds.
    """

    def __init__(self, rpm: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 60.0 / rpm if rpm > 0 else 0.0
        self._clock = clock
        self._next = -math.inf
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event | None = None) -> float:
        """Wait for this request's slot; returns the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        wait = start - now
        if wait > 0:
            (stop or threading.Event()).wait(wait)
        return max(wait, 0.0)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms``, or ``Retry-After`` as seconds (decimals accepted) or an HTTP date."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


RETRY_AFTER_LIMIT = 900.0  # seconds: a longer Retry-After is an outage, not a pause


def backoff_delay(
    attempt: int, base: float, cap: float, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    With a server-given ``retry_after``: that long plus up to 10 % jitter (so threads do not return in
    lockstep); coming back sooner than asked would only spend a retry on another refusal. Otherwise
    exponential with "equal jitter": uniform in [d/2, d] where d = min(cap, base · 2^(attempt-1)).
    """
    if retry_after is not None:
        return retry_after * (1.0 + 0.1 * rng.random())
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    return ceiling * (0.5 + 0.5 * rng.random())
