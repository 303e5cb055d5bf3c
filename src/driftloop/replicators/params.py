"""The parameters a person sets for each built-in backend, described without importing it: what the
gallery's start-a-run form shows when a model is chosen, and how the form's values become a spec string.

Each :class:`Param` names a field of the backend's config dataclass (the spec parser's vocabulary), with
its default as a spec string spells it, the choices or range a form can offer, and a line of help. Only
the settings worth a form field are here (quality, steps, strength, guidance, size, the hosted model id,
concurrency); anything else the parser accepts can still be given as ``key=value`` text
(:func:`form_spec`'s ``extra``). A test holds every entry to its backend's config type (field names,
defaults, choices), so this description cannot drift from what a spec string accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from driftloop.cost import catalogue
from driftloop.errors import SpecError
from driftloop.replicators import tae
from driftloop.replicators.diffusers.presets import INSTRUCTION, presets
from driftloop.replicators.spec import split_spec

Kind = Literal["choice", "int", "float", "text", "bool"]
HOSTED_MODELS = {"openai": "gpt-image-2", "openai-thread": "gpt-image-2", "gemini": "gemini-3-pro-image",
                 "gemini-thread": "gemini-3-pro-image", "bfl": "flux-2-pro"}  # fmt: skip
QUALITIES = ("auto", "low", "medium", "high", "xhigh", "max")


@dataclass(frozen=True)
class Param:
    """One setting of a backend as a form offers it. ``default`` is the spec string's spelling (``""``: not
    set, the backend's or pipeline's own default); ``low``/``high`` bound a number (inclusive; ``above``:
    ``low`` itself is not allowed); ``positional``: the spec's bare first value (a hosted model id)."""

    name: str
    kind: Kind
    default: str
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    above: bool = False
    positional: bool = False
    required: bool = False

    def check(self, model: str, raw: str) -> str:
        """The value as a spec string takes it; a :class:`SpecError` naming the model and the parameter."""
        value = raw.strip()
        where = f"{model}: {self.name}"
        if value == "":
            if self.required:
                raise SpecError(f"{where} is needed ({self.help})")
            return ""
        if self.kind == "choice" and value not in self.choices:
            listed = ", ".join(c or "(unset)" for c in self.choices)
            raise SpecError(f"{where}={value!r} is not one of {listed}")
        if self.kind == "bool" and value not in ("true", "false"):
            raise SpecError(f"{where}={value!r}: true or false")
        if self.kind in ("int", "float"):
            try:
                number = int(value) if self.kind == "int" else float(value)
            except ValueError:
                kind = "whole number" if self.kind == "int" else "number"
                raise SpecError(f"{where}={value!r} is not a {kind}") from None
            low_ok = self.low is None or (number > self.low if self.above else number >= self.low)
            if not low_ok or (self.high is not None and number > self.high):
                raise SpecError(f"{where}={value} is outside {self.bounds}")
        if self.kind == "text" and value != self.default and any(c in value for c in ",\n"):
            raise SpecError(f"{where}: a comma cannot be part of a value in a model spec")
        return value

    @property
    def bounds(self) -> str:
        """``0 < x ≤ 1``, ``1 to 100``, ``at least 1``: the range in words (empty when unbounded)."""
        low, high = (None if b is None else f"{b:g}" for b in (self.low, self.high))
        if low is not None and high is not None:
            return f"{low} < x ≤ {high}" if self.above else f"{low} to {high}"
        if low is not None:
            return f"more than {low}" if self.above else f"at least {low}"
        return f"at most {high}" if high is not None else ""


def _hosted_ids(provider: str) -> tuple[str, ...]:
    """The catalogue's current models of a provider (the default first)."""
    ids = [e.id for e in catalogue.entries() if e.provider == provider and e.status == "current"]
    default = HOSTED_MODELS[provider]
    return (default, *[i for i in ids if i != default])


def _model(provider: str) -> Param:
    return Param(
        "model",
        "choice",
        HOSTED_MODELS[provider],
        "the provider's model (current ones, from the hosted catalogue)",
        _hosted_ids(provider),
        positional=True,
    )


def _concurrency() -> Param:
    return Param("concurrency", "int", "4", "requests in flight at once", low=1, high=64)


def _openai_image(thread: bool) -> tuple[Param, ...]:
    provider = "openai-thread" if thread else "openai"
    return (
        _model(provider),
        Param(
            "quality",
            "choice",
            "auto",
            "low is cheapest; auto lets the API choose (priced as the dearest "
            "up front); xhigh and max on the 2.5/2.6 models only",
            QUALITIES,
        ),
        Param(
            "size", "text", "auto", "auto (the frame's own shape) or WxH in multiples of 16, e.g. 1024x1024"
        ),
        *(
            (
                Param(
                    "window",
                    "int",
                    "",
                    "turns of the thread resent (empty: the whole thread; 0: fresh requests)",
                    low=0,
                ),
            )
            if thread
            else (
                Param(
                    "input_fidelity",
                    "choice",
                    "",
                    "how closely the edit keeps the input (sent only when set)",
                    ("", "low", "high"),
                ),
            )
        ),
        _concurrency(),
    )


def _gemini(thread: bool) -> tuple[Param, ...]:
    provider = "gemini-thread" if thread else "gemini"
    window = (Param("window", "int", "", "turns of the chat resent (empty: the whole history)", low=0),)
    return (
        _model(provider),
        Param(
            "image_size",
            "choice",
            "auto",
            "the output tier (auto: the model's default, 1K)",
            ("auto", "512", "1K", "2K", "4K"),
        ),
        Param("aspect_ratio", "text", "auto", "auto (the one the frame fills best), off, or e.g. 4:3"),
        *(window if thread else ()),
        _concurrency(),
    )


BFL = (
    _model("bfl"),
    Param("safety_tolerance", "int", "2", "0 (strict) to 5 (6 for Kontext)", low=0, high=6),
    Param("seed", "bool", "true", "send each step's seed"),
    _concurrency(),
)
TAE = (
    Param("dtype", "choice", "fp32", "bf16 halves the memory on a GPU that has it", ("fp32", "bf16")),
    Param("device", "text", "auto", "auto, cpu, cuda[:N] or mps"),
    Param("threads", "int", "0", "CPU threads (0: PyTorch's default)", low=0, high=256),
)
STRENGTH = "how far each copy may move from its input"
STEPS = "denoising steps (img2img denoises int(steps × strength))"
GUIDANCE = "classifier-free guidance (empty: the pipeline's default)"
SIZE = "the side the model works at (0: the frame's size)"


def _fmt(value: object) -> str:
    """A default as a spec string writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _img2img(d: Mapping[str, object], generic: bool) -> tuple[Param, ...]:
    hub = (Param("model", "text", "", "hub id or folder of the pipeline", positional=True, required=True),)
    return (
        *(hub if generic else ()),
        Param(
            "prompt",
            "text",
            _fmt(d.get("prompt", "")),
            "text the pipeline draws from (auto: a caption of each chain's input)",
        ),
        Param("strength", "float", _fmt(d.get("strength", 0.5)), STRENGTH, low=0, high=1, above=True),
        Param("steps", "int", _fmt(d.get("steps", 20)), STEPS, low=1, high=1000),
        Param("guidance", "float", _fmt(d.get("guidance")), GUIDANCE, low=0, high=50),
        Param("size", "int", "0", SIZE, low=0, high=4096),
    )


def _instruct(d: Mapping[str, object], generic: bool) -> tuple[Param, ...]:
    hub = (Param("model", "text", "", "hub id or folder of the pipeline", positional=True, required=True),)
    return (
        *(hub if generic else ()),
        Param("instruction", "text", _fmt(d.get("instruction", INSTRUCTION)), "what the editor is asked"),
        Param("steps", "int", _fmt(d.get("steps", 28)), "denoising steps", low=1, high=1000),
        Param("guidance", "float", _fmt(d.get("guidance")), GUIDANCE, low=0, high=50),
        Param(
            "true_cfg",
            "float",
            _fmt(d.get("true_cfg")),
            "true CFG scale (Qwen-Image-Edit; empty: the pipeline's default)",
            low=0,
            high=50,
        ),
        Param("size", "int", "0", SIZE, low=0, high=4096),
    )


def _vae(generic: bool) -> tuple[Param, ...]:
    hub = (Param("model", "text", "", "hub id or folder of the VAE", positional=True, required=True),)
    return (
        *(hub if generic else ()),
        Param("sample", "bool", "false", "draw the latent (default: its mode, deterministic)"),
        Param("tiling", "bool", "false", "decode in tiles (large images, less memory)"),
    )


def _caption_redraw(d: Mapping[str, object], generic: bool) -> tuple[Param, ...]:
    return (
        Param("captioner", "text", _fmt(d.get("captioner", "")), "hub id of the captioner", required=generic),
        Param(
            "pipeline",
            "text",
            _fmt(d.get("pipeline", "")),
            "hub id of the text-to-image pipeline",
            required=generic,
        ),
        Param("steps", "int", _fmt(d.get("steps", 20)), "denoising steps", low=1, high=1000),
        Param("guidance", "float", _fmt(d.get("guidance")), GUIDANCE, low=0, high=50),
        Param("size", "int", "0", SIZE, low=0, high=4096),
    )


FAMILIES = {"img2img": _img2img, "instruct": _instruct, "caption-redraw": _caption_redraw}


def _diffusion() -> dict[str, tuple[Param, ...]]:
    out: dict[str, tuple[Param, ...]] = {
        "img2img": _img2img({}, True),
        "instruct": _instruct({}, True),
        "vae": _vae(True),
        "caption-redraw": _caption_redraw({}, True),
    }
    for p in presets():
        d = p.defaults
        out[p.name] = _vae(False) if p.family == "vae" else FAMILIES[p.family](d, False)
    return out


def all_params() -> dict[str, tuple[Param, ...]]:
    """Every built-in backend's form parameters, by name (a backend missing here has none to offer)."""
    return {
        **{b.name: TAE for b in tae.backends()},
        "jpeg": (
            Param("quality", "int", "75", "JPEG quality (lower: more loss per copy)", low=1, high=100),
            Param(
                "subsampling",
                "choice",
                "2",
                "chroma subsampling: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0",
                ("0", "1", "2"),
            ),
        ),
        "webp": (
            Param("quality", "int", "80", "WebP quality (lower: more loss per copy)", low=1, high=100),
            Param("method", "int", "4", "encoder effort, 0 (fast) to 6 (slow)", low=0, high=6),
        ),
        **_diffusion(),
        "openai": _openai_image(thread=False),
        "openai-thread": _openai_image(thread=True),
        "gemini": _gemini(thread=False),
        "gemini-thread": _gemini(thread=True),
        "bfl": BFL,
    }


_PARAMS = all_params()


def params_of(name: str) -> tuple[Param, ...]:
    """The form parameters of the backend ``name`` (none for a plug-in: its spec is given as text)."""
    return _PARAMS.get(name, ())


def form_spec(name: str, values: Mapping[str, str], extra: str = "") -> str:
    """The spec string of a model and a form's values: each checked (a :class:`SpecError` naming the
    parameter), those at their default left out, then ``extra`` (``key=value, ...`` of any other field the
    spec parser accepts; the parser checks those when the spec is used).

    >>> form_spec("openai", {"model": "gpt-image-2", "quality": "low", "concurrency": "1"})
    'openai:quality=low,concurrency=1'
    """
    positional, items = "", []
    for p in params_of(name):
        value = p.check(name, values.get(p.name, p.default))
        if value == p.default and not p.positional:
            continue
        if p.positional:
            positional = "" if value == p.default else value
        elif value != "":
            items.append(f"{p.name}={value}")
    given = {p.name for p in params_of(name)}
    text = extra.strip().strip(",")
    if text:
        _, bare, raw = split_spec(f"{name}:{text}")
        if bare is not None:
            raise SpecError(f"{name}: more parameters {text!r}: give them as key=value, separated by commas")
        twice = sorted(set(raw) & given)
        if twice:
            raise SpecError(f"{name}: {twice[0]} is set above; leave it out of the more-parameters box")
        items += [f"{k}={v}" for k, v in raw.items()]
    parts = ([positional] if positional else []) + items
    return f"{name}:{','.join(parts)}" if parts else name
