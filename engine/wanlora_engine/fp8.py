"""fp8 host copies of streamed blocks (issue 18, an option; exact bf16 stays the default).

Each linear weight W [out, in] of a streamed block is stored in host memory as float8 e4m3 values Q with one
float32 scale per output channel, s = max|W_row| / 448 (448: the largest e4m3 value), Q = round_e4m3(W / s).
Everything else of the block (biases, norm weights, modulation table) stays exact. The weight stream copies
the fp8 bytes to the GPU and dequantizes them into the block's bf16 slot, W' = round_bf16(float(Q) · s), so
the kernels, the LoRA products and the streaming bookkeeping are those of the bf16 path.

Error: e4m3 keeps 3 mantissa bits, so a weight in e4m3's normal range is off by at most 2⁻⁴ of itself, one in
the subnormal range (|W| < 2⁻⁶ · s) by at most 2⁻¹⁰ · s; the bf16 rounding adds at most 2⁻⁹ of the value.
`element_error_bound` is that bound; the measured errors are in docs/BENCHMARKS.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .offload import _HostBuffer

E4M3_MAX = 448.0
ALIGN = 256
ROWS_PER_PASS = 1024  # dequantize this many rows at a time (bounded float32 temporaries on the weight stream)


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q float8_e4m3fn, s float32 [out]) with W ≈ Q · s[:, None], one scale per output channel (row)."""
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / E4M3_MAX).clamp_min(torch.finfo(torch.float32).tiny)
    q = (w / scale[:, None]).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return q, scale


def dequantize_rows(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (q.float() * scale[:, None]).to(dtype)


def element_error_bound(weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Per-element bound on |W' - W| (see the module doc)."""
    w = weight.detach().float().abs()
    s = scale[:, None]
    e4m3 = torch.maximum(w * 2.0 ** -4, s * 2.0 ** -10)
    return e4m3 + (w + e4m3) * 2.0 ** -9


def _is_quantized(entry: Any) -> bool:
    return len(entry.shape) == 2 and entry.dtype in (torch.bfloat16, torch.float16, torch.float32)


def _round(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass
class Fp8Record:
    """One block in host memory: its bytes and where each tensor sits in them."""

    buffer: _HostBuffer
    places: list[tuple[int, int]]  # per layout entry: (offset of the values, offset of the scales or -1)

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes

    def release(self) -> None:
        self.buffer.release()


class Fp8HostFormat:
    """The `host_format` of `streaming.enable_weight_streaming` for fp8 host weights."""

    def host_bytes(self, layout: list[Any]) -> int:
        total = 0
        for entry in layout:
            if _is_quantized(entry):
                total += _round(entry.shape[0] * entry.shape[1]) + _round(entry.shape[0] * 4)
            else:
                total += _round(entry.nbytes)
        return total

    def gpu_staging_bytes(self, layout: list[Any]) -> int:
        """GPU bytes `unpack` allocates on the weight stream besides the slot: the fp8 record's copy and the
        float32 + bf16 temporaries of ROWS_PER_PASS rows of the widest weight."""
        widest = max((entry.shape[1] for entry in layout if _is_quantized(entry)), default=0)
        return self.host_bytes(layout) + ROWS_PER_PASS * widest * (4 + 2)

    def pack(self, layout: list[Any], params: dict[str, torch.nn.Parameter], pin: bool) -> Fp8Record:
        buffer = _HostBuffer(self.host_bytes(layout), pin)
        places = []
        offset = 0
        for entry in layout:
            value = params[entry.path].data
            if _is_quantized(entry):
                q, scale = quantize_rows(value)
                n = q.numel()
                buffer.data[offset:offset + n].copy_(q.cpu().view(torch.uint8).flatten())
                scales_at = offset + _round(n)
                buffer.data[scales_at:scales_at + scale.numel() * 4].copy_(scale.cpu().view(torch.uint8))
                places.append((offset, scales_at))
                offset = scales_at + _round(scale.numel() * 4)
            else:
                buffer.data[offset:offset + entry.nbytes].copy_(value.detach().cpu().reshape(-1).view(torch.uint8))
                places.append((offset, -1))
                offset += _round(entry.nbytes)
        return Fp8Record(buffer, places)

    def unpack(self, record: Fp8Record, slot: torch.Tensor, layout: list[Any]) -> None:
        """Fill a block's bf16 slot from its fp8 record (on the current stream: the weight stream on a GPU)."""
        source = record.buffer.data
        if slot.device.type == "cuda":  # one host->GPU copy of the fp8 bytes, then dequantization there
            source = source.to(slot.device, non_blocking=True)
        for entry, (at, scales_at) in zip(layout, record.places):
            target = slot[entry.offset:entry.offset + entry.nbytes].view(entry.dtype).view(entry.shape)
            if scales_at < 0:
                target.copy_(source[at:at + entry.nbytes].view(entry.dtype).view(entry.shape))
                continue
            rows, cols = entry.shape
            q = source[at:at + rows * cols].view(torch.float8_e4m3fn).view(rows, cols)
            scale = source[scales_at:scales_at + rows * 4].view(torch.float32)
            for r in range(0, rows, ROWS_PER_PASS):
                target[r:r + ROWS_PER_PASS].copy_(dequantize_rows(q[r:r + ROWS_PER_PASS],
                                                                  scale[r:r + ROWS_PER_PASS], entry.dtype))
