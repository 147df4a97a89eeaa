"""Devices and process set-up: which device a setting means, where the experts go, what memory they took.

- `resolve_device`: a device setting ('auto', 'cpu', 'cuda') as a torch device, for every stage;
- `check_world_size`, `place_experts`, `seed_rank_dropout`: the trainer's experts on one GPU, replicated,
  sharded (FSDP) or sequence-parallel (Ulysses), see distributed.py;
- `GPUMemoryPeaks`, `host_peak_bytes`: the memory figures of the step events.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from typing import Any

import torch

from . import distributed as dist_util
from . import streaming
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


@dataclass(frozen=True)
class StreamRequest:
    """`hardware.gpu_memory_limit` for the experts: the limit in bytes, the largest sample the run trains
    (`max_tokens` latent tokens after patching, `text_tokens` caption tokens) and whether the streamed blocks wait
    in host memory as fp8 (`model.weights_dtype` fp8); the optimizer's state bytes per LoRA parameter (2: 8-bit
    AdamW, 8: AdamW), which stay on the GPU with the parameters."""

    limit_bytes: int
    max_tokens: int
    text_tokens: int
    fp8: bool
    optimizer_bytes_per_param: int


def place_experts(models: dict[str, Any], params: dict[str, list[torch.nn.Parameter]], groups: dist_util.Groups,
                  offload: bool, seed: int, stream: StreamRequest | None = None) -> dict[str, streaming.StreamPlan]:
    """Each expert on its device: whole (one GPU, or replicated), sharded (FSDP), sequence-parallel (Ulysses).

    `offload`: the experts wait in host memory and move to the GPU when they train. `seed`: train.seed.
    `stream`: a GPU memory limit. Each expert, still where it was loaded (host memory), keeps the blocks that fit
    on the device and streams the others (streaming.py's rule); an expert that fits whole is placed as without a
    limit. Returns the plan of each expert that streams.
    """
    layout = groups.layout
    plans: dict[str, streaming.StreamPlan] = {}
    if stream is not None and layout.fsdp and layout.distributed:
        raise ConfigError("hardware.gpu_memory_limit streams the expert's blocks through one GPU, but with FSDP "
                          f"they are sharded over {layout.world_size} GPUs",
                          "set hardware.fsdp = false (each GPU streams its own copy) or hardware.gpu_memory_limit = 0")
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
        elif stream is not None:
            plan = _stream_expert(model, stream, groups.device)
            if plan is not None:
                plans[expert] = plan
            if offload:
                streaming.move_model(model, torch.device("cpu"))
        else:
            model.to("cpu" if offload else groups.device)
        dist_util.broadcast_parameters(params[expert])
    if layout.distributed:
        # LoRA dropout draws from the global RNG: give each rank its own stream (after the seeded init).
        torch.manual_seed(seed * 1_000_003 + 7919 * layout.rank + 1)
    return plans


def _stream_expert(model: Any, stream: StreamRequest, device: torch.device) -> streaming.StreamPlan | None:
    """Streams `model`'s blocks past the limit; None (and the whole model on `device`) when every block fits."""
    try:
        streamer = streaming.enable_weight_streaming_for(model, stream.limit_bytes, stream.max_tokens,
                                                         stream.text_tokens, device, fp8=stream.fp8,
                                                         optimizer_bytes_per_param=stream.optimizer_bytes_per_param)
    except streaming.StreamingError as error:
        raise ConfigError(str(error), "raise hardware.gpu_memory_limit, or lower training.frames or "
                          "training.resolution (`wanlora plan` shows settings that fit)") from error
    if streamer.plan.streamed == 0:
        streaming.disable_weight_streaming(model)  # every block resident: the unstreamed blocks
        return None
    return streamer.plan


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
