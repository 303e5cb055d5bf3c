"""The built-in backends described without importing them: name, summary, notes, where the weights (or the
key) are, and the module that implements each.

``driftloop models`` and the gallery's model list read this, so they answer without loading NumPy, Pillow,
the diffusion code or the hosted clients; a backend's module is imported when a spec naming it is parsed
(:func:`driftloop.replicators.registry.lookup`). Every entry says what its module's ``backends()``
registers (a test holds the two together: names, summaries, notes and weight status).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from driftloop.replicators import tae
from driftloop.replicators.base import WeightsStatus
from driftloop.replicators.diffusers.hub import DEFAULT_CAPTIONER, VAE_MARKERS, combined_status, status_of
from driftloop.replicators.diffusers.presets import Preset, presets
from driftloop.replicators.diffusers.runtime import dependency_note
from driftloop.replicators.tae_variants import TAEConfig

CODEC = "driftloop.replicators.codec"
DIFFUSERS = "driftloop.replicators.diffusers"
HOSTED = "driftloop.replicators.hosted"
NO_WEIGHTS = WeightsStatus(True, "none")
HOSTED_INSTALL = "hosted API; pip install 'driftloop[hosted]'"


@dataclass(frozen=True)
class Known:
    """A built-in backend as ``driftloop models`` lists it; ``weights`` checks the default configuration."""

    name: str
    module: str
    summary: str
    weights: Callable[[], WeightsStatus]
    notes: str = ""


def key_status(modules: Sequence[str], key_envs: Sequence[str], ask: str | None = None) -> WeightsStatus:
    """What ``driftloop models`` says of a hosted backend: its client library installed, and a key set in
    one of ``key_envs`` (when none is: "set ASK", by default the first of them)."""
    if any(importlib.util.find_spec(m) is None for m in modules):
        return WeightsStatus(False, HOSTED_INSTALL)
    found = next((name for name in key_envs if os.environ.get(name, "").strip()), None)
    if found is None:
        return WeightsStatus(False, f"hosted API; set {ask or key_envs[0]}")
    return WeightsStatus(True, f"hosted API ({found} set)")


def _hub(ref: str, markers: Sequence[str] = ("model_index.json",)) -> WeightsStatus:
    return status_of(ref, markers)


def _preset_weights(p: Preset) -> WeightsStatus:
    """A preset's default models, found the way its family's backend looks for them."""
    d = p.defaults
    if p.family == "caption-redraw":
        return combined_status(_hub(d["captioner"], ("config.json",)), _hub(d["pipeline"]))
    if p.family == "vae":
        return _hub(d["model"], VAE_MARKERS)
    if p.family == "img2img" and d.get("prompt") == "auto":
        return combined_status(
            _hub(d["model"]), _hub(d.get("captioner", DEFAULT_CAPTIONER), ("config.json",))
        )
    return _hub(d["model"])


def _diffusers() -> list[Known]:
    """The four diffusion families (a hub id or folder to give) and their presets."""
    both = dependency_note("diffusers", "transformers")
    needs = {"img2img": both, "instruct": both, "vae": dependency_note("diffusers"), "caption-redraw": both}
    modules = {
        "img2img": f"{DIFFUSERS}.img2img",
        "instruct": f"{DIFFUSERS}.instruct",
        "vae": f"{DIFFUSERS}.vae",
        "caption-redraw": f"{DIFFUSERS}.caption_redraw",
    }

    def generic(name: str, summary: str, notes: str) -> Known:
        return Known(name, modules[name], summary, lambda: _hub(""), needs[name] or notes)

    out = [
        generic(
            "img2img",
            "any diffusers img2img pipeline: img2img:<hub id or folder>",
            "strength, steps, prompt=auto, seed_policy, schedule",
        ),
        generic(
            "instruct",
            "an instruction editor (image + prompt): instruct:<hub id or folder>",
            "instruction=, steps, guidance, true_cfg",
        ),
        generic(
            "vae",
            "an AutoencoderKL round trip: vae:<hub id or folder>",
            "sample=true draws the latent (default: its mode)",
        ),
        generic(
            "caption-redraw",
            "caption, then draw: caption-redraw:captioner=<id>,pipeline=<id>",
            "each frame's caption is stored with it",
        ),
    ]
    out += [
        Known(p.name, modules[p.family], p.summary, lambda p=p: _preset_weights(p), p.notes(needs[p.family]))
        for p in presets()
    ]
    return out


def _hosted() -> list[Known]:
    """The hosted families; their models are in the hosted catalogue (:mod:`driftloop.cost.catalogue`)."""
    common = "resample, retries, timeout, backoff, max_wait, concurrency, rpm"
    return [
        Known(
            "openai",
            f"{HOSTED}.openai_images",
            "OpenAI image edit API (gpt-image-2, gpt-image-2.6-sunburst, ...), the trend's prompt",
            lambda: key_status(("openai",), ("OPENAI_API_KEY",)),
            "key from OPENAI_API_KEY; OPENAI_BASE_URL honoured; costs money per image (--max-cost); "
            f"params: size, quality, input_fidelity, output_format, pad, {common}",
        ),
        Known(
            "gemini",
            f"{HOSTED}.gemini",
            "Google Gemini image models (gemini-3-pro-image, gemini-3.1-flash-image, ...)",
            lambda: key_status(
                ("google", "google.genai"), ("GOOGLE_API_KEY", "GEMINI_API_KEY"), "GEMINI_API_KEY"
            ),
            "key from GEMINI_API_KEY or GOOGLE_API_KEY; GOOGLE_GEMINI_BASE_URL honoured; "
            f"costs money per image; params: aspect_ratio, image_size, modalities, seed, pad, {common}",
        ),
        Known(
            "openai-thread",
            f"{HOSTED}.openai_thread",
            "OpenAI conversation: one Responses API thread per chain, the image_generation tool "
            "draws each copy (gpt-image-2, ...)",
            lambda: key_status(("openai",), ("OPENAI_API_KEY",)),
            "key from OPENAI_API_KEY; OPENAI_BASE_URL honoured; cost grows with the thread (see --dry-run); "
            "params: window, mainline, size, quality, action, output_format, pad, resample, retries, "
            "timeout, backoff, max_wait, concurrency, rpm",
        ),
        Known(
            "gemini-thread",
            f"{HOSTED}.gemini_thread",
            "Gemini conversation: one multi-turn chat per chain, its history (with the thought "
            "signatures) resent each turn (gemini-3-pro-image, ...)",
            lambda: key_status(
                ("google", "google.genai"), ("GOOGLE_API_KEY", "GEMINI_API_KEY"), "GEMINI_API_KEY"
            ),
            "key from GEMINI_API_KEY or GOOGLE_API_KEY; cost grows with the history (see --dry-run); "
            "params: window, aspect_ratio, image_size, modalities, pad, resample, retries, timeout, "
            "backoff, max_wait, concurrency, rpm",
        ),
        Known(
            "bfl",
            f"{HOSTED}.bfl",
            "Black Forest Labs API: FLUX.2 [klein/pro/max/flex], FLUX.1 Kontext [pro/max]",
            lambda: key_status(("httpx",), ("BFL_API_KEY",)),
            "key from BFL_API_KEY; BFL_BASE_URL honoured; costs money per image; params: safety_tolerance, "
            f"output_format, prompt_upsampling, seed, deadline, poll, poll_max, pad, {common}",
        ),
    ]


def entries() -> list[Known]:
    """Every built-in backend, described (TAE variants from :mod:`~driftloop.replicators.tae`, which is
    light: its runtime is a module of its own)."""
    taes = [
        Known(
            b.name, "driftloop.replicators.tae", b.summary, lambda b=b: b.weights_status(TAEConfig()), b.notes
        )
        for b in tae.backends()
    ]
    codecs = [
        Known("jpeg", CODEC, "JPEG re-encoding (Pillow/libjpeg): the non-AI control", lambda: NO_WEIGHTS),
        Known("webp", CODEC, "WebP re-encoding (Pillow/libwebp): the non-AI control", lambda: NO_WEIGHTS),
    ]
    return [*taes, *codecs, *_diffusers(), *_hosted()]


@functools.cache
def modules() -> dict[str, str]:
    """The module that registers each built-in name (the same for the whole process)."""
    return {k.name: k.module for k in entries()}
