#!/usr/bin/env python3
"""One LoRA training step of one Wan2.2-T2V-A14B expert: diffusers defaults vs the wanlora engine.

Random weights of the real expert shapes (dim 5120, 40 heads x 128, FFN 13,824, 40 blocks, text 4096),
bf16 weights, batch 1, LoRA rank 16 on to_q/to_k/to_v/to_out.0 (self- and cross-attention), gradient
checkpointing, text padded to 512 tokens, AdamW 8-bit (torch AdamW when bitsandbytes is missing).
Shapes: 1280x720 at 49 frames (46,800 tokens), 81 frames (75,600 tokens) and one frame (3,600 tokens).

    (a) diffusers defaults: WanTransformer3DModel + peft LoRA, enable_gradient_checkpointing(), bf16
        autocast, the loss written inline as a diffusers training script does;
    (b) engine: the same expert trained through wanlora_engine's own step (`velocity_losses`, the
        function the trainer calls), so engine changes (issue 7) show up here.
Both run in the same process on the same weights, alternating, with the memory peak reset in between.

Counted work (as in SPEC §8): the linears (per block 4 self-attention + q/o cross-attention + 2 FFN
projections on every token; k/v of the 512 text tokens) are counted 3x (forward, checkpoint recompute,
backward of activations), self-attention 4·N²·dim per block 4.5x (forward 1, recompute 1, backward 2.5).

Run on a GPU machine from the repository root, after `make -C engine venv` (or with torch, diffusers,
peft and bitsandbytes installed):
    engine/.venv/bin/python bench/engine_step.py --frames 1 49 81 --steps 3
    engine/.venv/bin/python bench/engine_step.py --tiny       # seconds on a CPU: checks the script only
Prints one line per (shape, variant) and, with --json FILE, writes the results.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from wanlora_engine.config import LoraConfig  # noqa: E402
from wanlora_engine.lora import add_lora  # noqa: E402
from wanlora_engine.train import velocity_losses  # noqa: E402

A14B = dict(patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=16, out_channels=16,
            text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6)
TINY = dict(A14B, num_attention_heads=2, attention_head_dim=8, text_dim=32, ffn_dim=32, num_layers=2)


def latent_shape(frames: int, width: int, height: int) -> tuple[int, int, int, int, int]:
    return (1, 16, 1 + (frames - 1) // 4, height // 8, width // 8)


def tokens_of(shape: tuple[int, ...]) -> int:
    return shape[2] * (shape[3] // 2) * (shape[4] // 2)


def counted_flops(tokens: int, config: dict[str, Any], text_tokens: int) -> float:
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    layers = config["num_layers"]
    linear_per_token = 2 * (4 * dim * dim + 2 * dim * dim + 2 * dim * config["ffn_dim"])
    linear = layers * (tokens * linear_per_token + text_tokens * 2 * 2 * dim * dim)
    self_attention = layers * 4 * tokens * tokens * dim
    cross_attention = layers * 4 * tokens * text_tokens * dim
    return 3 * (linear + cross_attention) + 4.5 * self_attention


def build_expert(config: dict[str, Any], device: torch.device, dtype: torch.dtype, rank: int) -> tuple[Any, list]:
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    # Built directly in the weight dtype on the device: a float32 build of a 14B expert would need 57 GB.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = WanTransformer3DModel(**config)
    finally:
        torch.set_default_dtype(previous)
    # diffusers keeps these in float32 under bf16 (as from_pretrained does)
    for name, param in model.named_parameters():
        if any(p in name.split(".") for p in model._keep_in_fp32_modules):
            param.data = param.data.float()
    model.requires_grad_(False)
    params = add_lora(model, LoraConfig(rank=rank, alpha=float(rank), dropout=0.0,
                                        targets=["to_q", "to_k", "to_v", "to_out.0"], experts=["high"]), seed=0)
    model.enable_gradient_checkpointing()
    model.train()
    return model, params


def make_optimizer(params: list, device: torch.device) -> tuple[torch.optim.Optimizer, str]:
    if device.type == "cuda":
        try:
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(params, lr=1e-4, weight_decay=0.01), "adamw8bit"
        except Exception:
            pass
    return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01), "adamw"


def step_diffusers(model: Any, x0: torch.Tensor, noise: torch.Tensor, text: torch.Tensor, sigma: torch.Tensor,
                   device: torch.device) -> torch.Tensor:
    """The loop of a diffusers training script: noisy input, bf16 autocast forward, MSE, backward."""
    s = sigma.view(-1, 1, 1, 1, 1)
    noisy = (1 - s) * x0 + s * noise
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        pred = model(hidden_states=noisy, timestep=sigma * 1000, encoder_hidden_states=text, return_dict=False)[0]
    loss = torch.nn.functional.mse_loss(pred.float(), (noise - x0).float())
    loss.backward()
    return loss.detach()


def step_engine(model: Any, x0: torch.Tensor, noise: torch.Tensor, text: torch.Tensor, sigma: torch.Tensor,
                device: torch.device, weight_dtype: torch.dtype) -> torch.Tensor:
    losses = velocity_losses(model, x0, noise, sigma, text, device, 1000, device.type == "cuda", weight_dtype)
    losses.mean().backward()
    return losses.detach()


def run_case(variant: str, model: Any, optimizer: torch.optim.Optimizer, shape: tuple[int, ...], text_tokens: int,
             text_dim: int, device: torch.device, weight_dtype: torch.dtype, steps: int, warmup: int) -> dict[str, Any]:
    generator = torch.Generator(device="cpu").manual_seed(1)
    x0 = torch.randn(shape, generator=generator).to(device)
    noise = torch.randn(shape, generator=generator).to(device)
    text = torch.randn((1, text_tokens, text_dim), generator=generator).to(device)
    if device.type != "cuda":
        text = text.to(weight_dtype)
    sigma = torch.tensor([0.9], device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    times = []
    try:
        for i in range(warmup + steps):
            optimizer.zero_grad(set_to_none=True)
            start = time.perf_counter()
            if variant == "diffusers":
                step_diffusers(model, x0, noise, text, sigma, device)
            else:
                step_engine(model, x0, noise, text, sigma, device, weight_dtype)
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    except torch.OutOfMemoryError:
        optimizer.zero_grad(set_to_none=True)
        return {"variant": variant, "out_of_memory": True,
                "peak_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None}
    finally:
        del x0, noise, text
        gc.collect()
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {"variant": variant, "out_of_memory": False, "seconds_per_sample": sorted(times)[len(times) // 2],
            "seconds_all": times, "peak_bytes": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 49, 81])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--text-tokens", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=["diffusers", "engine"], choices=["diffusers", "engine"])
    parser.add_argument("--tiny", action="store_true", help="tiny model on the CPU: checks the script, measures nothing")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    if args.tiny:
        config, device, dtype = TINY, torch.device("cpu"), torch.float32
        args.width, args.height, args.text_tokens = 64, 48, 16
        args.frames = [1, 5]
        args.steps, args.warmup = 1, 0
    else:
        if not torch.cuda.is_available():
            print("no CUDA GPU: run with --tiny to check the script on a CPU", file=sys.stderr)
            return 2
        config, device, dtype = A14B, torch.device("cuda"), torch.bfloat16
        torch.backends.cuda.matmul.allow_tf32 = True

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    model, params = build_expert(config, device, dtype, args.rank)
    optimizer, optimizer_name = make_optimizer(params, device)
    import diffusers

    header = {"device": device_name, "torch": torch.__version__, "diffusers": diffusers.__version__,
              "optimizer": optimizer_name, "rank": args.rank, "lora_parameters": sum(p.numel() for p in params),
              "date": time.strftime("%Y-%m-%d"), "text_tokens": args.text_tokens}
    print(json.dumps(header))
    results = []
    for frames in args.frames:
        shape = latent_shape(frames, args.width, args.height)
        tokens = tokens_of(shape)
        flops = counted_flops(tokens, config, args.text_tokens)
        for variant in args.variants:
            result = run_case(variant, model, optimizer, shape, args.text_tokens, config["text_dim"], device, dtype,
                              args.steps, args.warmup)
            result.update(frames=frames, width=args.width, height=args.height, tokens=tokens, counted_pflop=flops / 1e15)
            if not result["out_of_memory"]:
                result["tflops_per_second"] = flops / result["seconds_per_sample"] / 1e12
            results.append(result)
            peak = "-" if result["peak_bytes"] is None else f"{result['peak_bytes'] / 1e9:.1f} GB"
            if result["out_of_memory"]:
                print(f"{frames:3d} frames {args.width}x{args.height} ({tokens} tokens) {variant:9s}: out of memory "
                      f"(peak {peak})", flush=True)
            else:
                print(f"{frames:3d} frames {args.width}x{args.height} ({tokens} tokens) {variant:9s}: "
                      f"{result['seconds_per_sample']:.2f} s/sample, peak {peak}, "
                      f"{result['tflops_per_second']:.0f} TFLOP/s counted", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"header": header, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
