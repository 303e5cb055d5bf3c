"""One hosted request's fate: the answer or the problem of an attempt, and what a stopped batch keeps.

An attempt ends in an :class:`Answer` (the image, or a :class:`Problem` the provider stated in a 200) or an
exception the provider module turns into a :class:`Problem`. A batch stopped by a problem that concerns every
frame (:class:`Fatal`: a rejected key, an exhausted quota) or by Ctrl-C keeps what it had finished
(:func:`abort`): copies are paid for and must be stored; a refusal or a pending frame is asked again on
resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from driftloop.errors import DriftloopError
from driftloop.replicators.base import BatchAborted, Copy, Failure, Outcome
from driftloop.replicators.hosted.canvas import Placement


class HostedConfigError(DriftloopError):
    """A hosted model cannot be used as configured (package, key, model, account); nothing was written."""

    exit_code = 2


class MissingAPIKeyError(HostedConfigError):
    """The environment variable holding the API key is not set."""


class HostedAuthError(HostedConfigError):
    """The provider rejected the key or the account (401/403, an exhausted quota, an unknown model)."""


class ThreadLostError(HostedConfigError):
    """The provider no longer has a conversation a chain continues (expired, deleted: HTTP 404). Every
    frame made is stored; ``driftloop resume RUN --restart-thread`` begins a new thread from each chain's
    last frame. Exit code 6."""

    exit_code = 6


@dataclass
class Problem:
    """Why an attempt did not give an image.

    ``kind``: ``transient`` (retry), ``refusal`` (content policy), ``failure`` (this frame is lost) or
    ``fatal`` (every frame is: bad key, no quota, unknown model; raised as :class:`HostedAuthError`).
    """

    kind: Literal["transient", "refusal", "failure", "fatal"]
    message: str
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None
    request_id: str | None = None
    error: type[HostedConfigError] | None = None  # a fatal problem's error (default: HostedAuthError)


@dataclass
class Answer:
    """A successful exchange: the encoded image (or why there is none) and facts to store with the copy."""

    image: bytes | None = None
    problem: Problem | None = None
    request_id: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    raw: Any = None  # the provider's own answer, for a conversation to carry on (never stored)


@dataclass
class Fatal:
    error: HostedAuthError


def abort(cause: BaseException, results: Sequence[object]) -> NoReturn:
    """Stop a batch: with :class:`BatchAborted` when some frames were already made (so they are kept),
    else with the cause itself."""
    done = kept(results)
    if any(m is not None for m in done):
        raise BatchAborted(cause, done) from None
    raise cause


def kept(results: Sequence[object]) -> list[Outcome | None]:
    """What a stopped batch had finished: copies (paid for) and malformed answers (final); a refusal is
    dropped (``None``: asked again on resume, it costs nothing), and so is every frame still pending."""
    return [r if isinstance(r, Copy | Failure) else None for r in results]


def collect(results: Sequence[Outcome | Fatal | BaseException | None]) -> list[Outcome]:
    """A finished batch's outcomes; a bug, then a fatal provider error, stops it (keeping what was made)."""
    for r in results:
        if isinstance(r, BaseException):
            abort(r, results)
    for r in results:
        if isinstance(r, Fatal):
            abort(r.error, results)
    return [r if r is not None else Failure("cancelled: the batch was stopped") for r in results]  # type: ignore[misc]


@dataclass(frozen=True)
class Job:
    """One frame's request: the canvas to send and what is needed to read the answer back."""

    index: int
    seed: int
    png: bytes
    placement: Placement
    params: dict[str, Any]
