"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"), v0.1.

The network is the `lpips` package's own `lpips.LPIPS` (the authors' reference code, reference.py), built
without any weights and loaded from the user's files:

    d(x, y) = Σ_l mean_hw( w_l · (f̂_l(x) − f̂_l(y))² )

f_l are the activations after the ReLUs of five stages of an ImageNet backbone (AlexNet: relu1..relu5;
VGG16: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), f̂ = f / (‖f‖₂ over channels + 1e-10), w_l ≥ 0 are the
learned 1×1 "linear calibration" layers (`lin0..lin4`), and the input in [-1, 1] is first shifted and scaled
per channel (the package's ScalingLayer).

Weights (state-dict names as the package and torchvision write them):
- linear layers: the package's `weights/v0.1/alex.pth` or `vgg.pth` (`lin0.model.1.weight` … `lin4.model.1.weight`);
- backbone: torchvision's ImageNet checkpoint, `alexnet-owt-7be5be79.pth` or `vgg16-397923af.pth`
  (`features.N.weight`/`.bias`; the classifier keys are ignored);
- or one file with both, as `lpips.LPIPS().state_dict()` writes it (`net.sliceK.N.weight`, `lin*.model.1.weight`,
  `scaling_layer.shift/scale`) or torchmetrics' LPIPS network (the same without the scaling constants, which
  torchmetrics ≥ 1.9 no longer saves).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import torch
from torch import nn

from .reference import import_lpips

NETS = ("alex", "vgg")


def lpips_network(net: str) -> nn.Module:
    """The package's LPIPS v0.1 for `net`, every weight random (the package's own backbone and linear layers)."""
    if net not in NETS:
        raise ValueError(f"unknown LPIPS backbone {net!r}: use 'alex' or 'vgg'")
    lpips = import_lpips()
    # pnet_rand: no torchvision download; pretrained=False: no linear layers read from the package folder.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # torchvision's notice about the `pretrained` argument the package passes
        return lpips.LPIPS(pretrained=False, net=net, version="0.1", pnet_rand=True, verbose=False)


class LPIPS(nn.Module):
    """forward(x, y) with both [N, 3, H, W] in [-1, 1] → [N] distances (0 for identical images).

    Holds the package's network as `model`; its state dict is the package's under the prefix `model.`.
    """

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        self.net_name = net
        self.model = lpips_network(net)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model(x, y).flatten()


def backbone_key_map(net: str) -> dict[str, str]:
    """torchvision `features.N.weight|bias` → the package's `net.sliceK.N.weight|bias` (K the slice holding
    layer N), read from the package's network itself."""
    model = lpips_network(net)
    mapping = {}
    for key in model.state_dict():
        parts = key.split(".")  # net.sliceK.N.weight
        if parts[0] == "net":
            mapping[f"features.{parts[2]}.{parts[3]}"] = key
    return mapping
