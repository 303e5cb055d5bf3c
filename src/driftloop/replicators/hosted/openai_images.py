"""OpenAI's image edit API (``gpt-image-2`` and its 2.5/2.6 variants) as a replicator: the trend itself.

Each frame goes to ``client.images.edit`` with the trend's prompt. Models the catalogue lists with flexible
sizes (the gpt-image-2 family: any W×H in multiples of 16, 655,360 to 8,294,400 pixels, aspect within 3:1)
get the frame at its own size when it fits (``size=auto``): no padding, resize or crop-back. A smaller frame
is enlarged by the smallest whole factor that reaches the pixel minimum (512² → 1024², 256² → 1024²) and
the answer reduced back; that is the canvas mapping of :mod:`driftloop.replicators.hosted.canvas` with no
padding. Other models (the retired gpt-image-1 family, unknown names) keep the three fixed canvases
(1024×1024, 1536×1024, 1024×1536; ``size=auto`` picks the one the frame fills best).

The key comes from ``OPENAI_API_KEY`` only; ``OPENAI_BASE_URL`` is read by the official client itself.
The client's own retries are off (``max_retries=0``): retries, backoff and pacing are driftloop's, counted
in each copy's info. ``openai`` is imported when a replicator is built, so driftloop works without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from driftloop.cost import Price, catalogue
from driftloop.errors import SpecError
from driftloop.replicators.base import Backend, WeightsStatus
from driftloop.replicators.hosted.canvas import closest_canvas, decode_b64, native_canvas
from driftloop.replicators.hosted.config import HostedConfig, validate_common
from driftloop.replicators.hosted.messages import body_message, status_line
from driftloop.replicators.hosted.outcomes import ThreadLostError
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

KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
SIZES: dict[str, tuple[int, int]] = {
    "1024x1024": (1024, 1024),
    "1536x1024": (1536, 1024),
    "1024x1536": (1024, 1536),
}
QUALITIES = ("low", "medium", "high")
DEFAULT_MODEL = "gpt-image-2"
MISSING_MODEL_CODES = frozenset({"model_not_found"})
THREAD_LOST_CODES = frozenset({"previous_response_not_found"})  # assumed code; the message is checked too
# Output-token weight per quality in gpt-image-2's size rule (reverse-engineered from OpenAI's calculator,
# see the catalogue); xhigh and max are not published: assumed 2× and 4× high, so a budget is not too low.
_QUALITY_WEIGHT = {"low": 16, "medium": 48, "high": 96, "xhigh": 192, "max": 384}
REFUSAL_CODES = frozenset({"moderation_blocked", "content_policy_violation", "content_filter"})
ACCOUNT_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})


@dataclass(frozen=True)
class OpenAIConfig(HostedConfig):
    """``openai:gpt-image-2,quality=high,size=1024x1024,input_fidelity=high,concurrency=4,rpm=5``.

    ``size``: ``auto`` (the frame's own size where the model allows it, else the fixed canvas it fills best)
    or ``WxH`` (a multiple of 16 within the model's limits, or one of the three fixed canvases).
    ``quality``: ``auto`` lets the API choose (priced at the most expensive choice up front); ``xhigh`` and
    ``max`` exist on the 2.5/2.6 models only. ``input_fidelity`` is sent only when given.
    The shared fields (prompt, pad, resample, retries, ...) are :class:`HostedConfig`'s.
    """

    model: str = DEFAULT_MODEL
    size: str = "auto"
    quality: Literal["auto", "low", "medium", "high", "xhigh", "max"] = "auto"
    input_fidelity: Literal["low", "high"] | None = None
    output_format: Literal["png", "jpeg", "webp"] = "png"

    def validate(self, spec: str) -> None:
        validate_common(spec, self)
        entry = catalogue.lookup("openai", self.model)
        qualities = entry.get("qualities") if entry else None
        if qualities and self.quality not in qualities:
            raise SpecError(
                f"model spec {spec!r}: {self.model} takes quality {', '.join(qualities)}, not {self.quality}"
            )
        if self.size == "auto":
            return
        wh = _parse_size(self.size)
        rule = size_rule(self.model)
        if wh is None or (rule is None and self.size not in SIZES):
            fixed = ", ".join(SIZES)
            allowed = f"auto or {fixed}" if rule is None else "auto or WxH (multiples of 16)"
            raise SpecError(f"model spec {spec!r}: size={self.size} is not one of {allowed}")
        if rule is not None and native_canvas(wh[1], wh[0], **rule) != wh:
            raise SpecError(
                f"model spec {spec!r}: size={self.size} is outside {self.model}'s limits (sides multiples "
                f"of {rule['multiple_of']}, {rule['min_pixels']:,} to {rule['max_pixels']:,} pixels, edges "
                f"up to {rule['max_edge']}, aspect up to {rule['max_aspect']:g}:1)"
            )


def _parse_size(text: str) -> tuple[int, int] | None:
    """(width, height) of ``WxH``; None when it is not that."""
    w, x, h = text.lower().partition("x")
    return (int(w), int(h)) if x and w.isdigit() and h.isdigit() else None


def size_rule(model: str) -> dict[str, Any] | None:
    """The free-size limits of a model the catalogue lists as flexible; None for fixed-canvas models."""
    entry = catalogue.lookup("openai", model)
    if entry is None or entry.get("sizes") != "flexible":
        return None
    return dict(entry.get("size_rule"))


def output_tokens(quality: str, width: int, height: int) -> int:
    """Output tokens gpt-image-2 bills for one image (the community's reverse-engineering of OpenAI's
    calculator, exact for every published example: 196 / 1756 / 7024 at 1024²)."""
    f = _QUALITY_WEIGHT[quality]
    big, small = max(width, height), min(width, height)
    s = (2 * f * small + big) // (2 * big)
    return -(-f * s * (2_000_000 + width * height) // 4_000_000)


def input_image_tokens(width: int, height: int) -> int:
    """Input tokens of one edited image: OpenAI publishes no rule for gpt-image-2, so this is gpt-image-1's
    (65 + 129 per 512-px tile once the short side is 512, plus 4,160 square / 6,240 otherwise for high input
    fidelity, which gpt-image-2 is reported to apply to every reference image). An estimate; the answer's
    ``usage`` replaces it."""
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    short = min(w, h)
    w, h = w * 512 / short, h * 512 / short
    tiles = -(-round(w) // 512) * -(-round(h) // 512)
    return 65 + 129 * tiles + (4160 if width == height else 6240)


def openai_key(backend: str) -> tuple[Any, str]:
    """The ``openai`` package and the key from :data:`KEY_ENV`; a clear error when either is missing."""
    openai = _import_openai()
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise MissingAPIKeyError(
            f"the {backend} model needs an API key in the environment variable {KEY_ENV}: "
            f"export {KEY_ENV}=sk-... (driftloop reads it from there only and never stores it)"
        )
    return openai, key


def openai_client(openai: Any, key: str, timeout: float, redactor: Any) -> Any:
    """The official client with its own retries off (driftloop's retries are counted in each copy's info).
    No base_url argument: the client reads OPENAI_BASE_URL itself."""
    try:
        return openai.OpenAI(api_key=key, max_retries=0, timeout=timeout)
    except Exception as exc:
        raise HostedConfigError(f"cannot set up the OpenAI client: {redactor.text(exc)}") from None


def canvas_for(size: str, rule: dict[str, Any] | None, frame: np.ndarray) -> tuple[int, int]:
    """The canvas (w, h) a frame is sent on: ``size`` when given, else the frame's own size where the
    model takes any (``rule``), else the fixed canvas it fills best."""
    if size != "auto":
        return _parse_size(size)  # type: ignore[return-value]
    if rule is not None:
        return native_canvas(frame.shape[0], frame.shape[1], **rule)
    return closest_canvas(frame.shape[0], frame.shape[1], list(SIZES.values()))


def _import_openai() -> Any:
    try:
        import openai  # the hosted extra: optional; only when a model runs
    except ImportError:
        raise HostedConfigError(
            "the openai model needs the 'openai' package: pip install 'driftloop[hosted]' "
            "(or pip install openai)"
        ) from None
    return openai


def classify(openai: Any, exc: BaseException, timeout: float, model_missing: Any) -> Problem:
    """An exception of the official client as a :class:`Problem` (shared by the image and thread backends)."""
    if isinstance(exc, openai.APITimeoutError):
        return Problem("transient", f"timed out after {timeout:g} s")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return Problem("transient", f"connection error: {cause or exc}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message, code = body_message(exc.body) if exc.body is not None else (str(exc), None)
        code = exc.code or code
        request_id = getattr(exc, "request_id", None)
        line = status_line(status, code, message)
        lowered = message.lower()
        if code in ACCOUNT_CODES:
            return Problem("fatal", f"OpenAI account problem: {line}", status, code)
        if status == 401:
            return Problem("fatal", f"OpenAI rejected the key in {KEY_ENV}: {line}", status, code)
        if status == 403:
            return Problem(
                "fatal",
                f"OpenAI refused access ({KEY_ENV}'s project or organisation): {line}",
                status,
                code,
            )
        if status == 404 and (code in THREAD_LOST_CODES or "previous response" in lowered):
            return Problem(
                "fatal",
                f"OpenAI no longer has this chain's thread (expired or deleted): {line}. Every frame made "
                "is stored; resume with --restart-thread to begin a new thread from each chain's last frame",
                status,
                code,
                error=ThreadLostError,
            )
        if code in MISSING_MODEL_CODES or status == 404:
            return Problem("fatal", model_missing(line), status, code)
        if status == 400 and (code in REFUSAL_CODES or "safety system" in lowered):
            return Problem("refusal", line, status, code, request_id=request_id)
        if status in RETRY_STATUSES or status >= 500:
            retry_after = parse_retry_after(exc.response.headers)
            return Problem("transient", line, status, code, retry_after, request_id)
        return Problem("failure", line, status, code, request_id=request_id)
    if isinstance(exc, openai.APIResponseValidationError):
        return Problem("failure", f"malformed response: {exc}")
    return Problem("failure", f"malformed response: {type(exc).__name__}: {exc}")


class OpenAIImageReplicator(HostedReplicator):
    """``images.edit`` with the trend's prompt, one request per frame."""

    provider = "openai"
    key_env = KEY_ENV
    base_url_env = BASE_URL_ENV

    def __init__(self, config: OpenAIConfig) -> None:
        self.rule = size_rule(config.model)
        if is_offline():  # an estimate: no package, key or client needed
            super().__init__("openai", config, [])
            self._openai, self.client = None, None
            return
        openai, key = openai_key("openai")
        super().__init__("openai", config, [key, os.environ.get(KEY_ENV)])
        self._openai, self.client = openai, openai_client(openai, key, config.timeout, self.redactor)

    # ------------------------------------------------------------------ hooks

    def _canvas(self, frame: np.ndarray) -> tuple[int, int]:
        return canvas_for(self.config.size, self.rule, frame)

    def _params(self, canvas: tuple[int, int]) -> dict[str, Any]:
        return {"size": f"{canvas[0]}x{canvas[1]}", "quality": self.config.quality}

    def _send(self, job: Job) -> Answer:
        c = self.config
        kwargs: dict[str, Any] = {
            "image": ("frame.png", job.png, "image/png"),
            "prompt": c.prompt,
            "model": c.model,
            "n": 1,
            "size": job.params["size"],
            "quality": c.quality,
            "output_format": c.output_format,
        }
        if c.input_fidelity is not None:
            kwargs["input_fidelity"] = c.input_fidelity
        response = self.client.images.edit(**kwargs)
        request_id = getattr(response, "_request_id", None)
        facts: dict[str, Any] = {}
        for name in ("size", "quality", "output_format"):
            value = getattr(response, name, None)
            if value:
                facts[f"reported_{name}"] = str(value)
        usage = getattr(response, "usage", None)
        if usage is not None:
            facts["usage"] = usage.model_dump(exclude_none=True) if hasattr(usage, "model_dump") else usage
        data = response.data or []
        if not data:
            return Answer(problem=Problem("failure", "malformed response: no image (no 'data')"), facts=facts)
        item = data[0]
        b64 = getattr(item, "b64_json", None)
        if not b64:
            what = "an image URL instead of b64_json" if getattr(item, "url", None) else "no b64_json"
            return Answer(problem=Problem("failure", f"malformed response: {what}"), facts=facts)
        revised = getattr(item, "revised_prompt", None)
        if revised:
            facts["revised_prompt"] = str(revised)
        try:
            image = decode_b64(b64)
        except ValueError as exc:
            return Answer(problem=Problem("failure", f"malformed response: {exc}"), facts=facts)
        return Answer(image=image, request_id=request_id, facts=facts)

    def _classify(self, exc: BaseException) -> Problem:
        return classify(self._openai, exc, self.config.timeout, self.model_missing)

    def price_params(self, answer: Answer | None, job: Job | None) -> tuple[str | None, str | None]:
        facts = answer.facts if answer else {}
        quality = facts.get("reported_quality") or (
            None if self.config.quality == "auto" else self.config.quality
        )
        size = facts.get("reported_size") or (job.params["size"] if job else None)
        return quality, size

    def token_counts(self, answer: Answer) -> dict[str, int] | None:
        usage = answer.facts.get("usage")
        if not isinstance(usage, dict) or "output_tokens" not in usage:
            return None
        details = usage.get("input_tokens_details") or {}
        # without the split, every input token is counted as text
        text = details.get("text_tokens", 0) if details else usage.get("input_tokens", 0)
        return {
            "input_text": int(text),
            "input_image": int(details.get("image_tokens", 0)),
            "output": int(usage["output_tokens"]),
        }

    def price_options(self) -> list[tuple[str | None, str | None]]:
        qualities = QUALITIES if self.config.quality == "auto" else (self.config.quality,)
        sizes = tuple(SIZES) if self.config.size == "auto" else (self.config.size,)
        return [(q, s) for q in qualities for s in sizes]

    def estimate_price(self, canvas: tuple[int, int], factors: Any) -> Price | None:
        """gpt-image-2-class models: output tokens by the size rule, the input image and prompt as input
        tokens, at the cost table's token rates (``auto`` quality priced as ``high``)."""
        entry = self.entry
        if entry is None or entry.get("token_rule") != "gpt-image-2":
            return None
        quality = "high" if self.config.quality == "auto" else self.config.quality
        w, h = canvas
        counts = {
            "input_text": len(self.config.prompt) // 4 + 8,
            "input_image": input_image_tokens(w, h),
            "output": output_tokens(quality, w, h),
        }
        price = factors.token_price(self.price_model, counts, cite=False)
        if price is None:
            return None
        return Price(price.usd, f"{quality} quality at {w}x{h}: {price.source}", price.as_of)

    def describe(self) -> dict[str, Any]:
        c = self.config
        return self.redactor.data(
            {
                **self._describe_common(),
                "endpoint": "images.edit",
                "base_url": str(self.client.base_url) if self.client is not None else None,
                "size": c.size,
                "quality": c.quality,
                "input_fidelity": c.input_fidelity,
                "output_format": c.output_format,
                "client_retries": 0,
                "openai": getattr(self._openai, "__version__", "unknown"),
            }
        )


def _status(config: OpenAIConfig) -> WeightsStatus:
    return key_status(("openai",), (KEY_ENV,))


def backends() -> list[Backend]:
    return [
        Backend(
            name="openai",
            summary="OpenAI image edit API (gpt-image-2, gpt-image-2.6-sunburst, ...), the trend's prompt",
            config_type=OpenAIConfig,
            build=OpenAIImageReplicator,
            positional="model",
            weights_status=_status,
            notes=(
                f"key from {KEY_ENV}; {BASE_URL_ENV} honoured; costs money per image (--max-cost); "
                "params: size, quality, input_fidelity, output_format, pad, resample, retries, timeout, "
                "backoff, max_wait, concurrency, rpm"
            ),
        )
    ]
