#!/usr/bin/env python3
"""Weight streaming (issue 18): one LoRA step of one Wan2.2-T2V-A14B expert under GPU memory caps, ours and
musubi-tuner's, in one run.

Random weights of the real expert shape (engine_step.py's `build_expert`: diffusers WanTransformer3DModel,
bf16, LoRA r16 on to_q/to_k/to_v/to_out.0 of both attentions), 1280x720, text 512 tokens, one timestep per
sample (Wan2.2's per-token time embedding is that row repeated: fast_model.py), gradient checkpointing,
AdamW 8-bit when bitsandbytes imports (torch AdamW otherwise; said in the header). A card's memory is
emulated with torch.cuda.set_per_process_memory_fraction(cap / total) on the CUDA caching allocator.

Workers run as child processes, one after another, so that each has the host memory to itself:
  ours            the engine: for each (cap, frames): streaming planned for the cap (streaming.py's rule with
                  estimate_working_bytes for the frames), activations offloaded to pinned host memory,
                  the FFN backward in --ffn-chunk token chunks; uncapped = every block resident.
  musubi CAP      bench/musubi_step.py (musubi-tuner's WanModel + LoRA network, its block swap
                  H2D-only with pinned memory, its activation CPU offload), MUSUBI_SRC = its src/ folder.
Each worker prints JSON lines; the driver prints one table (s/sample, GPU peak GiB, host GiB) and writes
--json. All workers run with PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True (less fragmentation under a cap).

    python bench/stream_step.py --ours 0:49,81 40:49,81 24:49,81 --musubi 24:49,81:36 40:49:20 --json OUT.json
    python bench/stream_step.py --tiny     # CPU, seconds: checks the script (tiny model, CPU "streaming")
--fp8-block measures the fp8 host format's error on one block of the real shape (GPU) first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "engine"))
sys.path.insert(0, str(HERE))

GIB = 2**30


def parse_ours(specs: list[str]) -> list[tuple[float, int, int, str]]:
    """'24:49,81' -> [(24.0, 49, 0, 'auto'), (24.0, 81, 0, 'auto')]; cap 0 = uncapped; further fields: 'k24' keeps
    the linear outputs of the last 24 blocks (FastBlockOptions.keep_linear_blocks), a kernel name ('cudnn',
    'fa3', ...) sets the attention kernel (FastBlockOptions.attention; default auto)."""
    cases = []
    for spec in specs:
        cap, frames, *rest = spec.split(":")
        keep = next((int(f.removeprefix("k")) for f in rest if f.startswith("k")), 0)
        attention = next((f for f in rest if not f.startswith("k")), "auto")
        cases += [(float(cap), int(f), keep, attention) for f in frames.split(",")]
    return cases


def parse_musubi(specs: list[str]) -> list[tuple[float, str, int, bool]]:
    """'24:49,81:36' -> (cap GiB, frames, blocks_to_swap, v21 time embedding); a trailing ':v21' sets the last."""
    out = []
    for spec in specs:
        parts = spec.split(":")
        out.append((float(parts[0]), parts[1], int(parts[2]), len(parts) > 3 and parts[3] == "v21"))
    return out


# ---------------------------------------------------------------------------------------------------
# worker: ours


def fp8_block_error(device: Any, config: dict[str, Any]) -> dict[str, Any]:
    """fp8 host format on one block of the real shape: weight and block-output error against bf16."""
    import torch
    from engine_step import build_expert

    from wanlora_engine.fast_model import FastBlockOptions, enable_fast_blocks
    from wanlora_engine.fp8 import Fp8HostFormat, dequantize_rows, quantize_rows
    from wanlora_engine.streaming import block_layout

    model, _ = build_expert(dict(config, num_layers=1), device, torch.bfloat16, 16)  # LoRA B = 0: no effect
    block = model.blocks[0]
    weights = {n: p.detach().clone() for n, p in block.named_parameters() if p.ndim == 2 and not p.requires_grad}
    errors = {}
    for name, w in weights.items():
        q, s = quantize_rows(w)
        errors[name] = float((dequantize_rows(q, s, w.dtype).float() - w.float()).norm() / w.float().norm())
    # block output through the engine with the fp8 round trip applied to this block's linears
    tokens = 3600
    x = torch.randn(1, 16, 1, 90, 160, device=device)
    text = torch.randn(1, 512, config["text_dim"], device=device, dtype=torch.bfloat16)
    t = torch.tensor([700.0], device=device)
    enable_fast_blocks(model, FastBlockOptions(), device=device)

    def forward() -> torch.Tensor:  # as velocity_losses runs the expert: float32 inputs under bf16 autocast
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            dtype = torch.float32 if device.type == "cuda" else torch.bfloat16  # the CPU check: no autocast
            return model(hidden_states=x.to(dtype), timestep=t, encoder_hidden_states=text.to(dtype),
                         return_dict=False)[0].float()

    with torch.no_grad():
        ref = forward()
        layout, nbytes = block_layout(block)
        record = Fp8HostFormat().pack(layout, {n: p for n, p in block.named_parameters()}, pin=False)
        slot = torch.empty(nbytes, dtype=torch.uint8, device=device)
        Fp8HostFormat().unpack(record, slot, layout)
        params = {n: p for n, p in block.named_parameters() if not p.requires_grad}
        for entry in layout:
            params[entry.path].data = slot[entry.offset:entry.offset + entry.nbytes].view(entry.dtype).view(entry.shape)
        out = forward()
    return {"tokens": tokens, "weight_rel_l2": errors, "weight_rel_l2_max": max(errors.values()),
            "one_block_model_output_rel_l2": float((out - ref).norm() / ref.norm()),
            "host_bytes_bf16": block_layout(block)[1], "host_bytes_fp8": Fp8HostFormat().host_bytes(layout)}


def worker_ours(args: argparse.Namespace) -> int:
    import torch
    from engine_step import (
        A14B,
        TINY,
        build_expert,
        counted_flops,
        latent_shape,
        make_optimizer,
        probe_copy_bandwidth,
        step_engine,
        tokens_of,
    )

    from wanlora_engine.fast_model import KEPT_LINEARS_PER_BLOCK, FastBlockOptions, enable_fast_blocks
    from wanlora_engine.streaming import disable_weight_streaming, enable_weight_streaming, estimate_working_bytes

    tiny = args.tiny
    device = torch.device("cpu" if tiny else "cuda")
    config = dict(TINY, num_layers=4) if tiny else A14B  # 4 tiny blocks: 1 resident, 3 streamed under a "cap"
    dtype = torch.float32 if tiny else torch.bfloat16
    width, height, text_tokens = (64, 48, 16) if tiny else (1280, 720, 512)
    if not tiny:
        torch.backends.cuda.matmul.allow_tf32 = True
    header: dict[str, Any] = {"event": "header", "worker": "ours", "torch": torch.__version__}
    if device.type == "cuda":
        header.update(device=torch.cuda.get_device_name(device),
                      gpu_total_bytes=torch.cuda.get_device_properties(device).total_memory,
                      copy_bandwidth=probe_copy_bandwidth(device))
        if args.fp8_block:
            try:
                header["fp8_block"] = fp8_block_error(device, config)
            except Exception as error:  # noqa: BLE001 - a side measurement must not cost the step table
                header["fp8_block"] = {"error": f"{type(error).__name__}: {error}"[:600]}
            torch.cuda.empty_cache()
    model, params = build_expert(config, device, dtype, args.rank)
    optimizer, optimizer_name = make_optimizer(params, device)
    header.update(optimizer=optimizer_name, lora_parameters=sum(p.numel() for p in params))
    print(json.dumps(header), flush=True)
    options = FastBlockOptions(ffn_chunk_tokens=args.ffn_chunk, prefetch_blocks=args.activation_prefetch)
    fast = enable_fast_blocks(model, options, device=device)
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else 0
    for cap, frames, keep, attention in parse_ours(args.ours):
        shape = (1, *latent_shape(frames, height, width))
        tokens = tokens_of(shape)
        result: dict[str, Any] = {"event": "case", "worker": "ours", "cap_gib": cap, "frames": frames,
                                  "tokens": tokens, "keep_linear_blocks": keep, "out_of_memory": False}
        if device.type == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0, torch.cuda.current_device())
        disable_weight_streaming(model)
        if (keep, attention) != (fast.options.keep_linear_blocks, fast.options.attention):
            # same blocks and store (its pinned buffers are reused)
            fast.options = dataclasses.replace(fast.options, keep_linear_blocks=keep, attention=attention)
            for runner in fast.runners:
                runner.options = fast.options
        working = estimate_working_bytes(tokens, dim, config["ffn_dim"], text_tokens, args.ffn_chunk,
                                         args.activation_prefetch, kept_linears=KEPT_LINEARS_PER_BLOCK if keep else 0)
        limit = int(cap * GIB) if cap else None
        if tiny and cap:  # the tiny model's "cap": room for 1 resident block (exercises the streaming path)
            from wanlora_engine.streaming import fixed_bytes_of, frozen_block_bytes

            limit = fixed_bytes_of(model, list(model.blocks)) + working + 3 * frozen_block_bytes(model.blocks[0])
        started = time.perf_counter()
        streamer = enable_weight_streaming(model, limit, working, device, prefetch=args.weight_prefetch)
        result["placement_seconds"] = time.perf_counter() - started
        result["attention"] = fast.runners[0].backend(torch.empty(0, device=device, dtype=dtype))
        result["plan"] = streamer.plan.to_json()
        generator = torch.Generator(device="cpu").manual_seed(1)
        x0 = torch.randn(shape, generator=generator).to(device)
        noise = torch.randn(shape, generator=generator).to(device)
        text = torch.randn((1, text_tokens, config["text_dim"]), generator=generator).to(device, dtype)
        sigma = torch.tensor([0.9], device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            if cap:
                torch.cuda.set_per_process_memory_fraction(min(1.0, cap * GIB / total), torch.cuda.current_device())
        steps = args.steps if frames < 60 else args.steps_long
        times, losses = [], []
        try:
            for i in range(args.warmup + steps):
                optimizer.zero_grad(set_to_none=True)
                start = time.perf_counter()
                losses.append(float(step_engine(model, x0, noise, text, sigma, device, dtype)[0]))
                optimizer.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                (times if i >= args.warmup else result.setdefault("warmup_seconds", [])).append(
                    time.perf_counter() - start)
        except torch.OutOfMemoryError as error:
            optimizer.zero_grad(set_to_none=True)
            result["out_of_memory"] = True
            result["error"] = str(error)[:400]
        result["losses"] = losses
        if times:
            result["seconds_per_sample"] = sorted(times)[len(times) // 2]
            result["seconds_all"] = times
            counted = counted_flops(tokens, config, text_tokens)
            result["tflops_per_second"] = counted / result["seconds_per_sample"] / 1e12
        if device.type == "cuda":
            result["peak_allocated_gib"] = torch.cuda.max_memory_allocated(device) / GIB
            result["peak_reserved_gib"] = torch.cuda.max_memory_reserved(device) / GIB
        result["host_weights_gib"] = streamer.stats.host_pinned_bytes / GIB
        result["host_activations_gib"] = fast.store.pool.held / GIB
        result["host_pinned_gib"] = result["host_weights_gib"] + result["host_activations_gib"]
        result["weight_copies"] = streamer.stats.copies
        result["weight_waits_unprefetched"] = streamer.stats.waits_unprefetched
        result["process_peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
        print(json.dumps(result), flush=True)
        del x0, noise, text
    return 0


# ---------------------------------------------------------------------------------------------------
# driver


def run_worker(command: list[str], env: dict[str, str], timeout: float) -> tuple[list[dict[str, Any]], float, str]:
    """Run a worker; its JSON lines, its peak RSS (GiB, from wait4) and the tail of its other output."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    records, other = [], []
    watchdog = threading.Timer(max(1.0, timeout), process.kill)  # the run's deadline: the table still prints
    watchdog.start()
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip("\n")
        print(line, flush=True)
        try:
            value = json.loads(line)
            if isinstance(value, dict):
                records.append(value)
                continue
        except json.JSONDecodeError:
            pass
        other.append(line)
    _, status, usage = os.wait4(process.pid, 0)
    watchdog.cancel()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        other.append(f"worker exit code {code} (-9: killed at the --deadline)")
    return records, usage.ru_maxrss * 1024 / GIB, "\n".join(other[-15:])


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| who | cap GiB | frames | s/sample | vs ours uncapped | GPU peak GiB (alloc / reserved) | "
             "host GiB | resident / streamed blocks |", "|---|---|---|---|---|---|---|---|"]
    base = {(r["frames"], r.get("attention")): r["seconds_per_sample"] for r in rows
            if r["who"] == "ours" and not r["cap_gib"] and not r.get("keep_linear_blocks")
            and "seconds_per_sample" in r}
    for r in rows:
        seconds = f"{r['seconds_per_sample']:.2f}" if "seconds_per_sample" in r else (
            "out of memory" if r.get("out_of_memory") else "error")
        own = (r["frames"], r.get("attention"))  # against the uncapped step with the same attention kernel
        ratio = f"{r['seconds_per_sample'] / base[own]:.3f}x" if "seconds_per_sample" in r and own in base else ""
        peak = f"{r.get('peak_allocated_gib', float('nan')):.1f} / {r.get('peak_reserved_gib', float('nan')):.1f}"
        host = r.get("host_gib")
        placement = r.get("placement", "")
        who = r["who"] + (f" keep {r['keep_linear_blocks']}" if r.get("keep_linear_blocks") else "") + (
            f" {r['attention']}" if r.get("attention") else "")
        lines.append(f"| {who} | {r['cap_gib'] or 'none'} | {r['frames']} | {seconds} | {ratio} | {peak} | "
                     f"{'' if host is None else f'{host:.1f}'} | {placement} |")
    return "\n".join(lines)


def driver(args: argparse.Namespace) -> int:
    env = dict(os.environ, PYTORCH_CUDA_ALLOC_CONF="expandable_segments:True", PYTHONUNBUFFERED="1")
    header: dict[str, Any] = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    rows: list[dict[str, Any]] = []
    workers: list[dict[str, Any]] = []
    deadline = time.time() + args.deadline

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps({"header": header, "rows": rows, "workers": workers}, indent=2))

    def run_ours() -> None:
        command = [sys.executable, __file__, "--worker", "ours", "--ours", *args.ours, "--rank", str(args.rank),
                   "--steps", str(args.steps), "--steps-long", str(args.steps_long), "--warmup", str(args.warmup),
                   "--ffn-chunk", str(args.ffn_chunk), "--weight-prefetch", str(args.weight_prefetch),
                   "--activation-prefetch", str(args.activation_prefetch)]
        command += ["--tiny"] if args.tiny else []
        command += ["--fp8-block"] if args.fp8_block else []
        records, rss, tail = run_worker(command, env, deadline - time.time())
        workers.append({"worker": "ours", "peak_rss_gib": rss, "records": records, "output_tail": tail})
        for r in records:
            if r.get("event") == "header":
                header["ours"] = r
            if r.get("event") == "case":
                plan = r["plan"]
                rows.append(dict(r, who="ours", host_gib=r["host_pinned_gib"],
                                 placement=f"{plan['resident']} / {plan['streamed']}"))
        save()

    def run_musubi() -> None:
        for cap, frames, swap, v21 in parse_musubi(args.musubi or []):
            musubi_env = dict(env, MUSUBI_SRC=str(args.musubi_src), RANK_LORA=str(args.rank),
                              MEM_CAP_GB=str(cap),
                              BLOCKS_TO_SWAP=str(swap), ACT_OFFLOAD="1", V21_TEMB="1" if v21 else "0",
                              REPS=str(args.musubi_reps), LORA_TARGETS=args.musubi_lora,
                              V21_FALLBACK="1" if args.musubi_v21_fallback else "0")
            if deadline - time.time() < 60:
                workers.append({"worker": f"musubi cap {cap} swap {swap}",
                                "skipped": "no time left before --deadline"})
                continue
            records, rss, tail = run_worker([sys.executable, str(args.musubi_script), frames], musubi_env,
                                            deadline - time.time())
            workers.append({"worker": f"musubi cap {cap} swap {swap}{' v21' if v21 else ''}",
                            "peak_rss_gib": rss, "records": records, "output_tail": tail})
            for r in records:
                if r.get("event") != "step":
                    continue
                row = {"who": "musubi" + (" (2.1 temb)" if r.get("v21_temb") else ""), "cap_gib": cap,
                       "frames": r["frames"],
                       "out_of_memory": r.get("oom", False), "peak_allocated_gib": r.get("peak_gb"),
                       "host_gib": rss, "placement": f"{40 - swap} / {swap}", "raw": r}
                if "s_per_sample" in r:
                    row["seconds_per_sample"] = r["s_per_sample"]
                rows.append(row)
            if not any(r.get("event") == "step" for r in records):
                rows.append({"who": "musubi", "cap_gib": cap, "frames": int(frames.split(",")[0]),
                             "error": tail[-300:], "host_gib": rss, "placement": f"{40 - swap} / {swap}"})
            save()

    for part in ([run_musubi, run_ours] if args.musubi_first else [run_ours, run_musubi]):
        if part is run_ours and not args.ours:
            continue
        part()
    header["note"] = ("host GiB: ours = pinned weights + pinned activations of that case; musubi = peak RSS of its "
                      "process (all its cases)")
    print(format_table(rows), flush=True)
    save()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=["ours"])
    parser.add_argument("--ours", nargs="*", default=[], help="CAP_GIB:FRAMES[,FRAMES] (cap 0: uncapped)")
    parser.add_argument("--musubi", nargs="*", default=[], help="CAP_GIB:FRAMES[,FRAMES]:BLOCKS_TO_SWAP[:v21]")
    parser.add_argument("--musubi-script", type=Path, default=HERE / "musubi_step.py")
    parser.add_argument("--musubi-src", type=Path, default=HERE.parent / ".peer")
    parser.add_argument("--musubi-reps", type=int, default=1)
    parser.add_argument("--musubi-lora", choices=["attention", "all"], default="attention",
                        help="musubi's LoRA targets: the engine's (attention linears, default) or its own default")
    parser.add_argument("--musubi-v21-fallback", action="store_true",
                        help="musubi: retry a frame count that runs out of memory with its Wan2.1 time embedding")
    parser.add_argument("--musubi-first", action="store_true", help="run the musubi workers before ours")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case under 60 frames (median)")
    parser.add_argument("--steps-long", type=int, default=1, help="timed steps per case of 60 frames or more")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--ffn-chunk", type=int, default=16384)
    parser.add_argument("--weight-prefetch", type=int, default=1)
    parser.add_argument("--activation-prefetch", type=int, default=1)
    parser.add_argument("--fp8-block", action="store_true")
    parser.add_argument("--deadline", type=float, default=3600, help="seconds for all workers (then killed)")
    parser.add_argument("--tiny", action="store_true", help="tiny model on the CPU: checks the script only")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.tiny and not args.ours:
        args.ours = ["0:1,5", "24:1,5"]
    if args.worker == "ours":
        return worker_ours(args)
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
