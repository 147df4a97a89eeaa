"""Kept linear outputs (FastBlockOptions.keep_linear_blocks, issue 18) on the tiny model, on the CPU.

The last N blocks keep the base outputs of their six frozen dim x dim products (self-attention q, k, v, out;
cross-attention q, out) with the block input; the backward's recompute replays them instead of running those
GEMMs. Same values, one product fewer each: losses and LoRA gradients must equal the plain step's, and the
recompute must run exactly 6 fewer base products per keeping block.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_streaming import CPU, limit_for, step, tiny_expert

from wanlora_engine import fast_model
from wanlora_engine.fast_model import FastBlockOptions, enable_fast_blocks
from wanlora_engine.streaming import enable_weight_streaming


def assert_same_step(got, want):
    (loss, grads), (ref_loss, ref_grads) = got, want
    assert torch.isfinite(loss) and loss > 0.5
    assert torch.equal(loss, ref_loss)  # the forward is the same computation
    for g, r in zip(grads, ref_grads):
        assert r.abs().max() > 0
        assert float((g - r).norm() / r.norm()) < 1e-6


@pytest.mark.parametrize("keep", [1, 5])
@pytest.mark.parametrize("chunk,dropout,offload", [(0, 0.0, "all"), (20, 0.3, "all"), (0, 0.3, "none")])
def test_kept_linears_give_the_plain_losses_and_lora_gradients(keep, chunk, dropout, offload):
    model, params = tiny_expert(dropout)
    fast = enable_fast_blocks(model, FastBlockOptions(offload=offload, ffn_chunk_tokens=chunk), device=CPU)
    reference = [step(model, params, seed) for seed in (1, 2)]
    fast.disable()
    fast = enable_fast_blocks(model, FastBlockOptions(offload=offload, ffn_chunk_tokens=chunk,
                                                      keep_linear_blocks=keep), device=CPU)
    assert [len(r.kept_linears()) for r in fast.runners] == [0] * (5 - keep) + [6] * keep
    for seed, want in zip((1, 2), reference):
        assert_same_step(step(model, params, seed), want)


def test_kept_linears_with_streamed_weights():
    """Blocks 2..4 streamed (the replayed products' backward reads the weight from the slot), 3 keeping."""
    model, params = tiny_expert()
    fast = enable_fast_blocks(model, FastBlockOptions(offload="all"), device=CPU)
    reference = [step(model, params, seed) for seed in (1, 2)]
    fast.disable()
    enable_fast_blocks(model, FastBlockOptions(offload="all", keep_linear_blocks=3), device=CPU)
    streamer = enable_weight_streaming(model, limit_for(model, 2), 10_000, CPU, poison_released=True)
    assert streamer.plan.streamed == 3
    for seed, want in zip((1, 2), reference):
        assert_same_step(step(model, params, seed), want)


def test_kept_blocks_skip_six_base_products_each(monkeypatch):
    calls = {"n": 0}
    linear = F.linear

    def counting(*args, **kwargs):
        calls["n"] += 1
        return linear(*args, **kwargs)

    model, params = tiny_expert()
    counts = {}
    for keep in (0, 2):
        fast = enable_fast_blocks(model, FastBlockOptions(offload="all", keep_linear_blocks=keep), device=CPU)
        monkeypatch.setattr(fast_model.F, "linear", counting)
        calls["n"] = 0
        step(model, params)
        counts[keep] = calls["n"]
        monkeypatch.setattr(fast_model.F, "linear", linear)
        fast.disable()
    assert counts[0] - counts[2] == 2 * 6
    # stored per keeping block: input, attention output, log-sum-exp, then the six products
    fast = enable_fast_blocks(model, FastBlockOptions(offload="none", keep_linear_blocks=1), device=CPU)
    shapes = []
    put = fast.store.put

    def recording(index, count, tensors):
        shapes.append((index, [tuple(t.shape) for t in tensors]))
        return put(index, count, tensors)

    monkeypatch.setattr(fast.store, "put", recording)
    step(model, params)
    assert [len(s) for _, s in shapes] == [3, 3, 3, 3, 9]
    assert shapes[4][1][3:] == [(2, 72, 32)] * 6  # batch 2, 72 tokens, dim 32


def test_the_config_key_reaches_the_trainer_with_the_same_step(workspace):
    from test_streaming import five_block_workspace
    from test_train import make_trainer

    model_dir = five_block_workspace(workspace)
    reference = make_trainer(workspace, model={"checkpoint": str(model_dir)}).train_step()
    trainer = make_trainer(workspace, model={"checkpoint": str(model_dir)}, training={"keep_linear_blocks": 3})
    runners = trainer.models["high"]._wanlora_fast_blocks.runners
    assert [len(r.kept_linears()) for r in runners] == [0, 0, 6, 6, 6]
    record = trainer.train_step()
    assert abs(record.loss - reference.loss) <= 1e-6 * abs(reference.loss)
    assert abs(record.grad_norm - reference.grad_norm) <= 1e-5 * reference.grad_norm
