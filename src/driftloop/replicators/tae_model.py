"""The Tiny AutoEncoder architecture (TAESD family), written from its published description.

Plain ``nn.Sequential`` stacks so the upstream state dicts (keys ``0.weight``, ``1.conv.0.weight``,
``13.pool.1.bias``) load as they are. TAEF2 adds a "pool" branch to the three lowest-resolution blocks of
each side: ``x + pool(x)`` is fed to the block.
"""

from __future__ import annotations

import torch
from torch import nn


def conv(n_in: int, n_out: int, **kwargs: object) -> nn.Conv2d:
    """3×3 convolution that keeps the spatial size (stride 1)."""
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    """Soft clamp of latents to (−3, 3): what the decoder was trained on."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Residual block: three 3×3 convs with ReLUs, a skip, a ReLU after the sum; optional pool branch."""

    def __init__(self, n_in: int, n_out: int, pool: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out)
        )
        self.skip: nn.Module = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()
        self.pool: nn.Module | None = (
            nn.Sequential(
                nn.Conv2d(n_in, 256, 1, bias=False),
                nn.GroupNorm(4, 256),
                nn.ReLU(),
                nn.Conv2d(256, n_in, 1, bias=False),
            )
            if pool
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def encoder(latent_channels: int, pool: bool = False) -> nn.Sequential:
    """RGB in [0, 1] → latents at 1/8 resolution."""
    return nn.Sequential(
        conv(3, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64, pool), Block(64, 64, pool), Block(64, 64, pool),
        conv(64, latent_channels),
    )  # fmt: skip


def decoder(latent_channels: int, pool: bool = False) -> nn.Sequential:
    """Latents → RGB (unclamped) at 8× resolution."""
    return nn.Sequential(
        Clamp(), conv(latent_channels, 64), nn.ReLU(),
        Block(64, 64, pool), Block(64, 64, pool), Block(64, 64, pool),
        nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), conv(64, 3),
    )  # fmt: skip


class TinyAutoEncoder(nn.Module):
    """Encoder + decoder pair; ``forward`` is one round trip, clamped to [0, 1]."""

    def __init__(self, latent_channels: int, pool: bool = False) -> None:
        super().__init__()
        self.encoder = encoder(latent_channels, pool)
        self.decoder = decoder(latent_channels, pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)).clamp(0, 1)


class BlockedRunner:
    """Runs a CPU float32 :class:`TinyAutoEncoder` with activations kept in oneDNN's blocked layout.

    Eager PyTorch computes a convolution of an NCHW tensor with oneDNN in a blocked layout (nChw8c with
    AVX2): it copies the input into that layout, convolves, and copies the result back to NCHW — two full
    passes over every activation per convolution, each into freshly allocated memory. Here activations stay
    blocked (``Tensor.to_mkldnn()``) from one convolution to the next, so those copies disappear while the
    convolutions themselves are the very same oneDNN kernels: results are bit-identical to the eager model
    on an NCHW tensor. ReLUs and residual sums (exact operations) run in place on the blocked tensors; the
    operations oneDNN tensors lack (GroupNorm, the latent soft clamp, nearest upsampling) run on ordinary NCHW
    tensors, exactly as in eager mode.

    Convolutions for which eager PyTorch would not pick oneDNN (small inputs, single-threaded 1×1 kernels;
    see ``torch._C._select_conv_backend``) run eagerly on NCHW tensors too, so they stay identical as well.
    Only for ``torch.float32`` on CPU; call it under ``torch.inference_mode()`` or ``torch.no_grad()``.
    """

    def __init__(self, model: TinyAutoEncoder) -> None:
        self.model = model
        self._weights: dict[nn.Conv2d, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._backend: dict[tuple[int, tuple[int, ...], int, bool], bool] = {}
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                weight = module.weight.detach().to_mkldnn()
                bias = module.bias.detach().to_mkldnn() if module.bias is not None else None
                self._weights[module] = (weight, bias)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = self._run(self.model.decoder, self._run(self.model.encoder, x.contiguous()))
        return _dense(y).clamp(0, 1)

    def _use_onednn(self, conv: nn.Conv2d, x: torch.Tensor) -> bool:
        """Whether eager PyTorch would convolve this (dense NCHW) input with oneDNN; cached per shape.

        If PyTorch's (private) backend query is missing or fails, the answer is no: the convolution then runs
        eagerly, which is slower but still exact.
        """
        key = (id(conv), tuple(x.shape), torch.get_num_threads(), torch._C._get_mkldnn_enabled())
        if key not in self._backend:
            try:
                probe = torch.empty(x.shape, dtype=conv.weight.dtype)  # never written: costs no page faults
                backend = torch._C._select_conv_backend(
                    probe, conv.weight, conv.bias, list(conv.stride), list(conv.padding), list(conv.dilation),
                    False, [0, 0], conv.groups,
                )  # fmt: skip
                self._backend[key] = backend == torch._C._ConvBackend.Mkldnn
            except (AttributeError, RuntimeError, TypeError):
                self._backend[key] = False
        return self._backend[key]

    def _conv(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        if not self._use_onednn(conv, x):
            return conv(_dense(x))
        weight, bias = self._weights[conv]
        return torch.mkldnn_convolution(
            _blocked(x), weight, bias, conv.padding, conv.stride, conv.dilation, conv.groups
        )

    def _run(self, module: nn.Module, x: torch.Tensor, owned: bool = False) -> torch.Tensor:
        """Apply ``module``; ``owned``: ``x`` is a temporary nobody else reads, so it may be overwritten."""
        if isinstance(module, nn.Sequential):
            given = x
            for child in module:
                x = self._run(child, x, owned or x is not given)
            return x
        if isinstance(module, nn.Conv2d):
            return self._conv(module, x)
        if isinstance(module, nn.ReLU):
            return torch.relu_(x) if owned else torch.relu(x)
        if isinstance(module, nn.Identity):
            return x
        if isinstance(module, Block):
            if module.pool is not None:
                x = _add(self._run(module.pool, x), x)
            y = _add(self._run(module.conv, x), self._run(module.skip, x))
            return torch.relu_(y)
        return module(_dense(x))  # GroupNorm, Clamp, Upsample: as in eager mode, on NCHW


def _dense(x: torch.Tensor) -> torch.Tensor:
    return x.to_dense() if x.is_mkldnn else x


def _blocked(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_mkldnn else x.contiguous().to_mkldnn()


def _add(fresh: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``fresh + other`` (float addition commutes exactly); in place in ``fresh`` when both are blocked."""
    if fresh.is_mkldnn and other.is_mkldnn:
        return fresh.add_(other)
    return _dense(fresh) + _dense(other)
