"""Loading metric-network weights from local files, with errors that name the file and the keys.

Nothing is downloaded: every file comes from a path in the evaluation config. A missing file is an error
naming the file expected and where the standard copy comes from; a file whose keys or shapes do not match
the network names the first differences.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError

# Where the standard copy of each file comes from (shown when it is missing).
SOURCES = {
    "i3d": "the Kinetics-400 I3D converted from the TF-Hub module used by the FVD reference code "
           "(`i3d_pretrained_400.pt`, as distributed with VideoGPT / MCVD FVD code)",
    "inception": "torchvision's Inception-v3 ImageNet weights (`inception_v3_google-0cc3c7bd.pth`)",
    "lpips_linear": "the `lpips` package's linear layers (`lpips/weights/v0.1/alex.pth` or `vgg.pth`)",
    "lpips_backbone": "torchvision's ImageNet backbone (`alexnet-owt-7be5be79.pth` or `vgg16-397923af.pth`)",
    "clip_image": "a CLIP model folder in transformers format (default: openai/clip-vit-base-patch32)",
    "clip_text": "a multilingual text encoder folder in sentence-transformers format "
                 "(default: sentence-transformers/clip-ViT-B-32-multilingual-v1), or a CLIP model folder",
}


def require_file(path: Path, what: str, config_key: str) -> Path:
    if not Path(path).is_file():
        raise ModelLoadError(
            f"{what} weights not found: {path} does not exist",
            f"put {SOURCES.get(what, what)} at {path}, or point '{config_key}' at your copy "
            "(docs/evaluate.md lists every file; nothing is downloaded)",
        )
    return Path(path)


def require_folder(path: Path, what: str, config_key: str, marker: str = "config.json") -> Path:
    if not (Path(path) / marker).is_file():
        raise ModelLoadError(
            f"{what} model not found: {Path(path) / marker} does not exist",
            f"put {SOURCES.get(what, what)} at {path}, or point '{config_key}' at your copy "
            "(docs/evaluate.md lists the files it needs; nothing is downloaded)",
        )
    return Path(path)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from a torch pickle (.pt/.pth/.bin) read with weights_only=True."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated download, an HTML error page saved as .pth, a full pickled model
        raise ModelLoadError(f"cannot read weights from {path}: {type(error).__name__}: {error}",
                             "download the file again; it must be a state dict (name → tensor)") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path} is not a state dict (a mapping of names to tensors)",
                             "save the weights with torch.save(model.state_dict(), path)")
    # DataParallel checkpoints prefix every key with 'module.'.
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_exact(module: nn.Module, state: dict[str, torch.Tensor], path: Path,
               ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Load `state` into `module`, requiring the same keys and shapes (BatchNorm's num_batches_tracked may be
    absent: checkpoints converted from TensorFlow have none, and it plays no part at inference)."""
    expected = module.state_dict()
    given = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(given) - optional)
    unexpected = sorted(set(given) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(given) if tuple(expected[k].shape) != tuple(given[k].shape))
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong_shape:
            k = wrong_shape[0]
            parts.append(f"{len(wrong_shape)} of another shape (e.g. {k}: file {tuple(given[k].shape)}, "
                         f"network {tuple(expected[k].shape)})")
        raise ModelLoadError(f"{path} does not fit the {type(module).__name__} network: " + "; ".join(parts),
                             "use the file docs/evaluate.md names for this metric (same architecture and key names)")
    for key in optional - set(given):
        given[key] = expected[key]
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in given.items()}, strict=True)
