"""Google Gemini image models (``gemini-3-pro-image``, ``gemini-3.1-flash-image``: "Nano Banana") as
replicators (google-genai).

One ``models.generate_content`` call per frame: the frame (a PNG ``inline_data`` part) and the trend's prompt
in ``contents``, ``response_modalities=["IMAGE"]`` and an ``image_config`` (``aspect_ratio``, and
``image_size`` when given: 512, 1K, 2K or 4K, as the model's catalogue entry allows); the copy is the last
non-thought ``inline_data`` image part of the first candidate. No image, with a safety finish reason or a
blocked prompt, is a :class:`Refusal`; no image otherwise is a :class:`Failure` (with any text the model
wrote instead).

Canvases: the frame is placed on the 1K canvas of the aspect ratio it fills best among those the model takes
(``aspect_ratio=auto``) or the one given; the answer is read back from the same box whatever its pixel size
(see :mod:`driftloop.replicators.hosted.canvas`): Gemini takes no free pixel size. ``aspect_ratio=off`` sends
no aspect ratio (models without one). ``aspect=`` is the older name of ``aspect_ratio=``.

Key: ``GOOGLE_API_KEY`` or ``GEMINI_API_KEY`` (the former wins when both are set, as in google-genai).
Base URL: ``GOOGLE_GEMINI_BASE_URL``, which the client reads itself. The client's retries are off
(``HttpRetryOptions(attempts=1)``); driftloop's own retries are counted in each copy's info.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from driftloop.cost import Price, catalogue
from driftloop.errors import SpecError
from driftloop.replicators.base import Backend, WeightsStatus
from driftloop.replicators.hosted.canvas import closest_canvas
from driftloop.replicators.hosted.config import HostedConfig, validate_common
from driftloop.replicators.hosted.messages import short, status_line
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

KEY_ENVS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
BASE_URL_ENV = "GOOGLE_GEMINI_BASE_URL"
DEFAULT_MODEL = "gemini-3-pro-image"
# The 1K output sizes Google documents for gemini-2.5-flash-image, by aspect ratio; the extreme ratios of
# gemini-3.1-flash-image at about one megapixel (multiples of 16). Only the ratio matters to the API.
CANVASES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
    "9:21": (672, 1536),
    "1:4": (512, 2048),
    "4:1": (2048, 512),
    "1:8": (368, 2944),
    "8:1": (2944, 368),
}
IMAGE_SIZES = ("512", "1K", "2K", "4K")
REFUSAL_REASONS = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
        "JAILBREAK",
    }
)


@dataclass(frozen=True)
class GeminiConfig(HostedConfig):
    """``gemini:gemini-3-pro-image,aspect_ratio=auto,image_size=2K,concurrency=4,rpm=10``.

    ``aspect_ratio``: the aspect ratio asked for (``auto``: the one the frame fills best; ``off``: none sent,
    the frame goes on a square canvas). ``image_size``: the output tier (``512``, ``1K``, ``2K``, ``4K``;
    ``auto``: none sent, the model's default, 1K). ``modalities``: ``image`` asks for an image only,
    ``text+image`` for both (some models need that). ``seed=true`` sends each step's seed as
    ``generation_config.seed``. The shared fields (prompt, pad, resample, retries, ...) are
    :class:`HostedConfig`'s.
    """

    model: str = DEFAULT_MODEL
    aspect_ratio: str = "auto"
    image_size: str = "auto"
    aspect: str = "auto"
    modalities: Literal["image", "text+image"] = "image"
    seed: bool = False

    def validate(self, spec: str) -> None:
        validate_common(spec, self)
        if self.aspect != "auto" and self.aspect_ratio != "auto" and self.aspect != self.aspect_ratio:
            raise SpecError(f"model spec {spec!r}: give aspect_ratio= only (aspect= is its older name)")
        ratio = self.ratio
        allowed = _allowed(self.model, "aspect_ratios") or list(CANVASES)[:10]
        if ratio not in ("auto", "off") and (ratio not in allowed or ratio not in CANVASES):
            raise SpecError(
                f"model spec {spec!r}: aspect_ratio={ratio} is not one of auto, off, {', '.join(allowed)}"
            )
        sizes = _allowed(self.model, "image_sizes")
        sizes = IMAGE_SIZES if sizes is None else sizes
        if self.image_size != "auto" and self.image_size not in sizes:
            listed = ", ".join(["auto", *sizes])
            raise SpecError(f"model spec {spec!r}: image_size={self.image_size} is not one of {listed}")

    @property
    def ratio(self) -> str:
        """The aspect ratio asked for, whichever of its two names was given."""
        return self.aspect_ratio if self.aspect_ratio != "auto" else self.aspect


def _allowed(model: str, key: str) -> list[str] | None:
    """The catalogue's list of ``aspect_ratios`` or ``image_sizes`` for a model; None when not listed."""
    entry = catalogue.lookup("gemini", model)
    value = entry.get(key) if entry else None
    return list(value) if value is not None else None


def _import_genai() -> tuple[Any, Any, Any]:
    try:
        from google import genai  # heavy, optional: only when a model runs
        from google.genai import errors, types  # heavy, optional: only when a model runs
    except ImportError:
        raise HostedConfigError(
            "the gemini model needs the 'google-genai' package: pip install 'driftloop[hosted]' "
            "(or pip install google-genai)"
        ) from None
    return genai, types, errors


def _env_key() -> tuple[str, str] | None:
    for name in KEY_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return name, value
    return None


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Timeouts and dropped connections of whichever HTTP stack the client uses."""
    found: list[type[BaseException]] = []
    for module, names in (
        ("httpx2", ("TransportError",)),
        ("httpx", ("TransportError",)),
        ("requests.exceptions", ("ConnectionError", "Timeout")),
    ):
        try:
            mod = __import__(module, fromlist=["_"])
        except ImportError:
            continue
        found.extend(getattr(mod, n) for n in names if hasattr(mod, n))
    found.extend([TimeoutError, ConnectionError])
    return tuple(found)


def _retry_info(details: Any) -> float | None:
    """``retryDelay`` ("27s") of a google.rpc.RetryInfo in an error body."""
    err = details.get("error", details) if isinstance(details, dict) else None
    items = err.get("details") if isinstance(err, dict) else None
    for item in items or []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            match = re.fullmatch(r"\s*([0-9.]+)s\s*", str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _enum_name(value: Any) -> str:
    name = getattr(value, "name", None) or getattr(value, "value", None) or str(value)
    return str(name).upper()


class GeminiImageReplicator(HostedReplicator):
    """``models.generate_content`` with image + prompt, one request per frame."""

    provider = "gemini"
    base_url_env = BASE_URL_ENV

    def __init__(self, config: GeminiConfig) -> None:
        ratios = _allowed(config.model, "aspect_ratios") or list(CANVASES)[:10]
        self.canvases = {r: CANVASES[r] for r in ratios if r in CANVASES}
        if is_offline():  # an estimate: no package, key or client needed
            self.key_env = KEY_ENVS[1]
            super().__init__("gemini", config, [])
            self.client, self.base_url, self._version = None, None, "unknown"
            return
        genai, types, errors = _import_genai()
        found = _env_key()
        if found is None:
            raise MissingAPIKeyError(
                "the gemini model needs an API key in the environment variable GEMINI_API_KEY "
                "(or GOOGLE_API_KEY): export GEMINI_API_KEY=... (driftloop reads it from there only and "
                "never stores it)"
            )
        self.key_env, key = found
        super().__init__("gemini", config, [key, *(os.environ.get(n) for n in KEY_ENVS)])
        self._types, self._errors = types, errors
        self._transport = _transport_errors()
        options = types.HttpOptions(
            timeout=max(1, round(config.timeout * 1000)),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        try:
            # vertexai=False: the Gemini Developer API with a key. The client reads GOOGLE_GEMINI_BASE_URL.
            self.client = genai.Client(api_key=key, vertexai=False, http_options=options)
        except Exception as exc:
            raise HostedConfigError(f"cannot set up the Gemini client: {self.redactor.text(exc)}") from None
        try:  # for describe(); the client keeps it privately
            self.base_url = str(self.client._api_client._http_options.base_url or "")
        except AttributeError:
            self.base_url = os.environ.get(BASE_URL_ENV, "default")
        self._version = _genai_version()

    # ------------------------------------------------------------------ hooks

    def _aspect(self, frame: np.ndarray) -> str:
        ratio = self.config.ratio
        if ratio == "off":
            return "1:1"
        if ratio != "auto":
            return ratio
        canvas = closest_canvas(frame.shape[0], frame.shape[1], list(self.canvases.values()))
        return next(name for name, c in self.canvases.items() if c == canvas)

    def _canvas(self, frame: np.ndarray) -> tuple[int, int]:
        return CANVASES[self._aspect(frame)]

    def _params(self, canvas: tuple[int, int]) -> dict[str, Any]:
        aspect = next(name for name, c in CANVASES.items() if c == canvas)
        params: dict[str, Any] = {"aspect_ratio": aspect if self.config.ratio != "off" else None}
        if self.config.image_size != "auto":
            params["image_size"] = self.config.image_size
        return params

    @property
    def tier(self) -> str:
        """The output size tier a copy is priced at (the model's default is 1K)."""
        return "1K" if self.config.image_size == "auto" else self.config.image_size

    def _send(self, job: Job) -> Answer:
        types, c = self._types, self.config
        contents = [
            types.Content(
                role="user",
                parts=[
                    types.Part.from_bytes(data=job.png, mime_type="image/png"),
                    types.Part.from_text(text=c.prompt),
                ],
            )
        ]
        response = self.client.models.generate_content(
            model=c.model, contents=contents, config=self.generation(job)
        )
        return self._read(response)

    def generation(self, job: Job) -> Any:
        """The request's ``GenerateContentConfig``: modalities, aspect ratio and size tier, the seed."""
        types, c = self._types, self.config
        config: dict[str, Any] = {
            "response_modalities": ["IMAGE"] if c.modalities == "image" else ["TEXT", "IMAGE"],
        }
        image_config = {k: job.params[k] for k in ("aspect_ratio", "image_size") if job.params.get(k)}
        if image_config:
            config["image_config"] = types.ImageConfig(**image_config)
        if c.seed:
            config["seed"] = job.seed % (2**31)
        return types.GenerateContentConfig(**config)

    def _read(self, response: Any) -> Answer:
        request_id = getattr(response, "response_id", None)
        facts: dict[str, Any] = {}
        usage = getattr(response, "usage_metadata", None)
        if usage is not None and hasattr(usage, "model_dump"):
            facts["usage"] = usage.model_dump(exclude_none=True, mode="json")
        if getattr(response, "model_version", None):
            facts["model_version"] = str(response.model_version)
        feedback = getattr(response, "prompt_feedback", None)
        if feedback is not None and feedback.block_reason is not None:
            reason = _enum_name(feedback.block_reason)
            if reason != "BLOCKED_REASON_UNSPECIFIED":
                text = f"prompt blocked: {reason}"
                if feedback.block_reason_message:
                    text += f" ({feedback.block_reason_message})"
                return Answer(
                    problem=Problem("refusal", text, code=reason), request_id=request_id, facts=facts
                )
        candidates = getattr(response, "candidates", None) or []
        if not candidates:
            return Answer(
                problem=Problem("failure", "malformed response: no candidates"),
                request_id=request_id,
                facts=facts,
            )
        candidate = candidates[0]
        parts = (candidate.content.parts if candidate.content is not None else None) or []
        images = [
            p
            for p in parts
            if p.inline_data is not None
            and p.inline_data.data
            and str(p.inline_data.mime_type or "image/").startswith("image/")
            and not p.thought
        ]
        finish = _enum_name(candidate.finish_reason) if candidate.finish_reason is not None else None
        if finish:
            facts["finish_reason"] = finish
        if images:
            return Answer(image=images[-1].inline_data.data, request_id=request_id, facts=facts)
        said = " ".join(p.text for p in parts if p.text and not p.thought)
        detail = f"; finish message: {candidate.finish_message}" if candidate.finish_message else ""
        detail += f"; the model wrote: {short(said, 200)!r}" if said else ""
        if finish in REFUSAL_REASONS:
            return Answer(
                problem=Problem("refusal", f"{finish}{detail}", code=finish),
                request_id=request_id,
                facts=facts,
            )
        problem = Problem(
            "failure", f"malformed response: no image (finish reason {finish}){detail}", code=finish
        )
        return Answer(problem=problem, request_id=request_id, facts=facts)

    def _classify(self, exc: BaseException) -> Problem:
        errors = self._errors
        if isinstance(exc, errors.APIError):
            status = int(exc.code) if isinstance(exc.code, int) else None
            code = str(exc.status) if exc.status else None
            message = str(exc.message or exc)
            line = status_line(status, code, message)
            details = exc.details if isinstance(exc.details, dict) else {}
            text = f"{message} {details}"
            if status in (401, 403) or "API_KEY_INVALID" in text or "API key not valid" in text:
                return Problem("fatal", f"Gemini rejected the key in {self.key_env}: {line}", status, code)
            if status == 404:
                return Problem("fatal", self.model_missing(line), status, code)
            if status == 429 and "PerDay" in text:  # a daily quota: retrying within minutes cannot help
                return Problem("fatal", f"Gemini quota exhausted for today: {line}", status, code)
            if status is not None and (status in RETRY_STATUSES or status >= 500):
                headers = getattr(getattr(exc, "response", None), "headers", None)
                retry_after = parse_retry_after(headers)
                if retry_after is None:
                    retry_after = _retry_info(details)
                return Problem("transient", line, status, code, retry_after)
            return Problem("failure", line, status, code)
        if isinstance(exc, self._transport):
            name = type(exc).__name__
            if "timeout" in name.lower() or isinstance(exc, TimeoutError):
                return Problem("transient", f"timed out after {self.config.timeout:g} s ({name})")
            return Problem("transient", f"connection error: {name}: {exc}")
        return Problem("failure", f"malformed response: {type(exc).__name__}: {short(exc, 300)}")

    def price_params(self, answer: Answer | None, job: Job | None) -> tuple[str | None, str | None]:
        return self.tier, None  # priced by size tier ("1K"), which the price table keys like a quality

    def token_counts(self, answer: Answer) -> dict[str, int] | None:
        usage = answer.facts.get("usage")
        if not isinstance(usage, dict) or "candidates_token_count" not in usage:
            return None
        prompt = int(usage.get("prompt_token_count", 0))
        image = sum(
            int(d.get("token_count", 0))
            for d in usage.get("prompt_tokens_details") or []
            if str(d.get("modality", "")).upper() == "IMAGE"
        )
        return {
            "input_text": prompt - image,
            "input_image": image,
            "output": int(usage["candidates_token_count"]),
        }

    def price_options(self) -> list[tuple[str | None, str | None]]:
        return [(self.tier, None)]

    def estimate_price(self, canvas: tuple[int, int], factors: Any) -> Price | None:
        """Output tokens of the size tier and the input image's tokens (both from the catalogue) and the
        prompt, at the cost table's token rates; None where the catalogue lists no token counts."""
        price = self.entry.price if self.entry else {}
        out = (price.get("output_tokens") or {}).get(self.tier)
        image = price.get("input_image_tokens")
        if not out or not image:
            return None
        counts = {
            "input_text": len(self.config.prompt) // 4 + 8,
            "input_image": int(image),
            "output": int(out),
        }
        found = factors.token_price(self.price_model, counts, cite=False)
        if found is None:
            return None
        return Price(found.usd, f"{self.tier} image: {found.source}", found.as_of)

    def describe(self) -> dict[str, Any]:
        c = self.config
        return self.redactor.data(
            {
                **self._describe_common(),
                "endpoint": "models.generate_content",
                "base_url": self.base_url,
                "aspect_ratio": c.ratio,
                "image_size": c.image_size,
                "modalities": c.modalities,
                "seed": c.seed,
                "client_retries": 0,
                "google-genai": self._version,
            }
        )


def _genai_version() -> str:
    try:
        from google.genai import version  # heavy, optional: only when a model runs

        return str(version.__version__)
    except Exception:
        return "unknown"


def _status(config: GeminiConfig) -> WeightsStatus:
    return key_status(("google", "google.genai"), KEY_ENVS, ask="GEMINI_API_KEY")


def backends() -> list[Backend]:
    return [
        Backend(
            name="gemini",
            summary="Google Gemini image models (gemini-3-pro-image, gemini-3.1-flash-image, ...)",
            config_type=GeminiConfig,
            build=GeminiImageReplicator,
            positional="model",
            weights_status=_status,
            notes=(
                f"key from GEMINI_API_KEY or GOOGLE_API_KEY; {BASE_URL_ENV} honoured; costs money per image; "
                "params: aspect_ratio, image_size, modalities, seed, pad, resample, retries, timeout, "
                "backoff, max_wait, concurrency, rpm"
            ),
        )
    ]
