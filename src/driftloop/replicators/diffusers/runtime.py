"""Where and how a diffusers / transformers model runs: devices and dtypes, CPU threads, seeded generators,
the per-step context (seed policy, schedules), optional dependencies, and out-of-memory turned into advice.

Nothing here imports torch, diffusers or transformers at module level: ``driftloop`` works without them, and
``driftloop models`` lists these backends with the ``pip install`` that enables them.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import importlib.util
import math
import re
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from driftloop.errors import DriftloopError, SpecError
from driftloop.replicators.base import Needs, Requirements, StepContext, device_needs

if TYPE_CHECKING:
    import numpy as np

INSTALL_HINT = "pip install 'driftloop[diffusers]'"
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
    import torch  # heavy, optional: only when a model runs

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

    def needs(self) -> Needs:
        """Where a replica can run, from the spec alone: a diffusion pipeline holds a few GB of weights in
        host memory while it loads (and all of them on a CPU)."""
        return device_needs(self.device, memory_mb=4096, cpus=float(self.threads or 1))

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


@functools.cache
def preset_config(base: type[T], name: str, summary: str, **defaults: Any) -> type[T]:
    """A subclass of the dataclass ``base`` with other defaults: a preset's config type.

    Its canonical spec then only shows what differs from the preset (``sd-turbo:strength=0.3``). Made once
    per preset (a new dataclass costs ~1.5 ms, and ``driftloop models`` looks the backends up often), so a
    preset's config type is also the same class every time.
    """
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
    import torch  # heavy, optional: only when a model runs

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
    import torch  # heavy, optional: only when a model runs

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if requested == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    return table[requested]


def dtype_name(dtype: Any) -> str:
    import torch  # heavy, optional: only when a model runs

    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))


def diffusers_dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """``dtype=`` for diffusers versions that take it (``torch_dtype`` is deprecated there), else
    ``torch_dtype=``."""
    try:
        from diffusers.utils import deprecation_utils  # heavy, optional: only when a model runs

        takes_dtype = hasattr(deprecation_utils, "_resolve_dtype")
    except ImportError:
        takes_dtype = False
    return {"dtype" if takes_dtype else "torch_dtype": dtype}


def set_threads(n: int) -> None:
    if n:
        import torch  # heavy, optional: only when a model runs

        torch.set_num_threads(n)


# --------------------------------------------------------------------------------------------- memory


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def is_oom(exc: BaseException) -> bool:
    import torch  # heavy, optional: only when a model runs

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
        if not is_oom(exc):
            raise
        import torch  # heavy, optional: only when a model runs

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
