"""What the diffusers / transformers backends share: devices and dtypes, seeded generators, finding a model
(local folder, ``DRIFTLOOP_MODEL_DIR``, the Hugging Face cache, a hub download), loading it with one clear
error when it is not here, turning out-of-memory into advice, and the per-step context a replicator may use.

Nothing here imports diffusers or transformers at module level: ``driftloop`` works without them, and
``driftloop models`` lists these backends with the ``pip install`` that enables them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import inspect
import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from driftloop.errors import DriftloopError, SpecError, WeightsError
from driftloop.replicators.base import Copy, Frames, Refusal, Requirements, StepContext, WeightsStatus
from driftloop.weights import offline

INSTALL_HINT = "pip install 'driftloop[diffusers]'"
DEFAULT_CAPTIONER = "Salesforce/blip-image-captioning-base"
_SEED_MASK = (1 << 64) - 1

T = TypeVar("T")


# --------------------------------------------------------------------------------------------- errors


class OutOfMemoryError(DriftloopError):
    """The model ran out of GPU (or CPU) memory; the message says which knob to turn."""

    exit_code = 5


class MissingDependencyError(DriftloopError):
    """A backend needs an optional dependency that is not installed."""

    exit_code = 2


# ---------------------------------------------------------------------------------------- step context


def make_requirements(**kwargs: Any) -> Requirements:
    """``Requirements`` of a pipeline backend: it wants the :class:`StepContext` (seed policy, schedules)."""
    return Requirements(wants_context=True, **kwargs)


SeedPolicy = Literal["fresh", "fixed"]
Schedule = Literal["constant", "linear", "cosine"]


def noise_seeds(
    seeds: Sequence[int], context: StepContext | None, policy: SeedPolicy
) -> tuple[list[int], str]:
    """The seed each frame's noise is drawn from, and the policy actually applied.

    ``fresh``: the step seed (new noise every step). ``fixed``: the chain seed (the same noise at every step
    of a chain); without a context the chain seed is unknown, so it falls back to ``fresh``.
    """
    if policy == "fixed" and context is not None:
        return [int(s) & _SEED_MASK for s in context.chain_seeds], "fixed"
    return [int(s) & _SEED_MASK for s in seeds], "fresh"


def scheduled(start: float, end: float | None, schedule: Schedule, step: int, n_steps: int) -> float:
    """A value going from ``start`` (step 1) to ``end`` (step ``n_steps``), as in A1111's loopback.

    ``linear`` interpolates; ``cosine`` follows half a cosine (slow, fast, slow); past ``n_steps`` the value
    stays at ``end``.
    """
    if schedule == "constant" or end is None:
        return start
    t = 0.0 if n_steps <= 1 else min(max((step - 1) / (n_steps - 1), 0.0), 1.0)
    w = t if schedule == "linear" else (1 - math.cos(math.pi * t)) / 2
    return start + (end - start) * w


def generators(seeds: Sequence[int]) -> list[Any]:
    """One CPU ``torch.Generator`` per frame: noise that depends only on that frame's seed.

    CPU generators give the same noise whichever device the model runs on (diffusers draws on the
    generator's device and moves the tensor).
    """
    import torch

    return [torch.Generator("cpu").manual_seed(int(s) & _SEED_MASK) for s in seeds]


# ----------------------------------------------------------------------------------------------- config


Dtype = Literal["auto", "fp32", "fp16", "bf16"]


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how a diffusers/transformers model runs; the fields every diffusion backend shares.

    ``device``: auto (cuda > mps > cpu), cpu, cuda[:N], mps. ``dtype``: auto is fp16 on a GPU, fp32 on the
    CPU. ``cpu_offload``: diffusers' ``enable_model_cpu_offload`` (needs accelerate and a GPU).
    ``max_batch``: the most frames one pipeline call takes (0: no limit). ``threads``: CPU threads.
    """

    device: str = "auto"
    dtype: Dtype = "auto"
    cpu_offload: bool = False
    max_batch: int = 0
    threads: int = 0

    def validate_runtime(self, spec: str) -> None:
        if self.device != "auto" and not re.fullmatch(r"cpu|mps|cuda(:\d+)?", self.device):
            raise SpecError(f"model spec {spec!r}: device={self.device!r} is not auto, cpu, cuda[:N] or mps")
        if self.cpu_offload and self.device == "cpu":
            raise SpecError(f"model spec {spec!r}: cpu_offload=true needs a GPU (device is cpu)")
        if self.max_batch < 0:
            raise SpecError(f"model spec {spec!r}: max_batch must be ≥ 0 (0 = no limit)")
        if self.threads < 0:
            raise SpecError(f"model spec {spec!r}: threads must be ≥ 0 (0 = PyTorch's default)")


def check_fraction(spec: str, name: str, value: float | None) -> None:
    if value is not None and not 0.0 < value <= 1.0:
        raise SpecError(f"model spec {spec!r}: {name}={value} must be in (0, 1]")


def check_positive(spec: str, name: str, value: int) -> None:
    if value < 1:
        raise SpecError(f"model spec {spec!r}: {name} must be at least 1 (got {value})")


def preset_config(base: type[T], name: str, summary: str, **defaults: Any) -> type[T]:
    """A subclass of the dataclass ``base`` with other defaults: a preset's config type.

    Its canonical spec then only shows what differs from the preset (``sd-turbo:strength=0.3``).
    """
    import dataclasses
    import typing

    hints = typing.get_type_hints(base)
    unknown = set(defaults) - set(hints)
    if unknown:
        raise TypeError(f"{base.__name__} has no field(s) {sorted(unknown)}")
    fields = [(k, hints[k], dataclasses.field(default=v)) for k, v in defaults.items()]
    cls_name = "".join(p.capitalize() for p in re.split(r"[^a-zA-Z0-9]+", name)) + "Config"
    cls = dataclasses.make_dataclass(cls_name, fields, bases=(base,), frozen=True)
    cls.__module__ = base.__module__
    cls.__doc__ = f"{summary} (preset {name!r} of {base.__name__})"
    return cls


# ----------------------------------------------------------------------------------------- dependencies


def missing_dependencies(*modules: str) -> list[str]:
    """Which of ``modules`` cannot be imported here (checked without importing them)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(spec: str, *modules: str) -> None:
    """Raise one clear error when an optional dependency of a backend is missing."""
    missing = missing_dependencies(*modules)
    if missing:
        raise MissingDependencyError(
            f"model {spec!r} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            f"not installed: {INSTALL_HINT}"
        )


def dependency_note(*modules: str) -> str:
    """The ``driftloop models`` note: what to install, or nothing when it is all here."""
    return f"needs: {INSTALL_HINT}" if missing_dependencies(*modules) else ""


def library_versions(*packages: str) -> dict[str, str]:
    out = {}
    for pkg in packages:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


# --------------------------------------------------------------------------------------- device, dtype


def pick_device(requested: str) -> Any:
    """``auto`` → cuda > mps > cpu; an explicit device that is absent is a SpecError."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SpecError(f"device {requested!r} was asked for but PyTorch sees no CUDA device here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SpecError(f"device {requested!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not has_mps:
        raise SpecError(f"device {requested!r} was asked for but MPS is not available here")
    return device


def pick_dtype(requested: str, device: Any) -> Any:
    """``auto`` → fp16 on a GPU, fp32 on the CPU; explicit fp32/fp16/bf16 as asked."""
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if requested == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    return table[requested]


def dtype_name(dtype: Any) -> str:
    import torch

    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))


def diffusers_dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """``dtype=`` for diffusers versions that take it (``torch_dtype`` is deprecated there), else
    ``torch_dtype=``."""
    try:
        from diffusers.utils import deprecation_utils

        takes_dtype = hasattr(deprecation_utils, "_resolve_dtype")
    except ImportError:
        takes_dtype = False
    return {"dtype" if takes_dtype else "torch_dtype": dtype}


def set_threads(n: int) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------- frames


def to_pil(frames: Frames, size: tuple[int, int] | None = None) -> list[Any]:
    """RGB uint8 arrays → PIL images, resized (Lanczos) to ``size`` = (width, height) when given."""
    from PIL import Image

    images = [Image.fromarray(np.ascontiguousarray(f), "RGB") for f in frames]
    if size is not None:
        images = [im if im.size == size else im.resize(size, Image.Resampling.LANCZOS) for im in images]
    return images


def model_size(frame: np.ndarray, size: int, multiple: int) -> tuple[int, int] | None:
    """(width, height) with the longer side ``size`` (rounded to ``multiple``), or None (``size=0``)."""
    if not size:
        return None
    h, w = frame.shape[:2]
    scale = size / max(h, w)
    round_to = max(1, multiple)
    return (
        max(round_to, round(w * scale / round_to) * round_to),
        max(round_to, round(h * scale / round_to) * round_to),
    )


def from_output(images: Any, like: Sequence[np.ndarray]) -> tuple[Frames, list[tuple[int, int] | None]]:
    """A pipeline's output (``output_type="np"`` floats in [0, 1], PIL images or uint8 arrays) → uint8
    frames the shape of their inputs (resized back with Lanczos when the model chose another size).

    Returns the frames and, per frame, the (width, height) the model produced when it differed.
    """
    from PIL import Image

    frames: Frames = []
    produced: list[tuple[int, int] | None] = []
    seq = list(images) if not isinstance(images, np.ndarray) else [images[i] for i in range(len(images))]
    for out, src in zip(seq, like, strict=True):
        if isinstance(out, Image.Image):
            arr = np.asarray(out.convert("RGB"), dtype=np.uint8)
        else:
            arr = np.asarray(out)
            if arr.dtype != np.uint8:
                arr = np.round(np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
            if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
                arr = arr.transpose(1, 2, 0)
            if arr.shape[-1] == 1:
                arr = np.repeat(arr, 3, axis=-1)
        if arr.shape != src.shape:
            produced.append((arr.shape[1], arr.shape[0]))
            im = Image.fromarray(arr, "RGB").resize((src.shape[1], src.shape[0]), Image.Resampling.LANCZOS)
            arr = np.asarray(im, dtype=np.uint8)
        else:
            produced.append(None)
        frames.append(np.ascontiguousarray(arr))
    return frames, produced


def accepted_kwargs(fn: Callable[..., Any], wanted: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The part of ``wanted`` that ``fn`` names in its signature, and the names it does not take."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return dict(wanted), []
    kept = {k: v for k, v in wanted.items() if k in params}
    return kept, [k for k in wanted if k not in params]


# -------------------------------------------------------------------------------------- finding models


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (as huggingface_hub does at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.environ[var])).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    return Path(os.path.expandvars(home)).expanduser() / "hub"


@dataclass(frozen=True)
class ModelInfo:
    """What users need to know about a hub model before fetching it."""

    size: str = "size unknown"
    fetch: str = ""
    gated: bool = False


# Hub models this package knows the download size of (what from_pretrained fetches, with the variant the
# presets use) and the cheapest way to fetch just those files.
KNOWN_MODELS: dict[str, ModelInfo] = {
    "stabilityai/sd-turbo": ModelInfo(
        "≈2.6 GB",
        'hf download stabilityai/sd-turbo --include "*.json" --include "*.txt" '
        '--include "*.fp16.safetensors"',
    ),
    "stabilityai/sdxl-turbo": ModelInfo(
        "≈6.9 GB",
        'hf download stabilityai/sdxl-turbo --include "*.json" --include "*.txt" '
        '--include "*.fp16.safetensors"',
    ),
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ModelInfo(
        "≈2.7 GB",
        'hf download stable-diffusion-v1-5/stable-diffusion-v1-5 --include "*.json" --include "*.txt" '
        '--include "*.fp16.safetensors"',
    ),
    "stabilityai/stable-diffusion-xl-base-1.0": ModelInfo(
        "≈6.9 GB",
        'hf download stabilityai/stable-diffusion-xl-base-1.0 --include "*.json" --include "*.txt" '
        '--include "*.fp16.safetensors"',
    ),
    "black-forest-labs/FLUX.1-Kontext-dev": ModelInfo(
        "≈34 GB",
        'hf download black-forest-labs/FLUX.1-Kontext-dev --exclude "flux1-kontext-dev.safetensors"',
        gated=True,
    ),
    "Qwen/Qwen-Image-Edit": ModelInfo("≈58 GB", "hf download Qwen/Qwen-Image-Edit"),
    "stabilityai/sd-vae-ft-mse": ModelInfo(
        "≈0.33 GB", 'hf download stabilityai/sd-vae-ft-mse --include "*.json" --include "*.safetensors"'
    ),
    "Salesforce/blip-image-captioning-base": ModelInfo(
        "≈0.99 GB",
        'hf download Salesforce/blip-image-captioning-base --include "*.json" --include "*.txt" '
        '--include "*.safetensors"',
    ),
}


def model_info(repo_id: str) -> ModelInfo:
    return KNOWN_MODELS.get(repo_id, ModelInfo(fetch=f"hf download {repo_id}"))


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def looks_like_path(ref: str) -> bool:
    """A local path rather than a hub id: absolute, relative with ./ or ~, or not of the form org/name."""
    return ref.startswith(("/", ".", "~", "\\")) or "\\" in ref or not _HUB_ID.match(ref)


@dataclass(frozen=True)
class ModelRef:
    """Where a model will be loaded from.

    ``load_from``: what to hand to ``from_pretrained`` (a folder, or the hub id); ``source``: ``local``,
    ``model-dir``, ``hf-cache`` or ``hub`` (a download); ``path``: the folder when there is one;
    ``revision``: the hub commit of a cached snapshot.
    """

    ref: str
    load_from: str
    source: str
    path: Path | None = None
    revision: str | None = None

    @property
    def is_hub(self) -> bool:
        return self.source in ("hf-cache", "hub")

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.ref, "source": self.source}
        if self.path is not None:
            out["path"] = str(self.path)
        if self.revision:
            out["revision"] = self.revision
        return out


def _has_marker(folder: Path, markers: Sequence[str]) -> bool:
    return folder.is_dir() and any((folder / m).is_file() for m in markers)


def cached_snapshot(repo_id: str, markers: Sequence[str]) -> Path | None:
    """The folder of ``repo_id``'s cached snapshot holding one of ``markers``; never touches the network."""
    cache = hf_cache_dir()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # driftloop without the extra: read the cache layout directly
        root = cache / f"models--{repo_id.replace('/', '--')}"
        ref = root / "refs" / "main"
        if ref.is_file():
            snap = root / "snapshots" / ref.read_text().strip()
            return snap if _has_marker(snap, markers) else None
        return None
    for marker in markers:
        found = try_to_load_from_cache(repo_id, marker, cache_dir=str(cache))
        if isinstance(found, str):
            snap = Path(found)
            for _ in Path(marker).parts:
                snap = snap.parent
            return snap
    return None


def find_model(ref: str, markers: Sequence[str] = ("model_index.json", "config.json")) -> ModelRef:
    """Resolve a hub id or folder: explicit folder → ``DRIFTLOOP_MODEL_DIR`` → HF cache → hub download.

    Never touches the network. A folder that does not exist is a WeightsError here; a hub model that is not
    cached is returned as ``source="hub"`` and :func:`ensure_available` decides whether it may be fetched.
    """
    if not ref:
        raise SpecError("no model given: pass a Hugging Face hub id (org/name) or a local folder")
    local = Path(ref).expanduser()
    if local.exists():
        if not local.is_dir():
            raise WeightsError(f"{ref}: not a folder; give a diffusers/transformers model folder or a hub id")
        return ModelRef(ref, str(local), "local", local)
    if looks_like_path(ref):
        raise WeightsError(
            f"model folder {ref} does not exist (and {ref!r} is not a hub id of the form org/name)"
        )
    env = os.environ.get("DRIFTLOOP_MODEL_DIR")
    if env:
        base = Path(env).expanduser()
        for folder in (base / ref, base / ref.split("/")[-1]):
            if _has_marker(folder, markers):
                return ModelRef(ref, str(folder), "model-dir", folder)
    snap = cached_snapshot(ref, markers)
    if snap is not None:
        return ModelRef(ref, ref, "hf-cache", snap, snap.name)
    return ModelRef(ref, ref, "hub")


def missing_message(ref: str, reason: str) -> str:
    """One message for a model that is not here: name, size, how to fetch it, or use a folder."""
    info = model_info(ref)
    gated = (
        f" It is gated: accept its licence at https://huggingface.co/{ref} and log in "
        "(`hf auth login`) first."
        if info.gated
        else ""
    )
    return (
        f"model {ref!r} ({info.size}) is not in the Hugging Face cache ({hf_cache_dir()}) and {reason}. "
        f"Fetch it where there is network with `{info.fetch}` (older huggingface_hub: "
        f"`huggingface-cli download {ref}`), then run again (HF_HUB_OFFLINE=1 is fine), or pass a local "
        f"folder holding the model instead of the hub id.{gated}"
    )


def ensure_available(*models: ModelRef) -> None:
    """Fail before loading anything when a hub model is not cached and downloads are off (one error
    naming every missing model)."""
    if not offline():
        return
    missing = [
        missing_message(m.ref, "downloads are off (HF_HUB_OFFLINE / DRIFTLOOP_OFFLINE)")
        for m in models
        if m.source == "hub"
    ]
    if missing:
        raise WeightsError("\n".join(missing))


def status_of(ref: str, markers: Sequence[str] = ("model_index.json", "config.json")) -> WeightsStatus:
    """``driftloop models``: present (where) or missing (size, how to fetch); no network."""
    if not ref:
        return WeightsStatus(False, "give a hub id or folder")
    try:
        found = find_model(ref, markers)
    except DriftloopError as exc:
        return WeightsStatus(False, str(exc))
    if found.source == "hub":
        return WeightsStatus(False, f"{ref} ({model_info(ref).size}, not in the HF cache)")
    return WeightsStatus(True, f"{found.source}: {found.path}")


def combined_status(*statuses: WeightsStatus) -> WeightsStatus:
    wheres = dict.fromkeys(s.where for s in statuses)  # in order, without repeats
    return WeightsStatus(all(s.present for s in statuses), "; ".join(wheres))


def hub_kwargs(model: ModelRef) -> dict[str, Any]:
    """``from_pretrained`` keywords: the live cache folder, and no network when offline."""
    if not model.is_hub:
        return {}
    return {"cache_dir": str(hf_cache_dir()), "local_files_only": offline() or model.source == "hf-cache"}


def _is_network_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(
        k in text
        for k in ("connect", "offline", "timed out", "timeout", "name or service", "network", "resolve")
    )


def load_model(model: ModelRef, what: str, loader: Callable[[dict[str, Any]], T]) -> T:
    """Call ``loader(hub_kwargs)`` and turn the hub's many exceptions into one WeightsError.

    A cached hub model is first loaded without network (fast, works offline); if files are missing from
    the cache and downloads are allowed, it is loaded again with downloads on.
    """
    ensure_available(model)
    kwargs = hub_kwargs(model)
    try:
        try:
            return loader(kwargs)
        except (OSError, ValueError) as exc:
            if model.source == "hf-cache" and not offline() and not _is_oom(exc):
                return loader({**kwargs, "local_files_only": False})  # the cache holds only part of it
            raise
    except ImportError as exc:
        raise MissingDependencyError(f"{what} {model.ref!r}: {exc}. {INSTALL_HINT}") from None
    except Exception as exc:
        if _is_oom(exc):
            raise OutOfMemoryError(
                f"{what} {model.ref!r} does not fit in memory while loading ({first_line(exc)}): use "
                "dtype=fp16 or bf16, cpu_offload=true, or a smaller model"
            ) from None
        error = _load_error(model, what, exc)
        if error is exc:
            raise
        raise error from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _load_error(model: ModelRef, what: str, exc: Exception) -> Exception:
    """The user-facing error for a failed load; anything unrecognised is returned as it is (a bug)."""
    name = type(exc).__name__
    if name == "GatedRepoError":
        return WeightsError(
            f"{what} {model.ref!r} is gated on the Hugging Face hub: accept its licence at "
            f"https://huggingface.co/{model.ref} and log in (`hf auth login` or HF_TOKEN), then run again"
        )
    if name == "RepositoryNotFoundError":
        return WeightsError(
            f"{what} {model.ref!r}: no such model on the Hugging Face hub (or it is private: log in with "
            "`hf auth login`); check the id, or pass a local folder"
        )
    if name == "RevisionNotFoundError":
        return WeightsError(f"{what} {model.ref!r}: {first_line(exc)}")
    if model.is_hub and (isinstance(exc, OSError | ConnectionError) or name.endswith("EntryNotFoundError")):
        if offline():
            reason = "downloads are off (HF_HUB_OFFLINE / DRIFTLOOP_OFFLINE)"
        elif _is_network_error(exc):
            reason = f"the hub could not be reached ({first_line(exc)})"
        elif "does not appear to have a file named" in str(exc):
            reason = f"it could not be fetched: no network, or not a diffusers model ({first_line(exc)})"
        else:
            reason = f"could not be fetched ({first_line(exc)})"
        if model.source == "hf-cache":
            return WeightsError(
                f"{what} {model.ref!r} is only partly in the Hugging Face cache ({model.path}) and "
                f"{reason}: {missing_message(model.ref, 'cannot be completed now')}"
            )
        return WeightsError(missing_message(model.ref, reason))
    if isinstance(exc, OSError) or (isinstance(exc, RuntimeError) and "state_dict" in str(exc)):
        where = model.path or model.ref
        return WeightsError(f"{what} {model.ref!r}: cannot load the files in {where} ({first_line(exc)})")
    if isinstance(exc, ValueError):
        return SpecError(f"{what} {model.ref!r} cannot be used here: {first_line(exc)}")
    return exc


# --------------------------------------------------------------------------------------- running models


def _is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text.lower() or "can't allocate memory" in text or "DefaultCPUAllocator" in text
    )


@contextmanager
def oom_guard(spec: str, frames: Sequence[np.ndarray], device: Any) -> Iterator[None]:
    """Turn CUDA / MPS / CPU out-of-memory into an OutOfMemoryError that says what to change."""
    try:
        yield
    except Exception as exc:
        if not _is_oom(exc):
            raise
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        n = len(frames)
        h, w = frames[0].shape[:2] if frames else (0, 0)
        where = {"cuda": "GPU", "mps": "GPU (MPS)"}.get(getattr(device, "type", str(device)), "CPU")
        smaller = f"a smaller --batch-size (e.g. --batch-size {max(1, n // 2)}), " if n > 1 else ""
        raise OutOfMemoryError(
            f"model {spec} ran out of {where} memory on a batch of {n} frame(s) of {w}×{h} "
            f"({first_line(exc)}); use {smaller}a smaller --size, dtype=fp16 or bf16, or cpu_offload=true"
        ) from None


def place_pipeline(pipe: Any, device: Any, cpu_offload: bool, spec: str) -> Any:
    """Move a pipeline to its device (or let accelerate offload it); no progress bars per call."""
    if cpu_offload:
        if missing_dependencies("accelerate"):
            raise MissingDependencyError(
                f"model {spec!r}: cpu_offload=true needs accelerate: pip install accelerate"
            )
        with oom_guard(spec, [], device):
            pipe.enable_model_cpu_offload(device=device)
    else:
        with oom_guard(spec, [], device):
            pipe.to(device)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe


def size_multiple(pipe: Any) -> int:
    """Frame sides the pipeline takes without cropping: the VAE factor, ×2 for patchified transformers."""
    factor = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    if getattr(pipe, "transformer", None) is not None:
        factor *= 2
    return factor


def config_hash(folder: Path | None) -> str | None:
    """sha256 over a model folder's JSON configs (cheap; weights are identified by the hub revision)."""
    if folder is None or not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.json")):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------- captions


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
        import transformers

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
        import torch

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


# ------------------------------------------------------------------------------------ pipeline backends


class PipelineReplicator:
    """What the img2img, instruct and caption→redraw replicators share: a diffusers pipeline on a device,
    called once per batch with one generator per frame, its output turned back into uint8 frames.

    Subclasses give ``what`` (for messages), ``kind`` (for ``describe``) and ``load`` (the from_pretrained).
    """

    kind = "pipeline"
    what = "pipeline"

    def __init__(self, spec: str, config: Any, ref: str) -> None:
        require(spec, "diffusers", "transformers", "torch")
        self.spec = spec
        self.config = config
        self.model_ref = find_model(ref, ("model_index.json",))
        self.device = pick_device(config.device)
        if config.cpu_offload and self.device.type == "cpu":
            raise SpecError(f"model spec {spec!r}: cpu_offload=true needs a GPU; PyTorch sees none here")
        self.dtype = pick_dtype(config.dtype, self.device)
        set_threads(config.threads)
        pipe = load_model(self.model_ref, self.what, self.load)
        self.pipe = place_pipeline(pipe, self.device, config.cpu_offload, spec)
        self.multiple = size_multiple(self.pipe)
        self.requirements = make_requirements(
            size_multiple=self.multiple,
            max_batch=config.max_batch or None,
            device=str(self.device),
            deterministic=self.device.type == "cpu",
        )
        try:
            self.call_params = set(inspect.signature(self.pipe.__call__).parameters)
        except (TypeError, ValueError):
            self.call_params = set()
        self.ignored: set[str] = set()

    def noise_for(self, seeds: Sequence[int], context: StepContext | None) -> tuple[list[int], SeedPolicy]:
        """The noise seed of each frame under the config's seed policy; ``fixed`` needs the engine's
        context (chain seeds) and falls back to fresh noise, once with a warning, when called without it."""
        used, policy = noise_seeds(seeds, context, self.config.seed_policy)
        if self.config.seed_policy != policy and not getattr(self, "_warned_fixed", False):
            self._warned_fixed = True
            warnings.warn(
                f"{self.spec}: seed_policy=fixed needs the chain seeds from the engine; using fresh noise",
                stacklevel=3,
            )
        return used, policy

    def load(self, hub_kwargs: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def pretrained_kwargs(self) -> dict[str, Any]:
        """Keywords of ``from_pretrained`` shared by every pipeline: dtype and weight variant."""
        out: dict[str, Any] = diffusers_dtype_kwarg(self.dtype)
        variant = getattr(self.config, "variant", None)
        if variant:
            out["variant"] = variant
        return out

    def call(
        self, frames: Frames, seeds: Sequence[int], kwargs: dict[str, Any], image_input: bool = True
    ) -> tuple[Frames, list[dict[str, Any]]]:
        """One pipeline call for frames of one shape: ``kwargs`` hold per-call options (lists are per frame).

        Options the pipeline does not take are dropped (and listed in ``describe``); the output is resized
        back to the frames' shape when the model produced another size.
        """
        import torch

        size = model_size(frames[0], getattr(self.config, "size", 0), self.multiple)
        width, height = size or (frames[0].shape[1], frames[0].shape[0])
        wanted = dict(kwargs)
        if image_input:
            wanted["image"] = to_pil(frames, size)
        wanted.update(generator=generators(seeds), output_type="np")
        wanted.setdefault("height", height)
        wanted.setdefault("width", width)
        kept, dropped = (wanted, []) if not self.call_params else accepted_kwargs(self.pipe.__call__, wanted)
        self.ignored.update(k for k in dropped if k not in ("height", "width", "max_area"))
        with oom_guard(self.spec, frames, self.device), torch.inference_mode():
            result = self.pipe(**kept)
        images = result.images if hasattr(result, "images") else result[0]
        copies, produced = from_output(images, frames)
        nsfw = getattr(result, "nsfw_content_detected", None) or [None] * len(frames)
        infos: list[dict[str, Any]] = []
        for made, flagged in zip(produced, nsfw, strict=True):
            info: dict[str, Any] = {}
            if made is not None:
                info["model_output_size"] = list(made)
            if flagged:
                info["nsfw_content_detected"] = True
            infos.append(info)
        return copies, infos

    @staticmethod
    def outcome(frame: np.ndarray, info: dict[str, Any]) -> Copy | Refusal:
        """A pipeline's copy, or a :class:`Refusal` when its safety checker blacked it out: a black frame is
        not a copy, and the chain must not go on from it (the engine asks again, then ends it ``refused``)."""
        if info.get("nsfw_content_detected"):  # the same seed would be flagged again: no retry
            reason = "the pipeline's safety checker flagged the copy and blacked it out"
            return Refusal(reason, info, retryable=False)
        return Copy(frame, info)

    def describe_pipeline(self) -> dict[str, Any]:
        scheduler = getattr(self.pipe, "scheduler", None)
        return {
            "kind": self.kind,
            **self.model_ref.describe(),
            "pipeline": type(self.pipe).__name__,
            "scheduler": type(scheduler).__name__ if scheduler is not None else None,
            "config_sha256": config_hash(self.model_ref.path),
            "device": str(self.device),
            "dtype": dtype_name(self.dtype),
            "cpu_offload": self.config.cpu_offload,
            "variant": getattr(self.config, "variant", None),
            "ignored_options": sorted(self.ignored),
            **library_versions("diffusers", "transformers", "torch", "huggingface_hub"),
        }


def group_by(keys: Sequence[Any]) -> dict[Any, list[int]]:
    """Indices of equal keys, in first-seen order (frames that can share one pipeline call)."""
    groups: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups
