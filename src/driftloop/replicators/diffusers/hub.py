"""Finding a model (local folder, ``DRIFTLOOP_MODEL_DIR``, the Hugging Face cache, a hub download) and loading
it with one clear error when it is not here; what ``driftloop models`` says about each known hub model.

Never touches the network except through ``from_pretrained`` in :func:`load_model`, and only when allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop.errors import DriftloopError, SpecError, WeightsError
from driftloop.replicators.base import WeightsStatus
from driftloop.replicators.diffusers.runtime import (
    INSTALL_HINT,
    MissingDependencyError,
    OutOfMemoryError,
    T,
    first_line,
    is_oom,
)
from driftloop.weights import offline

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


#: The captioner of ``prompt=auto`` and of ``blip+sd-turbo`` (here, with the other known hub models, so the
#: presets are described without importing the captioner's code).
DEFAULT_CAPTIONER = "Salesforce/blip-image-captioning-base"
#: What marks a folder as a VAE: a VAE repo, or a pipeline repo with a vae/ folder.
VAE_MARKERS = ("config.json", "vae/config.json")


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
    root = cache / f"models--{repo_id.replace('/', '--')}"
    if not root.is_dir():
        return None  # not cached at all: `driftloop models` need not load huggingface_hub to say so
    try:
        from huggingface_hub import try_to_load_from_cache  # heavy, optional: only when a model runs
    except ImportError:  # driftloop without the extra: read the cache layout directly
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
            if model.source == "hf-cache" and not offline() and not is_oom(exc):
                return loader({**kwargs, "local_files_only": False})  # the cache holds only part of it
            raise
    except ImportError as exc:
        raise MissingDependencyError(f"{what} {model.ref!r}: {exc}. {INSTALL_HINT}") from None
    except Exception as exc:
        if is_oom(exc):
            raise OutOfMemoryError(
                f"{what} {model.ref!r} does not fit in memory while loading ({first_line(exc)}): use "
                "dtype=fp16 or bf16, cpu_offload=true, or a smaller model"
            ) from None
        error = _load_error(model, what, exc)
        if error is exc:
            raise
        raise error from None


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
