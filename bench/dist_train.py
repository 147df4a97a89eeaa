#!/usr/bin/env python3
"""LoRA training of one Wan2.2-T2V-A14B expert on 2 GPUs (FSDP, Ulysses) against 1 GPU, through the engine.

With --wanlora BINARY every case starts through `wanlora train --config FILE --gpus N --ulysses U
--[no-]fsdp --python PYTHON` (the Swift CLI, which runs torchrun); without it the script runs the command
that `wanlora train` builds: `python -m wanlora_engine train --config FILE` on one GPU, and
`python -m torch.distributed.run --nnodes 1 --nproc-per-node 2 --standalone -m wanlora_engine train
--config FILE [--ulysses 2] [--fsdp]` on two. This process's environment is passed through unchanged
(only CUDA_VISIBLE_DEVICES=0 is added for the one-GPU baseline).

    (a) fsdp      2 GPUs, frozen expert sharded (FSDP2), data parallel: 2 samples per step, 1 per GPU
    (b) ulysses   2 GPUs, Ulysses U=2: each sample's tokens split over both GPUs, 1 sample per step
    (c) one_gpu   the baseline on GPU 0, 1 sample per step
    (d) fsdp_ulysses  both: Ulysses U=2 with the frozen expert sharded over the 2 GPUs, 1 sample per step
Model: random weights of the real A14B expert shapes (dim 5120, 40 heads x 128, FFN 13,824, 40 blocks, text
4096) written once in the diffusers layout; LoRA r16 on to_q/to_k/to_v/to_out.0 (dropout 0), bf16 weights
and autocast, gradient checkpointing, 8-bit AdamW, text 512 tokens, the high-noise expert.

One process per case trains 3 optimizer steps whose samples are arranged (through the seeded sampler's
order) as: step 1 an 81-frame clip (warm-up: compilation, cuDNN plans, pinned host buffers), step 2 a
49-frame clip (timed), step 3 an 81-frame clip (timed). 1280x720: 46,800 and 75,600 tokens. Time = the step
event's seconds_per_step; peak = torch.cuda.max_memory_allocated of each rank during that step (the event's
window peak). Scaling efficiency = (2-GPU samples/s) / (2 x 1-GPU samples/s). A case that runs out of memory
reports it (the step's error event).

Tiny model (correctness on GPUs): 20 steps of a tiny random Wan expert on 2 GPUs (FSDP, 1 sample per GPU)
and on 1 GPU (grad_accum 2, the same samples per step), same seed and data, then the 2-GPU run's step-10
checkpoint resumed on 1 GPU to step 20; the loss curves are compared (bf16 autocast: tolerance 2e-2).

    python bench/dist_train.py --work /tmp/wanlora-bench --json results.json      # on a 2-GPU machine
    python bench/dist_train.py --check --work /tmp/check                          # CPU, gloo, tiny shapes
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

ENGINE = Path(__file__).resolve().parents[1] / "engine"
DEMO_CONFIG = ENGINE / "tests" / "fixtures" / "config.resolved.demo.json"
sys.path.insert(0, str(ENGINE))

from wanlora_engine.encoding import latent_shape  # noqa: E402

A14B = dict(patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=16, out_channels=16,
            text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6)
TINY = dict(A14B, num_attention_heads=2, attention_head_dim=8, text_dim=32, ffn_dim=32, num_layers=2)
SEED = 42


# ---------------------------------------------------------------------------------------------------
# Inputs: a random expert in the diffusers layout, a cache whose sampler order gives the wanted shapes


def write_model(folder: Path, spec: dict[str, Any], device: str) -> Path:
    from diffusers import WanTransformer3DModel

    if (folder / "transformer" / "config.json").is_file():
        return folder
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = WanTransformer3DModel(**spec)
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(str(folder / "transformer"), safe_serialization=True, max_shard_size="10GB")
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return folder


def sampler_order(items: int) -> list[int]:
    from wanlora_engine.data import EpochSampler

    return EpochSampler(torch.ones(items, dtype=torch.float64), SEED).take(0, items)


def write_cache(folder: Path, shapes_by_position: list[tuple[int, ...]], text_dim: int, text_length: int) -> Path:
    """A cache in the engine's format (docs/engine-contract.md §4.2) whose sampler order yields the shapes."""
    from safetensors.torch import save_file

    items = len(shapes_by_position)
    order = sampler_order(items)
    shape_of_item = {order[position]: shape for position, shape in enumerate(shapes_by_position)}
    generator = torch.Generator().manual_seed(1)
    split = folder / "train"
    split.mkdir(parents=True, exist_ok=True)
    latents, texts, index = {}, {}, []
    for item in range(items):
        key = f"item{item}"
        latents[key] = torch.randn(shape_of_item[item], generator=generator).to(torch.bfloat16)
        texts[key] = (0.1 * torch.randn(text_length, text_dim, generator=generator)).to(torch.bfloat16)
        index.append({"id": key, "line": item + 2, "path": f"{key}.mp4", "media_type": "video", "category": "bench",
                      "weight": 1.0, "shard": 0, "latent_shape": list(shape_of_item[item]),
                      "caption_tokens": text_length, "text_tokens": text_length, "truncated": False})
    save_file(latents, str(split / "latents-00000.safetensors"))
    save_file(texts, str(split / "text-00000.safetensors"))
    (split / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in index))
    save_file({"embedding": torch.zeros(1, text_dim, dtype=torch.bfloat16)}, str(folder / "empty_prompt.safetensors"))
    # the settings `wanlora train` checks against the run's config (frames: the longest clip of the config)
    from wanlora_engine.cache import CACHE_SCHEMA_VERSION

    frames = 1 + 4 * (max(shape[1] for shape in shapes_by_position) - 1)
    height, width = 8 * shapes_by_position[0][2], 8 * shapes_by_position[0][3]
    settings = {"width": width, "height": height, "frames": frames, "fps": 16, "text_length": text_length,
                "model_fingerprint": "bench-random-latents"}
    (folder / "cache.json").write_text(json.dumps({"schema_version": CACHE_SCHEMA_VERSION, "settings": settings,
                                                   "model_path": None}, indent=2))
    return folder


def engine_config(path: Path, model: Path, cache: Path, *, frames: int, width: int, height: int, text_length: int,
                  steps: int, grad_accum: int, device: str, lr: float, checkpoint_every: int) -> Path:
    """The run's configuration: config.resolved.json for the engine, or run.toml for `wanlora train` (--wanlora)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "train.csv").write_text("path,caption\n")
    if WANLORA:
        return wanlora_toml(path.parent / "run.toml", model, cache, frames=frames, width=width, height=height,
                            text_length=text_length, steps=steps, grad_accum=grad_accum, device=device, lr=lr,
                            checkpoint_every=checkpoint_every)
    # Every key from the demo's resolved config (written by Swift from the key registry), then this run's values.
    config = json.loads(DEMO_CONFIG.read_text())
    overrides = {
        "run": {"name": path.parent.name},
        "model": {"checkpoint": str(model), "layout": "diffusers", "weights_dtype": "bf16", "boundary": 0.875,
                  "num_train_timesteps": 1000},
        "data": {"train_manifest": "train.csv", "val_manifest": "", "cache_dir": str(cache), "weight_column": "",
                 "category_column": "", "source": "cache"},
        "cache": {"device": "cpu", "shard_items": 256, "text_batch_size": 8, "vae_tiling": False,
                  "free_disk_margin_gib": 0},
        "lora": {"rank": 16, "alpha": 16, "dropout": 0.0, "targets": ["to_q", "to_k", "to_v", "to_out.0"]},
        "hardware": {"inactive_expert": "resident"},
        "training": {"frames": frames, "resolution": f"{width}x{height}", "fps": 16, "text_length": text_length,
                     "device": device, "epochs": 1, "max_steps": steps, "micro_batch": 1,
                     "grad_accumulation": grad_accum, "mixed_precision": "bf16", "gradient_checkpointing": True,
                     "cfg_dropout": 0.1, "seed": SEED, "expert": "high", "expert_grouping": "step",
                     "loss_weighting": "none", "class_balanced_beta": 0.999, "focal_gamma": 2.0, "overfit_samples": 0,
                     "optimizer": "adamw8bit", "learning_rate": lr, "adam_betas": [0.9, 0.999], "adam_eps": 1e-8,
                     "weight_decay": 0.01, "warmup_steps": 2, "schedule": "constant", "max_grad_norm": 1.0,
                     "timestep_sampling": "uniform", "timestep_shift": 5.0, "timestep_logit_mean": 0.0,
                     "timestep_logit_std": 1.0, "logging_steps": 1, "tensorboard": False, "eval_steps": 0,
                     "save_steps": checkpoint_every, "keep_checkpoints": 2, "blocks": "fast", "attention": "auto",
                     "keep_attention": True, "activation_offload": "auto", "compile": device == "cuda"},
        "eval": {"val_loss_timesteps": [900], "val_loss_samples": 1, "seed": 1234},
        "derived": {"run_dir": "run", "experts": ["high"]},
    }
    for section, values in overrides.items():
        config[section].update(values)
    path.write_text(json.dumps(config, indent=1))
    return path


def wanlora_toml(path: Path, model: Path, cache: Path, *, frames: int, width: int, height: int, text_length: int,
                 steps: int, grad_accum: int, device: str, lr: float, checkpoint_every: int) -> Path:
    """The same run as `engine_config` in wanlora's TOML (docs/config.md); `wanlora train` resolves it."""
    gpu = "cpu"
    if device == "cuda":
        gpu = "H200" if "H200" in torch.cuda.get_device_name(0) else "H100"
    text = f"""# bench/dist_train.py: one A14B expert (random weights), LoRA r16, through `wanlora train`
[run]
name = "run"
runs_dir = "runs"

[model]
architecture = "Wan2.2-T2V-A14B"
checkpoint = {json.dumps(str(model))}
layout = "diffusers"
boundary = 0.875

[data]
train_manifest = "train.csv"
val_manifest = ""
cache_dir = {json.dumps(str(cache))}
weight_column = ""
category_column = ""

[lora]
rank = 16
alpha = 16.0
dropout = 0.0
targets = ["to_q", "to_k", "to_v", "to_out.0"]

[training]
frames = {frames}
resolution = "{width}x{height}"
text_length = {text_length}
micro_batch = 1
grad_accumulation = {grad_accum}
max_steps = {steps}
learning_rate = {lr}
warmup_steps = 2
schedule = "constant"
optimizer = "adamw8bit"
mixed_precision = "bf16"
gradient_checkpointing = true
blocks = "fast"
compile = {"true" if device == "cuda" else "false"}
cfg_dropout = 0.1
seed = {SEED}
device = "{device}"
logging_steps = 1
save_steps = {checkpoint_every}
eval_steps = 0
expert = "high"
expert_grouping = "step"

[hardware]
{f'gpu = "{gpu}"' if gpu != "cpu" else ""}
inactive_expert = "resident"
t5 = "cached"
vae = "cached"
"""
    path.write_text(text)
    return path


def run_dir(folder: Path) -> Path:
    """Where the run writes events and checkpoints: `run` (engine config) or `runs/run` (wanlora's run.toml)."""
    return folder / ("runs/run" if WANLORA else "run")


# ---------------------------------------------------------------------------------------------------
# Launch (the command wanlora's Launcher builds) and events


WANLORA: list[str] = []  # set by --wanlora: launch through the Swift CLI instead


def launch_command(config: Path, gpus: int, ulysses: int = 1, fsdp: bool = False, resume: bool = False) -> list[str]:
    if WANLORA:
        return WANLORA + ["train", "--config", str(config), "--gpus", str(gpus), "--ulysses", str(ulysses),
                          "--fsdp" if fsdp else "--no-fsdp", "--engine-python", sys.executable,
                          "--progress", "plain"] + (["--resume"] if resume else [])
    engine = ["-m", "wanlora_engine", "train", "--config", str(config)]
    if ulysses > 1:
        engine += ["--ulysses", str(ulysses)]
    if fsdp and gpus > 1:
        engine.append("--fsdp")
    if resume:
        engine.append("--resume")
    if gpus == 1:
        return [sys.executable] + engine
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(gpus),
            "--standalone"] + engine


def run_case(name: str, command: list[str], cwd: Path, logs: Path, timeout: float,
             env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ)  # passed through, as wanlora does
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ENGINE), env.get("PYTHONPATH")]))
    env.update(env_extra or {})
    started = time.monotonic()
    with open(logs / f"{name}.log", "w") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        try:
            code = subprocess.run(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = None
    events_file = run_dir(cwd) / "events.jsonl"
    from wanlora_engine.events import read_events

    events = read_events(events_file) if events_file.is_file() else []
    return {"name": name, "command": " ".join(command), "exit_code": code, "wall_seconds": time.monotonic() - started,
            "events": events}


def steps_of(result: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {e["step"]: e for e in result["events"] if e["event"] == "step"}


def error_of(result: dict[str, Any]) -> str | None:
    errors = [e for e in result["events"] if e["event"] == "error"]
    if errors:
        return errors[0]["problem"][:160]
    return None if result["exit_code"] == 0 else f"exit {result['exit_code']}"


# ---------------------------------------------------------------------------------------------------


def big_cases(work: Path, device: str, gpus_available: int, deadline: float, logs: Path, shape: dict[str, int],
              spec: dict[str, Any], save: Any, timeouts: dict[str, float], only: list[str]) -> list[dict[str, Any]]:
    model = work / "a14b"
    w, h, text = shape["width"], shape["height"], shape["text_length"]
    short, long = latent_shape(shape["short_frames"], h, w), latent_shape(shape["long_frames"], h, w)
    tokens = {short: short[1] * (short[2] // 2) * (short[3] // 2), long: long[1] * (long[2] // 2) * (long[3] // 2)}
    cases = [("one_gpu", 1, 1, False), ("fsdp", 2, 1, True), ("ulysses", 2, 2, False), ("fsdp_ulysses", 2, 2, True)]
    results = []
    for name, gpus, ulysses, fsdp in cases:
        if only and name not in only:
            continue
        if gpus > gpus_available:
            results.append({"name": name, "skipped": f"needs {gpus} GPUs"})
            continue
        if time.monotonic() > deadline:
            results.append({"name": name, "skipped": "out of time"})
            continue
        per_step = 2 if (fsdp and ulysses == 1) else 1
        # With the fast blocks one 80 GB H100 trains 81 frames (issue 7; diffusers' blocks do not, SPEC §7).
        # Step 1 is a warm-up at the long shape: it compiles the fused kernels (dynamic shapes: once for
        # every length) and grows the pinned host buffers of the activation offload to their largest.
        positions = [long] * per_step + [short] * per_step + [long] * per_step + [short] * 2
        folder = work / name
        shutil.rmtree(folder, ignore_errors=True)
        cache = write_cache(folder / "cache", positions, spec["text_dim"], text)
        config = engine_config(folder / "config.resolved.json", model, cache, frames=shape["long_frames"], width=w,
                               height=h, text_length=text, steps=3, grad_accum=1, device=device,
                               lr=1e-4, checkpoint_every=0)
        extra = {"CUDA_VISIBLE_DEVICES": "0"} if gpus == 1 and device == "cuda" else {}
        result = run_case(name, launch_command(config, gpus, ulysses, fsdp), folder, logs,
                          timeout=timeouts.get(name, 600), env_extra=extra)
        steps = steps_of(result)
        plan = next((e for e in result["events"] if e["event"] == "train_plan"), {})
        warmup = steps.get(1)
        summary = {"name": name, "gpus": gpus, "ulysses": ulysses, "fsdp": fsdp, "samples_per_step": per_step,
                   "optimizer": plan.get("optimizer"), "blocks": (plan.get("blocks") or {}).get("implementation"),
                   "exit_code": result["exit_code"], "error": error_of(result),
                   "command": result["command"], "wall_seconds": round(result["wall_seconds"], 1),
                   "warmup_seconds": warmup["seconds_per_step"] if warmup else None}
        for label, step, shape_ in (("short", 2, short), ("long", 3, long)):
            event = steps.get(step)
            if event is None:
                summary[label] = {"frames": shape[f"{label}_frames"], "tokens": tokens[shape_], "failed": True}
                continue
            seconds = event["seconds_per_step"]
            # the step's own peak where the engine reports it (after 2026-11-25's runs), else the run's so far
            peaks = (event.get("gpu_memory_window_peak_bytes_by_rank") or event.get("gpu_memory_peak_bytes_by_rank")
                     or [event["gpu_memory_peak_bytes"]])
            summary[label] = {"frames": shape[f"{label}_frames"], "tokens": tokens[shape_],
                              "seconds_per_step": seconds, "seconds_per_sample": seconds / per_step,
                              "tokens_per_second": tokens[shape_] * per_step / seconds,
                              "peak_gib_by_gpu": [None if p is None else p / 2**30 for p in peaks],
                              "loss": event["loss"]}
        results.append(summary)
        save(results)
    return results


def tiny_inputs(work: Path) -> tuple[Path, Path]:
    model = write_model(work / "tiny-model", TINY, "cpu")
    cache = write_cache(work / "tiny-cache", [latent_shape(5, 48, 64)] * 16, TINY["text_dim"], 32)
    return model, cache


def tiny_cases(work: Path, device: str, logs: Path, model: Path, cache: Path) -> dict[str, Any]:
    """20 steps on 2 GPUs vs 1 GPU (same samples per step), then the 2-GPU step-10 checkpoint resumed on 1 GPU."""
    common = dict(frames=5, width=64, height=48, text_length=32, steps=20, device=device, lr=1e-3, checkpoint_every=10)
    runs = {}
    plans = {"two_gpus": (2, 1, True, 1), "one_gpu": (1, 1, False, 2)}
    for name, (gpus, ulysses, fsdp, accum) in plans.items():
        folder = work / f"tiny-{name}"
        shutil.rmtree(folder, ignore_errors=True)
        config = engine_config(folder / "config.resolved.json", model, cache, grad_accum=accum, **common)
        extra = {"CUDA_VISIBLE_DEVICES": "0"} if gpus == 1 and device == "cuda" else {}
        runs[name] = run_case(f"tiny-{name}", launch_command(config, gpus, ulysses, fsdp), folder, logs, 120, extra)
    resumed = work / "tiny-resumed"
    shutil.rmtree(resumed, ignore_errors=True)
    config = engine_config(resumed / "config.resolved.json", model, cache, grad_accum=1, **common)
    source = run_dir(work / "tiny-two_gpus") / "checkpoints" / "step-00000010"
    if source.is_dir():
        shutil.copytree(source, run_dir(resumed) / "checkpoints" / "step-00000010")
    extra = {"CUDA_VISIBLE_DEVICES": "0"} if device == "cuda" else {}
    runs["resumed"] = run_case("tiny-resumed", launch_command(config, 1, resume=True), resumed, logs, 120, extra)

    def losses(name: str) -> list[float]:
        return [e["loss"] for _, e in sorted(steps_of(runs[name]).items())]

    two, one, again = losses("two_gpus"), losses("one_gpu"), losses("resumed")

    def worst(a: list[float], b: list[float]) -> float | None:
        return max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b)) if a and len(a) == len(b) else None

    adjusted = [e for e in runs["resumed"]["events"] if e["event"] == "warning" and e["code"] == "grad_accum_adjusted"]
    return {"losses_two_gpus": two, "losses_one_gpu": one, "losses_resumed_steps_11_20": again,
            "max_relative_difference_two_vs_one": worst(two, one),
            "max_relative_difference_resumed_vs_two": worst(again, two[10:]),
            "resume_grad_accum_adjusted": bool(adjusted),
            "exit_codes": {k: v["exit_code"] for k, v in runs.items()},
            "errors": {k: error_of(v) for k, v in runs.items()}}


def table(results: list[dict[str, Any]], device_name: str) -> str:
    base = {}
    for r in results:
        if r["name"] == "one_gpu":
            base = r
    lines = [f"device: {device_name}",
             "case      frames  tokens  s/step  s/sample  tokens/s  peak GiB per GPU   scaling eff.  note"]
    for r in results:
        if "skipped" in r:
            lines.append(f"{r['name']:9s} skipped: {r['skipped']}")
            continue
        for label in ("short", "long"):
            m = r.get(label, {})
            if not m or m.get("failed"):
                why = m.get("not_run") or f"failed: {r['error']}"
                lines.append(f"{r['name']:9s} {m.get('frames', '?'):>6}  {m.get('tokens', 0):>6}  {why}")
                continue
            efficiency = ""
            b = base.get(label, {})
            if r["gpus"] == 2 and b and not b.get("failed"):
                efficiency = f"{(1 / m['seconds_per_sample']) / (2 / b['seconds_per_sample']):.2f}"
            peaks = " / ".join(f"{p:.1f}" for p in m["peak_gib_by_gpu"] if p is not None) or "-"
            note = ""
            if r["gpus"] == 2 and b.get("seconds_per_sample"):
                note = f"{m['seconds_per_sample'] / b['seconds_per_sample']:.2f} x one GPU"
            lines.append(f"{r['name']:9s} {m['frames']:>6}  {m['tokens']:>6}  {m['seconds_per_step']:6.2f}  "
                         f"{m['seconds_per_sample']:8.2f}  {m['tokens_per_second']:8.0f}  {peaks:17s}  "
                         f"{efficiency:>12s}  {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--json", type=Path, help="write all results here")
    parser.add_argument("--logs", type=Path, help="folder for each case's log (default WORK/logs)")
    parser.add_argument("--budget", type=float, default=420, help="seconds after which no new big case starts")
    parser.add_argument("--case-timeout", type=float, default=600,
                        help="seconds for a one-GPU or Ulysses case (FSDP: 1.5x)")
    parser.add_argument("--check", action="store_true", help="CPU and gloo, tiny shapes: checks this script only")
    parser.add_argument("--skip-tiny", action="store_true")
    parser.add_argument("--cases", nargs="*", default=[],
                        help="only these big cases (one_gpu, fsdp, ulysses, fsdp_ulysses)")
    parser.add_argument("--wanlora", type=Path,
                        help="the built wanlora binary: every case starts through `wanlora train`")
    args = parser.parse_args(argv)
    if args.wanlora:
        WANLORA[:] = [str(args.wanlora.resolve())]
    started = time.monotonic()
    args.work.mkdir(parents=True, exist_ok=True)
    logs = args.logs or args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if args.check:
        device, gpus, spec = "cpu", 2, TINY
        shape = {"width": 64, "height": 48, "short_frames": 5, "long_frames": 9, "text_length": 32}
        device_name = "cpu (check mode: timings mean nothing)"
    else:
        if not torch.cuda.is_available():
            print("no CUDA GPU: use --check on a CPU", file=sys.stderr)
            return 2
        device, gpus, spec = "cuda", torch.cuda.device_count(), A14B
        shape = {"width": 1280, "height": 720, "short_frames": 49, "long_frames": 81, "text_length": 512}
        device_name = f"{gpus} x {torch.cuda.get_device_name(0)}"
    header = {"device": device_name, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
              "env": {k: os.environ.get(k) for k in ("NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST",
                                                     "NVSHMEM_DISABLE_NVLS", "PYTORCH_CUDA_ALLOC_CONF")}}
    print(json.dumps(header), flush=True)

    # The tiny runs need little; they go while the 14B expert is written (disk-bound).
    tiny: dict[str, Any] = {}
    worker = None
    if not args.skip_tiny:
        tiny_model, tiny_cache = tiny_inputs(args.work)  # here: torch's global state is not for threads
        def tiny_runs() -> None:
            try:
                tiny.update(tiny_cases(args.work, device, logs, tiny_model, tiny_cache))
            except Exception as error:  # reported in the results, the big cases still run
                tiny["error"] = f"{type(error).__name__}: {error}"

        worker = threading.Thread(target=tiny_runs)
        worker.start()
    t0 = time.monotonic()
    write_model(args.work / "a14b", spec, device)
    print(f"expert written in {time.monotonic() - t0:.0f} s", flush=True)
    if worker is not None:
        worker.join()
        print("tiny:", json.dumps({k: v for k, v in tiny.items() if not k.startswith("losses")}), flush=True)
    def save(cases: list[dict[str, Any]]) -> None:
        if args.json:
            args.json.write_text(json.dumps({"header": header, "cases": cases, "tiny": tiny}, indent=1))

    save([])
    timeouts = {"one_gpu": args.case_timeout, "fsdp": args.case_timeout * 1.5, "ulysses": args.case_timeout,
                "fsdp_ulysses": args.case_timeout}
    results = big_cases(args.work, device, gpus, started + args.budget, logs, shape, spec, save, timeouts, args.cases)
    print(table(results, device_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
