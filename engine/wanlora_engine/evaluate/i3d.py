"""The I3D network of the Fréchet Video Distance (FVD), as the reference implementation uses it.

The reference FVD code (google-research `frechet_video_distance`) embeds videos with DeepMind's Kinetics-400
Inception-I3D (the `i3d-kinetics-400` TF-Hub module, RGB stream) and takes the tensor
`RGB/inception_i3d/Mean`: the 400 class logits, before the softmax, averaged over the remaining time steps.
Before the network it resizes every frame to 224×224 with TensorFlow 1's `resize_bilinear` (no half-pixel
centres, no antialiasing, aspect ratio not kept) and scales [0, 255] to [-1, 1].

This is our own definition of that network (Carreira & Zisserman 2017, "Quo Vadis, Action Recognition?"):
Inception-v1 inflated to 3D, TensorFlow "SAME" padding computed per input size (asymmetric when the total is
odd: the extra row goes after), batch norm with ε = 1e-3 as Sonnet's, max pools padded with -inf, the
Logits head = average pool [2, 7, 7] (VALID) → 1×1×1 conv with bias → squeeze → mean over time.

Module and parameter names follow the PyTorch port that FVD code in PyTorch loads (`InceptionI3d` of
piergiaj/pytorch-i3d, used by VideoGPT, MCVD and others with the converted TF-Hub weights
`i3d_pretrained_400.pt`), so that file loads without renaming: `Conv3d_1a_7x7.conv3d.weight`,
`Conv3d_1a_7x7.bn.running_mean`, `Mixed_3b.b1b.conv3d.weight`, …, `logits.conv3d.weight`, `logits.conv3d.bias`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 400
INPUT_SIZE = 224
MIN_FRAMES = 9  # time is divided by 8 (three stride-2 stages) and the head pools 2 steps


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of one dimension: output ceil(size/stride); extra padding goes after."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int],
              value: float) -> torch.Tensor:
    t, h, w = x.shape[2:]
    pt, ph, pw = (same_padding(s, k, st) for s, k, st in zip((t, h, w), kernel, stride))
    return F.pad(x, (pw[0], pw[1], ph[0], ph[1], pt[0], pt[1]), value=value)


class Unit3D(nn.Module):
    """Conv3d (TF 'SAME' padding) → optional BatchNorm3d → optional ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), batch_norm: bool = True, relu: bool = True,
                 bias: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel_size=kernel, stride=stride, padding=0, bias=bias)
        # Sonnet's BatchNorm default ε; the converted weights carry its moving statistics.
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride, 0.0))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max pool with TF 'SAME' padding; padded cells never win (-inf), as in TensorFlow."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride, -math.inf), self.kernel, self.stride)


class InceptionBlock3D(nn.Module):
    """Four branches concatenated on channels: 1×1; 1×1→3×3; 1×1→3×3; 3×3 max pool→1×1.

    `widths` = (b0, b1a, b1b, b2a, b2b, b3b) output channels, as in the paper's Inception-v1 table.
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, widths[5])
        self.out_channels = widths[0] + widths[2] + widths[4] + widths[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, in_channels, widths) of the Inception blocks; max pools sit between them (see InceptionI3D.__init__).
_BLOCKS: tuple[tuple[str, int, tuple[int, int, int, int, int, int]], ...] = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


class InceptionI3D(nn.Module):
    """Kinetics-400 RGB I3D; forward([B, 3, T, 224, 224] in [-1, 1]) → [B, 400] time-averaged logits."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        blocks = {name: InceptionBlock3D(channels, widths) for name, channels, widths in _BLOCKS}
        self.Mixed_3b, self.Mixed_3c = blocks["Mixed_3b"], blocks["Mixed_3c"]
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b, self.Mixed_4c, self.Mixed_4d = blocks["Mixed_4b"], blocks["Mixed_4c"], blocks["Mixed_4d"]
        self.Mixed_4e, self.Mixed_4f = blocks["Mixed_4e"], blocks["Mixed_4f"]
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b, self.Mixed_5c = blocks["Mixed_5b"], blocks["Mixed_5c"]
        # Logits: average pool, (dropout: identity at inference), 1×1×1 conv with bias, no norm, no ReLU.
        self.logits = Unit3D(1024, num_classes, batch_norm=False, relu=False, bias=True)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed_5c output [B, 1024, T/8, 7, 7] for a 224×224 input."""
        for layer in (self.Conv3d_1a_7x7, self.MaxPool3d_2a_3x3, self.Conv3d_2b_1x1, self.Conv3d_2c_3x3,
                      self.MaxPool3d_3a_3x3, self.Mixed_3b, self.Mixed_3c, self.MaxPool3d_4a_3x3, self.Mixed_4b,
                      self.Mixed_4c, self.Mixed_4d, self.Mixed_4e, self.Mixed_4f, self.MaxPool3d_5a_2x2,
                      self.Mixed_5b, self.Mixed_5c):
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames, got {x.shape[2]}")
        x = F.avg_pool3d(self.features(x), kernel_size=(2, 7, 7), stride=(1, 1, 1))
        logits = self.logits(x)  # [B, 400, T', 1, 1]
        return logits.squeeze(4).squeeze(3).mean(dim=2)


def tf1_resize_bilinear(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """TensorFlow 1 `tf.image.resize_bilinear` (align_corners=False, half_pixel_centers=False) on [N, C, H, W].

    Output pixel i samples the input at i·(in/out) (not (i+0.5)·(in/out)−0.5 as torch's bilinear does), the
    right neighbour clamped at the border; no antialiasing, even when shrinking. This is the resize of the
    reference FVD code, and it shifts the image by up to half an input pixel against torch's, so FVD values
    depend on it.
    """

    def axis(size_in: int, size_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = size_in / size_out
        source = torch.arange(size_out, dtype=torch.float64, device=frames.device) * scale
        low = torch.floor(source).clamp(max=size_in - 1)
        high = torch.clamp(low + 1, max=size_in - 1)
        return low.long(), high.long(), (source - low).to(frames.dtype)

    x = frames
    top, bottom, fy = axis(x.shape[2], height)
    left, right, fx = axis(x.shape[3], width)
    x = x[:, :, top, :] + (x[:, :, bottom, :] - x[:, :, top, :]) * fy[None, None, :, None]
    return x[:, :, :, left] + (x[:, :, :, right] - x[:, :, :, left]) * fx[None, None, None, :]


def preprocess_clip(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [T, H, W, 3] → float32 [3, T, 224, 224] in [-1, 1], as the reference FVD code prepares a clip."""
    x = frames.permute(0, 3, 1, 2).float()  # [T, 3, H, W], values 0..255
    x = tf1_resize_bilinear(x, INPUT_SIZE, INPUT_SIZE)
    x = 2.0 * x / 255.0 - 1.0
    return x.permute(1, 0, 2, 3).contiguous()
