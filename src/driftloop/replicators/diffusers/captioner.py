"""The captioner of caption→redraw models: any transformers image-to-text model, decoding greedily."""

from __future__ import annotations

from typing import Any

from driftloop.replicators.base import Frames
from driftloop.replicators.diffusers.frames import to_pil
from driftloop.replicators.diffusers.hub import DEFAULT_CAPTIONER, find_model, load_model
from driftloop.replicators.diffusers.runtime import oom_guard, require

__all__ = ["DEFAULT_CAPTIONER", "Captioner"]


class Captioner:
    """A transformers image-to-text model: BLIP, Florence-2, or a chat VLM (Qwen2.5-VL, SmolVLM, ...).

    Loaded through ``AutoProcessor`` + ``AutoModelForImageTextToText`` (``AutoModelForVision2Seq`` on
    older transformers); decoding is greedy, so the same image gives the same caption.
    """

    def __init__(
        self,
        ref: str,
        device: Any,
        dtype: Any,
        prompt: str = "",
        max_new_tokens: int = 40,
        spec: str = "",
    ) -> None:
        require(spec or ref, "transformers", "torch")
        self.model_ref = find_model(ref, ("config.json",))
        self.device = device
        self.dtype = dtype
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.spec = spec or ref
        self.processor, self.model = load_model(self.model_ref, "captioner", self._load)
        self.model_type = getattr(self.model.config, "model_type", "")
        if not self.prompt and self.model_type.startswith("florence"):
            self.prompt = "<MORE_DETAILED_CAPTION>"
        self.chat = bool(getattr(self.processor, "chat_template", None))
        tokenizer = getattr(self.processor, "tokenizer", None)
        if self.chat and tokenizer is not None:
            tokenizer.padding_side = "left"  # batched generation with a decoder-only model

    def _load(self, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        import transformers  # heavy, optional: only when a model runs

        auto = (
            getattr(transformers, "AutoModelForImageTextToText", None) or transformers.AutoModelForVision2Seq
        )
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
        processor = transformers.AutoProcessor.from_pretrained(self.model_ref.load_from, **kwargs)
        model = auto.from_pretrained(self.model_ref.load_from, **{dtype_kw: self.dtype}, **kwargs)
        model = model.to(self.device).eval()
        return processor, model

    def _inputs(self, images: list[Any]) -> Any:
        if self.chat:
            text = self.prompt or "Describe this image in one detailed sentence."
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
            prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
            return self.processor(
                images=[[im] for im in images], text=[prompt] * len(images), return_tensors="pt", padding=True
            )
        if self.prompt:
            return self.processor(
                images=images, text=[self.prompt] * len(images), return_tensors="pt", padding=True
            )
        return self.processor(images=images, return_tensors="pt")

    def caption(self, frames: Frames) -> list[str]:
        """One caption per frame, in one batched ``generate`` call."""
        import torch  # heavy, optional: only when a model runs

        images = to_pil(frames)
        with oom_guard(self.spec, frames, self.device), torch.inference_mode():
            inputs = self._inputs(images).to(self.device)
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
            out = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1
            )
        ids = inputs.get("input_ids")
        if ids is not None and out.shape[1] > ids.shape[1] and torch.equal(out[:, : ids.shape[1]], ids):
            out = out[:, ids.shape[1] :]  # decoder-only models echo the prompt
        texts = self.processor.batch_decode(out, skip_special_tokens=True)
        return [" ".join(t.split()) for t in texts]

    def describe(self) -> dict[str, Any]:
        return {
            **self.model_ref.describe(),
            "class": type(self.model).__name__,
            "caption_prompt": self.prompt,
            "max_new_tokens": self.max_new_tokens,
        }
