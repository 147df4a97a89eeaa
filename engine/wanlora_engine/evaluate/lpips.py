"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"), v0.1.

Our own definition of the `lpips` package's network, so that its files load under their own names without
the package (which imports torchvision, whose compiled operators do not load next to a CPU-only torch):

    d(x, y) = Σ_l mean_hw( w_l · (f̂_l(x) − f̂_l(y))² )

f_l are the activations after the ReLUs of five stages of an ImageNet backbone (AlexNet: relu1..relu5;
VGG16: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), f̂ = f / (‖f‖₂ over channels + 1e-10), w_l ≥ 0 are the
learned 1×1 "linear calibration" layers (`lin0..lin4`), and the input in [-1, 1] is first shifted and scaled
per channel (the package's ScalingLayer: shift [-.030, -.088, -.188], scale [.458, .448, .450]).

Weights (state-dict names as the package and torchvision write them):
- linear layers: the package's `weights/v0.1/alex.pth` or `vgg.pth` (`lin0.model.1.weight` … `lin4.model.1.weight`);
- backbone: torchvision's ImageNet checkpoint, `alexnet-owt-7be5be79.pth` or `vgg16-397923af.pth`
  (`features.N.weight`/`.bias`; the classifier keys are ignored);
- or one file with both, as `lpips.LPIPS().state_dict()` writes it (`net.sliceK.N.weight`, `lin*.model.1.weight`,
  `scaling_layer.shift/scale`).
"""

from __future__ import annotations

import torch
from torch import nn

# Channels of the five compared stages and the torchvision `features` indices where each stage ends
# (exclusive), per backbone.
BACKBONES: dict[str, dict[str, tuple[int, ...]]] = {
    "alex": {"channels": (64, 192, 384, 256, 256), "slice_ends": (2, 5, 8, 10, 12)},
    "vgg": {"channels": (64, 128, 256, 512, 512), "slice_ends": (4, 9, 16, 23, 30)},
}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def torchvision_features(net: str) -> list[nn.Module]:
    """The layers of torchvision's `alexnet().features` / `vgg16().features`, index for index."""
    if net == "alex":
        return [
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        ]
    if net == "vgg":
        layers: list[nn.Module] = []
        channels = 3
        for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
            if width == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(width), 3, padding=1), nn.ReLU()]
                channels = int(width)
        return layers
    raise ValueError(f"unknown LPIPS backbone {net!r}: use 'alex' or 'vgg'")


class BackboneSlices(nn.Module):
    """The backbone cut into five sequential slices; each keeps the torchvision index as its child name."""

    def __init__(self, net: str) -> None:
        super().__init__()
        layers = torchvision_features(net)
        start = 0
        for number, end in enumerate(BACKBONES[net]["slice_ends"], start=1):
            part = nn.Sequential()
            for index in range(start, end):
                part.add_module(str(index), layers[index])
            self.add_module(f"slice{number}", part)
            start = end

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for number in range(1, 6):
            x = getattr(self, f"slice{number}")(x)
            outputs.append(x)
        return outputs


class ScalingLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class LinearCalibration(nn.Module):
    """A 1×1 convolution to one channel without bias; index 0 of `model` is the (inference-time no-op) dropout."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, stride=1, padding=0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """forward(x, y) with both [N, 3, H, W] in [-1, 1] → [N] distances (0 for identical images)."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in BACKBONES:
            raise ValueError(f"unknown LPIPS backbone {net!r}: use 'alex' or 'vgg'")
        self.net_name = net
        self.scaling_layer = ScalingLayer()
        self.net = BackboneSlices(net)
        for index, channels in enumerate(BACKBONES[net]["channels"]):
            self.add_module(f"lin{index}", LinearCalibration(channels))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        features_x = self.net(self.scaling_layer(x))
        features_y = self.net(self.scaling_layer(y))
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for index, (fx, fy) in enumerate(zip(features_x, features_y)):
            nx = fx / (torch.sqrt(torch.sum(fx**2, dim=1, keepdim=True)) + 1e-10)
            ny = fy / (torch.sqrt(torch.sum(fy**2, dim=1, keepdim=True)) + 1e-10)
            layer = getattr(self, f"lin{index}")
            total = total + layer((nx - ny) ** 2).mean(dim=(1, 2, 3))
        return total


def backbone_key_map(net: str) -> dict[str, str]:
    """torchvision `features.N.weight|bias` → our `net.sliceK.N.weight|bias`."""
    mapping = {}
    start = 0
    layers = torchvision_features(net)
    for number, end in enumerate(BACKBONES[net]["slice_ends"], start=1):
        for index in range(start, end):
            if isinstance(layers[index], nn.Conv2d):
                for part in ("weight", "bias"):
                    mapping[f"features.{index}.{part}"] = f"net.slice{number}.{index}.{part}"
        start = end
    return mapping
