"""Ulysses sequence parallelism for the Wan transformer's self-attention (DeepSpeed-Ulysses layout).

A group of U ranks works on the same sample. Each rank holds a contiguous 1/U of the video tokens
through the whole block (norms, projections, cross-attention, FFN are per token). Self-attention needs
every token, so around it the layout is switched with two all-to-alls: (tokens/U, all heads) ->
(all tokens, heads/U) before the attention kernel, and back after it. U must divide the head count
(40 for A14B).

Padding. The token count S = F'·H'·W' need not be divisible by U (49 frames at 1280x720: 46,800 tokens;
a 9-token image with U = 2). The sequence is padded at its end to S_pad = U·ceil(S/U), so only the last
rank(s) hold padding. Padded positions never reach the loss (the output is gathered and cut back to S)
and never act as keys: after the first all-to-all every rank holds the whole padded sequence in order,
so the padding is exactly positions S..S_pad-1; queries, keys and values are cut to S before the
attention kernel and the output padded back with zeros. No attention mask is needed, so the fast
kernels (cuDNN, FlashAttention) stay usable, and the result equals unsharded attention.

Gradients. Every rank of the group computes the same loss on the gathered output; the gather's
backward keeps the rank's own slice, so each rank's LoRA gradients are its tokens' share, and the sum
over the group (the trainer's all-reduce) is the full gradient.

How it attaches (no copy of the diffusers forward): forward hooks on `rope` (split the rotary tables),
`patch_embedding` (split the tokens) and `proj_out` (gather and unpad), and a processor on every
block's `attn1`. They survive gradient checkpointing, whose recompute re-runs the blocks (and so the
all-to-alls, in the same order on every rank). The engine's fast blocks (fast_model.py) do not call the
processor: `enable_ulysses` hands them the context, and their self-attention runs through
`sequence_parallel_attention` (same layout switch and padding, q, k, v in one all-to-all), whose kernel
may keep its output and log-sum-exp for the backward in the head-split layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

# ---------------------------------------------------------------------------------------------------
# Collectives with autograd


class _AllToAll(torch.autograd.Function):
    """all_to_all_single over dim 0 of a [U, ...] tensor: chunk j goes to rank j; its inverse is itself."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group = group
        tensor = tensor.contiguous()
        out = torch.empty_like(tensor)
        dist.all_to_all_single(out, tensor, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous()
        out = torch.empty_like(grad)
        dist.all_to_all_single(out, grad, group=ctx.group)
        return out, None


class _GatherSequence(torch.autograd.Function):
    """All-gather along dim 1; backward keeps the own slice (every rank computes the same loss)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, group: Any, rank: int, degree: int) -> torch.Tensor:
        ctx.rank, ctx.local = rank, tensor.shape[1]
        parts = [torch.empty_like(tensor) for _ in range(degree)]
        dist.all_gather(parts, tensor.contiguous(), group=group)
        return torch.cat(parts, dim=1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        return grad[:, ctx.rank * ctx.local:(ctx.rank + 1) * ctx.local].contiguous(), None, None, None


def sequence_to_heads(x: torch.Tensor, group: Any, degree: int) -> torch.Tensor:
    """[B, S_local, H, D] (all heads) -> [B, S_pad, H/U, D] (all tokens, this rank's heads)."""
    b, s, h, d = x.shape
    chunks = x.reshape(b, s, degree, h // degree, d).permute(2, 0, 1, 3, 4)  # [U, B, S_local, H/U, D]
    received = _AllToAll.apply(chunks, group)  # chunk j = rank j's tokens, our heads
    return received.permute(1, 0, 2, 3, 4).reshape(b, degree * s, h // degree, d)


def heads_to_sequence(x: torch.Tensor, group: Any, degree: int) -> torch.Tensor:
    """[B, S_pad, H/U, D] -> [B, S_pad/U, H, D]: the inverse of `sequence_to_heads`."""
    b, s_pad, h_local, d = x.shape
    s = s_pad // degree
    chunks = x.reshape(b, degree, s, h_local, d).permute(1, 0, 2, 3, 4)  # [U, B, S_local, H/U, D]
    received = _AllToAll.apply(chunks, group)  # chunk j = our tokens, rank j's heads
    return received.permute(1, 2, 0, 3, 4).reshape(b, s, degree * h_local, d)


def qkv_sequence_to_heads(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group: Any,
                          degree: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`sequence_to_heads` of q, k and v in one all-to-all: [B, S_local, H, D] each -> [B, S_pad, H/U, D] each.

    One collective of three times the size instead of three (fewer launches and synchronisations per block);
    the packing copy is the one `sequence_to_heads` makes anyway to give the collective a contiguous buffer.
    Its backward is one all-to-all of dq, dk, dv (heads -> sequence).
    """
    b, s, h, d = q.shape
    # sent: [U, 3, B, S_local, H/U, D] packed in one copy, chunk j = q, k, v of rank j's heads (no name holds it,
    # so it is freed when the collective returns); received: chunk j = rank j's tokens, our heads
    received = _AllToAll.apply(
        torch.stack([t.reshape(b, s, degree, h // degree, d).permute(2, 0, 1, 3, 4) for t in (q, k, v)], dim=1), group)
    qkv = received.permute(1, 2, 0, 3, 4, 5).reshape(3, b, degree * s, h // degree, d)
    return qkv.unbind(0)  # (unbind's backward stacks the three gradients: no zero-filled copies)


def sequence_parallel_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                kernel: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                                context: SequenceContext, tokens: int) -> torch.Tensor:
    """Self-attention over the whole sequence from this rank's tokens: the fast blocks' Ulysses attention.

    q, k, v: [B, H, S_local, D] (this rank's tokens, all heads; any strides with a contiguous last dim, as
    the fast blocks pass them). `kernel(q, k, v)` computes attention on [B, H/U, S, D] (all `tokens` real
    tokens, this rank's heads) and returns [B, H/U, S, D]; it may keep its output and log-sum-exp for the
    backward, which are then in that layout. Returns [B, H, S_local, D].

    Padding as in `UlyssesSelfAttentionProcessor`: the padded positions S..S_pad-1 are cut before the
    kernel (never keys, no mask) and the output is padded back with zeros, which the gather drops. Under
    autograd the backward is the mirror image: the output gradient goes sequence -> heads, through the
    kernel's backward, and dq, dk, dv go heads -> sequence.
    """
    group, degree = context.group, context.degree
    local = q.shape[2]
    if padded_length(tokens, degree) != degree * local:
        raise ValueError(f"Ulysses: {tokens} tokens over {degree} ranks are {padded_length(tokens, degree) // degree} "
                         f"per rank, but this rank holds {local}")
    qh, kh, vh = qkv_sequence_to_heads(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), group, degree)
    padding = degree * local - tokens
    if padding:  # compact copies: the kernels then see the layout of the one-GPU blocks ([B, S, H/U, D] dense)
        qh, kh, vh = (t[:, :tokens].contiguous() for t in (qh, kh, vh))
    out = kernel(qh.transpose(1, 2), kh.transpose(1, 2), vh.transpose(1, 2)).transpose(1, 2)  # [B, S, H/U, D]
    if padding:
        out = torch.cat([out, out.new_zeros(out.shape[0], padding, *out.shape[2:])], dim=1)
    return heads_to_sequence(out, group, degree).transpose(1, 2)


# ---------------------------------------------------------------------------------------------------
# Token bookkeeping


def padded_length(tokens: int, degree: int) -> int:
    return -(-tokens // degree) * degree


def local_slice(tokens: int, degree: int, rank: int) -> slice:
    """This rank's positions in the padded sequence."""
    per_rank = padded_length(tokens, degree) // degree
    return slice(rank * per_rank, (rank + 1) * per_rank)


def split_tokens(x: torch.Tensor, dim: int, degree: int, rank: int) -> torch.Tensor:
    """Pad `x` along `dim` to a multiple of `degree` with zeros and keep this rank's part."""
    tokens = x.shape[dim]
    pad = padded_length(tokens, degree) - tokens
    if pad:
        shape = list(x.shape)
        shape[dim] = pad
        x = torch.cat([x, x.new_zeros(shape)], dim=dim)
    return x.narrow(dim, local_slice(tokens, degree, rank).start, x.shape[dim] // degree)


@dataclass
class SequenceContext:
    """The group and the true token count of the forward pass in flight (set by the patch hook)."""

    group: Any
    degree: int
    rank: int
    tokens: int = 0


# ---------------------------------------------------------------------------------------------------
# The self-attention processor


class UlyssesSelfAttentionProcessor:
    """WanAttnProcessor's self-attention with the all-to-alls around the attention kernel.

    Same arithmetic as diffusers' processor (projections, QK RMS norm across heads, RoPE, attention,
    output projection); the attention kernel is diffusers' `dispatch_attention_fn`, so a backend set
    with `set_attention_backend` applies here too.
    """

    _attention_backend = None
    _parallel_config = None

    def __init__(self, context: SequenceContext) -> None:
        self.context = context

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None,
                 rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        from diffusers.models.attention_dispatch import dispatch_attention_fn

        if encoder_hidden_states is not None or attention_mask is not None or attn.add_k_proj is not None:
            raise ValueError("Ulysses applies to the self-attention (attn1) of a Wan block only")
        if getattr(attn, "fused_projections", False):
            raise ValueError("Ulysses needs the unfused to_q/to_k/to_v projections (call unfuse_projections)")
        ctx = self.context
        query = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(attn.to_k(hidden_states)).unflatten(2, (attn.heads, -1))
        value = attn.to_v(hidden_states).unflatten(2, (attn.heads, -1))
        if rotary_emb is not None:
            query = apply_rotary(query, *rotary_emb)
            key = apply_rotary(key, *rotary_emb)

        query, key, value = (sequence_to_heads(t, ctx.group, ctx.degree) for t in (query, key, value))
        padded = query.shape[1]
        real = ctx.tokens
        out = dispatch_attention_fn(query[:, :real], key[:, :real], value[:, :real], attn_mask=None,
                                    dropout_p=0.0, is_causal=False, backend=self._attention_backend)
        if padded > real:
            out = torch.cat([out, out.new_zeros(out.shape[0], padded - real, *out.shape[2:])], dim=1)
        out = heads_to_sequence(out, ctx.group, ctx.degree).flatten(2, 3).type_as(query)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Wan's RoPE on interleaved pairs (as diffusers' WanAttnProcessor computes it)."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = cos[..., 0::2], sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


# ---------------------------------------------------------------------------------------------------


def enable_ulysses(model: Any, group: Any, degree: int, rank: int) -> SequenceContext:
    """Make a WanTransformer3DModel run sequence-parallel over `group` (size `degree`, this is `rank`)."""
    heads = model.config.num_attention_heads
    if heads % degree:
        raise ValueError(f"Ulysses degree {degree} does not divide the model's {heads} attention heads")
    context = SequenceContext(group=group, degree=degree, rank=rank)

    def split_rope(module: Any, args: Any, output: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(split_tokens(t, 1, degree, rank) for t in output)  # [1, S, 1, D] each

    def split_patches(module: Any, args: Any, output: torch.Tensor) -> torch.Tensor:
        # [B, D, F', H', W'] -> [B, D, S_local]; the model's flatten(2).transpose(1, 2) then gives
        # [B, S_local, D] (flatten(2) of a 3-d tensor changes nothing).
        flat = output.flatten(2)
        context.tokens = flat.shape[2]
        return split_tokens(flat, 2, degree, rank)

    def gather_output(module: Any, args: Any, output: torch.Tensor) -> torch.Tensor:
        full = _GatherSequence.apply(output, group, rank, degree)
        return full[:, :context.tokens]

    model.rope.register_forward_hook(split_rope)
    model.patch_embedding.register_forward_hook(split_patches)
    model.proj_out.register_forward_hook(gather_output)
    for block in model.blocks:
        block.attn1.set_processor(UlyssesSelfAttentionProcessor(context))
    # the fast blocks (fast_model.py) call attention themselves: they read the context, whichever came first
    model._wanlora_sequence = context
    fast = getattr(model, "_wanlora_fast_blocks", None)
    if fast is not None:
        fast.set_sequence_parallel(context)
    return context


__all__ = ["enable_ulysses", "split_tokens", "padded_length", "local_slice", "sequence_to_heads",
           "heads_to_sequence", "qkv_sequence_to_heads", "sequence_parallel_attention",
           "UlyssesSelfAttentionProcessor", "SequenceContext"]
