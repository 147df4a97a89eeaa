"""Fast Wan transformer blocks for LoRA training (issue 7): the same function as diffusers' WanTransformerBlock,
computed with less memory traffic, without recomputing self-attention, and with its saved activations
optionally waiting in host memory.

`enable_fast_blocks(model, options)` swaps the forward of every block of a diffusers `WanTransformer3DModel`
(with or without peft LoRA adapters) for `fast_block_forward`; the model's own forward (patch embedding, time
and text embedding, RoPE tables, output head) stays diffusers'. The block reads the block's own parameters,
so a LoRA file, a checkpoint or an FSDP hook sees the same modules as before. What changes:

- Explicit precision instead of autocast: every matrix product in bf16 (the weights' dtype), norms, RoPE and
  the gated residual adds computed in float32 and rounded once; the residual stream stays in the weights'
  dtype between blocks, as in diffusers. The timestep modulation is one [B, 6, dim] float32 table per sample,
  not per token: for text-to-video every token of a sample has the same timestep, so Wan2.2's per-token time
  embedding is that row repeated (the official code's 9 GB float32 [B, 75,600, 6, 5,120] tensor at 81 frames
  holds 75,600 copies of it).
- Elementwise work fused (`torch.compile` on CUDA): LayerNorm + modulation, the gated residual add + the next
  norm, RMSNorm + RoPE of q and k. diffusers runs each as several float32 passes (RoPE even in float64).
- LoRA as one extra addmm into the base output (y += s·(x·Aᵀ)·Bᵀ) instead of peft's three passes, with the
  float32 adapter weights cast to bf16 for the products (what autocast does) and gradients in float32.
- Checkpointing per block through `_CheckpointedBlock`: the forward runs without autograd and keeps the block
  input and, when `keep_attention`, the self-attention output and its log-sum-exp (the attention kernel's
  own backward needs only q, k, v, output and log-sum-exp); the backward recomputes the block with autograd
  from the block input but takes the attention output from memory, so the most expensive kernel runs once
  forward and once backward instead of twice forward. `offload.ActivationStore` decides whether the kept
  tensors stay on the GPU or wait in pinned host memory, copied on a side stream and prefetched.
- Ulysses sequence parallelism (`ulysses.enable_ulysses` calls `FastBlocks.set_sequence_parallel`): each rank
  holds 1/U of the tokens, and the self-attention goes through `ulysses.sequence_parallel_attention`: q, k, v
  (normed, rotated; local tokens, all heads) all-to-all to (all tokens, heads/U), padding cut, the kernel
  there, the output back heads -> sequence. The kept output and log-sum-exp are then those of the rank's heads
  over the whole sequence, and the recompute's autograd sends the output gradient sequence -> heads and
  dq, dk, dv heads -> sequence around the kernel's backward. The true token count is recorded with the
  forward, so its backward pads and cuts the same way. Cross-attention, FFN and linears are per token.

Numerically it is the diffusers block: `engine/tests/test_fast_model.py` checks forward and LoRA gradients
against diffusers on a tiny model in float32 on the CPU, `bench/engine_step.py --check` on the GPU in bf16.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .config import choices
from .errors import ConfigError
from .offload import ActivationStore
from .ulysses import SequenceContext, sequence_parallel_attention

# dim x dim products a block keeps with keep_linear_blocks: self-attention q, k, v, out; cross-attention q, out
KEPT_LINEARS_PER_BLOCK = 6
ATTENTION_BACKENDS = choices("training", "attention")
OFFLOAD_MODES = choices("training", "activation_offload")


@dataclass(frozen=True)
class FastBlockOptions:
    """How the fast blocks run (the resolved config's `blocks` section, see docs/engine-contract.md)."""

    attention: str = "auto"  # self-attention kernel: auto | cudnn | fa3 | flash | efficient | math
    keep_attention: bool = True  # keep self-attention output + log-sum-exp instead of recomputing it
    checkpoint: bool = True  # recompute each block in backward from its saved input (gradient checkpointing)
    offload: str = "auto"  # kept activations to host memory: auto | none | all
    compile: bool = True  # torch.compile the fused elementwise functions (CUDA only)
    prefetch_blocks: int = 1  # offloaded blocks copied back ahead of their backward
    # issue 18: the feed-forward half of a block's recompute + backward runs over this many tokens at a time
    # (0: all at once). Memory only: at 81 frames it frees ~8 activations of [tokens, dim] at the peak.
    ffn_chunk_tokens: int = 0
    # issue 18: the last N blocks keep the outputs of their six frozen dim x dim products (self-attention q, k, v,
    # out; cross-attention q, out) beside the block input, so the backward's recompute replays them instead of
    # running those GEMMs again (6 activations of [tokens, dim] more per block, offloaded like the others).
    keep_linear_blocks: int = 0

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_BACKENDS:
            raise ValueError(f"attention backend {self.attention!r}: expected one of {ATTENTION_BACKENDS}")
        if self.offload not in OFFLOAD_MODES:
            raise ValueError(f"activation offload {self.offload!r}: expected one of {OFFLOAD_MODES}")
        if self.ffn_chunk_tokens < 0:
            raise ValueError(f"ffn_chunk_tokens {self.ffn_chunk_tokens}: expected 0 (no chunks) or a token count")
        if self.keep_linear_blocks < 0:
            raise ValueError(f"keep_linear_blocks {self.keep_linear_blocks}: expected 0 (none) or a block count")


# ---------------------------------------------------------------------------------------------------
# Elementwise pieces (pure functions; compiled together on CUDA). Each matches diffusers' expression.


def modulated_norm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    """(LayerNorm(x) · (1 + scale) + shift) in float32, rounded to x's dtype (norm1 / norm3 + modulation)."""
    y = F.layer_norm(x.float(), (x.shape[-1],), eps=eps)
    return (y * (1 + scale) + shift).to(x.dtype)


def gated_add(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """x + y · gate in float32, rounded to x's dtype (the gated residual adds)."""
    return (x.float() + y.float() * gate).to(x.dtype)


def gated_add_norm(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor | None,
                   bias: torch.Tensor | None, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-attention residual, then the cross-attention input norm (affine LayerNorm, float32)."""
    x = gated_add(x, y, gate)
    w = None if weight is None else weight.float()
    b = None if bias is None else bias.float()
    return x, F.layer_norm(x.float(), (x.shape[-1],), w, b, eps).to(x.dtype)


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """RMSNorm over the last dimension in float32 (q/k norm of the cross-attention)."""
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    if weight is not None:
        y = y * weight.float()
    return y.to(x.dtype)


def rms_norm_rope(x: torch.Tensor, weight: torch.Tensor | None, cos: torch.Tensor, sin: torch.Tensor, heads: int,
                  eps: float) -> torch.Tensor:
    """RMSNorm across all heads, then rotary embedding on interleaved pairs: [B, N, H·D] -> [B, N, H, D].

    cos, sin: [N, D/2] float32, one angle per pair (diffusers' tables repeat each twice).
    """
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    if weight is not None:
        y = y * weight.float()
    pairs = y.unflatten(-1, (heads, -1, 2))  # [B, N, H, D/2, 2]
    x1, x2 = pairs[..., 0], pairs[..., 1]
    c = cos[:, None, :]
    s = sin[:, None, :]
    out = torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1)
    return out.flatten(-2).to(x.dtype)


_ELEMENTWISE = {
    "modulated_norm": modulated_norm,
    "gated_add": gated_add,
    "gated_add_norm": gated_add_norm,
    "rms_norm": rms_norm,
    "rms_norm_rope": rms_norm_rope,
}


@functools.cache
def _compiled(name: str) -> Callable[..., Any]:
    # dynamic: one compilation serves every token count (images, 49 and 81 frames)
    return torch.compile(_ELEMENTWISE[name], dynamic=True, fullgraph=True)


class Elementwise:
    """The elementwise functions, compiled or eager."""

    def __init__(self, compiled: bool) -> None:
        for name, fn in _ELEMENTWISE.items():
            setattr(self, name, _compiled(name) if compiled else fn)


@functools.cache
def elementwise(compiled: bool) -> Elementwise:
    return Elementwise(compiled)


# ---------------------------------------------------------------------------------------------------
# LoRA linear


def _adapters(module: torch.nn.Module) -> list[tuple[torch.nn.Parameter, torch.nn.Parameter, float, Any]]:
    """(A, B, scale, dropout) of the active peft LoRA adapters of a Linear; [] for a plain Linear."""
    if not hasattr(module, "lora_A"):
        return []
    if getattr(module, "disable_adapters", False) or getattr(module, "merged", False):
        return []
    found = []
    for name in module.active_adapters:
        if name not in module.lora_A:
            continue
        if name in getattr(module, "lora_variant", {}) or getattr(module, "use_dora", {}).get(name, False):
            raise ValueError("the fast blocks support plain LoRA adapters only (no DoRA or other variants)")
        found.append((module.lora_A[name].weight, module.lora_B[name].weight, float(module.scaling[name]),
                      module.lora_dropout[name]))
    return found


class LinearTape:
    """The frozen base outputs of chosen linears of one block call: recorded in its forward, replayed in its
    recompute (keyed by module; each linear runs once per block call)."""

    def __init__(self, modules: list[torch.nn.Module], replay: list[torch.Tensor] | None = None) -> None:
        self.modules = modules
        self.slots = {id(m): i for i, m in enumerate(modules)}
        self.outputs: list[torch.Tensor | None] = list(replay) if replay is not None else [None] * len(modules)
        self.replaying = replay is not None

    def kept(self) -> list[torch.Tensor]:
        missing = [i for i, t in enumerate(self.outputs) if t is None]
        if missing:
            raise RuntimeError(f"linear tape: the block did not run kept linears {missing}")
        return [t for t in self.outputs if t is not None]


_TAPE: contextvars.ContextVar[LinearTape | None] = contextvars.ContextVar("wanlora_linear_tape", default=None)


class _KeptBase(torch.autograd.Function):
    """y = x·Wᵀ + b with W, b frozen, y taken from the forward: the backward is dx = dy·W, as F.linear's."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kept: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.weight = weight  # not saved: a streamed block's weight is swapped in and out between uses
        return kept.detach()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        return grad.matmul(ctx.weight.to(grad.dtype)), None, None


def _base_linear(base: torch.nn.Module, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    tape = _TAPE.get()
    slot = tape.slots.get(id(module)) if tape is not None else None
    if slot is None:
        return F.linear(x, base.weight, base.bias)
    assert tape is not None
    if tape.replaying:
        kept = tape.outputs[slot]
        assert kept is not None
        if torch.is_grad_enabled() and x.requires_grad:
            return _KeptBase.apply(x, kept, base.weight)
        return kept
    y = F.linear(x, base.weight, base.bias)
    tape.outputs[slot] = y
    return y


def lora_linear(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """base(x) + Σ scale · B·(A·dropout(x)), products in x's dtype, the LoRA term added by the GEMM itself.

    Under a `LinearTape` naming this module, the base product is recorded (forward) or replayed (recompute)."""
    base = module.base_layer if hasattr(module, "base_layer") else module
    y = _base_linear(base, module, x)
    for a, b, scale, dropout in _adapters(module):
        h = F.linear(dropout(x), a.to(x.dtype))
        y = torch.addmm(y.flatten(0, -2), h.flatten(0, -2), b.to(x.dtype).t(), alpha=scale).view_as(y)
    return y


# Linears of a block whose input is the context (text, or I2V image tokens), not the video tokens.
_CONTEXT_LINEARS = ("attn2.to_k", "attn2.to_v", "attn2.add_k_proj", "attn2.add_v_proj")


def dropout_input_features(block: torch.nn.Module) -> int:
    """Σ in_features of the adapted linears of `block` over the video tokens whose LoRA dropout is active: each
    keeps its dropped-out input ([tokens, in_features] in the activations' dtype) for the A gradient until its
    backward, beside the input its base layer keeps (`streaming.estimate_working_bytes`)."""
    features = 0
    for name, module in block.named_modules():
        if name in _CONTEXT_LINEARS:
            continue
        for a, _b, _s, dropout in _adapters(module):
            if isinstance(dropout, torch.nn.Dropout) and dropout.p > 0:
                features += a.shape[1]
    return features


def _dropout_active(block: torch.nn.Module) -> bool:
    for module in block.modules():
        for _a, _b, _s, dropout in _adapters(module):
            if isinstance(dropout, torch.nn.Dropout) and dropout.p > 0 and dropout.training:
                return True
    return False


# ---------------------------------------------------------------------------------------------------
# Self-attention kernels with a kept output


@dataclass
class KeptAttention:
    """What the attention kernel's backward needs besides q, k, v: its output and log-sum-exp (+ kernel state)."""

    out: torch.Tensor  # [B, N, H, D] contiguous (the kernel writes [B, H, N, D] with this memory layout)
    lse: torch.Tensor
    extra: tuple[Any, ...]


def flash_attention_3() -> Any:
    """FlashAttention-3's Python interface (Hopper only; built by bench/build_fa3.sh or the flash-attention
    repository's hopper/setup.py), or None where it is not installed."""
    for name in ("flash_attn_interface", "flash_attn_3.flash_attn_interface"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def kernel_available(backend: str, device: torch.device) -> str | None:
    """Why `backend` cannot run on `device` (None: it can)."""
    if backend in ("auto", "cpu", "math"):
        return None
    if device.type != "cuda":
        return f"the {backend} kernel needs a CUDA GPU"
    if backend == "fa3":
        if torch.cuda.get_device_capability(device)[0] != 9:
            return "FlashAttention-3 runs on Hopper GPUs (H100, H200) only"
        if flash_attention_3() is None:
            return "FlashAttention-3 is not installed (bench/build_fa3.sh builds it for the Wan shapes)"
    return None


def require_kernel(backend: str, device: torch.device, key: str) -> None:
    """Refuse, before a weight is loaded, a kernel that cannot run on this CUDA device; `key` is the setting that
    chose it (on the CPU every kernel runs as torch's CPU math)."""
    missing = kernel_available(backend, device) if device.type == "cuda" else None
    if missing is not None:
        raise ConfigError(f"{key} = '{backend}' cannot run here: {missing}",
                          f"set {key} = 'auto' (cuDNN on Hopper), or install the kernel (README: FlashAttention-3)")


def _resolve_backend(name: str, device: torch.device, dtype: torch.dtype, head_dim: int) -> str:
    if device.type != "cuda":  # torch's flash kernel for the CPU keeps its log-sum-exp; the GPU kernels do not run here
        return "math" if name == "math" else "cpu"
    if name != "auto":
        return name
    major, _ = torch.cuda.get_device_capability(device)
    half = dtype in (torch.bfloat16, torch.float16)
    # fa3 (FlashAttention-3) only where asked for: not yet measured against cuDNN on the Wan shapes on a GPU
    # (bench/attention_kernels.py; docs/BENCHMARKS.md says what is measured)
    if major >= 9 and half and head_dim <= 128 and torch.backends.cuda.cudnn_sdp_enabled():
        return "cudnn"  # SPEC §8: ~580 TFLOP/s on the H100 against ~350 for FlashAttention-2
    if major >= 8 and half:
        return "flash"
    return "efficient"


def _sdpa_backend(name: str) -> Any:
    from torch.nn.attention import SDPBackend

    return {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}[name]


def attention_plain(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str) -> torch.Tensor:
    """SDPA through autograd on [B, H, N, D] views, with the chosen kernel (math as the fallback)."""
    if backend == "fa3":  # [B, N, H, D] in and out
        out = flash_attention_3().flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return (out[0] if isinstance(out, tuple) else out).transpose(1, 2)
    if backend in ("cpu", "math") or q.device.type != "cuda":
        return F.scaled_dot_product_attention(q, k, v)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([_sdpa_backend(backend), SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                      SDPBackend.MATH], set_priority=True):
        return F.scaled_dot_product_attention(q, k, v)


def attention_keep(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str) -> tuple[torch.Tensor,
                                                                                              KeptAttention]:
    """The attention kernel without autograd, returning its output [B, H, N, D] and what its backward needs."""
    aten = torch.ops.aten
    if backend == "cudnn":
        out, lse, cum_q, cum_k, max_q, max_k, seed, offset, _ = aten._scaled_dot_product_cudnn_attention(
            q, k, v, None, True, 0.0, False, False)
        extra = (cum_q, cum_k, max_q, max_k, seed, offset)
    elif backend == "fa3":  # [B, N, H, D] in and out: the transposes are views of the engine's layout
        out, lse, *_ = flash_attention_3()._flash_attn_forward(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), softmax_scale=q.shape[-1] ** -0.5)
        out = out.transpose(1, 2)
        extra = ()
    elif backend == "flash":
        out, lse, cum_q, cum_k, max_q, max_k, rng, unused, _ = aten._scaled_dot_product_flash_attention(
            q, k, v, 0.0, False, False)
        extra = (cum_q, cum_k, max_q, max_k, rng, unused)
    elif backend == "efficient":
        out, lse, seed, offset = aten._scaled_dot_product_efficient_attention(q, k, v, None, True, 0.0, False)
        extra = (seed, offset)
    elif backend == "cpu":
        out, lse = aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False)
        extra = ()
    else:
        raise ValueError(f"attention backend {backend!r} cannot keep its output (no log-sum-exp)")
    return out, KeptAttention(out.transpose(1, 2).contiguous(), lse.contiguous(), extra)


def attention_backward(grad: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kept: KeptAttention,
                       backend: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The kernel's own backward from the kept output and log-sum-exp (what autograd would call)."""
    aten = torch.ops.aten
    out = kept.out.transpose(1, 2)
    if grad.stride() != out.stride():  # the kernels expect dO laid out like O
        grad = torch.empty_like(out).copy_(grad)
    if backend == "cudnn":
        cum_q, cum_k, max_q, max_k, seed, offset = kept.extra
        dq, dk, dv = aten._scaled_dot_product_cudnn_attention_backward(
            grad, q, k, v, out, kept.lse, seed, offset, None, cum_q, cum_k, max_q, max_k, 0.0, False)
    elif backend == "fa3":
        dq, dk, dv = (torch.empty_like(t.transpose(1, 2), memory_format=torch.contiguous_format) for t in (q, k, v))
        flash_attention_3()._flash_attn_backward(
            grad.transpose(1, 2), q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), kept.out, kept.lse,
            dq=dq, dk=dk, dv=dv, softmax_scale=q.shape[-1] ** -0.5)
        dq, dk, dv = dq.transpose(1, 2), dk.transpose(1, 2), dv.transpose(1, 2)
    elif backend == "flash":
        cum_q, cum_k, max_q, max_k, rng, unused = kept.extra
        dq, dk, dv = aten._scaled_dot_product_flash_attention_backward(
            grad, q, k, v, out, kept.lse, cum_q, cum_k, max_q, max_k, 0.0, False, rng, unused)
    elif backend == "efficient":
        seed, offset = kept.extra
        dq, dk, dv, _ = aten._scaled_dot_product_efficient_attention_backward(
            grad, q, k, v, None, out, kept.lse, seed, offset, 0.0, [True, True, True, False], False)
    elif backend == "cpu":
        dq, dk, dv = aten._scaled_dot_product_flash_attention_for_cpu_backward(
            grad, q, k, v, out, kept.lse, 0.0, False)
    else:
        raise ValueError(f"attention backend {backend!r} has no kept-output backward")
    return dq, dk, dv


class _ReplayAttention(torch.autograd.Function):
    """Attention whose forward returns the kept output and whose backward is the kernel's backward."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kept: KeptAttention,
                backend: str) -> torch.Tensor:
        ctx.save_for_backward(q, k, v)
        ctx.kept = kept
        ctx.backend = backend
        return kept.out.transpose(1, 2).detach()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        q, k, v = ctx.saved_tensors
        dq, dk, dv = attention_backward(grad, q, k, v, ctx.kept, ctx.backend)
        return dq, dk, dv, None, None


# ---------------------------------------------------------------------------------------------------
# The block


def rope_pairs(rotary_emb: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """diffusers' RoPE tables ([1, N, 1, D], each angle twice, float64) -> cos, sin [N, D/2] float32."""
    freqs_cos, freqs_sin = rotary_emb
    return freqs_cos[0, :, 0, 0::2].float().contiguous(), freqs_sin[0, :, 0, 1::2].float().contiguous()


def block_forward(block: torch.nn.Module, x: torch.Tensor, text: torch.Tensor, temb: torch.Tensor,
                  rope: tuple[torch.Tensor, torch.Tensor], attend: Callable[..., torch.Tensor],
                  ops: Elementwise, stop_before_ffn_out: bool = False) -> Any:
    """One WanTransformerBlock (text-to-video: no image tokens, one timestep per sample).

    x: [B, N, dim] residual stream; text: [B, L, dim] projected text; temb: [B, 6, dim] time projection;
    rope: cos, sin [N, D/2]; attend(q, k, v) -> [B, H, N, D] runs the self-attention kernel.
    Returns the block output; with `stop_before_ffn_out`, (x, g, gate) such that output = x + W₂·g·gate
    (the last product is skipped: the backward needs only its input gradient, see `_CheckpointedBlock`).
    """
    x, modulation = block_attention_half(block, x, text, temb, rope, attend, ops)
    return block_ffn_half(block, x, modulation, ops, stop_before_ffn_out)


def block_attention_half(block: torch.nn.Module, x: torch.Tensor, text: torch.Tensor, temb: torch.Tensor,
                         rope: tuple[torch.Tensor, torch.Tensor], attend: Callable[..., torch.Tensor],
                         ops: Elementwise) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Self- and cross-attention of `block_forward`: (residual stream before the FFN, (shift3, scale3, gate3))."""
    if temb.ndim != 3:
        raise ValueError("the fast blocks take one timestep per sample (temb [B, 6, dim]); per-token timesteps "
                         "(Wan2.2 TI2V) need training.blocks 'diffusers'")
    shift1, scale1, gate1, shift3, scale3, gate3 = (block.scale_shift_table.float() + temb.float()).chunk(6, dim=1)
    eps1 = block.norm1.eps
    attn = block.attn1
    heads = attn.heads
    cos, sin = rope

    # 1. self-attention
    n = ops.modulated_norm(x, shift1, scale1, eps1)
    q = ops.rms_norm_rope(lora_linear(attn.to_q, n), attn.norm_q.weight, cos, sin, heads, attn.norm_q.eps)
    k = ops.rms_norm_rope(lora_linear(attn.to_k, n), attn.norm_k.weight, cos, sin, heads, attn.norm_k.eps)
    v = lora_linear(attn.to_v, n).unflatten(-1, (heads, -1))
    del n
    o = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # [B, H, N, D]
    del q, k, v
    y = lora_linear(attn.to_out[0], o.transpose(1, 2).flatten(2))
    del o

    # 2. cross-attention (norm2 is a float32 affine LayerNorm, or absent)
    norm2 = block.norm2
    if isinstance(norm2, torch.nn.Identity):
        x = ops.gated_add(x, y, gate1)
        n = x
    else:
        x, n = ops.gated_add_norm(x, y, gate1, norm2.weight, norm2.bias, norm2.eps)
    del y
    cross = block.attn2
    if cross.add_k_proj is not None:
        raise ValueError("the fast blocks do not support image-conditioned (I2V) blocks")
    q = ops.rms_norm(lora_linear(cross.to_q, n), cross.norm_q.weight, cross.norm_q.eps).unflatten(-1, (heads, -1))
    k = ops.rms_norm(lora_linear(cross.to_k, text), cross.norm_k.weight, cross.norm_k.eps).unflatten(-1, (heads, -1))
    v = lora_linear(cross.to_v, text).unflatten(-1, (heads, -1))
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    del q, k, v
    y = lora_linear(cross.to_out[0], o.transpose(1, 2).flatten(2))
    del o
    return x + y, (shift3, scale3, gate3)  # the cross-attention residual, in x's dtype as diffusers adds it


def block_ffn_half(block: torch.nn.Module, x: torch.Tensor, modulation: tuple[torch.Tensor, ...], ops: Elementwise,
                   stop_before_ffn_out: bool = False) -> Any:
    """The feed-forward of `block_forward` from the residual stream x (per token: any token subset)."""
    shift3, scale3, gate3 = modulation
    # 3. feed-forward
    n = ops.modulated_norm(x, shift3, scale3, block.norm3.eps)
    ffn = block.ffn
    h = lora_linear(ffn.net[0].proj, n)
    del n
    h = F.gelu(h, approximate="tanh")
    if stop_before_ffn_out:
        return x, h, gate3
    y = lora_linear(ffn.net[2], h)
    del h
    return ops.gated_add(x, y, gate3)


class _BlockRunner:
    """Everything one block needs to run in each mode; one per block of an enabled model."""

    def __init__(self, block: torch.nn.Module, index: int, count: int, options: FastBlockOptions,
                 store: ActivationStore) -> None:
        self.block = block
        self.index = index
        self.count = count
        self.options = options
        self.store = store
        self.sequence: SequenceContext | None = None  # set by `FastBlocks.set_sequence_parallel` (Ulysses)
        self.streamer: Any = None  # issue 18: streaming.WeightStreamer when the frozen weights stream

    # issue 18 hook: a streamed block's weights are on the GPU only between stream_in and stream_out
    def stream_in(self, phase: str) -> None:
        if self.streamer is not None:
            self.streamer.acquire(self.index, phase)

    def stream_out(self) -> None:
        if self.streamer is not None:
            self.streamer.release(self.index)

    def tokens(self) -> int:
        """The true token count of the forward in flight under Ulysses (0 without): recorded per forward
        so that the backward pads and cuts exactly as its forward did."""
        return self.sequence.tokens if self.sequence is not None else 0

    def attend(self, kernel: Callable[..., torch.Tensor], tokens: int) -> Callable[..., torch.Tensor]:
        """The block's self-attention: `kernel` itself, or under Ulysses `kernel` on the head-split sequence."""
        sequence = self.sequence
        if sequence is None:
            return kernel
        return lambda q, k, v: sequence_parallel_attention(q, k, v, kernel, sequence, tokens)

    def ops(self, device: torch.device) -> Elementwise:
        return elementwise(self.options.compile and device.type == "cuda")

    def backend(self, x: torch.Tensor) -> str:
        head_dim = self.block.attn1.inner_dim // self.block.attn1.heads
        return _resolve_backend(self.options.attention, x.device, x.dtype, head_dim)

    def kept_linears(self) -> list[torch.nn.Module]:
        """The linears whose base outputs this block keeps for its backward ([] unless among the last
        `keep_linear_blocks` blocks)."""
        if self.index < self.count - self.options.keep_linear_blocks:
            return []
        attn, cross = self.block.attn1, self.block.attn2
        kept = [attn.to_q, attn.to_k, attn.to_v, attn.to_out[0], cross.to_q, cross.to_out[0]]
        assert len(kept) == KEPT_LINEARS_PER_BLOCK
        return kept

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.block.parameters() if p.requires_grad]


def _rng_states(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


class _CheckpointedBlock(torch.autograd.Function):
    """Forward without autograd, keeping the block input (+ the attention output); backward recomputes."""

    @staticmethod
    def forward(ctx: Any, runner: _BlockRunner, x: torch.Tensor, text: torch.Tensor, temb: torch.Tensor,
                cos: torch.Tensor, sin: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        ops = runner.ops(x.device)
        backend = runner.backend(x)
        keep = runner.options.keep_attention and backend != "math"
        rng = _rng_states(x.device) if _dropout_active(runner.block) else None
        kept: list[KeptAttention] = []
        tokens = runner.tokens()

        def kernel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            if keep:  # under Ulysses: output and log-sum-exp of this rank's heads over all tokens
                out, saved = attention_keep(q, k, v, backend)
                kept.append(saved)
                return out
            return attention_plain(q, k, v, backend)

        linears = runner.kept_linears()
        tape = LinearTape(linears) if linears else None
        with torch.no_grad():
            runner.stream_in("forward_train")
            token = _TAPE.set(tape)
            try:
                out = block_forward(runner.block, x, text, temb, (cos, sin), runner.attend(kernel, tokens), ops)
            finally:
                _TAPE.reset(token)
            runner.stream_out()
        tensors = [x] + ([kept[0].out, kept[0].lse] if keep else []) + (tape.kept() if tape is not None else [])
        ctx.n_linears = len(linears)
        ctx.handle = runner.store.put(runner.index, runner.count, tensors)
        ctx.kept_extra = kept[0].extra if keep else None
        ctx.runner, ctx.text, ctx.temb, ctx.cos, ctx.sin = runner, text, temb, cos, sin
        ctx.backend, ctx.keep, ctx.rng, ctx.n_params, ctx.tokens = backend, keep, rng, len(params), tokens
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        runner: _BlockRunner = ctx.runner
        tensors = runner.store.take(ctx.handle)
        x = tensors[0]
        n_linears = ctx.n_linears
        tape = LinearTape(runner.kept_linears(), tensors[len(tensors) - n_linears:]) if n_linears else None
        ops = runner.ops(x.device)
        replayed = KeptAttention(tensors[1], tensors[2], ctx.kept_extra) if ctx.keep else None

        def kernel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            if replayed is not None:
                return _ReplayAttention.apply(q, k, v, replayed, ctx.backend)
            return attention_plain(q, k, v, ctx.backend)

        attend = runner.attend(kernel, ctx.tokens)

        runner.stream_in("backward")
        # The block ends in out = x + (W₂·g + b)·gate with W₂ frozen: d out/d x = 1 and d out/d g = gate·W₂,
        # so the recompute stops at g and the last product (a 2.7×dim² GEMM) is never recomputed.
        last = runner.block.ffn.net[2]
        skip_last = not _adapters(last) and not any(p.requires_grad for p in last.parameters())
        # issue 18: with a frozen FFN its half of the recompute + backward can run a token chunk at a time
        chunk = runner.options.ffn_chunk_tokens
        chunked = 0 < chunk < x.shape[1] and not any(p.requires_grad for p in runner.block.ffn.parameters())
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=ctx.rng is not None):
            if ctx.rng is not None:
                torch.set_rng_state(ctx.rng[0])
                if ctx.rng[1] is not None:
                    torch.cuda.set_rng_state(ctx.rng[1], x.device)
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                token = _TAPE.set(tape)  # the kept linear outputs replace their GEMMs in this recompute
                try:
                    if chunked:
                        result = block_attention_half(runner.block, xg, ctx.text, ctx.temb, (ctx.cos, ctx.sin),
                                                      attend, ops)
                    else:
                        result = block_forward(runner.block, xg, ctx.text, ctx.temb, (ctx.cos, ctx.sin), attend,
                                               ops, stop_before_ffn_out=skip_last)
                finally:
                    _TAPE.reset(token)
        if chunked:
            x_mid, modulation = result
            grad_mid = _ffn_input_gradient(runner.block, x_mid.detach(), modulation, grad_out, ops, chunk)
            outputs, grad_outputs = [x_mid], [grad_mid]
        elif skip_last:
            x_mid, g, gate = result
            grad_y = (grad_out.float() * gate).to(grad_out.dtype)
            outputs, grad_outputs = [x_mid, g], [grad_out, torch.matmul(grad_y, last.weight)]
        else:
            outputs, grad_outputs = [result], [grad_out]
        params = runner.trainable()
        wanted = [xg] + [p for p, need in zip(params, ctx.needs_input_grad[6:]) if need]
        grads = list(torch.autograd.grad(outputs, wanted, grad_outputs, allow_unused=True))
        runner.stream_out()
        del result, outputs, grad_outputs, tensors, tape
        replayed = None  # frees the kept attention now (kernel, which also holds it, is done)
        grad_x = grads.pop(0)
        param_grads = [grads.pop(0) if need else None for need in ctx.needs_input_grad[6:]]
        return (None, grad_x, None, None, None, None, *param_grads)


def _ffn_input_gradient(block: torch.nn.Module, x_mid: torch.Tensor, modulation: tuple[torch.Tensor, ...],
                        grad_out: torch.Tensor, ops: Elementwise, chunk: int) -> torch.Tensor:
    """d loss/d x_mid through a frozen FFN half (out = x_mid + W₂·gelu(W₁·norm(x_mid))·gate), recomputing the FFN
    `chunk` tokens at a time (it is per token): the hidden activations of only one chunk exist at once."""
    last = block.ffn.net[2]
    grad_mid = grad_out.clone()  # the residual path
    for start in range(0, x_mid.shape[1], chunk):
        end = min(start + chunk, x_mid.shape[1])
        xc = x_mid[:, start:end].detach().requires_grad_(True)
        with torch.enable_grad():
            _, g, gate = block_ffn_half(block, xc, modulation, ops, stop_before_ffn_out=True)
        grad_y = (grad_out[:, start:end].float() * gate).to(grad_out.dtype)
        (grad_c,) = torch.autograd.grad([g], [xc], [torch.matmul(grad_y, last.weight)])
        grad_mid[:, start:end] += grad_c
        del g, grad_y, grad_c
    return grad_mid


def fast_block_forward(runner: _BlockRunner, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                       temb: torch.Tensor, rotary_emb: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The replacement of WanTransformerBlock.forward (same arguments)."""
    block = runner.block
    cos, sin = rope_pairs(rotary_emb)
    with torch.autocast(hidden_states.device.type, enabled=False):
        params = runner.trainable()
        if torch.is_grad_enabled() and runner.options.checkpoint and (hidden_states.requires_grad or params):
            return _CheckpointedBlock.apply(runner, hidden_states, encoder_hidden_states, temb, cos, sin, *params)
        backend = runner.backend(hidden_states)
        attend = runner.attend(lambda q, k, v: attention_plain(q, k, v, backend), runner.tokens())
        runner.stream_in("forward")
        out = block_forward(block, hidden_states, encoder_hidden_states, temb, (cos, sin), attend,
                            runner.ops(hidden_states.device))
        runner.stream_out()
        return out


def _check_supported(model: Any) -> None:
    known_trainable = ("lora_A", "lora_B")
    for name, param in model.named_parameters():
        if param.requires_grad and not any(part in name.split(".") for part in known_trainable):
            raise ValueError(f"the fast blocks train LoRA adapters only, but {name} requires a gradient")
    for block in model.blocks:
        if block.attn2.add_k_proj is not None:
            raise ValueError("the fast blocks do not support image-conditioned (I2V) models")
        for module in block.modules():
            _adapters(module)  # raises on DoRA and other variants


class FastBlocks:
    """Handle of the fast blocks enabled on a model: `disable()` restores diffusers' blocks."""

    def __init__(self, model: Any, options: FastBlockOptions, store: ActivationStore) -> None:
        self.model = model
        self.options = options
        self.store = store
        self._saved_checkpointing = getattr(model, "gradient_checkpointing", False)
        model.gradient_checkpointing = False  # the fast blocks checkpoint themselves
        count = len(model.blocks)
        self.runners = [_BlockRunner(block, i, count, options, store) for i, block in enumerate(model.blocks)]
        for runner in self.runners:
            runner.block.forward = types.MethodType(
                lambda block, *args, _runner=runner, **kwargs: fast_block_forward(_runner, *args, **kwargs),
                runner.block)
        model._wanlora_fast_blocks = self
        sequence = getattr(model, "_wanlora_sequence", None)  # Ulysses enabled before the fast blocks
        if sequence is not None:
            self.set_sequence_parallel(sequence)

    def set_sequence_parallel(self, context: SequenceContext | None) -> None:
        """Run the self-attention of every block sequence-parallel over `context`'s group (None: not)."""
        for runner in self.runners:
            runner.sequence = context

    def disable(self) -> None:
        for runner in self.runners:
            if "forward" in runner.block.__dict__:
                del runner.block.forward
        self.model.gradient_checkpointing = self._saved_checkpointing
        self.store.close()
        if getattr(self.model, "_wanlora_fast_blocks", None) is self:
            del self.model._wanlora_fast_blocks


def enable_fast_blocks(model: Any, options: FastBlockOptions, warn: Callable[[str, str], None] | None = None,
                       device: torch.device | None = None) -> FastBlocks:
    """Run the blocks of a diffusers WanTransformer3DModel through `fast_block_forward` (see the module doc).

    `warn(code, message)` receives fallbacks (e.g. no host memory for the offload); `device` is where the model
    trains (the store's copy stream lives there).
    """
    existing = getattr(model, "_wanlora_fast_blocks", None)
    if existing is not None:
        existing.disable()
    _check_supported(model)
    if device is None:
        device = next(model.parameters()).device
    store = ActivationStore(device, options.offload, prefetch=options.prefetch_blocks, warn=warn)
    return FastBlocks(model, options, store)


def fast_block_options(config: Any) -> FastBlockOptions:
    """The options of a resolved config (training.attention, keep_attention, gradient_checkpointing, …,
    ffn_chunk_tokens)."""
    training = config.training
    return FastBlockOptions(attention=training.attention, keep_attention=training.keep_attention,
                            checkpoint=training.gradient_checkpointing, offload=training.activation_offload,
                            compile=training.compile, ffn_chunk_tokens=training.ffn_chunk_tokens,
                            keep_linear_blocks=training.keep_linear_blocks)
