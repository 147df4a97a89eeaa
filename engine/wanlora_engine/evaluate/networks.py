"""The metric networks an evaluation needs, loaded from local files only (missing file → clear error).

Every file is checked before any network is built, so a wrong path fails in a second with all the names
at once, not after the first network took a minute to load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ModelLoadError
from .config import EvaluateConfig
from .weights import load_exact, read_state_dict, require_file


def pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ModelLoadError("device 'cuda' was asked for but torch sees no CUDA GPU",
                                 "set the device to 'auto' or 'cpu', or install a CUDA build of torch")
        return torch.device("cuda")
    return torch.device("cpu")


@dataclass
class Networks:
    device: torch.device
    i3d: torch.nn.Module | None = None
    inception: torch.nn.Module | None = None
    lpips: torch.nn.Module | None = None
    image_encoder: torch.nn.Module | None = None
    text_encoder: torch.nn.Module | None = None
    loaded: list[str] = field(default_factory=list)


def load_i3d(path: Path) -> torch.nn.Module:
    from .i3d import InceptionI3D

    model = InceptionI3D()
    load_exact(model, read_state_dict(path), path)
    return model.eval()


def load_inception(path: Path) -> torch.nn.Module:
    from .inception import inception_v3

    model = inception_v3()
    load_exact(model, read_state_dict(path), path)
    return model.eval()


def _linear_aliases(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The package registers each linear layer twice, as `linN` and as `lins.N` (one module, two names); its
    shipped files hold only `linN.*`, a saved network both: the missing name gets the same tensor."""
    aliased = dict(state)
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head.startswith("lin") and head[3:].isdigit():
            aliased.setdefault(f"lins.{head[3:]}.{rest}", value)
        elif head == "lins":
            number, _, rest = rest.partition(".")
            aliased.setdefault(f"lin{number}.{rest}", value)
    return aliased


def load_lpips(net: str, linear_path: Path, backbone_path: Path | None) -> torch.nn.Module:
    """From the package's linear-layer file + torchvision's backbone file, or from one full LPIPS state dict
    (the lpips package's, or torchmetrics' without the scaling constants)."""
    from .lpips import LPIPS, backbone_key_map

    model = LPIPS(net)
    linear = read_state_dict(linear_path)
    # the input scaling is a constant of v0.1, not a learned weight (torchmetrics ≥ 1.9 does not save it)
    state = {k: v for k, v in model.model.state_dict().items() if k.startswith("scaling_layer.")}
    linear = _linear_aliases(linear)
    if any(k.startswith("net.") for k in linear):
        state.update(linear)
        load_exact(model.model, state, linear_path)
        return model.eval()
    backbone_file = "alexnet-owt-7be5be79.pth" if net == "alex" else "vgg16-397923af.pth"
    if backbone_path is None:
        raise ModelLoadError(f"{linear_path} holds only the LPIPS linear layers and no backbone file is configured",
                             f"put torchvision's {net} ImageNet file ({backbone_file}) "
                             "in the weights folder or set eval.lpips_backbone_weights (lpips.backbone_weights) to it")
    backbone = read_state_dict(backbone_path)
    mapping = backbone_key_map(net)
    unknown = sorted(k for k in backbone if k.startswith("features.") and k not in mapping)
    if unknown or not any(k in backbone for k in mapping):
        raise ModelLoadError(f"{backbone_path} is not torchvision's {net} checkpoint (no features.N.weight keys "
                             f"of that network{'; unexpected ' + unknown[0] if unknown else ''})",
                             f"use torchvision's ImageNet {backbone_file}")
    state.update({mapping[k]: v for k, v in backbone.items() if k in mapping})  # classifier.* is not used
    state.update(linear)
    load_exact(model.model, state, linear_path if not mapping.keys() - backbone.keys() else backbone_path)
    return model.eval()


def check_files(config: EvaluateConfig) -> None:
    """Every configured weight file must exist before anything heavy starts."""
    from .weights import require_folder

    if config.wants("fvd"):
        require_file(config.fvd.i3d_weights, "i3d", "fvd.i3d_weights")
    if config.wants("is"):
        require_file(config.inception.weights, "inception", "inception.weights")
    if config.wants("lpips"):
        require_file(config.lpips.linear_weights, "lpips_linear", "lpips.linear_weights")
        if config.lpips.backbone_weights is not None:
            require_file(config.lpips.backbone_weights, "lpips_backbone", "lpips.backbone_weights")
    if config.wants("clip") or config.wants("temporal"):
        folder = config.clip.image_model
        require_folder(folder / "0_CLIPModel" if (folder / "0_CLIPModel").is_dir() else folder, "clip_image",
                       "clip.image_model")
    if config.wants("clip") and not (config.clip.text_model / "config.json").is_file() \
            and not (config.clip.text_model / "modules.json").is_file():
        require_folder(config.clip.text_model, "clip_text", "clip.text_model", marker="modules.json")


def load_networks(config: EvaluateConfig) -> Networks:
    check_files(config)
    device = pick_device(config.device)
    nets = Networks(device=device)
    if config.wants("fvd"):
        nets.i3d = load_i3d(config.fvd.i3d_weights).to(device)
        nets.loaded.append("I3D")
    if config.wants("is"):
        nets.inception = load_inception(config.inception.weights).to(device)
        nets.loaded.append("Inception-v3")
    if config.wants("lpips"):
        nets.lpips = load_lpips(config.lpips.net, config.lpips.linear_weights, config.lpips.backbone_weights).to(device)
        nets.loaded.append(f"LPIPS ({config.lpips.net})")
    if config.wants("clip") or config.wants("temporal"):
        from .clip import ImageEncoder

        nets.image_encoder = ImageEncoder(config.clip.image_model).to(device)
        nets.loaded.append("CLIP image encoder")
    if config.wants("clip"):
        from .clip import TextEncoder

        nets.text_encoder = TextEncoder(config.clip.text_model).to(device)
        nets.loaded.append(f"text encoder ({nets.text_encoder.kind})")
    return nets
