"""OpenAI's image edit API (``gpt-image-1`` and friends) as a replicator: the trend itself.

Each frame goes to ``client.images.edit`` with the trend's prompt, placed on one of the API's canvases
(1024×1024, 1536×1024, 1024×1536; ``size=auto`` picks the one the frame fills best and asks for it
explicitly) and read back to the frame's exact H×W (see :mod:`driftloop.replicators.hosted.canvas`).

The key comes from ``OPENAI_API_KEY`` only; ``OPENAI_BASE_URL`` is read by the official client itself.
The client's own retries are off (``max_retries=0``): retries, backoff and pacing are driftloop's, counted
in each copy's info. ``openai`` is imported when a replicator is built, so driftloop works without it.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from driftloop.replicators.base import Backend, WeightsStatus
from driftloop.replicators.hosted.canvas import PadMode, Resample, closest_canvas, decode_b64
from driftloop.replicators.hosted.messages import body_message, status_line
from driftloop.replicators.hosted.pacing import RETRY_STATUSES, parse_retry_after
from driftloop.replicators.hosted.replicator import (
    PROMPT,
    Answer,
    HostedConfigError,
    HostedReplicator,
    Job,
    MissingAPIKeyError,
    Problem,
    validate_common,
)

KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
SIZES: dict[str, tuple[int, int]] = {
    "1024x1024": (1024, 1024),
    "1536x1024": (1536, 1024),
    "1024x1536": (1024, 1536),
}
QUALITIES = ("low", "medium", "high")
REFUSAL_CODES = frozenset({"moderation_blocked", "content_policy_violation", "content_filter"})
ACCOUNT_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})


@dataclass(frozen=True)
class OpenAIConfig:
    """``openai:gpt-image-1,quality=high,size=1024x1024,input_fidelity=high,concurrency=4,rpm=5``.

    ``size``: the canvas asked for (``auto``: the one the frame fills best). ``quality``: ``auto`` lets the
    API choose (priced at the most expensive choice up front). ``input_fidelity`` is sent only when given.
    ``retries``/``timeout``/``backoff``/``max_wait`` in counts and seconds; ``rpm`` 0 = no limit.
    """

    model: str = "gpt-image-1"
    prompt: str = PROMPT
    size: Literal["auto", "1024x1024", "1536x1024", "1024x1536"] = "auto"
    quality: Literal["auto", "low", "medium", "high"] = "auto"
    input_fidelity: Literal["low", "high"] | None = None
    output_format: Literal["png", "jpeg", "webp"] = "png"
    pad: PadMode = "edge"
    resample: Resample = "lanczos"
    retries: int = 5
    timeout: float = 120.0
    backoff: float = 1.0
    max_wait: float = 60.0
    concurrency: int = 4
    rpm: float = 0.0

    def validate(self, spec: str) -> None:
        validate_common(spec, self)


def _import_openai() -> Any:
    try:
        import openai  # the hosted extra: optional; only when a model runs
    except ImportError:
        raise HostedConfigError(
            "the openai model needs the 'openai' package: pip install 'driftloop[hosted]' "
            "(or pip install openai)"
        ) from None
    return openai


class OpenAIImageReplicator(HostedReplicator):
    """``images.edit`` with the trend's prompt, one request per frame."""

    provider = "openai"
    key_env = KEY_ENV

    def __init__(self, config: OpenAIConfig) -> None:
        openai = _import_openai()
        key = os.environ.get(KEY_ENV, "").strip()
        if not key:
            raise MissingAPIKeyError(
                f"the openai model needs an API key in the environment variable {KEY_ENV}: "
                f"export {KEY_ENV}=sk-... (driftloop reads it from there only and never stores it)"
            )
        super().__init__("openai", config, [key, os.environ.get(KEY_ENV)])
        self._openai = openai
        try:
            # No base_url argument: the client reads OPENAI_BASE_URL itself.
            self.client = openai.OpenAI(api_key=key, max_retries=0, timeout=config.timeout)
        except Exception as exc:
            raise HostedConfigError(f"cannot set up the OpenAI client: {self.redactor.text(exc)}") from None

    # ------------------------------------------------------------------ hooks

    def _canvas(self, frame: np.ndarray) -> tuple[int, int]:
        if self.config.size != "auto":
            return SIZES[self.config.size]
        return closest_canvas(frame.shape[0], frame.shape[1], list(SIZES.values()))

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
        openai = self._openai
        if isinstance(exc, openai.APITimeoutError):
            return Problem("transient", f"timed out after {self.config.timeout:g} s")
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
            if status == 404:
                return Problem(
                    "fatal", f"model {self.config.model!r} or endpoint not found: {line}", status, code
                )
            if status == 400 and (code in REFUSAL_CODES or "safety system" in lowered):
                return Problem("refusal", line, status, code, request_id=request_id)
            if status in RETRY_STATUSES or status >= 500:
                retry_after = parse_retry_after(exc.response.headers)
                return Problem("transient", line, status, code, retry_after, request_id)
            return Problem("failure", line, status, code, request_id=request_id)
        if isinstance(exc, openai.APIResponseValidationError):
            return Problem("failure", f"malformed response: {exc}")
        return Problem("failure", f"malformed response: {type(exc).__name__}: {exc}")

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

    def describe(self) -> dict[str, Any]:
        c = self.config
        return self.redactor.data(
            {
                **self._describe_common(),
                "endpoint": "images.edit",
                "base_url": str(self.client.base_url),
                "size": c.size,
                "quality": c.quality,
                "input_fidelity": c.input_fidelity,
                "output_format": c.output_format,
                "client_retries": 0,
                "openai": getattr(self._openai, "__version__", "unknown"),
            }
        )


def _status(config: OpenAIConfig) -> WeightsStatus:
    if importlib.util.find_spec("openai") is None:
        return WeightsStatus(False, "hosted API; pip install 'driftloop[hosted]'")
    if not os.environ.get(KEY_ENV, "").strip():
        return WeightsStatus(False, f"hosted API; set {KEY_ENV}")
    return WeightsStatus(True, f"hosted API ({KEY_ENV} set)")


def backends() -> list[Backend]:
    return [
        Backend(
            name="openai",
            summary="OpenAI image edit API (gpt-image-1, gpt-image-1-mini, ...) with the trend's prompt",
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
