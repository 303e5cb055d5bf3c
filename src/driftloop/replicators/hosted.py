"""What every hosted (API) replicator shares: faults, pacing, concurrency, size mapping and secrets.

A hosted model is one HTTP request per frame. :class:`HostedReplicator` sends a batch concurrently (a thread
pool of ``concurrency`` workers) under a requests-per-minute limit shared by every thread (retries count),
retries 408/409/429/5xx answers, timeouts and dropped connections with exponential backoff and jitter
(capped at ``max_wait``), or exactly as long as a ``Retry-After`` header / Google ``RetryInfo`` asks (up to
:data:`RETRY_AFTER_LIMIT`; a longer wait ends the frame as a failure, to resume later), and
turns each frame's fate into one outcome: a :class:`Copy`, a :class:`Refusal` (content policy) or a
:class:`Failure` (retries exhausted, a malformed answer). It raises only for what concerns every frame:
a missing package or key, a rejected key, an exhausted quota, an unknown model.

Size mapping (:func:`place` / :func:`unplace`): an API accepts a few canvas sizes. A frame is scaled by one
factor to fit inside the canvas, centred, and the rest of the canvas is padded (by default with
the frame's edge pixels, else a flat grey/black/white). The answer is read back from the same box (scaled
by the answer's size if it differs from the canvas), the padding is discarded, and the box is resampled to
exactly the frame's H×W. One scale factor for both axes, so nothing is stretched; rounding the scaled size
to whole pixels is the only (sub-pixel) liberty taken. ``resample=lanczos`` (default) shows the model a
natural-looking enlargement, at the price of a small loss per round trip (≈0.8 mean |Δ| for 512 px frames
on a 1024 canvas, more on hard edges); ``resample=nearest`` enlarges by pixel replication and reduces by
box averaging, an exact round trip, so all drift is the model's, but the model sees a blocky image.

Secrets: keys come from the environment only (never from a spec string, which is stored), and every text
this module puts into a Failure, Refusal, info dict or exception passes through :class:`Redactor`.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import io
import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, NoReturn

import numpy as np
from PIL import Image, UnidentifiedImageError

from driftloop.errors import DriftloopError, SpecError
from driftloop.replicators.base import BatchAborted, Copy, Failure, Frames, Outcome, Refusal, Requirements

PROMPT = "Create the exact replica of this image, don't change a thing."
"""The prompt of the viral trend (ChatGPT, spring 2025)."""

PadMode = Literal["edge", "grey", "black", "white"]
Resample = Literal["lanczos", "nearest"]
_PAD_COLOURS = {"grey": 128, "black": 0, "white": 255}
RETRY_STATUSES = frozenset({408, 409, 429})
MAX_MESSAGE = 500


class HostedConfigError(DriftloopError):
    """A hosted model cannot be used as configured (package, key, model, account); nothing was written."""

    exit_code = 2


class MissingAPIKeyError(HostedConfigError):
    """The environment variable holding the API key is not set."""


class HostedAuthError(HostedConfigError):
    """The provider rejected the key or the account (401/403, an exhausted quota, an unknown model)."""


# ---------------------------------------------------------------------------------------------- secrets


class Redactor:
    """Replaces every secret (API keys) with ``***`` in strings and, recursively, in dicts and lists."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, value: object) -> str:
        out = str(value)
        for secret in self._secrets:
            out = out.replace(secret, "***")
        return out

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def short(text: object, limit: int = MAX_MESSAGE) -> str:
    """One line, at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# ----------------------------------------------------------------------------------------- size mapping


@dataclass(frozen=True)
class Placement:
    """Where a frame sits in the canvas sent to the API.

    ``canvas`` is (width, height) of the image sent; ``box`` is (left, top, width, height) of the scaled
    frame inside it; ``frame`` is (height, width) of the original frame, the shape a copy must come back in.
    """

    canvas: tuple[int, int]
    box: tuple[int, int, int, int]
    frame: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {"canvas": list(self.canvas), "box": list(self.box)}


def fitted(height: int, width: int, canvas: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a height×width frame scaled by one factor to fit inside ``canvas`` (w, h)."""
    cw, ch = canvas
    scale = min(cw / width, ch / height)
    return min(cw, max(1, round(width * scale))), min(ch, max(1, round(height * scale)))


def closest_canvas(height: int, width: int, canvases: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The canvas a frame fills best once fitted (least padding); ties go to the earlier canvas."""
    best, best_cover = canvases[0], -1.0
    for canvas in canvases:
        w, h = fitted(height, width, canvas)
        cover = (w * h) / (canvas[0] * canvas[1])
        if cover > best_cover + 1e-9:
            best, best_cover = canvas, cover
    return best


def _filters(resample: Resample) -> tuple[Image.Resampling, Image.Resampling]:
    """(enlarging, reducing) filters: Lanczos both ways, or nearest up / box down (an exact round trip)."""
    if resample == "nearest":
        return Image.Resampling.NEAREST, Image.Resampling.BOX
    return Image.Resampling.LANCZOS, Image.Resampling.LANCZOS


def place(
    frame: np.ndarray, canvas: tuple[int, int], pad: PadMode = "edge", resample: Resample = "lanczos"
) -> tuple[np.ndarray, Placement]:
    """Scale ``frame`` (H×W×3 uint8) by one factor to fit ``canvas`` (w, h), centre it, pad the rest."""
    height, width = frame.shape[:2]
    cw, ch = canvas
    w, h = fitted(height, width, canvas)
    if (w, h) == (width, height):
        scaled = frame
    else:
        enlarge, reduce = _filters(resample)
        scaled = np.asarray(Image.fromarray(frame, "RGB").resize((w, h), enlarge if w > width else reduce))
    left, top = (cw - w) // 2, (ch - h) // 2
    widths = ((top, ch - h - top), (left, cw - w - left), (0, 0))
    if pad == "edge":
        out = np.pad(scaled, widths, mode="edge")
    else:
        out = np.pad(scaled, widths, mode="constant", constant_values=_PAD_COLOURS[pad])
    return np.ascontiguousarray(out, dtype=np.uint8), Placement((cw, ch), (left, top, w, h), (height, width))


def unplace(
    image: Image.Image | np.ndarray, placement: Placement, resample: Resample = "lanczos"
) -> np.ndarray:
    """The frame back out of an answer: the placement's box (scaled to the answer's size), padding dropped,
    resampled to exactly the original H×W."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image), "RGB")
    img = img.convert("RGB")
    sx, sy = img.width / placement.canvas[0], img.height / placement.canvas[1]
    left, top, w, h = placement.box
    box = (left * sx, top * sy, (left + w) * sx, (top + h) * sy)
    height, width = placement.frame
    # Crop to the whole pixels inside the box first: a resampling filter reaches past its box, and must see
    # only the frame's own pixels (edge-clamped), never the padding.
    inner = (
        math.ceil(box[0] - 1e-6),
        math.ceil(box[1] - 1e-6),
        math.floor(box[2] + 1e-6),
        math.floor(box[3] + 1e-6),
    )
    if inner[2] <= inner[0] or inner[3] <= inner[1]:
        inner = (math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3]))
    crop = img.crop(inner)
    if crop.size == (width, height):
        return np.asarray(crop, dtype=np.uint8).copy()
    rel = (box[0] - inner[0], box[1] - inner[1], box[2] - inner[0], box[3] - inner[1])
    rel = (
        max(0.0, rel[0]),
        max(0.0, rel[1]),
        min(float(crop.width), rel[2]),
        min(float(crop.height), rel[3]),
    )
    enlarge, reduce = _filters(resample)
    filt = reduce if (rel[2] - rel[0]) > width else enlarge
    out = crop.resize((width, height), filt, box=rel)
    return np.asarray(out, dtype=np.uint8).copy()


def encode_png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, "RGB").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def decode_b64(text: str) -> bytes:
    """Strict base64 (whitespace and a ``data:`` prefix tolerated); ValueError when it is not."""
    if "," in text[:100] and text.startswith("data:"):
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"undecodable base64 image data ({exc})") from None


def decode_image(data: bytes) -> Image.Image:
    """An RGB image from encoded bytes; ValueError when they are not a readable image."""
    if not data:
        raise ValueError("empty image data")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                flat.alpha_composite(rgba)
                return flat.convert("RGB")
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"the image data is not a readable image ({type(exc).__name__}: {exc})") from None


# ------------------------------------------------------------------------------------ pacing and retries


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


# ------------------------------------------------------------------------------------- one request's fate


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


@dataclass
class Answer:
    """A successful exchange: the encoded image (or why there is none) and facts to store with the copy."""

    image: bytes | None = None
    problem: Problem | None = None
    request_id: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Fatal:
    error: HostedAuthError


def _abort(cause: BaseException, results: Sequence[object]) -> NoReturn:
    """Stop a batch: with :class:`BatchAborted` when some frames were already made (so they are kept),
    else with the cause itself."""
    made = _made(results)
    if any(m is not None for m in made):
        raise BatchAborted(cause, made) from None
    raise cause


def _made(results: Sequence[object]) -> list[Outcome | None]:
    """What a stopped batch had finished: copies (paid for) and malformed answers (final); a refusal is
    dropped (``None``: asked again on resume, it costs nothing), and so is every frame still pending."""
    return [r if isinstance(r, Copy | Failure) else None for r in results]


@dataclass(frozen=True)
class Job:
    """One frame's request: the canvas to send and what is needed to read the answer back."""

    index: int
    seed: int
    png: bytes
    placement: Placement
    params: dict[str, Any]


def validate_common(spec: str, config: Any) -> None:
    """Checks shared by every hosted config (fields: model, retries, timeout, backoff, max_wait, ...)."""
    if not str(config.model).strip() or any(c.isspace() for c in config.model):
        raise SpecError(f"model spec {spec!r}: model must be a model name such as gpt-image-1")
    if config.retries < 0:
        raise SpecError(f"model spec {spec!r}: retries must be 0 or more")
    if not config.timeout > 0:
        raise SpecError(f"model spec {spec!r}: timeout must be more than 0 seconds")
    if config.backoff < 0 or config.max_wait < 0:
        raise SpecError(f"model spec {spec!r}: backoff and max_wait must be 0 or more seconds")
    if config.concurrency < 1:
        raise SpecError(f"model spec {spec!r}: concurrency must be at least 1")
    if config.rpm < 0:
        raise SpecError(f"model spec {spec!r}: rpm must be 0 (no limit) or more requests per minute")
    if not config.prompt.strip():
        raise SpecError(f"model spec {spec!r}: prompt must not be empty")


def canonical_spec(name: str, config: Any, positional: str = "model") -> str:
    """``name:model[,key=value...]``: the model always, other parameters only where not default."""
    parts = [str(getattr(config, positional))]
    for f in fields(config):
        if f.name == positional:
            continue
        value = getattr(config, f.name)
        if value == f.default:
            continue
        parts.append(f"{f.name}={str(value).lower() if isinstance(value, bool) else value}")
    return f"{name}:{','.join(parts)}"


class HostedReplicator:
    """The shared half of a hosted replicator; a provider module supplies the request and its reading.

    Subclasses set ``provider``, ``key_env`` and implement :meth:`_canvas`, :meth:`_params`, :meth:`_send`
    (one HTTP exchange → :class:`Answer`, exceptions allowed) and :meth:`_classify` (exception →
    :class:`Problem`), plus :meth:`price_params` for the cost table.
    """

    provider = "hosted"
    key_env = ""

    def __init__(self, name: str, config: Any, secrets: Iterable[str | None]) -> None:
        self.name = name
        self.config = config
        self.spec = canonical_spec(name, config)
        self.redactor = Redactor(secrets)
        self._limiter = RateLimiter(config.rpm)
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        from driftloop.cost import load_factors

        self.factors = load_factors()
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
        from driftloop.cost import hosted_estimate

        self.factors = factors
        self.requirements = Requirements(
            size_multiple=1,
            device="api",
            deterministic=False,
            cost_per_image_usd=self.estimate_usd_per_image(factors),
        )
        options = self.price_options()
        quality, size = options[0] if len(options) == 1 else (None, None)
        return hosted_estimate(factors, self.price_model, quality, size)

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
        if price is None:
            return {}
        return {"usd": price.usd, "usd_source": f"cost table {self.price_model}: {price.describe()}"}

    # ------------------------------------------------------------------ the batch

    def replicate(self, frames: Frames, seeds: list[int]) -> list[Outcome]:
        """One outcome per frame, in input order; frames are sent concurrently.

        Workers are daemon threads: after Ctrl-C the process does not wait for requests in flight.
        """
        stop = threading.Event()
        jobs = [self._job(i, f, s) for i, (f, s) in enumerate(zip(frames, seeds, strict=True))]
        results: list[Outcome | _Fatal | BaseException | None] = [None] * len(jobs)
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
                except Exception as exc:  # a bug: re-raised in the caller's thread (Ctrl-C is handled below)
                    results[i] = exc
                    stop.set()

        workers = min(self.config.concurrency, len(jobs))
        try:
            if workers <= 1:
                work()
            else:
                threads = [
                    threading.Thread(target=work, name=f"driftloop-{self.name}-{k}", daemon=True)
                    for k in range(workers)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        except KeyboardInterrupt as exc:
            stop.set()
            _abort(exc, results)
        finally:
            stop.set()
        for r in results:
            if isinstance(r, BaseException):
                _abort(r, results)
        for r in results:
            if isinstance(r, _Fatal):
                _abort(r.error, results)
        return [r if r is not None else Failure("cancelled: the batch was stopped") for r in results]  # type: ignore[misc]

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

    def _run(self, job: Job, stop: threading.Event) -> Outcome | _Fatal | None:
        """One frame: attempts until an image, a refusal, a lost frame or the retry budget is spent."""
        attempts, waited, errors = 0, 0.0, []
        redact = self.redactor
        while True:
            waited += self._limiter.acquire(stop)
            if stop.is_set():  # another frame hit a fatal error (or a bug); do not spend more requests
                return None
            attempts += 1
            answer: Answer | None = None
            try:
                answer = self._send(job)
                problem = answer.problem
            except Exception as exc:
                problem = self._classify(exc)
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
                try:
                    image = decode_image(answer.image or b"")
                    frame = unplace(image, job.placement, self.config.resample)
                except ValueError as exc:
                    problem = Problem("failure", f"malformed response: {exc}")
                else:
                    info.update(answer.facts)
                    info["returned_size"] = [image.width, image.height]
                    info.update(self._price(answer, job))
                    return Copy(frame, redact.data(info))
            assert problem is not None
            message = redact.text(short(problem.message))
            if problem.status is not None:
                info["status"] = problem.status
            if problem.code:
                info["code"] = redact.text(problem.code)
            if answer is not None and answer.facts:
                info.update(answer.facts)
            if problem.kind == "fatal":
                stop.set()
                return _Fatal(HostedAuthError(message))
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
            delay = self._jitter_delay(attempts, problem.retry_after)
            waited += delay
            if stop.wait(delay):
                return None  # the batch was stopped: nothing made, nothing final

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
        }


def status_line(status: int | None, code: str | None, message: str) -> str:
    """``HTTP 429 (rate_limit_exceeded): message``."""
    head = f"HTTP {status}" if status is not None else "error"
    if code:
        head += f" ({code})"
    return f"{head}: {message}" if message else head


def body_message(body: Any) -> tuple[str, str | None]:
    """(message, code) from a JSON error body (``{"error": {"message", "code"}}`` or flat)."""
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            body = json.loads(text)
        except ValueError:
            return short(text), None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            code = err.get("code") or err.get("type")
            return short(err.get("message") or json.dumps(err)[:MAX_MESSAGE]), (str(code) if code else None)
        return short(str(err)), None
    return short(str(body)) if body is not None else "", None
