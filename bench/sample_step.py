#!/usr/bin/env python3
"""One 81-frame 1280x720 text-to-video sample of Wan2.2-T2V-A14B, timed per denoising step, as `wanlora sample` runs it.

Random weights of the real shapes: two experts (dim 5120, 40 heads x 128, FFN 13,824, 40 blocks, text dim 4096;
bf16), the Wan2.1 VAE (float32), text embeddings of 512 tokens (random: UMT5 runs once per prompt, before the
experts load, and is not part of a step). The steps go through the engine's own `denoise` (the expert of each
step's timestep, classifier-free guidance 4.0 / 3.0 with two forwards per step, the Euler solver on the Wan2.2
schedule, 40 steps, shift 12: 26 high-noise + 14 low-noise steps), so engine changes show up here.

Engines (--engines, in one process, one after another on the same weights, noise and text):
    diffusers      diffusers' WanTransformer3DModel blocks, two forwards a step (what WanPipeline runs)
    fast           the engine's inference blocks (sample.inference_blocks: fused norm/modulation/RoPE, --attention
                   attention, inference_mode) with guidance's two passes in one batch of two (`wanlora sample`)
    fast-separate  the fast blocks with two forwards a step (what batching the guidance adds)
A full sample takes about 17 minutes on one H100, longer than one device command may run. So each engine runs one
untimed warm-up step (compilation, kernel plans, allocator growth) and then times steps at their real timesteps:
`fast` the next --timed-steps steps of each expert, the others --timed-steps high-noise steps (a step's cost does not
depend on the expert: 24.88 / 24.92 s on 2026-11-25), and projects the 40-step video:
    denoise = 26 x (mean high-noise step) + 14 x (mean low-noise step)
    video   = denoise + VAE decode (timed once, first, tiled or not)
It reports each engine's peak GPU memory of denoising, the decode's peak, the activation bytes per token and hidden
unit per sample in flight (the planner's SampleMemoryModel constant), and how far each engine's latents after the
warm-up step are from diffusers' (bf16 rounding on a GPU).

Run on a GPU machine from the repository root, after `make -C engine venv` with a CUDA build of torch:
    engine/.venv/bin/python bench/sample_step.py --timed-steps 1 --vae-tiling --engines diffusers,fast,fast-separate \
        --json bench-sample-step.json
    engine/.venv/bin/python bench/sample_step.py --tiny      # seconds on a CPU: checks the script only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from kernel_profile import describe, profile_call  # noqa: E402

from wanlora_engine.__main__ import default_allocator_settings  # noqa: E402

default_allocator_settings(os.environ)  # as the engine runs: expandable segments, before the first allocation

from wanlora_engine.encoding import decode_latents  # noqa: E402
from wanlora_engine.fast_model import ATTENTION_BACKENDS, require_kernel  # noqa: E402
from wanlora_engine.sample import ExpertPool, StepInfo, denoise, inference_blocks, initial_noise  # noqa: E402
from wanlora_engine.solvers import FlowSchedule, flow_schedule  # noqa: E402

A14B = dict(patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=16, out_channels=16,
            text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6)
TINY = dict(A14B, num_attention_heads=2, attention_head_dim=8, text_dim=32, ffn_dim=32, num_layers=2)
WAN21_VAE: dict[str, Any] = {}  # AutoencoderKLWan's defaults are the Wan2.1 VAE (base 96, 16 latent channels)
TINY_VAE = dict(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, attn_scales=[],
                temperal_downsample=[False, True, True])
OFFICIAL_H100_SECONDS = 1041.5  # Wan2.2 README: T2V-A14B, 720P, 81 frames, one H100


def build_expert(config: dict[str, Any], device: torch.device, dtype: torch.dtype, seed: int) -> Any:
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in bf16 on the device: a float32 build of 14B would need 57 GB
    try:
        with torch.device(device):
            model = WanTransformer3DModel(**config)
    finally:
        torch.set_default_dtype(previous)
    for name, param in model.named_parameters():  # as from_pretrained keeps them under bf16
        if any(p in name.split(".") for p in model._keep_in_fp32_modules):
            param.data = param.data.float()
    return model.eval().requires_grad_(False)


def forward_flops(tokens: int, config: dict[str, Any], text_tokens: int) -> float:
    """One forward of one expert: the linears of every block and self/cross-attention (2 FLOP per multiply-add)."""
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    per_token = 2 * (4 * dim * dim + 2 * dim * dim + 2 * dim * config["ffn_dim"])
    text = text_tokens * 2 * 2 * dim * dim
    attention = 4 * tokens * tokens * dim + 4 * tokens * text_tokens * dim
    return config["num_layers"] * (tokens * per_token + text + attention)


def sub_schedule(schedule: FlowSchedule, indices: list[int]) -> FlowSchedule:
    """The chosen steps of a schedule, at their own timesteps (the step sizes differ; the cost per step does not)."""
    index = torch.tensor(indices)
    return FlowSchedule(kind=schedule.kind, shift=schedule.shift,
                        sigmas=torch.cat([schedule.sigmas[index], torch.zeros(1)]),
                        timesteps=schedule.timesteps[index], num_train_timesteps=schedule.num_train_timesteps)


ENGINES = ("diffusers", "fast", "fast-separate")


def run_engine(name: str, pool: ExpertPool, schedule: FlowSchedule, split: dict[str, list[int]], args: Any,
               guidance: dict[str, float], prompt: torch.Tensor, negative: torch.Tensor, noise: torch.Tensor,
               dtype: torch.dtype, device: torch.device, flops_per_step: float) -> dict[str, Any]:
    """One engine's warm-up step and timed steps; the latents after the warm-up step (for the agreement check)."""
    cuda = device.type == "cuda"
    cfg_batch = name == "fast"
    out_of_memory = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    try:  # warm-up: the first high-noise step, untimed (compilation, kernel plans, allocator growth)
        warm = denoise(pool, sub_schedule(schedule, [0]), args.solver, args.boundary, guidance, prompt, negative,
                       noise, dtype, cfg_batch=cfg_batch)
    except out_of_memory:
        peak = torch.cuda.max_memory_allocated(device) if cuda else 0
        print(f"{name}: out of memory in the warm-up step (peak {peak / 2**30:.1f} GiB)", flush=True)
        torch.cuda.empty_cache()
        return {"engine": name, "out_of_memory": True, "peak_bytes": peak}
    warm_seconds = time.perf_counter() - started
    timed = args.timed_steps if name != "fast-separate" else 1
    indices = list(range(args.steps)) if args.full else split["high"][1: 1 + timed] + split["low"][:timed]
    if name != "fast":  # the cost of a step does not depend on the expert (2026-11-25: 24.88 / 24.92 s)
        indices = indices[:timed] if not args.full else indices
    steps: list[dict[str, Any]] = []

    def on_step(info: StepInfo) -> None:
        steps.append({"step": indices[info.index] + 1, "timestep": info.timestep, "expert": info.expert,
                      "seconds": info.seconds})
        print(f"{name:13s} step {indices[info.index] + 1:2d}/{args.steps} {info.expert:4s} t={info.timestep:6.1f}: "
              f"{info.seconds:.2f} s ({flops_per_step / info.seconds / 1e12:.0f} TFLOP/s counted)", flush=True)

    denoise(pool, sub_schedule(schedule, indices), args.solver, args.boundary, guidance, prompt, negative, noise,
            dtype, on_step, cfg_batch=cfg_batch)
    peak = torch.cuda.max_memory_allocated(device) if cuda else None
    profile = None
    if args.profile:  # the first timed step again, under the profiler: kernels' time against the step's wall time
        again = sub_schedule(schedule, indices[:1])
        profile = profile_call(lambda: denoise(pool, again, args.solver, args.boundary, guidance, prompt, negative,
                                               noise, dtype, cfg_batch=cfg_batch), device)
        profile["step"] = indices[0] + 1
        print(describe(f"{name} step {indices[0] + 1}", profile), flush=True)
    per_step = sum(s["seconds"] for s in steps) / len(steps)
    high = [s["seconds"] for s in steps if s["expert"] == "high"]
    low = [s["seconds"] for s in steps if s["expert"] == "low"]
    mean_high = sum(high) / len(high) if high else per_step
    mean_low = sum(low) / len(low) if low else per_step
    denoise_seconds = (sum(s["seconds"] for s in steps) if args.full else
                       len(split["high"]) * mean_high + len(split["low"]) * mean_low)
    return {"engine": name, "cfg_batch": cfg_batch, "warmup_seconds": warm_seconds, "steps": steps,
            "seconds_per_step_high": mean_high, "seconds_per_step_low": mean_low, "denoise_seconds": denoise_seconds,
            "tflops_counted": flops_per_step / per_step / 1e12, "denoise_peak_bytes": peak, "warm_latents": warm,
            **({"profile": profile} if profile else {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--shift", type=float, default=12.0)
    parser.add_argument("--boundary", type=float, default=0.875)
    parser.add_argument("--solver", choices=["euler", "unipc"], default="euler")
    parser.add_argument("--timed-steps", type=int, default=3, help="timed steps per expert (after one warm-up step)")
    parser.add_argument("--full", action="store_true", help="run and time all steps (about 17 min at 720p on an H100)")
    parser.add_argument("--engines", default="diffusers,fast",
                        help=f"comma-separated, run in this order in one process: {', '.join(ENGINES)} "
                             "(diffusers: diffusers' blocks, two forwards a step, one timed step; fast: the engine's "
                             "inference blocks, guidance in one batch of two; fast-separate: the fast blocks, two "
                             "forwards, one timed step)")
    parser.add_argument("--inactive-expert", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--vae-tiling", action="store_true", help="decode in tiles")
    parser.add_argument("--attention", choices=ATTENTION_BACKENDS, default="auto",
                        help="the fast engines' kernel, as `wanlora sample --attention` (fa3: bench/build_fa3.sh)")
    parser.add_argument("--no-decode", action="store_true", help="skip the VAE decode")
    parser.add_argument("--text-tokens", type=int, default=512)
    parser.add_argument("--profile", action="store_true",
                        help="run each engine's first timed step once more under torch.profiler: its kernels' time "
                             "by class (attention, GEMM, elementwise, copies) against the step's wall time")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny model on the CPU: checks the script, measures nothing")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not engines or any(e not in ENGINES for e in engines) or len(set(engines)) != len(engines):
        parser.error(f"--engines {args.engines!r}: name each of {', '.join(ENGINES)} at most once")

    if args.tiny:
        config, vae_config, device, dtype = TINY, TINY_VAE, torch.device("cpu"), torch.float32
        args.width, args.height, args.frames, args.text_tokens, args.steps = 64, 48, 5, 16, 6
        args.timed_steps = 1
    else:
        if not torch.cuda.is_available():
            print("no CUDA GPU: run with --tiny to check the script on a CPU", file=sys.stderr)
            return 2
        config, vae_config, device, dtype = A14B, WAN21_VAE, torch.device("cuda"), torch.bfloat16
    cuda = device.type == "cuda"
    require_kernel(args.attention, device, "--attention")  # before minutes of building the weights
    import diffusers
    from diffusers import AutoencoderKLWan

    device_name = torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu"
    latent = (1, 16, 1 + (args.frames - 1) // 4, args.height // 8, args.width // 8)
    tokens = latent[2] * (latent[3] // 2) * (latent[4] // 2)
    dim = config["num_attention_heads"] * config["attention_head_dim"]

    started = time.perf_counter()
    # With swapping, the second expert is built in host memory (two 28.6 GB experts need not fit the card).
    experts = {"high": build_expert(config, device, dtype, 0),
               "low": build_expert(config, device if args.inactive_expert == "gpu" else torch.device("cpu"), dtype, 1)}
    pool = ExpertPool(experts, device, offload=args.inactive_expert == "cpu")
    vae = AutoencoderKLWan(**vae_config).to(device).eval().requires_grad_(False)
    expert_bytes = sum(p.numel() * p.element_size() for p in experts["high"].parameters())
    vae_bytes = sum(p.numel() * p.element_size() for p in vae.parameters())
    if args.vae_tiling:
        vae.enable_tiling()
    build_seconds = time.perf_counter() - started
    weights_bytes = torch.cuda.memory_allocated(device) if cuda else None

    generator = torch.Generator().manual_seed(0)
    prompt = torch.randn(1, args.text_tokens, config["text_dim"], generator=generator)
    negative = torch.randn(1, args.text_tokens, config["text_dim"], generator=generator)
    guidance = {"high": 4.0, "low": 3.0}
    schedule = flow_schedule("wan", args.steps, args.shift)
    split = schedule.steps_per_expert(args.boundary)
    noise = initial_noise(0, latent)
    flops_per_step = 2 * forward_flops(tokens, config, args.text_tokens)

    header = {"device": device_name, "torch": torch.__version__, "diffusers": diffusers.__version__,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "frames": args.frames, "width": args.width,
              "height": args.height, "tokens": tokens, "steps": args.steps, "steps_high": len(split["high"]),
              "steps_low": len(split["low"]), "solver": args.solver, "inactive_expert": args.inactive_expert,
              "vae_tiling": args.vae_tiling, "attention": args.attention, "engines": engines,
              "build_seconds": build_seconds, "weights_bytes": weights_bytes, "expert_bytes": expert_bytes,
              "vae_bytes": vae_bytes}
    print(json.dumps(header), flush=True)

    # The decode first (its cost does not depend on the latents' values): a run cut short by its time limit
    # still has it. Both experts stay on the GPU, as in `wanlora sample` with them resident.
    decode_seconds = decode_peak = None
    if not args.no_decode:
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        decode_started = time.perf_counter()
        frames = decode_latents(vae, noise.to(device), device)  # the decode's cost does not depend on the values
        if cuda:
            torch.cuda.synchronize(device)
        decode_seconds = time.perf_counter() - decode_started
        decode_peak = torch.cuda.max_memory_allocated(device) if cuda else None
        assert frames.shape == (args.frames, args.height, args.width, 3)

    results: dict[str, dict[str, Any]] = {}
    warm: dict[str, torch.Tensor] = {}
    fast_enabled = False
    for name in engines:
        if name.startswith("fast") and not fast_enabled:
            for model in experts.values():
                inference_blocks(model, device, args.attention)
            fast_enabled = True
        results[name] = run_engine(name, pool, schedule, split, args, guidance, prompt, negative, noise, dtype,
                                   device, flops_per_step)
        if "warm_latents" in results[name]:
            warm[name] = results[name].pop("warm_latents").cpu()
        if args.json:  # what is measured so far, should a later engine not finish
            args.json.write_text(json.dumps({"header": header, "engines": results, "partial": True,
                                             "decode_seconds": decode_seconds, "decode_peak_bytes": decode_peak},
                                            indent=2))
    # agreement of the first step's latents (bf16 on a GPU: rounding only)
    if "diffusers" in warm:
        reference = warm["diffusers"].float()
        for name, latents in warm.items():
            if name != "diffusers":
                results[name]["first_step_max_abs_difference"] = float((latents.float() - reference).abs().max())
                results[name]["first_step_reference_max_abs"] = float(reference.abs().max())

    resident = vae_bytes + expert_bytes * (2 if args.inactive_expert == "gpu" else 1)
    gb = lambda b: "-" if b is None else f"{b / 2**30:.1f} GiB"  # noqa: E731
    print(f"\n{'engine':14s} {'s/step high':>11s} {'s/step low':>10s} {'TFLOP/s':>8s} {'denoise s':>10s} "
          f"{'decode s':>8s} {'video s':>8s} {'peak denoise':>12s}", flush=True)
    for name, r in results.items():
        if r.get("out_of_memory"):
            print(f"{name:14s} out of memory (peak {gb(r['peak_bytes'])})", flush=True)
            continue
        r["video_seconds"] = r["denoise_seconds"] + (decode_seconds or 0.0)
        peak = r["denoise_peak_bytes"]
        # bytes per token and hidden unit per sample in flight (two with guidance in one batch)
        r["activation_bytes_per_token_dim"] = (None if peak is None else
                                               (peak - resident) / (tokens * dim * (2 if r["cfg_batch"] else 1)))
        print(f"{name:14s} {r['seconds_per_step_high']:11.2f} {r['seconds_per_step_low']:10.2f} "
              f"{r['tflops_counted']:8.0f} {r['denoise_seconds']:10.1f} "
              f"{'-' if decode_seconds is None else f'{decode_seconds:.1f}':>8s} {r['video_seconds']:8.1f} "
              f"{gb(peak):>12s}", flush=True)
    print(f"VAE decode: {'-' if decode_seconds is None else f'{decode_seconds:.1f} s'}, peak {gb(decode_peak)}; "
          f"official Wan2.2 on one H100: {OFFICIAL_H100_SECONDS} s; "
          f"{'measured' if args.full else 'projected'} {args.steps}-step videos", flush=True)
    for name, r in results.items():
        if "first_step_max_abs_difference" in r:
            print(f"{name} vs diffusers after step 1: max |difference| {r['first_step_max_abs_difference']:.3g} "
                  f"(latents up to {r['first_step_reference_max_abs']:.3g})", flush=True)
    summary = {"decode_seconds": decode_seconds, "decode_peak_bytes": decode_peak, "projected": not args.full,
               "official_h100_seconds": OFFICIAL_H100_SECONDS, "forward_pflop": flops_per_step / 2e15}
    if args.json:
        args.json.write_text(json.dumps({"header": header, "engines": results, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
