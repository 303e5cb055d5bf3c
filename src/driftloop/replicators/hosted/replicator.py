"""What every hosted replicator shares: the batch, each frame's fate, prices, secrets and errors.

:class:`HostedReplicator` sends a batch concurrently (a thread pool of ``concurrency`` workers) paced by
:mod:`.pacing`, retries 408/409/429/5xx answers, timeouts and dropped connections, and turns each frame's
fate into one outcome: a :class:`Copy`, a :class:`Refusal` (content policy) or a :class:`Failure` (retries
exhausted, a malformed answer). It raises only for what concerns every frame: a missing package or key, a
rejected key, an exhausted quota, an unknown model.

Secrets: keys come from the environment only (never from a spec string, which is stored), and every text
this module puts into a Failure, Refusal, info dict or exception passes through :class:`Redactor`.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from driftloop import cost
from driftloop.cost import catalogue
from driftloop.replicators.base import Copy, Failure, Frames, Outcome, Refusal, Requirements
from driftloop.replicators.hosted.canvas import decode_image, encode_png, place, unplace
from driftloop.replicators.hosted.config import PROMPT, canonical_spec, validate_common
from driftloop.replicators.hosted.messages import Redactor, short
from driftloop.replicators.hosted.outcomes import (
    Answer,
    Fatal,
    HostedAuthError,
    HostedConfigError,
    Job,
    MissingAPIKeyError,
    Problem,
    abort,
    collect,
)
from driftloop.replicators.hosted.pacing import RETRY_AFTER_LIMIT, RateLimiter, backoff_delay

__all__ = [  # the names provider modules and callers import from here
    "PROMPT",
    "Answer",
    "CallEstimate",
    "HostedAuthError",
    "HostedConfigError",
    "HostedReplicator",
    "Job",
    "MissingAPIKeyError",
    "Problem",
    "canonical_spec",
    "is_offline",
    "offline",
    "validate_common",
]

_OFFLINE: contextvars.ContextVar[bool] = contextvars.ContextVar("driftloop_hosted_offline", default=False)


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Build hosted replicators for an estimate only (``--dry-run``): no key, client or package needed, and
    nothing can be sent (a replicator built here refuses to :meth:`~HostedReplicator.replicate`)."""
    token = _OFFLINE.set(True)
    try:
        yield
    finally:
        _OFFLINE.reset(token)


def is_offline() -> bool:
    """Whether replicators are being built for an estimate only (see :func:`offline`)."""
    return _OFFLINE.get()


@dataclass(frozen=True)
class CallEstimate:
    """What one call is expected to cost and take, before any is made (``--dry-run``, ``--max-cost``).

    ``usd`` includes the input tokens where the provider's token rules are known (a conversation: its
    first turn); ``seconds`` is the catalogue's typical latency (an assumption); ``detail`` says how the
    price was reached."""

    usd: float
    seconds: float | None
    detail: str
    canvas: tuple[int, int] | None = None
    concurrency: int = 1
    rpm: float = 0.0
    turn_usd: Callable[[int], float] | None = None  # a conversation: the price of its k-th turn (1-based)

    def total_usd(self, chains: int, steps: int) -> float:
        """Money for ``steps`` copies of ``chains`` chains: each turn at its own price in a conversation."""
        if self.turn_usd is None:
            return self.usd * chains * steps
        return chains * sum(self.turn_usd(t) for t in range(1, steps + 1))

    def duration(self, chains: int, steps: int) -> float | None:
        """Seconds for ``steps`` lockstep steps of ``chains`` calls each: waves of ``concurrency`` calls of
        the typical latency, and no faster than the requests-per-minute limit allows."""
        if self.seconds is None:
            return None
        waves = -(-chains // max(1, self.concurrency))
        by_latency = steps * waves * self.seconds
        by_rpm = chains * steps * 60.0 / self.rpm if self.rpm > 0 else 0.0
        return max(by_latency, by_rpm)


class HostedReplicator:
    """The shared half of a hosted replicator; a provider module supplies the request and its reading.

    Subclasses set ``provider``, ``key_env`` and implement :meth:`_canvas`, :meth:`_params`, :meth:`_send`
    (one HTTP exchange → :class:`Answer`, exceptions allowed) and :meth:`_classify` (exception →
    :class:`Problem`), plus :meth:`price_params` for the cost table.
    """

    provider = "hosted"
    key_env = ""
    base_url_env: str | None = None

    def __init__(self, name: str, config: Any, secrets: Iterable[str | None]) -> None:
        self.name = name
        self.config = config
        self.spec = canonical_spec(name, config)
        self.redactor = Redactor(secrets)
        self._limiter = RateLimiter(config.rpm)
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        self.factors = cost.load_factors()
        self.estimate_only = is_offline()
        self.entry = catalogue.lookup(name, str(config.model))
        notice = catalogue.retirement_notice(self.entry, self.base_url_env) if self.entry else None
        self.notices: list[str] = [notice] if notice else []
        self.requirements = Requirements(
            size_multiple=1,
            device="api",
            deterministic=False,
            cost_per_image_usd=self.estimate_usd_per_image(),
        )

    # ------------------------------------------------------------------ provider hooks

    @property
    def price_model(self) -> str:
        """The model's key in the cost table (``openai:gpt-image-1``)."""
        return f"{self.name}:{self.config.model}"

    def _canvas(self, frame: np.ndarray) -> tuple[int, int]:
        raise NotImplementedError

    def _params(self, canvas: tuple[int, int]) -> dict[str, Any]:
        """Per-request parameters that depend on the canvas (e.g. OpenAI's size string)."""
        return {}

    def _send(self, job: Job) -> Answer:
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> Problem:
        raise NotImplementedError

    def price_params(self, answer: Answer | None, job: Job | None) -> tuple[str | None, str | None]:
        """(quality, size) to look the price up with; ``None`` where unknown."""
        return None, None

    def price_options(self) -> list[tuple[str | None, str | None]]:
        """Every (quality, size) a frame of this config could be priced at (for the up-front estimate)."""
        return [(None, None)]

    # ------------------------------------------------------------------ cost

    def estimate_usd_per_image(self, factors: Any = None) -> float:
        """Money per copy before the run, from the cost table: the highest price this config could be
        charged (``auto`` quality or size may land on any of them), so a budget is never underestimated.
        0.0 when the table has no price for the model."""
        factors = factors or self.factors
        prices = [factors.price(self.price_model, q, s) for q, s in self.price_options()]
        known = [p.usd for p in prices if p is not None]
        return max(known) if known else 0.0

    def hosted_estimate(self, factors: Any) -> Any:
        """Per-image energy and price for the engine; adopts the run's factor table for per-copy prices."""
        self.factors = factors
        self.requirements = replace(
            self.requirements, cost_per_image_usd=self.estimate_usd_per_image(factors)
        )
        options = self.price_options()
        quality, size = options[0] if len(options) == 1 else (None, None)
        return cost.hosted_estimate(factors, self.price_model, quality, size)

    def estimate_price(self, canvas: tuple[int, int], factors: Any) -> Any:
        """A :class:`~driftloop.cost.Price` for one call on ``canvas`` before it is made (input tokens
        included where the provider's token rules are known); ``None`` to fall back to the list price."""
        return None

    def call_estimate(self, height: int, width: int, factors: Any = None) -> CallEstimate:
        """One call's price and time for a height×width frame, nothing sent: by the provider's rule for
        that size where the catalogue has one (tokens, megapixels), else the dearest list price the config
        could be charged. The run's per-copy price (``requirements.cost_per_image_usd``, which a budget
        checks) becomes this estimate."""
        factors = factors or self.factors
        canvas = self._canvas(np.zeros((height, width, 3), np.uint8))
        price = self.estimate_price(canvas, factors)
        if price is not None:
            usd, detail = price.usd, price.source
        else:
            listed = self.estimate_usd_per_image(factors)
            usd = listed
            found = factors.price(self.price_model)
            when = f", as of {found.as_of}" if found and found.as_of else ""
            detail = f"list price of {self.price_model}{when}" if listed else "no price known"
        self.requirements = replace(self.requirements, cost_per_image_usd=usd)
        latency = self.entry.get("latency_s") if self.entry else None
        seconds = float(latency) if latency else None
        return CallEstimate(usd, seconds, detail, canvas, self.config.concurrency, self.config.rpm)

    def model_missing(self, line: str) -> str:
        """The message for a model the provider does not know (retired, misspelt), naming the catalogue's
        replacement when it has one."""
        hint = catalogue.replacement_hint(self.name, str(self.config.model))
        return f"model {self.config.model!r} not found{hint}: {line}"

    def token_counts(self, answer: Answer) -> dict[str, int] | None:
        """The answer's billed tokens as ``input_text``, ``input_image``, ``output`` (None: not reported)."""
        return None

    def _price(self, answer: Answer | None, job: Job | None) -> dict[str, Any]:
        """A copy's price: from the tokens the answer reports when the table has token rates (that counts
        the input image too), else the per-image list price."""
        counts = self.token_counts(answer) if answer is not None else None
        by_tokens = self.factors.token_price(self.price_model, counts) if counts else None
        if by_tokens is not None:
            return {"usd": by_tokens.usd, "usd_source": f"cost table {self.price_model}: {by_tokens.source}"}
        quality, size = self.price_params(answer, job)
        price = self.factors.price(self.price_model, quality, size)
        if price is None and job is not None:
            estimated = self.estimate_price(job.placement.canvas, self.factors)
            if estimated is not None:
                return {"usd": estimated.usd, "usd_source": f"estimated: {estimated.source}"}
        if price is None:
            return {}
        return {"usd": price.usd, "usd_source": f"cost table {self.price_model}: {price.describe()}"}

    # ------------------------------------------------------------------ the batch

    def replicate(self, frames: Frames, seeds: list[int]) -> list[Outcome]:
        """One outcome per frame, in input order; frames are sent concurrently.

        Workers are daemon threads: after Ctrl-C the process does not wait for requests in flight.
        """
        if self.estimate_only:
            raise HostedConfigError(f"{self.spec} was built for an estimate only; nothing is sent")
        stop = threading.Event()
        jobs = [self._job(i, f, s) for i, (f, s) in enumerate(zip(frames, seeds, strict=True))]
        results: list[Outcome | Fatal | BaseException | None] = [None] * len(jobs)
        try:
            self._in_threads(self._worker(jobs, results, stop), min(self.config.concurrency, len(jobs)))
        except KeyboardInterrupt as exc:
            stop.set()
            abort(exc, results)
        finally:
            stop.set()
        return collect(results)

    def _worker(
        self,
        jobs: Sequence[Job],
        results: list[Outcome | Fatal | BaseException | None],
        stop: threading.Event,
    ) -> Callable[[], None]:
        """A worker's loop: take the next job, run it, store its result, until none is left or ``stop``."""
        pending = iter(range(len(jobs)))
        lock = threading.Lock()

        def work() -> None:
            while not stop.is_set():
                with lock:
                    i = next(pending, None)
                if i is None:
                    return
                try:
                    results[i] = self._run(jobs[i], stop)
                except Exception as exc:  # a bug: re-raised in the caller's thread (Ctrl-C is handled above)
                    results[i] = exc
                    stop.set()

        return work

    def _in_threads(self, work: Callable[[], None], workers: int) -> None:
        """Run ``work`` in this thread (one worker) or in ``workers`` daemon threads, and wait for them."""
        if workers <= 1:
            work()
            return
        threads = [
            threading.Thread(target=work, name=f"driftloop-{self.name}-{k}", daemon=True)
            for k in range(workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _job(self, index: int, frame: np.ndarray, seed: int) -> Job:
        canvas = self._canvas(frame)
        array, placement = place(frame, canvas, self.config.pad, self.config.resample)
        return Job(index, int(seed), encode_png(array), placement, self._params(canvas))

    def _jitter_delay(self, attempt: int, retry_after: float | None) -> float:
        with self._rng_lock:
            return backoff_delay(attempt, self.config.backoff, self.config.max_wait, retry_after, self._rng)

    def _base_info(self, job: Job) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.config.model,
            **job.params,
            **job.placement.to_dict(),
        }

    def _run(self, job: Job, stop: threading.Event) -> Outcome | Fatal | None:
        """One frame: attempts until an image, a refusal, a lost frame or the retry budget is spent."""
        attempts, waited, errors = 0, 0.0, []
        while True:
            waited += self._limiter.acquire(stop)
            if stop.is_set():  # another frame hit a fatal error (or a bug); do not spend more requests
                return None
            attempts += 1
            answer, problem = self._attempt(job)
            info = {
                **self._base_info(job),
                "attempts": attempts,
                "retries": attempts - 1,
                "request_id": (answer.request_id if answer else None)
                or (problem.request_id if problem else None),
                "waited_s": round(waited, 3),
            }
            if errors:
                info["errors"] = errors[-5:]
            if problem is None and answer is not None:
                made = self._read_copy(job, answer, info)
                if isinstance(made, Copy):
                    return made
                problem = made
            assert problem is not None
            message = self._note_problem(problem, answer, info)
            outcome = self._verdict(problem, message, info, attempts, errors, stop)
            if outcome is not None:
                return outcome
            delay = self._jitter_delay(attempts, problem.retry_after)
            waited += delay
            if stop.wait(delay):
                return None  # the batch was stopped: nothing made, nothing final

    def _attempt(self, job: Job) -> tuple[Answer | None, Problem | None]:
        """One request: the answer (if the exchange completed) and what went wrong (if anything)."""
        answer: Answer | None = None
        try:
            answer = self._send(job)
            problem = answer.problem
        except Exception as exc:
            problem = self._classify(exc)
        return answer, problem

    def _read_copy(self, job: Job, answer: Answer, info: dict[str, Any]) -> Copy | Problem:
        """The copy an answer holds, with its facts and price; a malformed image is a lost frame."""
        try:
            image = decode_image(answer.image or b"")
            frame = unplace(image, job.placement, self.config.resample)
        except ValueError as exc:
            return Problem("failure", f"malformed response: {exc}")
        info.update(answer.facts)
        info["returned_size"] = [image.width, image.height]
        info.update(self._price(answer, job))
        return Copy(frame, self.redactor.data(info))

    def _note_problem(self, problem: Problem, answer: Answer | None, info: dict[str, Any]) -> str:
        """Put a failed attempt's status, code and facts in ``info``; returns its redacted message line."""
        redact = self.redactor
        message = redact.text(short(problem.message))
        if problem.status is not None:
            info["status"] = problem.status
        if problem.code:
            info["code"] = redact.text(problem.code)
        if answer is not None and answer.facts:
            info.update(answer.facts)
        return message

    def _verdict(
        self,
        problem: Problem,
        message: str,
        info: dict[str, Any],
        attempts: int,
        errors: list[str],
        stop: threading.Event,
    ) -> Outcome | Fatal | None:
        """A failed attempt's consequence for its frame, or ``None``: wait and ask again (``message`` is then
        added to ``errors``). A fatal problem stops the whole batch."""
        redact = self.redactor
        if problem.kind == "fatal":
            stop.set()
            return Fatal((problem.error or HostedAuthError)(message))
        if problem.kind == "refusal":
            return Refusal(message, redact.data(info))
        if problem.kind == "failure":
            return Failure(f"{self.provider} {self.config.model}: {message}", redact.data(info))
        errors.append(message)
        if problem.retry_after is not None and problem.retry_after > RETRY_AFTER_LIMIT:
            return Failure(
                f"{self.provider} {self.config.model}: the server asks to retry after "
                f"{problem.retry_after:.0f} s (more than {RETRY_AFTER_LIMIT:.0f} s): later, resume the "
                f"run with --retry-failed; last error: {message}",
                redact.data(info),
            )
        if attempts > self.config.retries:
            info["errors"] = errors[-5:]
            return Failure(
                f"{self.provider} {self.config.model}: gave up after {self.config.retries} retries "
                f"({attempts} attempts); last error: {message}",
                redact.data(info),
            )
        return None

    # ------------------------------------------------------------------ description

    def _describe_common(self) -> dict[str, Any]:
        c = self.config
        price = self.factors.price(self.price_model)
        return {
            "kind": "hosted",
            "provider": self.provider,
            "model": c.model,
            "prompt": c.prompt,
            "pad": c.pad,
            "resample": c.resample,
            "retries": c.retries,
            "timeout_s": c.timeout,
            "backoff_s": c.backoff,
            "max_wait_s": c.max_wait,
            "concurrency": c.concurrency,
            "rpm": c.rpm,
            "key_env": self.key_env,
            "estimated_usd_per_image": self.requirements.cost_per_image_usd,
            "price": price.describe() if price else f"no price for {self.price_model} in the cost table",
            "catalogue": self._catalogue_facts(),
        }

    def _catalogue_facts(self) -> dict[str, Any] | None:
        """The model's status as the catalogue lists it, stored with the run (dated)."""
        e = self.entry
        if e is None:
            return None
        return {
            "status": e.status,
            "shutdown": str(e.shutdown) if e.shutdown else None,
            "replacement": e.replacement,
            "source": e.source,
            "read": str(e.read),
            "confidence": e.confidence,
        }
