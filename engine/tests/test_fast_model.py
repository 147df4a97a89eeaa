"""The fast blocks (wanlora_engine.fast_model) compute diffusers' WanTransformerBlock: same output, same LoRA
gradients, in every mode (checkpointed or not, attention kept or recomputed, activations offloaded or not),
with LoRA dropout replayed exactly in the recompute. On the CPU in float32 the two agree to rounding; the GPU
check in bf16 is `bench/engine_step.py --check` (docs/BENCHMARKS.md)."""

from __future__ import annotations

import pytest
import torch

from wanlora_engine.config import LoraConfig
from wanlora_engine.fast_model import (
    FastBlockOptions,
    attention_backward,
    attention_keep,
    attention_plain,
    enable_fast_blocks,
    kernel_available,
    lora_linear,
    rms_norm_rope,
    rope_pairs,
)
from wanlora_engine.lora import add_lora
from wanlora_engine.offload import ActivationStore

# A tiny Wan2.2 T2V expert: every module of the real one (RoPE over t/h/w, QK norm, cross-attention norm).
TINY = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=16, out_channels=16,
            text_dim=24, freq_dim=32, ffn_dim=40, num_layers=3, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6)
MODES = {
    "default": FastBlockOptions(),
    "offload all": FastBlockOptions(offload="all"),
    "attention recomputed": FastBlockOptions(keep_attention=False, offload="all"),
    "no checkpointing": FastBlockOptions(checkpoint=False),
}


def tiny_expert(dropout: float = 0.0, targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    model = WanTransformer3DModel(**TINY)
    model.requires_grad_(False)
    params = add_lora(model, LoraConfig(rank=4, alpha=8.0, dropout=dropout, targets=list(targets)), seed=0)
    with torch.no_grad():  # B starts at zero (and so would every A gradient): make all of them count
        for p in params:
            p.normal_(0, 0.3)
    model.train()
    return model, params


def forward_backward(model, params, seed: int = 5):
    """Prediction and LoRA gradients of a weighted sum of the output, for a batch of two samples."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 3, 8, 12, generator=generator)
    text = torch.randn(2, 7, 24, generator=generator)
    weights = torch.randn(2, 16, 3, 8, 12, generator=generator)
    for p in params:
        p.grad = None
    torch.manual_seed(seed)
    out = model(hidden_states=x, timestep=torch.tensor([300.0, 900.0]), encoder_hidden_states=text,
                return_dict=False)[0]
    (out * weights).sum().backward()
    return out.detach(), [p.grad.clone() for p in params]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_fast_blocks_match_diffusers_output_and_lora_gradients(mode, dropout):
    model, params = tiny_expert(dropout)
    reference_out, reference_grads = forward_backward(model, params)
    fast = enable_fast_blocks(model, MODES[mode])
    out, grads = forward_backward(model, params)
    fast.disable()
    assert reference_out.abs().max() > 1 and all(g.abs().max() > 0 for g in reference_grads)
    assert relative(out, reference_out) < 1e-5
    for g, r in zip(grads, reference_grads):
        assert relative(g, r) < 1e-5
    # disabled: diffusers' blocks again, bit for bit
    again, _ = forward_backward(model, params)
    assert torch.equal(again, reference_out)


def test_dropout_masks_are_replayed_in_the_recompute():
    """With dropout the checkpointed backward must draw the forward's masks again: another seed gives other
    gradients, the same seed the same ones as an uncheckpointed run."""
    model, params = tiny_expert(dropout=0.5)
    enable_fast_blocks(model, FastBlockOptions(checkpoint=False))
    plain_out, plain = forward_backward(model, params, seed=11)
    enable_fast_blocks(model, FastBlockOptions(offload="all"))
    out, checkpointed = forward_backward(model, params, seed=11)
    _, other_seed = forward_backward(model, params, seed=12)
    assert torch.allclose(out, plain_out, rtol=0, atol=1e-6)
    assert max(relative(g, r) for g, r in zip(checkpointed, plain)) < 1e-5
    assert max(relative(g, r) for g, r in zip(other_seed, plain)) > 1e-2


def test_lora_on_every_linear_of_the_block():
    """musubi-tuner adapts the FFN too: its last product is then recomputed (not skipped) and trained."""
    targets = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")
    model, params = tiny_expert(targets=targets)
    reference_out, reference_grads = forward_backward(model, params)
    enable_fast_blocks(model, FastBlockOptions(offload="all"))
    out, grads = forward_backward(model, params)
    assert relative(out, reference_out) < 1e-5
    assert max(relative(g, r) for g, r in zip(grads, reference_grads)) < 1e-5
    assert len(params) == 2 * 3 * 10


def test_kept_attention_backward_equals_autograd():
    """The kernel's own backward from the kept output and log-sum-exp gives autograd's q/k/v gradients."""
    generator = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 10, 8, generator=generator, dtype=torch.float64).requires_grad_() for _ in range(3))
    grad = torch.randn(2, 3, 10, 8, generator=generator, dtype=torch.float64)
    reference = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    reference.backward(grad)
    with torch.no_grad():
        out, kept = attention_keep(q.detach(), k.detach(), v.detach(), "cpu")
    assert torch.allclose(out, reference.detach(), atol=1e-12)
    dq, dk, dv = attention_backward(grad, q.detach(), k.detach(), v.detach(), kept, "cpu")
    for mine, theirs in ((dq, q.grad), (dk, k.grad), (dv, v.grad)):
        assert torch.allclose(mine, theirs, atol=1e-10)


class FlashAttention3StandIn:
    """FlashAttention-3's Python interface as the engine calls it (hopper/flash_attn_interface.py): q, k, v, out
    and dout are [B, N, H, D] with unit stride on D, the log-sum-exp is [B, H, N] float32, the backward writes the
    gradients into the dq, dk, dv it is given. Exact math, so what it checks is the engine's side: its layouts,
    transposes and arguments. The real kernel runs on a Hopper GPU only (bench/attention_kernels.py measures it)."""

    calls: list[str]

    def __init__(self) -> None:
        self.calls = []

    @staticmethod
    def _check(*tensors: torch.Tensor) -> None:
        for t in tensors:
            assert t.ndim == 4 and t.stride(-1) == 1, "FlashAttention-3 takes [B, N, H, D] with unit stride on D"

    def _flash_attn_forward(self, q, k, v, softmax_scale=None, **unused):
        self._check(q, k, v)
        self.calls.append("forward")
        scores = torch.einsum("bnhd,bmhd->bhnm", q, k) * softmax_scale
        lse = torch.logsumexp(scores, dim=-1)
        out = torch.einsum("bhnm,bmhd->bnhd", torch.softmax(scores, dim=-1), v)
        return out, lse.float(), None, None

    def _flash_attn_backward(self, dout, q, k, v, out, softmax_lse, dq=None, dk=None, dv=None, softmax_scale=None,
                             **unused):
        self._check(dout, q, k, v, out, dq, dk, dv)
        self.calls.append("backward")
        assert softmax_lse.shape == (q.shape[0], q.shape[2], q.shape[1])
        leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
        scores = torch.einsum("bnhd,bmhd->bhnm", leaves[0], leaves[1]) * softmax_scale
        torch.einsum("bhnm,bmhd->bnhd", torch.softmax(scores, dim=-1), leaves[2]).backward(dout)
        for into, leaf in zip((dq, dk, dv), leaves):
            into.copy_(leaf.grad)
        return None

    def flash_attn_func(self, q, k, v):
        self._check(q, k, v)
        self.calls.append("func")
        return torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)


def test_fa3_backend_hands_the_kernel_its_layout_and_gives_autograds_results(monkeypatch):
    """The fa3 backend: forward, kept-output backward and plain attention through FlashAttention-3's interface
    equal torch's SDPA and autograd on the engine's [B, H, N, D] views of [B, N, H, D] tensors."""
    stand_in = FlashAttention3StandIn()
    monkeypatch.setitem(__import__("sys").modules, "flash_attn_interface", stand_in)
    generator = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 10, 3, 8, generator=generator, dtype=torch.float64).transpose(1, 2) for _ in range(3))
    grad = torch.randn(2, 3, 10, 8, generator=generator, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    reference = torch.nn.functional.scaled_dot_product_attention(*leaves)
    reference.backward(grad)

    out, kept = attention_keep(q, k, v, "fa3")
    assert out.shape == (2, 3, 10, 8) and kept.out.is_contiguous() and kept.out.shape == (2, 10, 3, 8)
    assert torch.allclose(out, reference.detach(), atol=1e-12)
    dq, dk, dv = attention_backward(grad, q, k, v, kept, "fa3")
    for mine, leaf in zip((dq, dk, dv), leaves):
        assert mine.shape == leaf.shape and torch.allclose(mine, leaf.grad, atol=1e-10)
    assert torch.allclose(attention_plain(q, k, v, "fa3"), reference.detach(), atol=1e-12)
    assert stand_in.calls == ["forward", "backward", "func"]


def test_fa3_is_refused_with_a_reason_where_it_cannot_run():
    assert "CUDA GPU" in kernel_available("fa3", torch.device("cpu"))
    assert kernel_available("cpu", torch.device("cpu")) is None
    with pytest.raises(ValueError, match="fa3"):
        FastBlockOptions(attention="fa4")


def test_rope_pairs_rotate_like_diffusers():
    """Hand check: a vector (1, 0) at angle θ becomes (cos θ, sin θ); the norm first makes each row RMS 1."""
    x = torch.zeros(1, 2, 4)  # [B, N, H·D] with one head of 4 (two pairs)
    x[0, :, 0] = 2.0  # RMS over the 4 values: 1 -> after the norm the first element is 2
    cos = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # token 1: pair 0 rotated by 90 degrees
    sin = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    out = rms_norm_rope(x, None, cos, sin, heads=1, eps=0.0)
    assert out.shape == (1, 2, 1, 4)
    assert torch.allclose(out[0, 0, 0], torch.tensor([2.0, 0.0, 0.0, 0.0]))
    assert torch.allclose(out[0, 1, 0], torch.tensor([0.0, 2.0, 0.0, 0.0]))
    tables = (torch.tensor([[1.0, 1.0, 0.5, 0.5]]).view(1, 1, 1, 4),
              torch.tensor([[0.0, 0.0, 0.7, 0.7]]).view(1, 1, 1, 4))
    c, s = rope_pairs(tables)
    assert c.tolist() == [[1.0, 0.5]] and torch.allclose(s, torch.tensor([[0.0, 0.7]]))


def test_lora_linear_is_base_plus_scaled_low_rank_product():
    model, _ = tiny_expert()
    module = model.blocks[0].attn1.to_q
    x = torch.randn(2, 5, 32)
    a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
    expected = module.base_layer(x) + 2.0 * (x @ a.t() @ b.t())  # alpha 8 / rank 4
    assert torch.allclose(lora_linear(module, x), expected, atol=1e-5)
    assert torch.allclose(lora_linear(module.base_layer, x), module.base_layer(x))


def test_offloaded_activations_go_to_host_buffers_and_come_back():
    store = ActivationStore(torch.device("cpu"), "all", prefetch=1)
    tensors = [[torch.randn(4, 6) + i, torch.randn(3)] for i in range(3)]
    handles = [store.put(i, 3, t) for i, t in enumerate(tensors)]
    assert store.offloaded_bytes == 2 * (24 + 3) * 4 and store.resident_bytes == (24 + 3) * 4
    assert handles[2].host is None and handles[0].host is not None  # the last block stays put
    for original in tensors:  # the host copies are copies: changing the originals changes nothing
        original[0].zero_()
    assert store.pool.busy == 2 * (24 + 3) * 4
    back = store.take(handles[2])
    assert back[0] is tensors[2][0]
    first = store.take(handles[1])
    assert handles[0].tensors is not None  # prefetched while block 1 was taken
    assert not torch.equal(first[0], tensors[1][0]) and first[0].abs().sum() > 0
    store.take(handles[0])
    with pytest.raises(RuntimeError, match="used twice"):
        store.take(handles[0])
    # the next forward reuses the buffers instead of allocating new ones
    held = store.pool.held
    for i, t in enumerate(tensors):
        store.put(i, 3, t)
    assert store.pool.held == held
    store.close()
    assert store.pool.idle == []


def test_unsupported_models_are_refused_with_a_reason():
    model, _ = tiny_expert()
    model.blocks[0].norm2.weight.requires_grad_(True)
    with pytest.raises(ValueError, match="LoRA adapters only.*norm2"):
        enable_fast_blocks(model, FastBlockOptions())
    with pytest.raises(ValueError, match="offload"):
        FastBlockOptions(offload="disk")
