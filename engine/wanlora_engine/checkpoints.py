"""Training checkpoints: written whole or not at all, the last checkpoint.keep_last kept, read back to resume.

    derived.run_dir/checkpoints/step-NNNNNNNN/   lora-high.safetensors, lora-low.safetensors (float32),
                                         optimizer.pt, rng.pt, trainer_state.json (written last)

A checkpoint folder is written under a temporary name and renamed into place, so a folder named step-N is
always complete. Rank 0 writes (LoRA weights and optimizer state are the same on every rank); every rank
reads a checkpoint when resuming. rng.pt holds the data generator's state (the same on every rank) and each
rank's own dropout stream, so a run resumed on the same layout continues every stream where it stopped.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from . import distributed as dist_util
from .errors import ConfigError
from .events import EventWriter
from .lora import lora_parameters

CHECKPOINT_PREFIX = "step-"


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """The complete checkpoints of a run folder, oldest first."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and (p / "trainer_state.json").is_file()]
    return sorted(found, key=checkpoint_step)


def checkpoint_step(folder: Path) -> int:
    """The optimizer step a checkpoint folder (step-NNNNNNNN) was saved at."""
    return int(folder.name[len(CHECKPOINT_PREFIX):])


def checkpoint_to_resume(run_dir: Path, resume: bool) -> Path | None:
    """The checkpoint --resume continues from (None without --resume); refuses to train over a run's checkpoints."""
    existing = checkpoint_dirs(run_dir)
    if existing and not resume:
        raise ConfigError(
            f"run folder {run_dir} already has checkpoints (latest {existing[-1].name})",
            "pass --resume to continue that run, or choose a new run folder",
        )
    if resume and not existing:
        raise ConfigError(f"--resume: run folder {run_dir} has no checkpoint to resume from",
                          "start without --resume, or set run.name to the run to continue")
    return existing[-1] if resume else None


def _rank_rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def save_checkpoint(run_dir: Path, step: int, keep_last: int, models: dict[str, Any], optimizer: Any,
                    scheduler: Any, generator: torch.Generator, layout: dist_util.Layout, device: torch.device,
                    trainer_state: dict[str, Any], events: EventWriter) -> Path:
    """Every rank calls this; rank 0 writes the folder of `step`, drops all but the last `keep_last` and emits
    the `checkpoint` event. `models`: expert name -> model with LoRA; `trainer_state`: trainer_state.json."""
    folder = run_dir / "checkpoints"
    final = folder / f"{CHECKPOINT_PREFIX}{step:08d}"
    rank_rng = dist_util.gather_objects(_rank_rng_state(device))  # collective: before rank 0 goes its way
    if not layout.is_main:
        dist_util.barrier()  # wait until rank 0 has written it
        return final
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{final.name}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        for expert, model in models.items():
            tensors = {k: v.detach().to("cpu").contiguous() for k, v in lora_parameters(model).items()}
            save_file(tensors, str(tmp / f"lora-{expert}.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
        rng = {"torch": torch.get_rng_state(), "generator": generator.get_state(), "ranks": rank_rng}
        if torch.cuda.is_available() and not layout.distributed:
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / "rng.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=1))
        for path in tmp.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        removed = []
        for old in checkpoint_dirs(run_dir)[:-keep_last]:
            shutil.rmtree(old)
            removed.append(str(old))
        size = sum(p.stat().st_size for p in final.iterdir())
        events.emit("checkpoint", step=step, path=str(final), bytes=size, removed=removed)
        return final
    finally:
        dist_util.barrier()


def load_checkpoint(folder: Path, models: dict[str, Any], optimizer: Any, scheduler: Any,
                    generator: torch.Generator, layout: dist_util.Layout, device: torch.device,
                    seed: int) -> dict[str, Any]:
    """Restore the LoRA weights, optimizer, scheduler and random streams of `folder`; returns its trainer state.

    The checkpoint must hold the same experts and LoRA modules and shapes as `models`. On the same number of
    processes each rank continues its own dropout stream; on another number, fresh streams are seeded by
    `seed` (train.seed), step and rank.
    """
    state = json.loads((folder / "trainer_state.json").read_text())
    experts = list(models)
    if sorted(state["experts"]) != sorted(experts):
        raise ConfigError(
            f"checkpoint {folder} trained the experts {state['experts']}, the config asks {experts}",
            "set training.expert as in the run being resumed, or start a new run folder",
        )
    for expert, model in models.items():
        saved = load_file(str(folder / f"lora-{expert}.safetensors"))
        params = lora_parameters(model)
        if set(saved) != set(params):
            raise ConfigError(f"checkpoint {folder} has other LoRA modules than the config's lora.targets",
                              "resume with the lora settings of the original run")
        with torch.no_grad():
            for name, param in params.items():
                if saved[name].shape != param.shape:
                    raise ConfigError(f"checkpoint {folder}: {name} has shape {tuple(saved[name].shape)}, "
                                      f"the config's lora.rank gives {tuple(param.shape)}",
                                      "resume with the lora settings of the original run")
                param.copy_(saved[name])
    blob = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(blob["optimizer"])  # state lands on each parameter's device
    scheduler.load_state_dict(blob["scheduler"])
    rng = torch.load(folder / "rng.pt", map_location="cpu", weights_only=False)
    generator.set_state(rng["generator"])  # the data/sigma/noise stream: the same on every rank
    ranks = rng.get("ranks", [])
    if len(ranks) == layout.world_size and layout.distributed:
        mine = ranks[layout.rank]  # same layout: each rank continues its own dropout stream
        torch.set_rng_state(mine["torch"])
        if "cuda" in mine and device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], device)
    elif not layout.distributed:
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        elif ranks and "cuda" in ranks[0] and device.type == "cuda":
            torch.cuda.set_rng_state(ranks[0]["cuda"], device)
    else:  # another number of processes: fresh dropout streams, seeded by step and rank
        torch.manual_seed(seed * 1_000_003 + 7919 * layout.rank + int(state["step"]) + 1)
    return state
