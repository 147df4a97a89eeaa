"""Weight streaming (wanlora_engine.streaming, issue 18) on the tiny model, on the CPU.

The CPU path runs the GPU path's bookkeeping with CPU "slots" and synchronous copies: each streamed block's
weights live in a separate host buffer and are copied into one of `prefetch + 1` slot buffers for each use;
with `poison_released` every released slot is filled with NaN, so a weight read outside its acquire window
would turn the loss into NaN. Streamed and unstreamed steps use the same kernels: losses and LoRA gradients
are compared for exact equality.
"""

from __future__ import annotations

import pytest
import torch

from wanlora_engine.config import LoraConfig
from wanlora_engine.fast_model import FastBlockOptions, dropout_input_features, enable_fast_blocks
from wanlora_engine.fp8 import E4M3_MAX, Fp8HostFormat, dequantize_rows, element_error_bound, quantize_rows
from wanlora_engine.lora import add_lora
from wanlora_engine.streaming import (
    StreamingError,
    block_layout,
    disable_weight_streaming,
    enable_weight_streaming,
    enable_weight_streaming_for,
    estimate_working_bytes,
    fixed_bytes_of,
    frozen_block_bytes,
    plan_streaming,
)

TINY = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=16, out_channels=16,
            text_dim=24, freq_dim=32, ffn_dim=40, num_layers=5, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6)
CPU = torch.device("cpu")


def tiny_expert(dropout: float = 0.0):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    model = WanTransformer3DModel(**TINY)
    model.requires_grad_(False)
    params = add_lora(model, LoraConfig(rank=4, alpha=8.0, dropout=dropout,
                                        targets=["to_q", "to_k", "to_v", "to_out.0"]), seed=0)
    with torch.no_grad():  # B starts at zero (and so would every A gradient): make all of them count
        for p in params:
            p.normal_(0, 0.3)
    model.train()
    return model, params


def step(model, params, seed: int = 1):
    """One training step's loss and LoRA gradients (batch of two, 3x8x12 latent: 72 tokens)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 16, 3, 8, 12, generator=generator)
    text = torch.randn(2, 7, 24, generator=generator)
    target = torch.randn(2, 16, 3, 8, 12, generator=generator)
    for p in params:
        p.grad = None
    torch.manual_seed(seed)  # LoRA dropout masks
    out = model(hidden_states=x, timestep=torch.tensor([300.0, 900.0]), encoder_hidden_states=text,
                return_dict=False)[0]
    loss = (out - target).pow(2).mean()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in params]


def limit_for(model, resident: int, prefetch: int = 1, working: int = 10_000) -> int:
    block = frozen_block_bytes(model.blocks[0])
    return fixed_bytes_of(model, list(model.blocks)) + working + (resident + prefetch + 1) * block


@pytest.mark.parametrize("chunk,dropout", [(0, 0.0), (20, 0.0), (20, 0.3)])
@pytest.mark.parametrize("resident,prefetch", [(0, 1), (2, 1), (1, 2)])
def test_streamed_steps_equal_unstreamed_losses_and_lora_gradients(resident, prefetch, chunk, dropout):
    options = FastBlockOptions(offload="all", ffn_chunk_tokens=chunk)
    model, params = tiny_expert(dropout)
    enable_fast_blocks(model, options, device=CPU)
    reference = [step(model, params, seed) for seed in (1, 2)]
    streamer = enable_weight_streaming(model, limit_for(model, resident, prefetch), 10_000, CPU, prefetch=prefetch,
                                       poison_released=True)
    assert streamer.plan.resident == resident and streamer.plan.streamed == 5 - resident
    assert all(p.device.type == "cpu" and p.data_ptr() != 0 for p in model.blocks[4].parameters())
    streamed = [step(model, params, seed) for seed in (1, 2)]
    assert streamer.stats.copies > 0
    for (loss, grads), (ref_loss, ref_grads) in zip(streamed, reference):
        assert torch.isfinite(loss) and loss > 0.5
        assert torch.equal(loss, ref_loss)
        assert all(torch.equal(g, r) for g, r in zip(grads, ref_grads))
        assert all(r.abs().max() > 0 for r in ref_grads)


def test_copies_per_step_and_acquisition_order():
    """5 blocks, 1 resident, prefetch 1 (2 slots): the first step copies 2·4 - 2 = 6 blocks, later steps
    2·(4 - 2) = 4 (the 2 blocks in the slots at each turn forward->backward and backward->forward are reused)."""
    model, params = tiny_expert()
    enable_fast_blocks(model, FastBlockOptions(offload="all"), device=CPU)
    streamer = enable_weight_streaming(model, limit_for(model, 1), 10_000, CPU, prefetch=1, record_sequence=True)
    step(model, params)
    assert streamer.stats.copies == 6 and streamer.stats.waits_unprefetched == 0
    assert streamer.stats.sequence == [("forward_train", i) for i in range(5)] + [("backward", i)
                                                                                 for i in range(4, -1, -1)]
    step(model, params)
    assert streamer.stats.copies == 10
    assert streamer.plan.link_bytes_per_step == 4 * streamer.plan.host_block_bytes


def test_disable_restores_the_exact_weights():
    model, params = tiny_expert()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    enable_fast_blocks(model, FastBlockOptions(), device=CPU)
    enable_weight_streaming(model, limit_for(model, 0), 10_000, CPU)
    step(model, params)
    disable_weight_streaming(model)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, before[name]), name


def test_chunked_ffn_matches_the_unchunked_gradients():
    model, params = tiny_expert()
    fast = enable_fast_blocks(model, FastBlockOptions(), device=CPU)
    loss, grads = step(model, params)
    fast.disable()
    enable_fast_blocks(model, FastBlockOptions(ffn_chunk_tokens=25), device=CPU)  # 72 tokens: chunks 25, 25, 22
    chunked_loss, chunked_grads = step(model, params)
    assert torch.equal(loss, chunked_loss)  # the forward is not chunked
    for g, r in zip(chunked_grads, grads):
        assert float((g - r).norm() / r.norm()) < 1e-5


def test_the_residency_rule_with_hand_computed_numbers():
    gib = 2**30
    # 40 blocks of 0.65 GiB, 1 GiB fixed, 15 GiB of activations, limit 24 GiB, prefetch 1:
    # room = 24 - 1 - 15 - 2 x 0.65 = 6.7 GiB -> 10 resident blocks (6.5 GiB), 30 streamed.
    plan = plan_streaming(24 * gib, 40, int(0.65 * gib), 1 * gib, 15 * gib, prefetch=1)
    assert (plan.resident, plan.streamed, plan.slot_count) == (10, 30, 2)
    assert plan.gpu_weight_bytes == 12 * int(0.65 * gib)
    assert plan.host_weight_bytes == 30 * int(0.65 * gib)
    assert plan.link_bytes_per_step == 2 * 28 * int(0.65 * gib)
    # everything fits: no slots, nothing streams
    plan = plan_streaming(80 * gib, 40, int(0.65 * gib), 1 * gib, 15 * gib)
    assert (plan.resident, plan.slot_count, plan.link_bytes_per_step) == (40, 0, 0)
    assert plan_streaming(None, 40, 10, 0, 0).resident == 40
    # 16 GiB: room = 16 - 16 - 1.3 < 0
    with pytest.raises(StreamingError, match="below what streaming every block needs"):
        plan_streaming(16 * gib, 40, int(0.65 * gib), 1 * gib, 15 * gib)


def test_working_set_estimate_by_hand():
    # 100 tokens x dim 8 x 2 B = 1600 B per activation; (19 + 4 + 2·2) U = 27 U = 43,200;
    # FFN chunk 10 tokens: 3 x 10 x 16 x 2 = 960; text 4 x 5 x 8 x 2 = 320
    assert estimate_working_bytes(100, 8, 16, 5, 10) == 43_200 + 960 + 320
    assert estimate_working_bytes(100, 8, 16, 5, 0) == 43_200 + 9_600 + 320


def test_streaming_refuses_without_fast_blocks_or_checkpointing():
    model, _ = tiny_expert()
    with pytest.raises(StreamingError, match="enable_fast_blocks"):
        enable_weight_streaming(model, None, 0, CPU)
    enable_fast_blocks(model, FastBlockOptions(checkpoint=False), device=CPU)
    with pytest.raises(StreamingError, match="gradient checkpointing"):
        enable_weight_streaming(model, None, 0, CPU)


def test_fp8_rows_within_the_element_bound():
    generator = torch.Generator().manual_seed(3)
    weight = (torch.randn(64, 96, generator=generator) * torch.logspace(-3, 0, 64)[:, None]).to(torch.bfloat16)
    weight[5, 7] = 0.0
    q, scale = quantize_rows(weight)
    assert q.dtype == torch.float8_e4m3fn and scale.shape == (64,)
    assert torch.equal(q.float().abs().amax(dim=1), torch.full((64,), E4M3_MAX))  # each row uses the full range
    restored = dequantize_rows(q, scale, torch.bfloat16)
    error = (restored.float() - weight.float()).abs()
    assert bool((error <= element_error_bound(weight, scale)).all())
    relative = float((restored.float() - weight.float()).norm() / weight.float().norm())
    assert 0.005 < relative < 2.0 ** -4  # lossy (not a no-op), and within e4m3's 3 mantissa bits


def test_fp8_host_weights_stream_with_a_bounded_loss_error():
    model, params = tiny_expert()
    enable_fast_blocks(model, FastBlockOptions(offload="all"), device=CPU)
    ref_loss, ref_grads = step(model, params)
    fp8 = Fp8HostFormat()
    staging = fp8.gpu_staging_bytes(block_layout(model.blocks[0])[0])
    streamer = enable_weight_streaming(model, limit_for(model, 1) + staging, 10_000, CPU, host_format=fp8,
                                       poison_released=True)
    assert (streamer.plan.resident, streamer.plan.streamed) == (1, 4)
    plan = streamer.plan
    assert plan.host_block_bytes < 0.75 * plan.block_bytes  # tiny blocks: many small exact tensors
    loss, grads = step(model, params)
    loss_error = float((loss - ref_loss).abs() / ref_loss)
    grad_error = float(torch.cat([(g - r).flatten() for g, r in zip(grads, ref_grads)]).norm()
                       / torch.cat([r.flatten() for r in ref_grads]).norm())
    assert 0 < loss_error < 0.01 and 0 < grad_error < 0.05


def test_the_working_estimate_counts_the_lora_dropout_inputs():
    """With LoRA dropout each adapted linear over the video keeps its dropped-out input (tokens x in_features) for
    its A gradient: the tiny block's attn1 q, k, v, out and attn2 q, out, 6 x 32 features (attn2 k and v run over
    the text). The trainer hook's plan counts them; without dropout nothing is added."""
    assert dropout_input_features(tiny_expert(0.0)[0].blocks[0]) == 0
    model, params = tiny_expert(0.3)
    assert dropout_input_features(model.blocks[0]) == 6 * 32
    plain = 27 * 72 * 32 * 4 + 3 * 20 * 40 * 4 + 4 * 7 * 32 * 4
    assert estimate_working_bytes(72, 32, 40, 7, 20, 1, 4, dropout_features=192) == plain + 72 * 192 * 4
    enable_fast_blocks(model, FastBlockOptions(ffn_chunk_tokens=20, prefetch_blocks=1), device=CPU)
    block = frozen_block_bytes(model.blocks[0])
    fixed = fixed_bytes_of(model, list(model.blocks))
    # The limit that keeps 2 blocks resident without dropout keeps none with it: 2 x 47,872 B less 55,296 B.
    assert block == 47_872
    streamer = enable_weight_streaming_for(model, fixed + plain + 4 * block, 72, 7, CPU)
    assert (streamer.plan.resident, streamer.plan.working_bytes) == (0, plain + 72 * 192 * 4)
    loss, _ = step(model, params)
    assert torch.isfinite(loss)


def test_the_trainer_hook_plans_from_the_model_shape_and_counts_fp8_staging():
    model, params = tiny_expert()
    enable_fast_blocks(model, FastBlockOptions(ffn_chunk_tokens=20, prefetch_blocks=1), device=CPU)
    # 72 tokens of width 32 (2 heads x 16), FFN 40, text 7: (19 + 4 + 2·2) x 72·32·4 B + 3·20·40·4 + 4·7·32·4
    working = 27 * 72 * 32 * 4 + 3 * 20 * 40 * 4 + 4 * 7 * 32 * 4
    assert estimate_working_bytes(72, 32, 40, 7, 20, 1, 4) == working
    block = frozen_block_bytes(model.blocks[0])
    fixed = fixed_bytes_of(model, list(model.blocks))
    streamer = enable_weight_streaming_for(model, fixed + working + 4 * block, 72, 7, CPU)
    assert (streamer.plan.resident, streamer.plan.working_bytes, streamer.plan.fixed_bytes) == (2, working, fixed)
    disable_weight_streaming(model)
    fp8 = Fp8HostFormat()
    staging = fp8.gpu_staging_bytes(block_layout(model.blocks[0])[0])
    assert staging == fp8.host_bytes(block_layout(model.blocks[0])[0]) + 1024 * 40 * 6  # widest weight: 40 columns
    streamer = enable_weight_streaming_for(model, fixed + working + 4 * block + staging, 72, 7, CPU, fp8=True)
    assert (streamer.plan.resident, streamer.plan.fixed_bytes) == (2, fixed + staging)
    loss, _ = step(model, params)
    assert torch.isfinite(loss)


# ---------------------------------------------------------------------------------------------------
# The trainer's streaming path (hardware.gpu_memory_limit), on the tiny model with 5 blocks, on the CPU


def five_block_workspace(workspace):
    """The test workspace with a 5-block tiny expert pair (the 2-block one cannot stream: with prefetch 1, its two
    slots cost what both blocks do). Only the experts are loaded by `train`: the cache stays valid."""
    from wanlora_engine.tiny import TinySpec, write_tiny_model

    return write_tiny_model(workspace / "model5", "diffusers", seed=0, spec=TinySpec(layers=5))


def limit_for_trainer(workspace, model_dir, resident: int, fp8: bool = False, **overrides) -> float:
    """The GiB of hardware.gpu_memory_limit that keeps `resident` of 5 blocks under the engine's rule: fixed
    (+ fp8 staging) + working + (resident + 2 slots) x block bytes, from an unlimited trainer's expert (tiny,
    float32 on the CPU)."""
    from test_train import make_trainer

    trainer = make_trainer(workspace, model={"checkpoint": str(model_dir)}, **overrides)
    model = trainer.models["high"]
    # The largest item, a 5-frame clip at 64x48: latent 2x6x8, patches 1x2x2 -> 24 tokens; width 2 heads x 8,
    # FFN 32; captions padded to 512 tokens
    assert max(item.latent_shape for item in trainer.train_set.items) == (16, 2, 6, 8)
    assert trainer.empty_prompt.shape[-2] == 512
    working = estimate_working_bytes(24, 16, 32, 512, trainer.config.training.ffn_chunk_tokens, 1, 4)
    # On the CPU the run gets torch AdamW (8-bit AdamW needs CUDA): 8 B of optimizer state a LoRA parameter.
    assert trainer._optimizer_name() == "adamw"
    fixed = fixed_bytes_of(model, list(model.blocks), 8)
    if fp8:
        fixed += Fp8HostFormat().gpu_staging_bytes(block_layout(model.blocks[0])[0])
    return (fixed + working + (resident + 2) * frozen_block_bytes(model.blocks[0])) / 2**30


def test_a_train_run_with_a_gpu_memory_limit_streams_and_gives_the_unstreamed_losses(workspace):
    from test_train import make_trainer

    from helpers import demo_config, write_config
    from wanlora_engine.events import read_events
    from wanlora_engine.stage import run_stage

    model_dir = five_block_workspace(workspace)
    limit = limit_for_trainer(workspace, model_dir, resident=2)
    losses = {}
    for name, gib in (("unlimited", 0.0), ("streamed", limit)):
        run = {"name": name}
        config = demo_config(model={"checkpoint": str(model_dir)},
                             hardware={"gpu_memory_limit": gib, "inactive_expert": "offload"},
                             training={"max_steps": 3, "eval_steps": 0, "save_steps": 0}, run=run,
                             derived={"run_dir": str(workspace / "runs" / name)})
        assert run_stage("train", write_config(workspace, config, f"{name}.json"), echo=False) == 0
        events = read_events(workspace / "runs" / name / "events.jsonl")
        plan = next(e for e in events if e["event"] == "train_plan")
        losses[name] = [e["loss"] for e in events if e["event"] == "step"]
        if gib == 0:
            assert plan["weight_streaming"] is None
            continue
        for expert in ("high", "low"):
            placed = plan["weight_streaming"][expert]
            assert (placed["blocks"], placed["resident"], placed["streamed"], placed["slots"]) == (5, 2, 3, 2)
            assert placed["host_weights"] == "bf16" and placed["limit_bytes"] == round(limit * 2**30)
        warning = next(e for e in events if e["event"] == "warning" and e["code"] == "gpu_memory_limit_ignored")
        assert "still placed by it" in warning["message"]
    assert len(losses["streamed"]) == 3 and losses["streamed"] == losses["unlimited"]

    # The same step through the Trainer: blocks 2..4 were copied in for each use, and a slot read after its
    # release would be NaN (poisoned), so an equal loss means every weight came from its acquire window.
    reference = make_trainer(workspace, model={"checkpoint": str(model_dir)}).train_step()
    trainer = make_trainer(workspace, model={"checkpoint": str(model_dir)},
                           hardware={"gpu_memory_limit": limit, "inactive_expert": "offload"})
    streamers = [trainer.models[e]._wanlora_streamer for e in ("high", "low")]
    for streamer in streamers:
        streamer.poison_released = True
        assert all(p.device.type == "cpu" for p in trainer.models["high"].blocks[4].parameters())
    record = trainer.train_step()
    assert sum(s.stats.copies for s in streamers) > 0
    assert record.loss == reference.loss and record.grad_norm == reference.grad_norm


def test_fp8_host_weights_and_ffn_chunks_reach_the_trainer(workspace):
    from test_train import make_trainer

    model_dir = five_block_workspace(workspace)
    reference = make_trainer(workspace, model={"checkpoint": str(model_dir)}).train_step()
    limit = limit_for_trainer(workspace, model_dir, resident=1, fp8=True, training={"ffn_chunk_tokens": 10})
    trainer = make_trainer(workspace, model={"checkpoint": str(model_dir), "weights_dtype": "fp8"},
                           training={"ffn_chunk_tokens": 10},
                           hardware={"gpu_memory_limit": limit, "inactive_expert": "offload"})
    streamer = trainer.models["high"]._wanlora_streamer
    assert streamer.host_format is not None and streamer.plan.host_block_bytes < streamer.plan.block_bytes
    assert (streamer.plan.resident, streamer.plan.streamed) == (1, 4)
    assert all(runner.options.ffn_chunk_tokens == 10 for runner in trainer.models["high"]._wanlora_fast_blocks.runners)
    record = trainer.train_step()
    assert record.loss != reference.loss and abs(record.loss - reference.loss) < 0.01 * reference.loss


def test_without_a_limit_the_card_memory_places_the_blocks(workspace, monkeypatch):
    """hardware.gpu_memory_limit = 0 is "what the card has": where the engine can stream (one expert on the GPU at a
    time, fast blocks with checkpointing, from the cache, no FSDP) the card's memory less 1 GiB places the blocks, so
    a small card streams instead of running out of memory. The CPU has no card: the test stands one in."""
    from test_train import make_trainer

    from wanlora_engine import gpu_memory, train

    assert gpu_memory.card_limit_bytes(torch.device("cpu")) is None
    model_dir = five_block_workspace(workspace)
    one = {"training": {"expert": "high"}, "derived": {"experts": ["high"]}}
    card = round(limit_for_trainer(workspace, model_dir, resident=2, **one) * 2**30)
    monkeypatch.setattr(train, "card_limit_bytes", lambda device: card)
    trainer = make_trainer(workspace, model={"checkpoint": str(model_dir)}, **one)
    plan = trainer.stream_plans["high"]
    assert (plan.resident, plan.streamed, plan.limit_bytes) == (2, 3, card)
    # The fixed bytes count the optimizer the run really gets (torch AdamW here: 8 B a LoRA parameter, not 2).
    model = trainer.models["high"]
    lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert plan.fixed_bytes == fixed_bytes_of(model, list(model.blocks), 8) == (
        fixed_bytes_of(model, list(model.blocks), 2) + 6 * lora)
    # A card that holds the expert: placed whole, as without a limit.
    monkeypatch.setattr(train, "card_limit_bytes", lambda device: 2**40)
    assert make_trainer(workspace, model={"checkpoint": str(model_dir)}, **one).stream_plans == {}
    # Both experts on the GPU at once (no offload on the CPU): each would be planned against the whole card, so
    # nothing streams without an explicit limit; nor with the diffusers blocks.
    monkeypatch.setattr(train, "card_limit_bytes", lambda device: card)
    assert make_trainer(workspace, model={"checkpoint": str(model_dir)}).stream_plans == {}
    assert make_trainer(workspace, model={"checkpoint": str(model_dir)}, training={"expert": "high", "blocks":
                        "diffusers"}, derived={"experts": ["high"]}).stream_plans == {}


def test_a_limit_below_streaming_every_block_is_refused_naming_the_key(workspace):
    from test_train import make_trainer

    from wanlora_engine.errors import ConfigError

    model_dir = five_block_workspace(workspace)
    with pytest.raises(ConfigError, match="below what streaming every block needs") as raised:
        make_trainer(workspace, model={"checkpoint": str(model_dir)},
                     hardware={"gpu_memory_limit": 1e-6, "inactive_expert": "offload"})
    assert "hardware.gpu_memory_limit" in raised.value.remedy
    # Both experts trained and resident together: each would be placed against the whole limit (the planner
    # refuses the same setting).
    with pytest.raises(ConfigError, match="both experts are trained and stay on the GPU") as raised:
        make_trainer(workspace, model={"checkpoint": str(model_dir)}, hardware={"gpu_memory_limit": 1.0})
    assert "hardware.inactive_expert = 'offload'" in raised.value.remedy
    with pytest.raises(ConfigError, match="training.blocks = 'diffusers'"):
        make_trainer(workspace, model={"checkpoint": str(model_dir)}, hardware={"gpu_memory_limit": 1.0},
                     training={"blocks": "diffusers"})
