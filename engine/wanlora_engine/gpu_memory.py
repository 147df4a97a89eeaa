"""`hardware.gpu_memory_limit`: a cap on the GPU memory this process allocates."""

from __future__ import annotations

from typing import Any

import torch

from .config import SCHEMA

GIB = 2**30
# Kept out of a card's memory when no limit is set: the CUDA context (about 0.5 GiB, outside the allocator) and
# allocator slack; `wanlora plan` keeps the same (the schema's constants, written by the Swift EngineConstants).
CARD_RESERVE_BYTES: int = SCHEMA["constants"]["card_reserve_bytes"]


def card_limit_bytes(device: torch.device) -> int | None:
    """What `hardware.gpu_memory_limit = 0` means for placing the expert's blocks: the card's memory less
    CARD_RESERVE_BYTES; None off a GPU (no limit)."""
    return card_total_bytes(device) - CARD_RESERVE_BYTES if device.type == "cuda" else None


def card_total_bytes(device: torch.device) -> int:
    """The memory of the CUDA card `device` (its index, or the current one)."""
    return int(torch.cuda.get_device_properties(_index(device)).total_memory)


def _index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def memory_fraction(limit_gib: float, total_bytes: int) -> float | None:
    """The fraction of the card that `limit_gib` is (at most 1), or None for no limit (0)."""
    if limit_gib <= 0:
        return None
    return min(1.0, limit_gib * GIB / total_bytes)


def apply_gpu_memory_limit(config: Any, device: torch.device, events: Any, places_blocks: bool = False) -> float | None:
    """Caps the caching allocator of `device` at `hardware.gpu_memory_limit` GiB; on a CPU says it is ignored.

    `places_blocks`: the stage (train) also places the expert's blocks by the limit (streaming.py), which it does
    on a CPU too, with host-memory slots: the same placement and bookkeeping as on a GPU."""
    limit = config.hardware.gpu_memory_limit
    if limit <= 0:
        return None
    if device.type != "cuda":
        if places_blocks:
            message = (f"hardware.gpu_memory_limit = {limit:g} GiB caps no allocator on the {device.type}; the "
                       "expert's blocks are still placed by it (resident, or streamed through slots as on a GPU)")
        else:
            message = f"hardware.gpu_memory_limit = {limit:g} GiB is ignored: this stage runs on the {device.type}"
        events.warning("gpu_memory_limit_ignored", message)
        return None
    fraction = memory_fraction(limit, card_total_bytes(device))
    assert fraction is not None
    torch.cuda.set_per_process_memory_fraction(fraction, _index(device))
    return fraction
