"""Inception-v3 for the Inception Score: torchvision's `inception_v3` (Szegedy et al. 2016), the reference.

The network is torchvision's own definition (reference.py), built without weights and loaded from the user's
file: torchvision's ImageNet weights (`inception_v3_google-0cc3c7bd.pth`, ported from TensorFlow; key names
`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch5x5_1.bn.running_var`, `AuxLogits.fc.weight`, `fc.bias`, …).
The auxiliary classifier is kept because the checkpoint has it; it plays no part at inference.

Input: frames scaled to 299×299 (bilinear, align_corners=False, as the common PyTorch IS code does) with
values in [-1, 1]; that equals torchvision's `transform_input=True` applied to ImageNet-normalised input,
which is how those ported weights expect their input. Output: 1000 ImageNet logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .reference import import_torchvision

NUM_CLASSES = 1000
INPUT_SIZE = 299


def inception_v3() -> nn.Module:
    """torchvision's Inception-v3 with the auxiliary classifier, untrained, taking [-1, 1] input as is."""
    torchvision = import_torchvision()
    return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)


def pool_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The 2048-d average-pooled features before the classifier (what FID uses)."""
    classifier, model.fc = model.fc, nn.Identity()
    try:
        output = model(x)
    finally:
        model.fc = classifier
    return output.logits if hasattr(output, "logits") else output  # training mode returns (logits, aux)


def preprocess_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W, 3] → float32 [N, 3, 299, 299] in [-1, 1]."""
    x = frames.permute(0, 3, 1, 2).float() / 255.0
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2.0 * x - 1.0
