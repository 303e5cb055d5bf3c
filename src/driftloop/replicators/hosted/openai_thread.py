"""OpenAI conversations: the Responses API with the built-in ``image_generation`` tool, one thread per chain.

Each turn is ``client.responses.create`` with a mainline model (``mainline=``, default gpt-5.4-mini) that
must call the image tool (``tool_choice={"type": "image_generation"}``); the tool has its own GPT Image model
(``openai-thread:gpt-image-2`` names it), ``action`` (``edit`` by default: every turn edits the image in
context; ``auto`` lets the model choose), ``size`` and ``quality``. The first turn sends the picture as an
``input_image`` content part (a PNG data URL) with the trend's prompt; every later turn sends the prompt alone
with ``previous_response_id`` of the turn before, so the provider keeps the thread. The copy is the
``result`` (base64) of the answer's ``image_generation_call`` output item.

``window=K`` rebuilds a short conversation each turn instead (nothing chained, ``store=false``): the oldest
frame of the window as the user's picture, each later one as an earlier ``image_generation_call`` item with
its result, the prompt after each. ``window=0`` is one request per copy on the same endpoint: the control.

Stored per frame: the response id (and the one it continued), the thread id (its first response) and turn,
the image call's id and revised prompt, the mainline model's ``usage`` and the tool's ``tool_usage``. The
price of a turn is read from both (mainline tokens at the mainline's rates, the tool's text, image and output
tokens at the image model's), so a growing thread is billed as it grows. A thread the provider no longer has
(HTTP 404 on ``previous_response_id``) stops the run with :class:`ThreadLostError` (exit code 6).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any, Literal

from driftloop.errors import SpecError
from driftloop.replicators.base import Backend, WeightsStatus
from driftloop.replicators.hosted.canvas import decode_b64
from driftloop.replicators.hosted.config import HostedConfig
from driftloop.replicators.hosted.openai_images import (
    BASE_URL_ENV,
    DEFAULT_MODEL,
    KEY_ENV,
    OpenAIConfig,
    canvas_for,
    classify,
    input_image_tokens,
    openai_client,
    openai_key,
    output_tokens,
    size_rule,
)
from driftloop.replicators.hosted.outcomes import Answer, Job, Problem
from driftloop.replicators.hosted.replicator import is_offline
from driftloop.replicators.hosted.thread import Conversation, ThreadReplicator, check_window
from driftloop.replicators.known import key_status

DEFAULT_MAINLINE = "gpt-5.4-mini"
REFUSAL_CODES = frozenset({"moderation_blocked", "content_policy_violation", "content_filter"})
# The per-turn token model of the dry run (assumptions, replaced by each answer's usage once it comes):
OVERHEAD_TOKENS = 200  # the mainline's instructions and the tool's definition, every turn
ASSISTANT_TOKENS = 60  # what each earlier turn's answer adds to the thread (the tool call, a line of text)
MAINLINE_OUTPUT_TOKENS = 40  # the mainline's own output per turn (the tool call)
REVISED_PROMPT_TOKENS = 60  # the text the tool receives (the revised prompt)


@dataclass(frozen=True)
class OpenAIThreadConfig(HostedConfig):
    """``openai-thread:gpt-image-2,window=4,mainline=gpt-5.4-mini,quality=medium``.

    ``model``: the image tool's GPT Image model. ``window``: none (the whole thread), K (the last K turns,
    a new conversation each turn) or 0 (fresh requests). ``mainline``: the Responses model that calls the
    tool. ``action``: ``edit`` (default), ``auto`` or ``generate``. ``size``/``quality``/``output_format``
    as for ``openai:``. The shared fields are :class:`HostedConfig`'s.
    """

    model: str = DEFAULT_MODEL
    window: int | None = None
    mainline: str = DEFAULT_MAINLINE
    size: str = "auto"
    quality: Literal["auto", "low", "medium", "high", "xhigh", "max"] = "auto"
    action: Literal["edit", "auto", "generate"] = "edit"
    output_format: Literal["png", "jpeg", "webp"] = "png"

    def validate(self, spec: str) -> None:
        image = OpenAIConfig(model=self.model, prompt=self.prompt, size=self.size, quality=self.quality)
        image.validate(spec)  # the image model's sizes and qualities, and the shared fields
        check_window(spec, self.window)
        if not self.mainline.strip() or any(c.isspace() for c in self.mainline):
            raise SpecError(f"model spec {spec!r}: mainline must be a Responses model such as gpt-5.4-mini")


def vision_tokens(width: int, height: int) -> int:
    """Tokens a mainline model reads an image in context as (high detail: the image fitted in 2048², its
    short side scaled to 768, 170 per 512-px tile plus 85); an assumption for the dry run."""
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    short = min(w, h)
    if short > 768:
        w, h = w * 768 / short, h * 768 / short
    return 85 + 170 * (-(-round(w) // 512)) * (-(-round(h) // 512))


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _dump(value: Any) -> Any:
    return value.model_dump(exclude_none=True, mode="json") if hasattr(value, "model_dump") else value


class OpenAIThreadReplicator(ThreadReplicator):
    """One Responses API conversation per chain, the image tool drawing each copy."""

    provider = "openai"
    key_env = KEY_ENV
    base_url_env = BASE_URL_ENV

    def __init__(self, config: OpenAIThreadConfig) -> None:
        self.rule = size_rule(config.model)
        if is_offline():  # an estimate: no package, key or client needed
            super().__init__("openai-thread", config, [])
            self._openai, self.client = None, None
            return
        openai, key = openai_key("openai-thread")
        super().__init__("openai-thread", config, [key, os.environ.get(KEY_ENV)])
        self._openai, self.client = openai, openai_client(openai, key, config.timeout, self.redactor)

    @property
    def price_model(self) -> str:
        """``openai-thread:gpt-image-2`` (the catalogue's rates assume the default mainline model; another
        one is its own key, ``openai-thread:gpt-image-2+gpt-5.5``, priced by a --cost-factors file)."""
        c = self.config
        tail = "" if c.mainline == DEFAULT_MAINLINE else f"+{c.mainline}"
        return f"openai-thread:{c.model}{tail}"

    def _canvas(self, frame: Any) -> tuple[int, int]:
        return canvas_for(self.config.size, self.rule, frame)

    def _params(self, canvas: tuple[int, int]) -> dict[str, Any]:
        return {"size": f"{canvas[0]}x{canvas[1]}", "quality": self.config.quality}

    # ------------------------------------------------------------------ one turn

    def _input(self, job: Job, conv: Conversation) -> list[dict[str, Any]]:
        """The turn's input items: the prompt alone when the thread continues; else the window rebuilt."""
        prompt = {"type": "input_text", "text": self.config.prompt}
        if not self.new_thread(conv):
            return [{"role": "user", "content": [prompt]}]
        shown = self.context(conv)
        items: list[dict[str, Any]] = [
            {
                "role": "user",
                "content": [
                    prompt,
                    {"type": "input_image", "image_url": _data_url(shown[0].png), "detail": "auto"},
                ],
            }
        ]
        for k, earlier in enumerate(shown[1:], 1):
            call_id = (earlier.info or {}).get("image_call_id") or f"ig_driftloop_{earlier.step}_{k}"
            result = base64.b64encode(earlier.png).decode("ascii")
            items.append(
                {"type": "image_generation_call", "id": call_id, "status": "completed", "result": result}
            )
            items.append({"role": "user", "content": [prompt]})
        return items

    def _send_turn(self, job: Job, conv: Conversation) -> Answer:
        c = self.config
        tool: dict[str, Any] = {
            "type": "image_generation",
            "model": c.model,
            "action": c.action,
            "size": job.params["size"],
            "quality": c.quality,
            "output_format": c.output_format,
        }
        kwargs: dict[str, Any] = {
            "model": c.mainline,
            "input": self._input(job, conv),
            "tools": [tool],
            "tool_choice": {"type": "image_generation"},
            "store": self.window is None,
        }
        previous = None if self.new_thread(conv) else conv.state.get("response_id")
        if previous:
            kwargs["previous_response_id"] = previous
        response = self.client.responses.create(**kwargs)
        return self._read(response, previous)

    def _read(self, response: Any, previous: str | None) -> Answer:
        facts: dict[str, Any] = {
            "response_id": getattr(response, "id", None),
            "mainline": self.config.mainline,
        }
        if previous:
            facts["previous_response_id"] = previous
        if getattr(response, "usage", None) is not None:
            facts["usage"] = _dump(response.usage)
        tool_usage = getattr(response, "tool_usage", None)
        if tool_usage is not None and getattr(tool_usage, "image_gen", None) is not None:
            facts["tool_usage"] = _dump(tool_usage.image_gen)
        request_id = getattr(response, "_request_id", None)
        calls = [
            o
            for o in (getattr(response, "output", None) or [])
            if getattr(o, "type", "") == "image_generation_call"
        ]
        if not calls:
            said = " ".join(
                getattr(part, "text", "") or ""
                for o in (response.output or [])
                for part in (getattr(o, "content", None) or [])
            ).strip()
            what = f"; the model wrote: {said[:200]!r}" if said else ""
            problem = Problem(
                "failure", f"malformed response: no image_generation_call (status {response.status}){what}"
            )
            return Answer(problem=problem, request_id=request_id, facts=facts)
        call = calls[-1]
        facts["image_call_id"] = call.id
        for name in ("size", "quality", "action"):
            value = getattr(call, name, None)
            if value:
                facts[f"reported_{name}"] = str(value)
        if getattr(call, "revised_prompt", None):
            facts["revised_prompt"] = str(call.revised_prompt)
        error = getattr(call, "error", None)
        if call.status == "failed" or not call.result:
            code = getattr(error, "code", None) if error is not None else None
            message = getattr(error, "message", None) if error is not None else None
            kind = "refusal" if code in REFUSAL_CODES else "failure"
            text = f"image_generation_call {call.status}: {message or 'no result'}"
            if kind == "failure":
                text = f"malformed response: {text}"
            return Answer(problem=Problem(kind, text, code=code), request_id=request_id, facts=facts)
        try:
            image = decode_b64(call.result)
        except ValueError as exc:
            return Answer(
                problem=Problem("failure", f"malformed response: {exc}"), request_id=request_id, facts=facts
            )
        return Answer(image=image, request_id=request_id, facts=facts)

    def _classify(self, exc: BaseException) -> Problem:
        return classify(self._openai, exc, self.config.timeout, self.model_missing)

    def _remember(self, conv: Conversation, answer: Answer) -> None:
        conv.state["response_id"] = answer.facts.get("response_id")

    def _resume_state(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"response_id": info.get("response_id")}

    # ------------------------------------------------------------------ cost

    def token_counts(self, answer: Answer) -> dict[str, int] | None:
        usage, tool = answer.facts.get("usage"), answer.facts.get("tool_usage")
        if not isinstance(usage, dict) or not isinstance(tool, dict):
            return None
        cached = int((usage.get("input_tokens_details") or {}).get("cached_tokens", 0))
        details = tool.get("input_tokens_details") or {}
        return {
            "mainline_input": int(usage.get("input_tokens", 0)) - cached,
            "mainline_cached": cached,
            "mainline_output": int(usage.get("output_tokens", 0)),
            "input_text": int(details.get("text_tokens", 0)),
            "input_image": int(details.get("image_tokens", 0)),
            "output": int(tool.get("output_tokens", 0)),
        }

    def turn_counts(self, turn: int, canvas: tuple[int, int]) -> dict[str, int]:
        """A turn with ``turn`` images in context: the mainline reads the prompt and every image of the
        thread (and each earlier answer), the tool edits one image and draws one at its size and quality
        (``auto`` priced as ``high``)."""
        w, h = canvas
        prompt = len(self.config.prompt) // 4 + 8
        quality = "high" if self.config.quality == "auto" else self.config.quality
        return {
            "mainline_input": OVERHEAD_TOKENS
            + turn * (prompt + vision_tokens(w, h))
            + (turn - 1) * ASSISTANT_TOKENS,
            "mainline_output": MAINLINE_OUTPUT_TOKENS,
            "input_text": REVISED_PROMPT_TOKENS,
            "input_image": input_image_tokens(w, h),
            "output": output_tokens(quality, w, h),
        }

    def describe(self) -> dict[str, Any]:
        c = self.config
        return self.redactor.data(
            {
                **self._describe_common(),
                **self._describe_thread(),
                "endpoint": "responses.create (image_generation tool)",
                "mainline": c.mainline,
                "action": c.action,
                "base_url": str(self.client.base_url) if self.client is not None else None,
                "size": c.size,
                "quality": c.quality,
                "output_format": c.output_format,
                "client_retries": 0,
                "openai": getattr(self._openai, "__version__", "unknown"),
            }
        )


def _status(config: OpenAIThreadConfig) -> WeightsStatus:
    return key_status(("openai",), (KEY_ENV,))


def backends() -> list[Backend]:
    return [
        Backend(
            name="openai-thread",
            summary="OpenAI conversation: one Responses API thread per chain, the image_generation tool "
            "draws each copy (gpt-image-2, ...)",
            config_type=OpenAIThreadConfig,
            build=OpenAIThreadReplicator,
            positional="model",
            weights_status=_status,
            notes=(
                f"key from {KEY_ENV}; {BASE_URL_ENV} honoured; cost grows with the thread (see --dry-run); "
                "params: window, mainline, size, quality, action, output_format, pad, resample, retries, "
                "timeout, backoff, max_wait, concurrency, rpm"
            ),
        )
    ]
