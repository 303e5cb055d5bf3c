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
