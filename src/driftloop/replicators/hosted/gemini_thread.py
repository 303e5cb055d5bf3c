"""Gemini conversations: one multi-turn chat per chain, its whole history resent with every turn.

Gemini keeps no thread on its side: a chat is ``models.generate_content`` with the earlier turns in
``contents`` (what the SDK's ``chats`` do). The first turn is the picture and the trend's prompt; each model
turn goes back exactly as the model gave it, with its ``thought_signature`` (the image models require the
signatures of their earlier turns to continue a conversation), then the prompt again. The copy is read as
the ``gemini:`` backend reads one (:mod:`.gemini`); this module only builds the history.

Stored per frame, besides what ``gemini:`` stores (usage_metadata, response id, finish reason): the turn and
``model_turn`` (the model's text and the image part's thought signature, base64), so a resumed chain can
rebuild the history from its stored frames. A rebuilt history carries the stored frames (the copies reduced
to the chain's size and put back on the canvas), not the model's full-size answers, which are not kept:
a resumed thread is as close to the original as the stored frames allow. ``window=K`` sends only the last K
turns; ``window=0`` each copy alone (the control on the same endpoint).

Billing: every turn is one ``generateContent`` call whose prompt is the whole history, so its input tokens
(``prompt_token_count``, images by ``prompt_tokens_details``) grow turn by turn; the output is one image.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any, Literal

from driftloop.replicators.base import Backend, WeightsStatus
from driftloop.replicators.hosted.config import HostedConfig
from driftloop.replicators.hosted.gemini import (
    BASE_URL_ENV,
    DEFAULT_MODEL,
    KEY_ENVS,
    GeminiConfig,
    GeminiImageReplicator,
)
from driftloop.replicators.hosted.outcomes import Answer, Job, Problem
from driftloop.replicators.hosted.thread import Conversation, Shown, ThreadReplicator, check_window
from driftloop.replicators.known import key_status

MODEL_TEXT_TOKENS = 10  # what a model turn's text adds to the history (an assumption for the dry run)


@dataclass(frozen=True)
class GeminiThreadConfig(HostedConfig):
    """``gemini-thread:gemini-3-pro-image,window=4,image_size=1K``: ``window`` as for ``openai-thread:``;
    ``aspect_ratio``, ``image_size``, ``modalities`` as for ``gemini:``. Shared fields: :class:`HostedConfig`.
    """

    model: str = DEFAULT_MODEL
    window: int | None = None
    aspect_ratio: str = "auto"
    image_size: str = "auto"
    modalities: Literal["image", "text+image"] = "image"

    def validate(self, spec: str) -> None:
        self.image_config().validate(spec)
        check_window(spec, self.window)

    def image_config(self) -> GeminiConfig:
        """The one-call config the copies are read with (canvas, size tier, client settings)."""
        return GeminiConfig(
            model=self.model, prompt=self.prompt, aspect_ratio=self.aspect_ratio, image_size=self.image_size,
            modalities=self.modalities, pad=self.pad, resample=self.resample, retries=self.retries,
            timeout=self.timeout, backoff=self.backoff, max_wait=self.max_wait, concurrency=self.concurrency,
            rpm=self.rpm,
        )  # fmt: skip


class GeminiThreadReplicator(ThreadReplicator):
    """A chat per chain: the history of pictures, prompts and the model's own turns, resent each turn."""

    provider = "gemini"
    base_url_env = BASE_URL_ENV
    memory_depth = -1  # the whole history is resent, so a resume needs every stored frame

    def __init__(self, config: GeminiThreadConfig) -> None:
        self.single = GeminiImageReplicator(config.image_config())  # the client, canvases and answer reading
        self.key_env = self.single.key_env
        super().__init__("gemini-thread", config, [os.environ.get(name) for name in KEY_ENVS])

    def _canvas(self, frame: Any) -> tuple[int, int]:
        return self.single._canvas(frame)

    def _params(self, canvas: tuple[int, int]) -> dict[str, Any]:
        return self.single._params(canvas)

    # ------------------------------------------------------------------ one turn

    def _history(self, conv: Conversation) -> list[Any]:
        types = self.single._types
        prompt = types.Part.from_text(text=self.config.prompt)
        shown = self.context(conv)
        picture = types.Part.from_bytes(data=shown[0].png, mime_type="image/png")
        contents = [types.Content(role="user", parts=[picture, prompt])]
        for earlier in shown[1:]:
            contents.append(earlier.raw if earlier.raw is not None else self._rebuilt(earlier))
            contents.append(types.Content(role="user", parts=[prompt]))
        return contents

    def _rebuilt(self, shown: Shown) -> Any:
        """A model turn from a stored frame and its info (after a resume): its text, then the frame as the
        image part with the thought signature the model gave it."""
        types = self.single._types
        turn = (shown.info or {}).get("model_turn") or {}
        parts = [types.Part.from_text(text=t) for t in turn.get("text", [])]
        signature = turn.get("image_signature")
        image = types.Part(
            inline_data=types.Blob(data=shown.png, mime_type="image/png"),
            thought_signature=base64.b64decode(signature) if signature else None,
        )
        return types.Content(role="model", parts=[*parts, image])

    def _send_turn(self, job: Job, conv: Conversation) -> Answer:
        response = self.single.client.models.generate_content(
            model=self.config.model, contents=self._history(conv), config=self.single.generation(job)
        )
        answer = self.single._read(response)
        candidates = getattr(response, "candidates", None) or []
        content = candidates[0].content if candidates else None
        if answer.image is not None and content is not None:
            answer.raw = content
            answer.facts["model_turn"] = _turn_record(content)
        return answer

    def _classify(self, exc: BaseException) -> Problem:
        return self.single._classify(exc)

    # ------------------------------------------------------------------ cost

    def token_counts(self, answer: Answer) -> dict[str, int] | None:
        return self.single.token_counts(answer)

    def turn_counts(self, turn: int, canvas: tuple[int, int]) -> dict[str, int]:
        """A turn with ``turn`` images in its history: the prompt each turn, every image and each earlier
        model turn's text as input; one image of the size tier out."""
        price = self.single.entry.price if self.single.entry else {}
        image = int(price.get("input_image_tokens") or 1120)
        out = int((price.get("output_tokens") or {}).get(self.single.tier) or 1120)
        prompt = len(self.config.prompt) // 4 + 8
        return {
            "input_text": turn * prompt + (turn - 1) * MODEL_TEXT_TOKENS,
            "input_image": turn * image,
            "output": out,
        }

    def describe(self) -> dict[str, Any]:
        return self.redactor.data(
            {
                **self.single.describe(),
                **self._describe_thread(),
                "estimated_usd_per_image": self.requirements.cost_per_image_usd,
                "endpoint": "models.generate_content (multi-turn history)",
            }
        )


def _turn_record(content: Any) -> dict[str, Any]:
    """What a resume needs of a model turn: its text and the image part's thought signature (base64)."""
    text = [p.text for p in content.parts or [] if p.text and not p.thought]
    images = [p for p in content.parts or [] if p.inline_data is not None and not p.thought]
    signature = images[-1].thought_signature if images else None
    record: dict[str, Any] = {"text": text}
    if signature:
        record["image_signature"] = base64.b64encode(signature).decode("ascii")
    return record


def _status(config: GeminiThreadConfig) -> WeightsStatus:
    return key_status(("google", "google.genai"), KEY_ENVS, ask="GEMINI_API_KEY")


def backends() -> list[Backend]:
    return [
        Backend(
            name="gemini-thread",
            summary="Gemini conversation: one multi-turn chat per chain, its history (with the thought "
            "signatures) resent each turn (gemini-3-pro-image, ...)",
            config_type=GeminiThreadConfig,
            build=GeminiThreadReplicator,
            positional="model",
            weights_status=_status,
            notes=(
                "key from GEMINI_API_KEY or GOOGLE_API_KEY; cost grows with the history (see --dry-run); "
                "params: window, aspect_ratio, image_size, modalities, pad, resample, retries, timeout, "
                "backoff, max_wait, concurrency, rpm"
            ),
        )
    ]
