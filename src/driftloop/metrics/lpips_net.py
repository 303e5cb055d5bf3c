"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"),
AlexNet variant, v0.1, in plain torch — the ``lpips`` package needs torchvision, which we do not depend on.

The network is the reference one, layer for layer:

1. the frame, scaled to [-1, 1], goes through the ScalingLayer ``(x - shift) / scale`` with
   shift = (-0.030, -0.088, -0.188), scale = (0.458, 0.448, 0.450);
2. torchvision's ``alexnet().features`` (conv 11/4 → ReLU → pool → conv 5 → ReLU → pool → conv 3 → ReLU →
   conv 3 → ReLU → conv 3 → ReLU), tapped after each of the 5 ReLUs (64, 192, 384, 256, 256 channels);
3. each tap is unit-normalised over channels, ``f / (‖f‖₂ + 1e-10)``;
4. for two images, the squared difference of the normalised taps goes through that layer's learned 1×1
   convolution ``lin0..lin4`` (one output channel, no bias), is averaged over space, and the 5 layers
   are summed.

Files (both ``torch.save`` state dicts, loaded with ``weights_only=True``):

* ``alex.pth`` — the LPIPS v0.1 linear layers from the lpips repository (``lpips/weights/v0.1/alex.pth``),
  keys ``lin0.model.1.weight`` … ``lin4.model.1.weight`` (``model.0`` when saved without dropout);
* ``alexnet.pth`` — torchvision's ImageNet AlexNet state dict (``alexnet-owt-7be5be79.pth`` from
  torchvision's model zoo is accepted under its own name too), keys ``features.0.weight`` …; the
  classifier's keys are ignored.

Since a distance only needs each image's normalised taps, :meth:`LPIPS.features` is computed once per
frame and :meth:`LPIPS.distance` pairs them cheaply.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

CHANNELS = (64, 192, 384, 256, 256)
LIN_FILE = "alex.pth"
BACKBONE_FILES = ("alexnet.pth", "alexnet-owt-7be5be79.pth")
MIN_SIDE = 64  # frames smaller than this on a side are upsampled first: AlexNet's pooling needs >= 31


def alexnet_features() -> nn.Sequential:
    """``torchvision.models.alexnet().features``, same layer indices (so its state-dict keys load)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


_TAPS = (1, 4, 7, 9, 11)  # indices of the ReLUs whose outputs LPIPS compares


class LPIPS(nn.Module):
    """LPIPS-Alex v0.1 with cacheable per-image features."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.features_net = alexnet_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)

    def load_files(self, lin_path: Path, backbone_path: Path) -> None:
        """Load ``alex.pth`` and a torchvision AlexNet state dict (see the module docstring)."""
        lin_sd = torch.load(lin_path, map_location="cpu", weights_only=True)
        lins = {}
        for i in range(len(CHANNELS)):
            for key in (f"lin{i}.model.1.weight", f"lin{i}.model.0.weight", f"lins.{i}.weight"):
                if key in lin_sd:
                    lins[f"{i}.weight"] = lin_sd[key]
                    break
            else:
                raise ValueError(f"{lin_path.name} has no weight for lin{i} (expected lin{i}.model.1.weight)")
        self.lins.load_state_dict(lins)
        net_sd = torch.load(backbone_path, map_location="cpu", weights_only=True)
        feats = {k.removeprefix("features."): v for k, v in net_sd.items() if not k.startswith("classifier.")}
        self.features_net.load_state_dict(feats)

    @torch.inference_mode()
    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised taps of a batch of RGB images ``N×3×H×W`` with values in [-1, 1]."""
        x = (images - self.shift) / self.scale
        if min(x.shape[-2:]) < MIN_SIDE:
            factor = MIN_SIDE / min(x.shape[-2:])
            size = (max(MIN_SIDE, round(x.shape[-2] * factor)), max(MIN_SIDE, round(x.shape[-1] * factor)))
            x = nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
        taps = []
        for i, layer in enumerate(self.features_net):
            if i > _TAPS[-1]:
                break
            x = layer(x)
            if i in _TAPS:
                norm = torch.sqrt(torch.sum(x * x, dim=1, keepdim=True))
                taps.append(x / (norm + 1e-10))
        return taps

    @torch.inference_mode()
    def distance(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS distance (one per batch item) between two images' :meth:`features`."""
        total = None
        for lin, a, b in zip(self.lins, fa, fb, strict=True):
            d = lin((a - b) ** 2).mean(dim=(2, 3)).squeeze(1)
            total = d if total is None else total + d
        return total

    @staticmethod
    def to_input(frame_u8: torch.Tensor) -> torch.Tensor:
        """``H×W×3`` uint8 → ``1×3×H×W`` float32 in [-1, 1] (the reference ``im2tensor``)."""
        return frame_u8.permute(2, 0, 1).unsqueeze(0).float() / 127.5 - 1.0
