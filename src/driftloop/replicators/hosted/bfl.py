"""Black Forest Labs' API (FLUX.2 [klein/pro/max/flex], FLUX.1 Kontext [pro/max]) as a replicator.

BFL's API is asynchronous: a copy is one submit (``POST /v1/<model>`` with the frame as base64
``input_image`` and the trend's prompt), then polls of the returned ``polling_url`` (statuses ``Pending``,
``Ready``, ``Request Moderated``, ``Content Moderated``, ``Error``, ``Task not found``) with a growing
interval, until ``Ready`` or the per-copy ``deadline``, then the image fetched from the signed
``result.sample`` URL (valid for about ten minutes; an expired one is asked for again once through the
polling URL).

Money: only a failed *submit* is asked again (429, 5xx, timeouts, dropped connections), because a submit
that went through is billed; whatever goes wrong after it (a poll that never ends, an error, a result that
cannot be fetched) ends the frame as a failure, to be asked again with ``--retry-failed``. A 402 (out of
credits) stops the batch, keeping the copies already made. A copy is priced from the credits the submit
answer reports (1 credit = $0.01), else from the catalogue's per-megapixel rates (FLUX.2: first output MP,
then each further output MP and each input MP) or per-image price (Kontext).

Sizes: FLUX.2 takes any width and height in multiples of 16 up to 4 MP, so a frame is sent at its own size
where it fits (no padding, no resize); Kontext takes an aspect ratio (21:9 to 9:21) and answers at about one
megapixel, read back to the frame's size (see :mod:`driftloop.replicators.hosted.canvas`).

Key: ``BFL_API_KEY`` (header ``x-key``), never sent to the result URL. Base URL: ``BFL_BASE_URL`` (default
``https://api.bfl.ai``; ``https://api.eu.bfl.ai`` and ``https://api.us.bfl.ai`` are regional). Plain HTTP
through ``httpx``, imported when a replicator is built.
"""

from __future__ import annotations

import base64
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from driftloop.cost import Price, catalogue
from driftloop.errors import SpecError
from driftloop.replicators.base import Backend, WeightsStatus
from driftloop.replicators.hosted.canvas import native_canvas
from driftloop.replicators.hosted.config import HostedConfig, validate_common
from driftloop.replicators.hosted.messages import body_message, short, status_line
from driftloop.replicators.hosted.pacing import RETRY_STATUSES, parse_retry_after
from driftloop.replicators.hosted.replicator import (
    Answer,
    HostedConfigError,
    HostedReplicator,
    Job,
    MissingAPIKeyError,
    Problem,
    is_offline,
)
from driftloop.replicators.known import key_status

KEY_ENV = "BFL_API_KEY"
BASE_URL_ENV = "BFL_BASE_URL"
DEFAULT_BASE_URL = "https://api.bfl.ai"
DEFAULT_MODEL = "flux-2-pro"
USD_PER_CREDIT = 0.01
PENDING = "Pending"
READY = "Ready"
MODERATED = frozenset({"Request Moderated", "Content Moderated"})
NOT_FOUND = "Task not found"
NOT_FOUND_POLLS = 3  # "Task not found" right after a submit is normal for a moment
EXPIRED_STATUSES = frozenset({401, 403, 404, 410})  # what a storage server answers for a stale signed URL
FLUX2_RULE = {"multiple_of": 16, "min_edge": 64, "max_pixels": 4_000_000, "max_aspect": 4.0}


@dataclass(frozen=True)
class BFLConfig(HostedConfig):
    """``bfl:flux-2-pro,safety_tolerance=2,deadline=300,concurrency=4``.

    ``deadline``: seconds a copy may take from submit to fetched image (then it is a failure);
    ``poll``/``poll_max``: the first and the longest wait between polls (each wait 1.5× the last).
    ``timeout`` is per HTTP request; ``retries``/``backoff``/``max_wait`` govern re-submits only.
    ``safety_tolerance`` 0 (strict) to 5 (6 for Kontext); ``prompt_upsampling`` off so the prompt is the
    trend's own; ``seed=true`` sends each step's seed. The shared fields are :class:`HostedConfig`'s
    (``SPEC_ORDER`` keeps the spec strings BFL runs were stored with).
    """

    SPEC_ORDER = (
        "model", "prompt", "safety_tolerance", "output_format", "prompt_upsampling", "seed", "pad",
        "resample", "retries", "timeout", "deadline", "poll", "poll_max", "backoff", "max_wait",
        "concurrency", "rpm",
    )  # fmt: skip

    model: str = DEFAULT_MODEL
    safety_tolerance: int = 2
    output_format: Literal["png", "jpeg"] = "png"
    prompt_upsampling: bool = False
    seed: bool = True
    timeout: float = 60.0
    deadline: float = 300.0
    poll: float = 0.5
    poll_max: float = 5.0

    def validate(self, spec: str) -> None:
        validate_common(spec, self)
        if not 0 <= self.safety_tolerance <= 6:
            raise SpecError(f"model spec {spec!r}: safety_tolerance must be 0 (strict) to 6")
        if not (self.deadline > 0 and self.poll > 0 and self.poll_max >= self.poll):
            raise SpecError(f"model spec {spec!r}: deadline and poll must be > 0, poll_max at least poll")


class _Stop(Exception):
    """A problem found while talking to BFL, carried out of :meth:`BFLReplicator._send`."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _import_httpx() -> Any:
    try:
        import httpx  # the hosted extra: optional; only when a model runs
    except ImportError:
        raise HostedConfigError(
            "the bfl model needs the 'httpx' package: pip install 'driftloop[hosted]' (or pip install httpx)"
        ) from None
    return httpx


def _ratio(width: int, height: int) -> str:
    """``W:H`` in lowest terms (Kontext's aspect_ratio)."""
    g = math.gcd(width, height)
    return f"{width // g}:{height // g}"


class BFLReplicator(HostedReplicator):
    """Submit, poll, fetch: one task per frame."""

    provider = "bfl"
    key_env = KEY_ENV
    base_url_env = BASE_URL_ENV

    def __init__(self, config: BFLConfig) -> None:
        self.kontext = config.model.startswith("flux-kontext")
        entry = catalogue.lookup("bfl", config.model)
        self.endpoint = str(entry.get("endpoint")) if entry else f"/v1/{config.model}"
        self.base = os.environ.get(BASE_URL_ENV, "").strip().rstrip("/") or DEFAULT_BASE_URL
        if is_offline():  # an estimate: no package, key or client needed
            super().__init__("bfl", config, [])
            self.client = None
            return
        httpx = _import_httpx()
        key = os.environ.get(KEY_ENV, "").strip()
        if not key:
            raise MissingAPIKeyError(
                f"the bfl model needs an API key in the environment variable {KEY_ENV}: "
                f"export {KEY_ENV}=... (driftloop reads it from there only and never stores it)"
            )
        super().__init__("bfl", config, [key, os.environ.get(KEY_ENV)])
        self._httpx = httpx
        self._key = key
        self.client = httpx.Client(timeout=config.timeout, follow_redirects=True)

    # ------------------------------------------------------------------ hooks

    def _canvas(self, frame: np.ndarray) -> tuple[int, int]:
        if self.kontext:  # any input size; only the aspect ratio is bounded
            return native_canvas(frame.shape[0], frame.shape[1], multiple_of=1, max_aspect=21 / 9)
        return native_canvas(frame.shape[0], frame.shape[1], **FLUX2_RULE)  # type: ignore[arg-type]

    def _params(self, canvas: tuple[int, int]) -> dict[str, Any]:
        if self.kontext:
            return {"aspect_ratio": _ratio(*canvas)}
        return {"width": canvas[0], "height": canvas[1]}

    def _headers(self) -> dict[str, str]:
        return {"x-key": self._key, "accept": "application/json"}

    def _send(self, job: Job) -> Answer:
        c = self.config
        body: dict[str, Any] = {
            "prompt": c.prompt,
            "input_image": base64.b64encode(job.png).decode("ascii"),
            "safety_tolerance": c.safety_tolerance,
            "output_format": c.output_format,
            "prompt_upsampling": c.prompt_upsampling,
            **job.params,
        }
        if c.seed:
            body["seed"] = job.seed % (2**31)
        response = self.client.post(self.base + self.endpoint, json=body, headers=self._headers())
        if response.status_code != 200:
            raise _Stop(self._http_problem(response, "submit"))
        task = self._json(response, "submit")
        task_id, polling_url = task.get("id"), task.get("polling_url")
        if not task_id:
            raise _Stop(Problem("failure", f"malformed response: the submit answer has no task id: {task}"))
        polling_url = polling_url or f"{self.base}/v1/get_result?id={task_id}"
        facts: dict[str, Any] = {"task_id": str(task_id)}
        for name in ("cost", "input_mp", "output_mp"):
            if isinstance(task.get(name), int | float):
                facts[name] = task[name]
        try:
            url, result = self._poll(polling_url, facts)
            data = self._fetch(url, polling_url, facts)
        except _Stop as stop:  # after a billed submit: never asked again automatically
            if stop.problem.kind == "transient":
                stop.problem.kind = "failure"
            return Answer(problem=stop.problem, request_id=str(task_id), facts=facts)
        if isinstance(result.get("seed"), int):
            facts["result_seed"] = result["seed"]
        return Answer(image=data, request_id=str(task_id), facts=facts)

    def _poll(self, polling_url: str, facts: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Poll until Ready (the signed URL and the result), a moderation, an error or the deadline."""
        c = self.config
        started = time.monotonic()
        wait, polls, missing, last = c.poll, 0, 0, "no answer"
        while True:
            if time.monotonic() - started > c.deadline:
                raise _Stop(
                    Problem(
                        "failure", f"no result within deadline={c.deadline:g} s ({polls} polls; last: {last})"
                    )
                )
            time.sleep(wait)
            wait = min(c.poll_max, wait * 1.5)
            polls += 1
            facts["polls"] = polls
            try:
                response = self.client.get(polling_url, headers=self._headers())
            except self._httpx.TransportError as exc:
                last = f"{type(exc).__name__}"
                continue  # a poll costs nothing: ask again until the deadline
            if response.status_code != 200:
                problem = self._http_problem(response, "poll")
                last = problem.message
                if problem.kind == "fatal":
                    raise _Stop(problem)
                if response.status_code == 404 or problem.kind == "transient":
                    missing += response.status_code == 404
                    if missing > NOT_FOUND_POLLS:
                        raise _Stop(Problem("failure", f"task not found while polling: {last}", 404))
                    if problem.retry_after:
                        wait = max(wait, min(problem.retry_after, c.poll_max))
                    continue
                raise _Stop(problem)
            answer = self._json(response, "poll")
            status = str(answer.get("status", ""))
            facts["bfl_status"] = status
            last = status or "no status"
            if status == READY:
                result = answer.get("result") if isinstance(answer.get("result"), dict) else {}
                url = result.get("sample") if result else None
                if not url:
                    raise _Stop(
                        Problem("failure", f"malformed response: Ready without result.sample: {answer}")
                    )
                if isinstance(answer.get("cost"), int | float):
                    facts["cost"] = answer["cost"]
                return str(url), result
            if status in MODERATED:
                details = answer.get("details") or answer.get("error") or ""
                text = f"{status}" + (f": {short(details, 200)}" if details else "")
                raise _Stop(Problem("refusal", text, code=status))
            if status == "Error" or status == "Failed":
                raise _Stop(
                    Problem("failure", f"BFL task error: {short(answer.get('error') or answer, 300)}")
                )
            if status == NOT_FOUND:
                missing += 1
                if missing > NOT_FOUND_POLLS:
                    raise _Stop(Problem("failure", "BFL lost the task (Task not found)", code=NOT_FOUND))
            # Pending, or a status this code does not know: wait for the deadline

    def _fetch(self, url: str, polling_url: str, facts: dict[str, Any]) -> bytes:
        """The image at the signed URL; once more through a fresh URL when it has expired."""
        for attempt in (1, 2):
            try:
                response = self.client.get(url)  # no x-key: the URL is signed, and storage is not BFL
            except self._httpx.TransportError as exc:
                if attempt == 2:
                    raise _Stop(
                        Problem("failure", f"cannot fetch the result: {type(exc).__name__}")
                    ) from None
                continue
            if response.status_code == 200:
                return response.content
            if attempt == 2 or response.status_code not in EXPIRED_STATUSES:
                raise _Stop(
                    Problem(
                        "failure",
                        f"the result URL answered HTTP {response.status_code} (expired signed URL?); "
                        "resume with --retry-failed",
                        response.status_code,
                    )
                )
            facts["result_url_expired"] = True
            url, _ = self._poll(polling_url, facts)  # Ready again, with a freshly signed URL
        raise AssertionError("unreachable")

    def _json(self, response: Any, stage: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise _Stop(
                Problem(
                    "failure",
                    f"malformed response: the {stage} answer is not JSON: {short(response.text, 200)}",
                )
            ) from None
        if not isinstance(data, dict):
            raise _Stop(Problem("failure", f"malformed response: the {stage} answer is not an object"))
        return data

    def _http_problem(self, response: Any, stage: str) -> Problem:
        status = response.status_code
        message, code = body_message(response.content)
        line = status_line(status, code, message)
        if status == 402:
            return Problem("fatal", f"BFL account out of credits (402): {line}", status, code)
        if status in (401, 403):
            return Problem("fatal", f"BFL rejected the key in {KEY_ENV}: {line}", status, code)
        if status == 404 and stage == "submit":
            return Problem("fatal", self.model_missing(line), status, code)
        if status in RETRY_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers)
            if retry_after is None:
                try:
                    body = response.json()
                    if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
                        retry_after = float(body["retry_after"])
                except ValueError:
                    pass
            return Problem("transient", line, status, code, retry_after)
        return Problem("failure", line, status, code)  # 400, 422: this request is wrong as sent

    def _classify(self, exc: BaseException) -> Problem:
        if isinstance(exc, _Stop):
            return exc.problem
        httpx = self._httpx
        if isinstance(exc, httpx.TimeoutException):
            return Problem("transient", f"timed out after {self.config.timeout:g} s ({type(exc).__name__})")
        if isinstance(exc, httpx.TransportError):
            return Problem("transient", f"connection error: {type(exc).__name__}: {exc}")
        return Problem("failure", f"malformed response: {type(exc).__name__}: {short(exc, 300)}")

    # ------------------------------------------------------------------ prices

    def _price(self, answer: Answer | None, job: Job | None) -> dict[str, Any]:
        facts = answer.facts if answer is not None else {}
        credits = facts.get("cost")
        if isinstance(credits, int | float):
            usd = credits * USD_PER_CREDIT
            return {
                "usd": usd,
                "usd_source": f"billed {credits:g} credits (BFL's answer) × ${USD_PER_CREDIT}",
            }
        price = None
        if job is not None:
            mp = job.placement.canvas[0] * job.placement.canvas[1] / 1e6
            price = self.factors.megapixel_price(self.price_model, mp, mp)
        if price is None:
            price = self.factors.price(self.price_model)
        if price is None:
            return {}
        return {"usd": price.usd, "usd_source": f"cost table {self.price_model}: {price.source}"}

    def estimate_price(self, canvas: tuple[int, int], factors: Any) -> Price | None:
        """FLUX.2: the megapixel rule on the canvas sent (input) and asked for (output)."""
        mp = canvas[0] * canvas[1] / 1e6
        return factors.megapixel_price(self.price_model, mp, mp, cite=False)

    def describe(self) -> dict[str, Any]:
        c = self.config
        return self.redactor.data(
            {
                **self._describe_common(),
                "endpoint": self.endpoint,
                "base_url": self.base,
                "safety_tolerance": c.safety_tolerance,
                "output_format": c.output_format,
                "prompt_upsampling": c.prompt_upsampling,
                "seed": c.seed,
                "deadline_s": c.deadline,
                "poll_s": [c.poll, c.poll_max],
            }
        )


def _status(config: BFLConfig) -> WeightsStatus:
    return key_status(("httpx",), (KEY_ENV,))


def backends() -> list[Backend]:
    return [
        Backend(
            name="bfl",
            summary="Black Forest Labs API: FLUX.2 [klein/pro/max/flex], FLUX.1 Kontext [pro/max]",
            config_type=BFLConfig,
            build=BFLReplicator,
            positional="model",
            weights_status=_status,
            notes=(
                f"key from {KEY_ENV}; {BASE_URL_ENV} honoured; costs money per image; params: "
                "safety_tolerance, output_format, prompt_upsampling, seed, deadline, poll, poll_max, pad, "
                "resample, retries, timeout, backoff, max_wait, concurrency, rpm"
            ),
        )
    ]
