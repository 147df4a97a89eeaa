"""Peer anchor: musubi-tuner's own WanModel (Wan2.2 A14B expert shapes, random weights) and its LoRA
network (networks.lora_wan: every Linear of every block), trained the way its wan_train_network.py
does: bf16 base, fp32 LoRA under bf16 autocast, gradient checkpointing, SDPA attention, text padded to
512, AdamW8bit. Prints JSON lines. Usage: python musubi_step.py 49,81 with env
  RANK_LORA=16  V21_TEMB=1 (its Wan2.1 time embedding)  FP8_SCALED=1 (--fp8_base --fp8_scaled)
  ACT_OFFLOAD=1 (activation CPU offload)  BLOCKS_TO_SWAP=N (block swap, H2D-only, pinned)
  MEM_CAP_GB=24 (cap this process's GPU memory, to emulate a smaller card)  REPS=3 (timed steps)
  V21_FALLBACK=1 (a frame count that runs out of memory with the official embedding is retried with 2.1's)
  LORA_TARGETS=attention (LoRA on the 8 attention linears only, as the engine's default targets: musubi's
  network_args exclude_patterns=['.*ffn.*']; default "all", musubi's own default of every Linear)."""
# From ../shared/bench/musubi_step.py, with one change (2026-12-07): the base weights are frozen before
# enable_block_swap, which musubi-tuner's LoRAStreamOffloader now asserts (its training script freezes first).
import json
import os
import sys
import time

import torch

# MUSUBI_SRC: a folder holding the musubi_tuner package (from the musubi-tuner repository's src/), with
# musubi_tuner/wan/modules/__init__.py emptied (it imports the T5 and VAE modules, which this needs not).
sys.path.insert(0, os.environ.get("MUSUBI_SRC", os.path.join(os.path.dirname(__file__), "..", ".peer")))
from musubi_tuner.networks import lora_wan
from musubi_tuner.wan.modules.model import WanModel


def flops_per_sample(tokens, text=256, d=5120, ffn=13824, layers=40, train=True, ckpt=True):
    lin = 2 * (6 * d * d + 2 * d * ffn)          # self q,k,v,o + cross q,o + ffn, per image token
    att = 4 * tokens * d                          # QK^T and PV per token
    xkv = 4 * text * d                            # cross-attention scores per token
    fwd = (lin + att + xkv) * tokens * layers
    if not train:
        return fwd
    bwd = (lin + 2.5 * att + 2.5 * xkv) * tokens * layers   # activation grads only (frozen base)
    return fwd + bwd + (fwd if ckpt else 0)


def main():
    frames = [int(f) for f in sys.argv[1].split(",")] if len(sys.argv) > 1 else [49]
    rank = int(os.environ.get("RANK_LORA", "16"))
    v21 = os.environ.get("V21_TEMB", "0") == "1"
    act_off = os.environ.get("ACT_OFFLOAD", "0") == "1"  # musubi's --gradient_checkpointing_cpu_offload
    swap = int(os.environ.get("BLOCKS_TO_SWAP", "0"))  # musubi's --blocks_to_swap (+ --block_swap_h2d_only, pinned)
    cap = float(os.environ.get("MEM_CAP_GB", "0"))  # emulate a smaller card: cap this process's GPU memory (GiB)
    if cap:
        torch.cuda.set_per_process_memory_fraction(cap * 2**30 / torch.cuda.get_device_properties(0).total_memory)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    t0 = time.time()
    with torch.device("cpu" if swap else "cuda"):
        m = WanModel(model_type="t2v", model_version="2.2", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=5120,
                     ffn_dim=13824, freq_dim=256, text_dim=4096, out_dim=16, num_heads=40, num_layers=40,
                     qk_norm=True, cross_attn_norm=True, eps=1e-6, attn_mode="torch")
    torch.set_default_dtype(torch.float32)
    m.force_v2_1_time_embedding = v21
    fp8 = os.environ.get("FP8_SCALED", "0") == "1"      # musubi's --fp8_base --fp8_scaled
    if fp8:
        sd = m.fp8_optimization(m.state_dict(), torch.device("cuda"), True, use_scaled_mm=False)
        m.load_state_dict(sd, strict=True, assign=True)
        del sd
        torch.cuda.empty_cache()
    m.requires_grad_(False)  # musubi's LoRAStreamOffloader (block swap) asserts frozen base weights
    if swap:
        from musubi_tuner.modules.custom_offloading_utils import BlockSwapConfig
        m.enable_block_swap(swap, BlockSwapConfig(device=torch.device("cuda"), supports_backward=True,
                                                  use_pinned_memory=True, h2d_only=True))
        m.move_to_device_except_swap_blocks(torch.device("cuda"))
        m.switch_block_swap_for_training()
    m.requires_grad_(False)
    m.enable_gradient_checkpointing(activation_cpu_offloading=act_off)
    m.train()
    targets = os.environ.get("LORA_TARGETS", "all")
    extra = {"exclude_patterns": "[r'.*ffn.*']"} if targets == "attention" else {}  # as --network_args passes it
    net = lora_wan.create_arch_network(1.0, rank, rank, None, [], m, **extra)
    net.apply_to(None, m, apply_text_encoder=False, apply_unet=True)
    net.to("cuda")
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    import bitsandbytes as bnb
    opt = bnb.optim.AdamW8bit(params, lr=1e-4, weight_decay=0.01)
    print(json.dumps({"event": "built", "s": round(time.time() - t0, 1), "v21_temb": v21, "fp8_scaled": fp8,
                      "lora_modules": len(net.unet_loras), "lora_targets": targets,
                      "trainable_m": round(sum(p.numel() for p in params) / 1e6, 2),
                      "mem_gb": round(torch.cuda.memory_allocated() / 2**30, 2)}), flush=True)
    fallback = os.environ.get("V21_FALLBACK", "0") == "1"  # on OOM with the official embedding, try 2.1's
    reps = int(os.environ.get("REPS", "3"))
    for f in frames:
        for v21_try in [v21] + ([True] if fallback and not v21 else []):
            m.force_v2_1_time_embedding = v21_try
            record = {"event": "step", "backend": "musubi", "frames": f, "rank": rank, "v21_temb": v21_try,
                      "fp8_scaled": fp8, "act_offload": act_off, "blocks_to_swap": swap, "cap_gb": cap,
                      "lora_targets": targets}
            torch.cuda.reset_peak_memory_stats()
            try:
                times, tokens = timed_steps(m, params, opt, f, swap, reps)
            except torch.OutOfMemoryError:
                opt.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                print(json.dumps(dict(record, oom=True, peak_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2))),
                      flush=True)
                continue
            med = sorted(times[1:])[len(times[1:]) // 2]
            fl = flops_per_sample(tokens, text=512)
            print(json.dumps(dict(record, tokens=tokens, s_per_sample=round(med, 2), all=[round(v, 2) for v in times],
                                  peak_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2),
                                  tflops_counted=round(fl / med / 1e12, 1))), flush=True)
            break


def timed_steps(m, params, opt, f, swap, reps):
    """One warm-up + `reps` timed LoRA steps at f frames; the step times (s) and the token count."""
    lt = (f - 1) // 4 + 1
    tokens = lt * 45 * 80
    x = torch.randn(16, lt, 90, 160, device="cuda", dtype=torch.bfloat16)
    ctx = torch.randn(256, 4096, device="cuda", dtype=torch.bfloat16)  # padded to 512 inside, as in musubi
    times = []
    for _ in range(reps + 1):
        torch.cuda.synchronize()
        t = time.time()
        ts = torch.rand(1, device="cuda") * 1000
        if swap:
            m.prepare_block_swap_before_forward()
        xi = x.clone().requires_grad_(True)
        ci = ctx.clone().requires_grad_(True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = m([xi], t=ts, context=[ci], seq_len=tokens)
        loss = (torch.stack(out, 0).float() - x.float().unsqueeze(0)).pow(2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.time() - t)
    return times, tokens


if __name__ == "__main__":
    main()
