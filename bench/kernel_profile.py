"""Where one call's device time goes, by kernel class: shared by the step benchmarks' `--profile` options.

On a GPU, torch.profiler's CUDA kernel times; on a CPU (the scripts' --tiny checks), its CPU operator times, so
that the code path runs anywhere; only the GPU figures mean something.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

KERNEL_CLASSES = (  # substring of a kernel's name -> what it is (first match wins); the rest is elementwise work
    ("attention", ("fmha", "flash", "cudnn", "sdpa", "attention", "attn")),
    ("gemm", ("gemm", "nvjet", "xmma", "cutlass", "sm90_", "splitk", "gemv", "addmm", "aten::mm", "bmm")),
    ("compiled elementwise", ("triton",)),
    ("copy", ("memcpy", "memset", "aten::copy_")),
)


def kernel_class(name: str) -> str:
    lower = name.lower()
    return next((kind for kind, keys in KERNEL_CLASSES if any(key in lower for key in keys)), "other elementwise")


def profile_call(call: Callable[[], Any], device: torch.device, top: int = 25) -> dict[str, Any]:
    """Runs `call` once under torch.profiler (the caller warms it up first) and sums its kernels' device time:
    `device_seconds` in all, `by_class` (KERNEL_CLASSES), the `top_kernels` by time, and `wall_seconds`."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activity = ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU
    if cuda:
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    with profile(activities=[activity]) as prof:
        call()
        if cuda:
            torch.cuda.synchronize(device)
    wall = time.perf_counter() - started
    kernels: dict[str, float] = {}
    wanted = torch.autograd.DeviceType.CUDA if cuda else torch.autograd.DeviceType.CPU
    for event in prof.events():
        if event.device_type != wanted:
            continue
        # CPU operators nest (aten::linear holds aten::addmm): count only the leaves' own time there
        seconds = (event.device_time if cuda else event.self_cpu_time_total) / 1e6
        kernels[event.name] = kernels.get(event.name, 0.0) + seconds
    classes: dict[str, float] = {}
    for name, seconds in kernels.items():
        kind = kernel_class(name)
        classes[kind] = classes.get(kind, 0.0) + seconds
    ranked = sorted(kernels.items(), key=lambda item: -item[1])[:top]
    return {"device_seconds": sum(kernels.values()), "wall_seconds": wall,
            "by_class": dict(sorted(classes.items(), key=lambda item: -item[1])),
            "top_kernels": [{"name": name[:160], "seconds": seconds} for name, seconds in ranked]}


def describe(label: str, result: dict[str, Any]) -> str:
    """One line: the label, the device time and wall time, and the classes."""
    return (f"profile {label}: device {result['device_seconds']:.2f} s of {result['wall_seconds']:.2f} s wall = "
            + ", ".join(f"{kind} {seconds:.2f}" for kind, seconds in result["by_class"].items()))
