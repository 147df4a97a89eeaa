"""`hardware.gpu_memory_limit`: a cap on the GPU memory this process allocates."""

from __future__ import annotations

from typing import Any

import torch

GIB = 2**30


def memory_fraction(limit_gib: float, total_bytes: int) -> float | None:
    """The fraction of the card that `limit_gib` is (at most 1), or None for no limit (0)."""
    if limit_gib <= 0:
        return None
    return min(1.0, limit_gib * GIB / total_bytes)


def apply_gpu_memory_limit(config: Any, device: torch.device, events: Any) -> float | None:
    """Caps the caching allocator of `device` at `hardware.gpu_memory_limit` GiB; on a CPU says it is ignored."""
    limit = config.hardware.gpu_memory_limit
    if limit <= 0:
        return None
    if device.type != "cuda":
        events.warning("gpu_memory_limit_ignored",
                       f"hardware.gpu_memory_limit = {limit:g} GiB is ignored: this stage runs on the {device.type}")
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    total = torch.cuda.get_device_properties(index).total_memory
    fraction = memory_fraction(limit, total)
    assert fraction is not None
    torch.cuda.set_per_process_memory_fraction(fraction, index)
    return fraction
