#!/usr/bin/env python3
"""The self-attention kernels the engine can run, timed on the Wan2.2-A14B shapes (40 heads x 128, bf16).

For each kernel (--kernels; those that cannot run here are reported as such): the forward and the backward of one
self-attention over the tokens of a 1280x720 clip (49 frames: 46,800 tokens, 81 frames: 75,600), through the same
`fast_model.attention_keep` / `attention_backward` calls the training step and the sampler make, so the figures
are the engine's own. Counted work: forward 4·B·H·N²·D, backward 2.5x that (SPEC §8). Accuracy: each kernel's
output and gradients against a float32 reference on a shorter sequence (--check-tokens), relative L2 error.

    python3 bench/attention_kernels.py --json attention.json        # on a GPU; fa3 needs bench/build_fa3.sh
    python3 bench/attention_kernels.py --tiny                       # seconds on a CPU: checks the script only
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from wanlora_engine.fast_model import attention_backward, attention_keep, kernel_available  # noqa: E402

HEADS, HEAD_DIM = 40, 128
DEFAULT_CASES = ("1x46800", "1x75600", "2x75600:forward")  # batch x tokens[:forward]; batch 2 = guidance batched


def parse_case(text: str) -> tuple[int, int, bool]:
    shape, _, mode = text.partition(":")
    batch, _, tokens = shape.partition("x")
    if mode not in ("", "forward") or not batch.isdigit() or not tokens.isdigit():
        raise argparse.ArgumentTypeError(f"case {text!r}: expected BATCHxTOKENS or BATCHxTOKENS:forward")
    return int(batch), int(tokens), mode == "forward"


def qkv(batch: int, tokens: int, heads: int, head_dim: int, device: torch.device, dtype: torch.dtype,
        seed: int) -> tuple[torch.Tensor, ...]:
    """[B, H, N, D] views of [B, N, H, D] tensors, the layout the engine's blocks hand to the kernel."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    made = [torch.randn(batch, tokens, heads, head_dim, generator=generator).to(device, dtype).transpose(1, 2)
            for _ in range(3)]
    return tuple(made)


def timed(call: Any, device: torch.device, repeats: int) -> float:
    """Mean seconds of `call` over `repeats` runs after one warm-up (CUDA events on a GPU)."""
    call()
    if device.type != "cuda":
        import time

        started = time.perf_counter()
        for _ in range(repeats):
            call()
        return (time.perf_counter() - started) / repeats
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(device)
    start.record()
    for _ in range(repeats):
        call()
    end.record()
    torch.cuda.synchronize(device)
    return start.elapsed_time(end) / 1000 / repeats


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.detach().float(), want.detach().float()
    return float((got - want).norm() / want.norm().clamp_min(1e-30))


def accuracy(kernel: str, tokens: int, heads: int, head_dim: int, device: torch.device, dtype: torch.dtype,
             forward_only: bool = False) -> dict:
    """Output (and gradients) of `kernel` in `dtype` against float32 math on the same (rounded) inputs."""
    q, k, v = qkv(1, tokens, heads, head_dim, device, dtype, seed=7)
    grad = torch.randn(1, heads, tokens, head_dim, generator=torch.Generator().manual_seed(8)).to(device, dtype)
    out, kept = attention_keep(q, k, v, kernel)
    ref = [t.detach().float().requires_grad_(True) for t in (q, k, v)]
    want = torch.nn.functional.scaled_dot_product_attention(*ref)
    if forward_only:
        return {"out": relative_error(out, want)}
    dq, dk, dv = attention_backward(grad, q, k, v, kept, kernel)
    want.backward(grad.float())
    return {"out": relative_error(out, want), "dq": relative_error(dq, ref[0].grad),
            "dk": relative_error(dk, ref[1].grad), "dv": relative_error(dv, ref[2].grad)}


def measure(kernel: str, batch: int, tokens: int, forward_only: bool, heads: int, head_dim: int,
            device: torch.device, dtype: torch.dtype, repeats: int) -> dict[str, Any]:
    q, k, v = qkv(batch, tokens, heads, head_dim, device, dtype, seed=1)
    forward_flop = 4 * batch * heads * tokens * tokens * head_dim
    forward = timed(lambda: attention_keep(q, k, v, kernel), device, repeats)
    row: dict[str, Any] = {"kernel": kernel, "batch": batch, "tokens": tokens, "forward_s": forward,
                           "forward_tflops": forward_flop / forward / 1e12}
    if not forward_only:
        out, kept = attention_keep(q, k, v, kernel)
        grad = torch.randn_like(out)
        backward = timed(lambda: attention_backward(grad, q, k, v, kept, kernel), device, repeats)
        row.update(backward_s=backward, backward_tflops=2.5 * forward_flop / backward / 1e12)
        del out, kept, grad
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", default="cudnn,fa3,flash",
                        help="comma-separated engine attention backends (default: cudnn,fa3,flash)")
    parser.add_argument("--cases", nargs="+", type=parse_case, default=[parse_case(c) for c in DEFAULT_CASES],
                        help="BATCHxTOKENS[:forward] (default: 1x46800 1x75600 2x75600:forward)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs a case, after one warm-up (default 3)")
    parser.add_argument("--check-tokens", type=int, default=4096,
                        help="sequence of the float32 accuracy check (default 4096)")
    parser.add_argument("--forward-only", action="store_true",
                        help="time and check forwards only (sampling; a FlashAttention-3 built without backward)")
    parser.add_argument("--tiny", action="store_true", help="a CPU check of the script: 2 heads x 8, 64 tokens")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)

    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    heads, head_dim = (2, 8) if args.tiny else (HEADS, HEAD_DIM)
    cases = [(1, 64, False)] if args.tiny else args.cases
    check_tokens = 32 if args.tiny else args.check_tokens
    kernels = ["cpu"] if device.type == "cpu" else [k for k in args.kernels.split(",") if k]
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                              "torch": torch.__version__, "heads": heads, "head_dim": head_dim, "rows": [],
                              "accuracy": {}, "unavailable": {}}
    for kernel in kernels:
        missing = kernel_available(kernel, device)
        if missing:
            report["unavailable"][kernel] = missing
            print(f"{kernel}: not run ({missing})", flush=True)
            continue
        report["accuracy"][kernel] = accuracy(kernel, check_tokens, heads, head_dim, device, dtype,
                                              args.forward_only)
        for batch, tokens, forward_only in cases:
            row = measure(kernel, batch, tokens, forward_only or args.forward_only, heads, head_dim, device, dtype,
                          args.repeats)
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"\n{'kernel':8} {'batch x tokens':>15} {'forward s':>10} {'TFLOP/s':>8} {'backward s':>11} {'TFLOP/s':>8}")
    for row in report["rows"]:
        back = (f"{row['backward_s']:11.3f} {row['backward_tflops']:8.0f}" if "backward_s" in row
                else f"{'-':>11} {'-':>8}")
        print(f"{row['kernel']:8} {row['batch']:>6} x {row['tokens']:<6} {row['forward_s']:10.3f} "
              f"{row['forward_tflops']:8.0f} {back}")
    for kernel, errors in report["accuracy"].items():
        print(f"{kernel:8} relative L2 vs float32 at {check_tokens} tokens: " +
              ", ".join(f"{name} {value:.2e}" for name, value in errors.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
