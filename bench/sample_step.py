#!/usr/bin/env python3
"""One 81-frame 1280x720 text-to-video sample of Wan2.2-T2V-A14B, timed per denoising step, as `wanlora sample` runs it.

Random weights of the real shapes: two experts (dim 5120, 40 heads x 128, FFN 13,824, 40 blocks, text dim 4096;
bf16), the Wan2.1 VAE (float32), text embeddings of 512 tokens (random: UMT5 runs once per prompt, before the
experts load, and is not part of a step). The steps go through the engine's own `denoise` (the expert of each
step's timestep, classifier-free guidance 4.0 / 3.0 with two forwards per step, the Euler solver on the Wan2.2
schedule, 40 steps, shift 12: 26 high-noise + 14 low-noise steps), so engine changes show up here.

A full sample takes about 17 minutes on one H100 (the official Wan2.2 repository reports 1,041.5 s for 720P,
81 frames), longer than one device command may run. So the script times the first --timed-steps steps of each
expert (after one untimed warm-up step) at their real timesteps and projects the 40-step video:
    denoise = 26 x (mean high-noise step) + 14 x (mean low-noise step) [+ expert swaps with --inactive-expert cpu]
    video   = denoise + VAE decode (timed, tiled or not)
--full runs all 40 steps instead. It also reports the peak GPU memory of denoising and of decoding, and the
activation bytes per token and hidden unit (peak minus weights, over tokens x 5120) that the planner's
sampling memory model (Sources/Planner/SampleMemory.swift, 24 B estimated) should use.

Run on a GPU machine from the repository root, after `make -C engine venv` with a CUDA build of torch:
    engine/.venv/bin/python bench/sample_step.py --json bench-sample-step.json
    engine/.venv/bin/python bench/sample_step.py --inactive-expert cpu --vae-tiling   # the swapping placement
    engine/.venv/bin/python bench/sample_step.py --tiny      # seconds on a CPU: checks the script only
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from wanlora_engine.encoding import decode_latents  # noqa: E402
from wanlora_engine.sample import ExpertPool, StepInfo, denoise, initial_noise  # noqa: E402
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
    parser.add_argument("--inactive-expert", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--vae-tiling", action="store_true", help="decode in tiles")
    parser.add_argument("--no-decode", action="store_true", help="skip the VAE decode")
    parser.add_argument("--text-tokens", type=int, default=512)
    parser.add_argument("--tiny", action="store_true",
                        help="tiny model on the CPU: checks the script, measures nothing")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

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

    header = {"device": device_name, "torch": torch.__version__, "diffusers": diffusers.__version__,
              "date": time.strftime("%Y-%m-%d"), "frames": args.frames, "width": args.width, "height": args.height,
              "tokens": tokens, "steps": args.steps, "steps_high": len(split["high"]), "steps_low": len(split["low"]),
              "solver": args.solver, "inactive_expert": args.inactive_expert, "vae_tiling": args.vae_tiling,
              "build_seconds": build_seconds, "weights_bytes": weights_bytes, "expert_bytes": expert_bytes,
              "vae_bytes": vae_bytes}
    print(json.dumps(header), flush=True)

    out_of_memory = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    try:
        # Warm-up: one high-noise step, untimed (kernel selection, allocator growth).
        denoise(pool, sub_schedule(schedule, [0]), args.solver, args.boundary, guidance, prompt, negative, noise, dtype)
    except out_of_memory:
        peak = torch.cuda.max_memory_allocated(device) if cuda else 0
        print(f"out of memory in the first step (peak {peak / 2**30:.1f} GiB, {device_name}); "
              "try --inactive-expert cpu", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"header": header, "out_of_memory": True, "peak_bytes": peak}, indent=2))
        return 1
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    swaps_before, swap_seconds_before = pool.swaps, pool.swap_seconds

    indices = list(range(args.steps)) if args.full else \
        split["high"][: args.timed_steps] + split["low"][: args.timed_steps]
    steps: list[dict[str, Any]] = []

    def on_step(info: StepInfo) -> None:
        steps.append({"step": indices[info.index] + 1, "timestep": info.timestep, "expert": info.expert,
                      "seconds": info.seconds})
        print(f"step {indices[info.index] + 1:2d}/{args.steps} {info.expert:4s} t={info.timestep:6.1f}: "
              f"{info.seconds:.2f} s ({2 * forward_flops(tokens, config, args.text_tokens) / info.seconds / 1e12:.0f} "
              "TFLOP/s counted)", flush=True)

    run_schedule = schedule if args.full else sub_schedule(schedule, indices)
    latents = denoise(pool, run_schedule, args.solver, args.boundary, guidance, prompt, negative, noise, dtype, on_step)
    denoise_peak = torch.cuda.max_memory_allocated(device) if cuda else None
    swaps = pool.swaps - swaps_before
    swap_seconds = pool.swap_seconds - swap_seconds_before

    def mean(expert: str) -> float | None:
        values = [s["seconds"] for s in steps if s["expert"] == expert]
        return sum(values) / len(values) if values else None

    high, low = mean("high"), mean("low")
    if args.full:
        denoise_seconds = sum(s["seconds"] for s in steps)
    else:
        per_swap = swap_seconds / swaps if swaps else 0.0
        # one swap high -> low per video, one low -> high before the next video
        denoise_seconds = len(split["high"]) * (high or 0) + len(split["low"]) * (low or 0) + \
            (2 * per_swap if args.inactive_expert == "cpu" else 0.0)

    decode_seconds = decode_peak = None
    if not args.no_decode:
        pool.park()
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        decode_started = time.perf_counter()
        frames = decode_latents(vae, latents, device)
        if cuda:
            torch.cuda.synchronize(device)
        decode_seconds = time.perf_counter() - decode_started
        decode_peak = torch.cuda.max_memory_allocated(device) if cuda else None
        assert frames.shape == (args.frames, args.height, args.width, 3)

    activation_bytes = None
    if cuda and denoise_peak is not None:
        # what a step holds besides activations: the VAE and one expert (both when they stay on the GPU)
        resident = vae_bytes + expert_bytes * (2 if args.inactive_expert == "gpu" else 1)
        activation_bytes = (denoise_peak - resident) / (tokens * dim)
    video_seconds = denoise_seconds + (decode_seconds or 0.0)
    summary = {
        "seconds_per_step_high": high, "seconds_per_step_low": low, "swaps": swaps, "swap_seconds": swap_seconds,
        "denoise_seconds": denoise_seconds, "decode_seconds": decode_seconds, "video_seconds": video_seconds,
        "projected": not args.full, "denoise_peak_bytes": denoise_peak, "decode_peak_bytes": decode_peak,
        "activation_bytes_per_token_dim": activation_bytes, "official_h100_seconds": OFFICIAL_H100_SECONDS,
        "forward_pflop": forward_flops(tokens, config, args.text_tokens) / 1e15,
    }
    gb = lambda b: "-" if b is None else f"{b / 2**30:.1f} GiB"  # noqa: E731
    print(f"{'measured' if args.full else 'projected'} {args.steps}-step video: denoise {denoise_seconds:.1f} s "
          f"({len(split['high'])} high x {high or 0:.2f} s + {len(split['low'])} low x {low or 0:.2f} s"
          f"{f', {swaps} swaps {swap_seconds:.1f} s' if swaps else ''}), decode "
          f"{'-' if decode_seconds is None else f'{decode_seconds:.1f} s'}, total {video_seconds:.1f} s "
          f"(official Wan2.2 on one H100: {OFFICIAL_H100_SECONDS} s)", flush=True)
    print(f"peak GPU memory: denoise {gb(denoise_peak)}, decode {gb(decode_peak)}; activations "
          f"{'-' if activation_bytes is None else f'{activation_bytes:.1f}'} B per token per hidden unit "
          "(planner: 24)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"header": header, "steps": steps, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
