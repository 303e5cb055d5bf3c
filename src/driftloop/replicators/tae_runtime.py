"""How a tiny autoencoder runs (PyTorch): the replicator built from :mod:`driftloop.replicators.tae`.

Speed without changing a bit (fp32 on CPU, the default): frames are bit-identical to the plain eager model
run on an NCHW float32 tensor (``model.decoder(model.encoder(x)).clamp(0, 1)``, then ×255, round) with the
same batch size and thread count, and ~1.6-1.9× faster at 512² on a 2-core AVX2 machine (3.0-3.4 s →
1.6-2.0 s a step; ``benchmarks/bench_chain.py``). Two things make the difference:

- :func:`keep_freed_memory` (most of the gain) stops glibc from handing every freed 64 MiB activation back
  to the kernel, which made each eager step page-fault ~700 000 fresh pages in.
- :class:`~driftloop.replicators.tae_model.BlockedRunner` keeps activations in oneDNN's blocked layout
  between convolutions, so eager PyTorch's copies into and out of that layout around every convolution are
  gone, while the convolutions are the same oneDNN kernels (so the same results).

What is left is ~90% convolutions (265 GFLOP a step at 512²) running at ~70% of the CPU's FMA peak, which
is why nothing in fp32 goes much faster here. Measured and not used: channels_last (the previous path;
other oneDNN kernels, frames differ by 1 at some pixels, not faster), ``torch.compile`` with freezing
(frames differ, ~20 s of compiling, no faster than this path), NNPACK's Winograd (inexact, slower).

``dtype=bf16`` changes the chain (it is a different model, numerically) and only pays off on hardware with
bf16 instructions (AVX512-BF16, AMX, recent GPUs): without them oneDNN emulates it, ~10× slower than fp32.
bf16, CUDA and MPS run the eager model in channels_last.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from driftloop.errors import SpecError, WeightsError
from driftloop.replicators.base import Frames, Requirements
from driftloop.replicators.spec import format_spec
from driftloop.replicators.tae_model import BlockedRunner, TinyAutoEncoder
from driftloop.replicators.tae_variants import TAEConfig, Variant
from driftloop.weights import resolve


def pick_device(requested: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; an explicit device that is absent is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device {requested!r} was asked for but PyTorch sees no CUDA device here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SpecError(f"device {requested!r} was asked for but MPS is not available here")
    return device


_MALLOC_TUNED = False


def keep_freed_memory() -> bool:
    """Let glibc serve large blocks from the heap and keep freed memory for reuse: process-wide, once.

    By default glibc ``mmap``s every block over 32 MiB (one 64-channel activation at 512² is 64 MiB) and
    unmaps it when freed, so the next step gets fresh pages from the kernel and faults them in 4 KiB at a
    time: ~700 000 page faults per eager round trip at 512², a third of its time on a small VM. With
    ``M_MMAP_MAX=0`` blocks come from the heap, and with ``M_TRIM_THRESHOLD=-1`` the heap is never shrunk,
    so each step reuses the pages of the step before. Numerics are untouched. The cost: freed memory stays
    with the process (its high-water mark, ~0.8 GB for one 512² frame, more for batches) for reuse by later
    allocations instead of going back to the system. Returns whether it applied (False off glibc: macOS,
    Windows, musl).
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: musl's mallopt is a no-op stub  # noqa: B018
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    _MALLOC_TUNED = bool(mallopt(m_trim_threshold, -1)) and bool(mallopt(m_mmap_max, 0))
    return _MALLOC_TUNED


def frames_to_tensor(frames: Frames, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Stack NHWC ``uint8`` frames into an NCHW float tensor in [0, 1] that is channels_last in memory."""
    batch = torch.from_numpy(np.stack(frames)).to(device)
    return batch.permute(0, 3, 1, 2).to(dtype).div_(255)


def tensor_to_frames(images: torch.Tensor) -> Frames:
    """NCHW floats in [0, 1] → list of NHWC ``uint8`` frames, rounding half to even."""
    quantised = images.float().clamp(0, 1).mul_(255).round_().to(torch.uint8)  # leaves ``images`` as it was
    array = quantised.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return [np.ascontiguousarray(a) for a in array]


def short(text: str, limit: int = 300) -> str:
    """At most ``limit`` characters of one line (PyTorch lists every mismatching tensor)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_shape(module: torch.nn.Module) -> str:
    """``name of shape (a, b, ...)`` of a module's first tensor, to say what a weight file should hold."""
    name, tensor = next(iter(module.state_dict().items()))
    return f"{name} of shape {tuple(tensor.shape)}"


class TAEReplicator:
    """A pretrained tiny autoencoder; one ``replicate`` call is one batched round trip.

    fp32 on CPU runs through :class:`BlockedRunner`: bit-identical to the eager NCHW model called with the
    same batch and thread count (same oneDNN kernels, same threads), and deterministic run to run. bf16 and
    GPUs run the eager model in channels_last. On CPU, loading the model applies :func:`keep_freed_memory`.
    """

    def __init__(self, variant: Variant, config: TAEConfig) -> None:
        self.variant = variant
        self.config = config
        self.spec = format_spec(variant.name, config)
        self.device = pick_device(config.device)
        self.dtype = torch.bfloat16 if config.dtype == "bf16" else torch.float32
        self.requirements = Requirements(size_multiple=8, device=str(self.device), deterministic=True)
        self.paths = resolve(variant.name, variant.files(), config.weights)
        self.loaded_sha256: dict[str, str] = {}  # filled when the model is loaded
        if config.threads:
            torch.set_num_threads(config.threads)

    @cached_property
    def model(self) -> TinyAutoEncoder:
        """Loaded lazily so listing or validating a spec does not pay for it."""
        model = TinyAutoEncoder(self.variant.latent_channels, self.variant.pool)
        hashes = {}
        for part, kind in ((model.encoder, "encoder"), (model.decoder, "decoder")):
            name = f"{self.variant.name}_{kind}.pth"
            hashes[name] = self._load_part(part, kind, Path(self.paths[name]))
        self.loaded_sha256 = hashes
        model = model.to(self.device, self.dtype).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        if not self.exact:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _load_part(self, part: torch.nn.Module, kind: str, path: Path) -> str:
        """Load one state dict into ``part``; returns the sha256 of the very bytes loaded."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise WeightsError(
                f"{path}: cannot read the {self.variant.name} {kind} weights ({exc})"
            ) from None
        expected = (
            f"{path}: not a valid {self.variant.name} weight file: expected a PyTorch state dict of the "
            f"{self.variant.name} {kind} ({len(part.state_dict())} tensors, e.g. {_first_shape(part)})"
        )
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file
            raise WeightsError(f"{expected}, but it cannot be read as one ({type(exc).__name__})") from None
        try:
            part.load_state_dict(state)
        except Exception as exc:  # another model's weights: say the first tensor that does not fit
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            detail = lines[1] if len(lines) > 1 else (lines or [type(exc).__name__])[0]
            raise WeightsError(f"{expected}, but its tensors do not fit ({short(detail)})") from None
        return hashlib.sha256(data).hexdigest()

    @property
    def exact(self) -> bool:
        """Whether frames are bit-identical to the eager NCHW fp32 model (the blocked oneDNN path)."""
        return (
            self.device.type == "cpu" and self.dtype == torch.float32 and torch.backends.mkldnn.is_available()
        )

    @cached_property
    def forward(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The round trip (NCHW floats in [0, 1] → clamped NCHW floats), built on first use."""
        model = self.model
        if self.device.type == "cpu":
            keep_freed_memory()
        return BlockedRunner(model) if self.exact else model

    @cached_property
    def weights_sha256(self) -> dict[str, str]:
        """sha256 of each weight file as loaded (loading it first): what the run records is what ran."""
        self.model  # noqa: B018 - loads the files and hashes their bytes
        return self.loaded_sha256

    def replicate(self, frames: Frames, seeds: list[int]) -> Frames:
        with torch.inference_mode():
            x = frames_to_tensor(frames, self.device, self.dtype)
            return tensor_to_frames(self.forward(x))

    def describe(self) -> dict[str, Any]:
        combined = hashlib.sha256("".join(sorted(self.weights_sha256.values())).encode()).hexdigest()
        return {
            "kind": "tae",
            "variant": self.variant.name,
            "dtype": self.config.dtype,
            "device": str(self.device),
            "runner": "onednn-blocked" if self.exact else "eager-channels_last",
            "weights_sha256": combined,
            "weight_files": {
                name: {"path": str(p), "sha256": self.weights_sha256[name]} for name, p in self.paths.items()
            },
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }

    def align_with(self, recorded: dict[str, Any]) -> list[str]:
        """Use the thread count a run was made with: oneDNN rounds differently with another one, and a
        resumed chain must match the uninterrupted one bit for bit."""
        threads = recorded.get("threads")
        if self.config.threads or not isinstance(threads, int) or threads == torch.get_num_threads():
            return []
        torch.set_num_threads(threads)
        return [f"using {threads} thread(s), as when the run was made (frames stay bit-identical)"]
