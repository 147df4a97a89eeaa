#!/usr/bin/env python3
"""One LoRA training step of one Wan2.2-T2V-A14B expert: diffusers defaults vs the wanlora engine.

Random weights of the real expert shapes (dim 5120, 40 heads x 128, FFN 13,824, 40 blocks, text 4096),
bf16 weights, batch 1, LoRA rank 16 on to_q/to_k/to_v/to_out.0 (self- and cross-attention), gradient
checkpointing, text padded to 512 tokens, AdamW 8-bit (torch AdamW when bitsandbytes is missing).
Shapes: 1280x720 at 49 frames (46,800 tokens), 81 frames (75,600 tokens) and one frame (3,600 tokens).

    (a) diffusers defaults: WanTransformer3DModel + peft LoRA, enable_gradient_checkpointing(), bf16
        autocast, the loss written inline as a diffusers training script does;
    (b) engine: the same expert trained through wanlora_engine's own step (`velocity_losses`, the
        function the trainer calls) with the fast blocks (`wanlora_engine.fast_model`, config section
        `blocks`) as the trainer enables them; `engine-*` variants change one option each (ablations):
        engine-none (no activation offload), engine-all (offload every block), engine-recompute
        (attention recomputed in backward), engine-eager (no torch.compile), engine-flash (FlashAttention-2),
        engine-cudnn / engine-fa3 (the attention kernel named: cuDNN, FlashAttention-3; `engine` takes auto),
        engine-keep (the linear outputs kept for the recompute, FFN backward in chunks: issue 18).
All run in the same process on the same weights, one after another, with the memory peak reset in between.
`--check` first compares the engine's output and LoRA gradients with diffusers' on the same weights and
inputs (LoRA B made non-zero so every gradient is), `--probe` measures the host<->GPU copy bandwidth.

Counted work (as in SPEC §8): the linears (per block 4 self-attention + q/o cross-attention + 2 FFN
projections on every token; k/v of the 512 text tokens) are counted 3x (forward, checkpoint recompute,
backward of activations), self-attention 4·N²·dim per block 4.5x (forward 1, recompute 1, backward 2.5).

Run on a GPU machine from the repository root, after `make -C engine venv` (or with torch, diffusers,
peft and bitsandbytes installed):
    engine/.venv/bin/python bench/engine_step.py --frames 1 49 81 --steps 3 --check --probe
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

from kernel_profile import describe, profile_call  # noqa: E402

from wanlora_engine.config import LoraConfig  # noqa: E402
from wanlora_engine.encoding import latent_shape  # noqa: E402
from wanlora_engine.fast_model import FastBlockOptions, enable_fast_blocks  # noqa: E402
from wanlora_engine.lora import add_lora  # noqa: E402
from wanlora_engine.train import velocity_losses  # noqa: E402

A14B = dict(patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=16, out_channels=16,
            text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6)
VARIANTS: dict[str, dict[str, Any] | None] = {
    "diffusers": None,
    "engine": {},
    "engine-none": {"offload": "none"},
    "engine-all": {"offload": "all"},
    "engine-recompute": {"keep_attention": False},
    "engine-eager": {"compile": False},
    "engine-flash": {"attention": "flash"},
    "engine-cudnn": {"attention": "cudnn"},
    "engine-fa3": {"attention": "fa3"},  # FlashAttention-3, built by bench/build_fa3.sh
    # issue 18: every block keeps its six dim x dim base products for the recompute (and the FFN in chunks)
    "engine-keep": {"keep_linear_blocks": 40, "ffn_chunk_tokens": 16384},
}
TINY = dict(A14B, num_attention_heads=2, attention_head_dim=8, text_dim=32, ffn_dim=32, num_layers=2)


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
                                        targets=["to_q", "to_k", "to_v", "to_out.0"]), seed=0)
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


def engine_options(variant: str) -> FastBlockOptions:
    return FastBlockOptions(**(VARIANTS[variant] or {}))


def run_case(variant: str, model: Any, optimizer: torch.optim.Optimizer, shape: tuple[int, ...], text_tokens: int,
             text_dim: int, device: torch.device, weight_dtype: torch.dtype, steps: int, warmup: int) -> dict[str, Any]:
    generator = torch.Generator(device="cpu").manual_seed(1)
    x0 = torch.randn(shape, generator=generator).to(device)
    noise = torch.randn(shape, generator=generator).to(device)
    text = torch.randn((1, text_tokens, text_dim), generator=generator).to(device)
    if device.type != "cuda":
        text = text.to(weight_dtype)
    sigma = torch.tensor([0.9], device=device)
    fast = None if variant == "diffusers" else enable_fast_blocks(model, engine_options(variant), device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    times: list[float] = []
    result: dict[str, Any] = {"variant": variant, "out_of_memory": False}
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
            else:
                result["warmup_seconds"] = time.perf_counter() - start
    except torch.OutOfMemoryError:
        optimizer.zero_grad(set_to_none=True)
        result["out_of_memory"] = True
    finally:
        if fast is not None:
            result["offloaded_gb"] = fast.store.offloaded_bytes / 1e9
            result["resident_gb"] = fast.store.resident_bytes / 1e9
            result["host_pinned_gb"] = fast.store.pool.held / 1e9
            fast.disable()
        del x0, noise, text
        gc.collect()
    result["peak_bytes"] = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    if not result["out_of_memory"]:
        result["seconds_per_sample"] = sorted(times)[len(times) // 2]
        result["seconds_all"] = times
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def numerical_check(model: Any, params: list, shape: tuple[int, ...], text_tokens: int, text_dim: int,
                    device: torch.device, weight_dtype: torch.dtype, variants: list[str]) -> dict[str, Any]:
    """Output and LoRA gradients of each engine variant against diffusers', same weights and inputs.

    LoRA B starts at zero (so would every A gradient): both get random values for the check and go back after.
    Returns relative L2 errors ||engine - diffusers|| / ||diffusers|| of the prediction, of the loss and of all
    LoRA gradients together (and the worst single LoRA tensor).
    """
    saved = [p.detach().clone() for p in params]
    generator = torch.Generator(device="cpu").manual_seed(7)
    with torch.no_grad():
        for p in params:
            p.copy_(torch.randn(p.shape, generator=generator) * (0.02 if p.shape[0] < p.shape[1] else 0.002))
    x0 = torch.randn(shape, generator=generator).to(device)
    noise = torch.randn(shape, generator=generator).to(device)
    text = torch.randn((1, text_tokens, text_dim), generator=generator).to(device)
    if device.type != "cuda":
        text = text.to(weight_dtype)
    sigma = torch.tensor([0.7], device=device)
    autocast = device.type == "cuda"

    def run() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        for p in params:
            p.grad = None
        x_t = ((1 - sigma) * x0 + sigma * noise).to(torch.float32 if autocast else weight_dtype)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            pred = model(hidden_states=x_t, timestep=sigma * 1000, encoder_hidden_states=text.to(x_t.dtype),
                         return_dict=False)[0]
        loss = (pred.float() - (noise - x0)).pow(2).mean()
        loss.backward()
        return pred.detach().float(), loss.detach(), [p.grad.detach().float().clone() for p in params]

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm().clamp_min(1e-30))

    report: dict[str, Any] = {"tokens": tokens_of(shape)}
    try:
        ref_pred, ref_loss, ref_grads = run()
        for variant in variants:
            if variant == "diffusers":
                continue
            fast = enable_fast_blocks(model, engine_options(variant), device=device)
            try:
                pred, loss, grads = run()
            finally:
                fast.disable()
            report[variant] = {
                "prediction": rel(pred, ref_pred), "loss": rel(loss, ref_loss),
                "lora_gradients": rel(torch.cat([g.flatten() for g in grads]),
                                      torch.cat([g.flatten() for g in ref_grads])),
                "worst_lora_tensor": max(rel(g, r) for g, r in zip(grads, ref_grads)),
            }
    finally:
        with torch.no_grad():
            for p, v in zip(params, saved):
                p.copy_(v)
                p.grad = None
    return report


def probe_copy_bandwidth(device: torch.device, gigabytes: float = 1.0) -> dict[str, float]:
    """Host<->GPU copy rate with a page-locked buffer, what the activation offload moves (GB/s)."""
    n = int(gigabytes * 1e9)
    host = torch.empty(n, dtype=torch.uint8, pin_memory=True)
    gpu = torch.empty(n, dtype=torch.uint8, device=device)
    rates = {}
    for name, (dst, src) in {"host_to_gpu": (gpu, host), "gpu_to_host": (host, gpu)}.items():
        dst.copy_(src, non_blocking=True)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(3):
            dst.copy_(src, non_blocking=True)
        torch.cuda.synchronize()
        rates[name + "_gbs"] = 3 * n / (time.perf_counter() - start) / 1e9
    del host, gpu
    return rates


def profile_step(variant: str, model: Any, optimizer: torch.optim.Optimizer, shape: tuple[int, ...],
                 text_tokens: int, text_dim: int, device: torch.device, weight_dtype: torch.dtype) -> dict[str, Any]:
    """GPU time of one step by kernel class, and the top kernels (torch.profiler, after one unprofiled step)."""
    generator = torch.Generator(device="cpu").manual_seed(1)
    x0 = torch.randn(shape, generator=generator).to(device)
    noise = torch.randn(shape, generator=generator).to(device)
    text = torch.randn((1, text_tokens, text_dim), generator=generator).to(device)
    sigma = torch.tensor([0.9], device=device)
    fast = None if variant == "diffusers" else enable_fast_blocks(model, engine_options(variant), device=device)
    step = step_diffusers if variant == "diffusers" else (
        lambda *a: step_engine(*a, weight_dtype))
    try:
        optimizer.zero_grad(set_to_none=True)
        step(model, x0, noise, text, sigma, device)
        result = profile_call(lambda: step(model, x0, noise, text, sigma, device), device)
        optimizer.zero_grad(set_to_none=True)
    finally:
        if fast is not None:
            fast.disable()
    return {"variant": variant, "frames_shape": list(shape), **result}


def format_table(header: dict[str, Any], results: list[dict[str, Any]]) -> str:
    lines = [f"device: {header['device']}, torch {header['torch']}, diffusers {header['diffusers']}, "
             f"{header['date']}, optimizer {header['optimizer']}, rank {header['rank']}, layers {header['layers']}",
             "| frames | tokens | variant | s/sample | vs diffusers | peak GB | TFLOP/s counted | offloaded GB |",
             "|---|---|---|---|---|---|---|---|"]
    base = {r["frames"]: r for r in results if r["variant"] == "diffusers"}
    for r in results:
        if "error" in r:
            seconds, ratio, rate = "error: " + r["error"][:60], "", ""
        elif r["out_of_memory"]:
            seconds, ratio, rate = "out of memory", "", ""
        else:
            seconds = f"{r['seconds_per_sample']:.2f}"
            b = base.get(r["frames"])
            ratio = (f"{r['seconds_per_sample'] / b['seconds_per_sample']:.2f}x"
                     if b is not None and "seconds_per_sample" in b else "")
            rate = f"{r['tflops_per_second']:.0f}"
        peak = "-" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 1e9:.1f}"
        off = f"{r['offloaded_gb']:.1f}" if "offloaded_gb" in r else ""
        lines.append(f"| {r['frames']} | {r.get('tokens', '')} | {r['variant']} | {seconds} | {ratio} | {peak} "
                     f"| {rate} | {off} |")
    return "\n".join(lines)


def parse_cases(frames: list[int], variants: list[str], cases: list[str] | None,
                steps: int) -> list[tuple[int, str, int]]:
    """--cases 49:diffusers,engine 81:engine/1 (FRAMES:VARIANT[,VARIANT...][/STEPS]) overrides --frames x --variants."""
    if not cases:
        return [(f, v, steps) for f in frames for v in variants]
    out = []
    for case in cases:
        f, _, rest = case.partition(":")
        names, _, case_steps = rest.partition("/")
        for v in names.split(","):
            if v not in VARIANTS:
                raise SystemExit(f"unknown variant {v!r} in --cases {case!r}; known: {', '.join(VARIANTS)}")
            out.append((int(f), v, int(case_steps) if case_steps else steps))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 49, 81])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--text-tokens", type=int, default=512)
    parser.add_argument("--layers", type=int, default=None,
                        help="blocks of the expert (default 40; fewer for a quick look)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=["diffusers", "engine"], choices=list(VARIANTS))
    parser.add_argument("--cases", nargs="+", help="FRAMES:VARIANT[,VARIANT...] ... instead of --frames x --variants")
    parser.add_argument("--check", action="store_true", help="compare engine and diffusers output and LoRA gradients")
    parser.add_argument("--check-frames", type=int, default=1)
    parser.add_argument("--probe", action="store_true", help="measure host<->GPU copy bandwidth first")
    parser.add_argument("--profile", nargs="+", help="FRAMES:VARIANT[,...]: GPU time of one step by kernel class")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny model on the CPU: checks the script, measures nothing")
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
    if args.layers is not None:
        config = dict(config, num_layers=args.layers)
    cases = parse_cases(args.frames, args.variants, args.cases, args.steps)

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    model, params = build_expert(config, device, dtype, args.rank)
    optimizer, optimizer_name = make_optimizer(params, device)
    import diffusers

    header: dict[str, Any] = {
        "device": device_name, "torch": torch.__version__, "diffusers": diffusers.__version__,
        "optimizer": optimizer_name, "rank": args.rank, "lora_parameters": sum(p.numel() for p in params),
        "date": time.strftime("%Y-%m-%d"), "text_tokens": args.text_tokens, "layers": config["num_layers"],
        "command": " ".join(sys.argv)}
    if device.type == "cuda":
        header["cudnn_sdp_enabled"] = torch.backends.cuda.cudnn_sdp_enabled()
        header["gpu_memory_gb"] = torch.cuda.get_device_properties(device).total_memory / 1e9
        header["weights_gb"] = torch.cuda.memory_allocated(device) / 1e9
    if args.probe and device.type == "cuda":
        header["copy_bandwidth"] = probe_copy_bandwidth(device)
    print(json.dumps(header), flush=True)
    if args.check:
        shape = (1, *latent_shape(args.check_frames, args.height, args.width))
        variants = sorted({v for _, v, _ in cases if v != "diffusers"}, key=list(VARIANTS).index)
        header["check"] = numerical_check(model, params, shape, args.text_tokens, config["text_dim"], device, dtype,
                                          variants or ["engine"])
        print(json.dumps({"check": header["check"]}), flush=True)
    results = []
    for frames, variant, steps in cases:
        shape = (1, *latent_shape(frames, args.height, args.width))
        tokens = tokens_of(shape)
        flops = counted_flops(tokens, config, args.text_tokens)
        try:
            result = run_case(variant, model, optimizer, shape, args.text_tokens, config["text_dim"], device, dtype,
                              steps, args.warmup)
        except Exception as error:  # noqa: BLE001 - one broken case must not cost the rest of the run
            result = {"variant": variant, "out_of_memory": False, "error": f"{type(error).__name__}: {error}"[:2000],
                      "peak_bytes": None}
        result.update(frames=frames, width=args.width, height=args.height, tokens=tokens, counted_pflop=flops / 1e15)
        if "seconds_per_sample" in result:
            result["tflops_per_second"] = flops / result["seconds_per_sample"] / 1e12
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps({"header": header, "results": results}, indent=2))
    profiles = []
    for case in args.profile or []:
        frames, _, names = case.partition(":")
        for variant in names.split(","):
            try:
                prof = profile_step(variant, model, optimizer, (1, *latent_shape(int(frames), args.height, args.width)),
                                    args.text_tokens, config["text_dim"], device, dtype)
            except Exception as error:  # noqa: BLE001
                prof = {"variant": variant, "error": f"{type(error).__name__}: {error}"[:2000]}
            prof["frames"] = int(frames)
            profiles.append(prof)
            print(json.dumps(prof), flush=True)
    header["profiles"] = profiles
    for prof in profiles:
        if "by_class" in prof:
            print(describe(f"{prof['frames']} frames {prof['variant']}", prof), flush=True)
    print(format_table(header, results), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"header": header, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
