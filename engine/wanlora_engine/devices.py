"""Devices and process set-up: which device a setting means, where the experts go, what memory they took.

- `resolve_device`: a device setting ('auto', 'cpu', 'cuda') as a torch device, for every stage;
- `check_world_size`, `place_experts`, `seed_rank_dropout`: the trainer's experts on one GPU, replicated,
  sharded (FSDP) or sequence-parallel (Ulysses), see distributed.py;
- `GPUMemoryPeaks`, `host_peak_bytes`: the memory figures of the step events.
"""

from __future__ import annotations

import os
import resource
from typing import Any

import torch

from . import distributed as dist_util
from .errors import ConfigError, EngineError


def resolve_device(name: str, setting: str, remedy: str | None = None,
                   error: type[EngineError] = ConfigError) -> torch.device:
    """The torch device of a device setting; `setting` names it in the error when 'cuda' has no GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise error(f"{setting} is 'cuda' but no CUDA GPU is visible", remedy or f"set {setting} to 'auto' or 'cpu'")
    return torch.device(name)


def check_world_size(layout: dist_util.Layout) -> None:
    """The process layout must be the one torchrun started (WORLD_SIZE), or the collectives would hang."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world != layout.world_size:
        raise ConfigError(
            f"the engine was started with WORLD_SIZE={world} but was given a {layout.world_size}-process layout",
            "start it through `python -m wanlora_engine train` (under torchrun for several processes)",
        )


def place_experts(models: dict[str, Any], params: dict[str, list[torch.nn.Parameter]], groups: dist_util.Groups,
                  offload: bool, seed: int) -> None:
    """Each expert on its device: whole (one GPU, or replicated), sharded (FSDP), sequence-parallel (Ulysses).

    `offload`: the experts wait in host memory and move to the GPU when they train. `seed`: train.seed.
    """
    layout = groups.layout
    for expert, model in models.items():
        if layout.ulysses > 1:
            heads = model.config.num_attention_heads
            if heads % layout.ulysses:
                raise ConfigError(f"--ulysses {layout.ulysses} does not divide the model's {heads} attention heads",
                                  f"use a Ulysses degree that divides {heads} (and the GPU count)")
            from .ulysses import enable_ulysses

            enable_ulysses(model, groups.sequence, layout.ulysses, layout.sp_rank)
        if layout.fsdp and layout.distributed:
            dist_util.shard_expert(model, groups, params[expert])
        else:
            model.to("cpu" if offload else groups.device)
        dist_util.broadcast_parameters(params[expert])
    if layout.distributed:
        # LoRA dropout draws from the global RNG: give each rank its own stream (after the seeded init).
        torch.manual_seed(seed * 1_000_003 + 7919 * layout.rank + 1)


def host_peak_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class GPUMemoryPeaks:
    """Peak GPU memory of the whole run and of the steps since the last step event.

    PyTorch keeps one peak counter per device: it is read and reset at each step event, and the run's peak
    is the largest of those windows. So a run that mixes clip lengths shows each length's own peak.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.run_peak = 0

    def window(self) -> tuple[int | None, int | None, int | None]:
        """(allocated now, peak of the window, peak of the run); None on CPU. Starts a new window."""
        if self.device.type != "cuda":
            return None, None, None
        window = int(torch.cuda.max_memory_allocated(self.device))
        self.run_peak = max(self.run_peak, window)
        torch.cuda.reset_peak_memory_stats(self.device)
        return int(torch.cuda.memory_allocated(self.device)), window, self.run_peak

    def run(self) -> tuple[int | None, int | None]:
        """(allocated now, peak of the run); None on CPU."""
        if self.device.type != "cuda":
            return None, None
        return (int(torch.cuda.memory_allocated(self.device)),
                max(self.run_peak, int(torch.cuda.max_memory_allocated(self.device))))
