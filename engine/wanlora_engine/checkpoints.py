"""Training checkpoints: written whole or not at all, checked when read, the last checkpoint.keep_last kept.

    derived.run_dir/checkpoints/step-NNNNNNNN/   lora-high.safetensors, lora-low.safetensors (float32),
                                         optimizer.pt, rng.pt, trainer_state.json,
                                         manifest.json (written last: bytes and sha256 of every other file)

A checkpoint is written into a temporary folder (.tmp-step-N): every file fsynced, the manifest last, the
folder fsynced, then renamed into place and the parent folder fsynced, so that after a crash or a power
loss a folder named step-N is complete. A write error (a full disk) leaves the previous checkpoints as they
were, removes the temporary folder and stops the run (CheckpointWriteError on every rank). When resuming,
the newest checkpoint whose files match its manifest is used; a newer one that does not (cut short, a file
truncated or changed) is skipped with a `checkpoint_corrupt` warning and renamed corrupt-step-N (kept for
inspection, out of the way of pruning). Rank 0 writes (LoRA weights and optimizer state are the same on
every rank); every rank reads a checkpoint when resuming. rng.pt holds the data generator's state (the same
on every rank) and each rank's own dropout stream, so a run resumed on the same layout continues every
stream where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from . import distributed as dist_util
from . import faults
from .errors import ConfigError, EngineError
from .events import EventWriter
from .files import fsync_path, save_safetensors
from .lora import lora_parameters

CHECKPOINT_PREFIX = "step-"
CORRUPT_PREFIX = "corrupt-"
MANIFEST = "manifest.json"


class CheckpointWriteError(EngineError):
    """A checkpoint could not be written (disk full, I/O error); the previous ones are intact."""

    code = "checkpoint_write_failed"
    all_ranks = True  # raised on every rank at once: rank 0 reports it


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """The published checkpoints of a run folder (a manifest, or trainer_state.json before manifests), oldest first.

    Published is not verified: checkpoint_to_resume checks the files against the manifest."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and (p / "trainer_state.json").is_file()]
    return sorted(found, key=checkpoint_step)


def checkpoint_step(folder: Path) -> int:
    """The optimizer step a checkpoint folder (step-NNNNNNNN) was saved at."""
    return int(folder.name[len(CHECKPOINT_PREFIX):])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_problem(folder: Path) -> str | None:
    """Why `folder` is not a whole checkpoint (None when every file matches its manifest)."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return None  # written before manifests existed (renamed into place whole): taken as it is
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"{MANIFEST} is unreadable ({error})"
    for name, entry in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != entry["bytes"]:
            return f"{name} has {size} bytes, the manifest says {entry['bytes']}"
        if _sha256(path) != entry["sha256"]:
            return f"{name} does not match its sha256 in the manifest"
    return None


@dataclass
class ResumePoint:
    """The checkpoint a run continues from, and the newer ones that were found broken and skipped."""

    folder: Path | None
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (folder, problem)


def checkpoint_to_resume(run_dir: Path, resume: bool) -> ResumePoint:
    """The checkpoint --resume continues from (folder None without --resume): the newest whole one.

    Refuses to train over a run's checkpoints without --resume, and to resume a run without a whole one."""
    existing = checkpoint_dirs(run_dir)
    if existing and not resume:
        raise ConfigError(
            f"run folder {run_dir} already has checkpoints (latest {existing[-1].name})",
            "pass --resume to continue that run, or choose a new run folder",
        )
    if not resume:
        return ResumePoint(None)
    if not existing:
        raise ConfigError(f"--resume: run folder {run_dir} has no checkpoint to resume from",
                          "start without --resume, or set run.name to the run to continue")
    skipped = []
    for folder in reversed(existing):
        problem = checkpoint_problem(folder)
        if problem is None:
            return ResumePoint(folder, skipped)
        skipped.append((folder, problem))
    details = "; ".join(f"{f.name}: {why}" for f, why in skipped)
    raise ConfigError(f"--resume: no checkpoint of {run_dir} is whole ({details})",
                      "restore a checkpoint folder from a backup, or start a new run folder without --resume")


def set_aside(skipped: list[tuple[Path, str]], events: EventWriter) -> None:
    """Rank 0, after every rank has chosen its checkpoint: broken checkpoints renamed corrupt-step-N, each with
    a `checkpoint_corrupt` warning."""
    for folder, problem in skipped:
        target = folder.with_name(CORRUPT_PREFIX + folder.name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(folder, target)
        events.warning("checkpoint_corrupt", f"checkpoint {folder.name} is not whole ({problem}): resuming from an "
                       f"earlier one; the folder is kept as {target.name}", path=str(target), problem=problem)


def _rank_rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _write_folder(tmp: Path, step: int, models: dict[str, Any], optimizer: Any, scheduler: Any,
                  generator: torch.Generator, rank_rng: list[Any], layout: dist_util.Layout,
                  trainer_state: dict[str, Any]) -> None:
    for index, (expert, model) in enumerate(models.items()):
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in lora_parameters(model).items()}
        save_safetensors(tensors, tmp / f"lora-{expert}.safetensors", durable=False)
        if index == 0:
            faults.maybe_kill(layout.rank, step, "checkpoint_write")
            faults.maybe_write_error(step)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
    rng = {"torch": torch.get_rng_state(), "generator": generator.get_state(), "ranks": rank_rng}
    if torch.cuda.is_available() and not layout.distributed:
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=1))
    files = {}
    for path in sorted(tmp.iterdir()):
        fsync_path(path)
        files[path.name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    manifest = tmp / MANIFEST
    manifest.write_text(json.dumps({"step": step, "files": files}, indent=1))
    fsync_path(manifest)
    fsync_path(tmp)


def save_checkpoint(run_dir: Path, step: int, keep_last: int, models: dict[str, Any], optimizer: Any,
                    scheduler: Any, generator: torch.Generator, layout: dist_util.Layout, device: torch.device,
                    trainer_state: dict[str, Any], events: EventWriter) -> Path:
    """Every rank calls this; rank 0 writes the folder of `step`, drops all but the last `keep_last` and emits
    the `checkpoint` event. `models`: expert name -> model with LoRA; `trainer_state`: trainer_state.json.

    Raises CheckpointWriteError on every rank when rank 0 cannot write it (the earlier checkpoints stay)."""
    folder = run_dir / "checkpoints"
    final = folder / f"{CHECKPOINT_PREFIX}{step:08d}"
    rank_rng = dist_util.gather_objects(_rank_rng_state(device))  # collective: before rank 0 goes its way
    failure: str | None = None
    if layout.is_main:
        started = time.monotonic()
        tmp = folder / f".tmp-{final.name}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
            _write_folder(tmp, step, models, optimizer, scheduler, generator, rank_rng, layout, trainer_state)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            fsync_path(folder)
        except OSError as error:
            shutil.rmtree(tmp, ignore_errors=True)
            failure = f"writing checkpoint {final} failed: {error.strerror or error}"
        else:
            faults.maybe_kill(layout.rank, step, "checkpoint_published")
            removed = []
            for old in checkpoint_dirs(run_dir)[:-keep_last]:
                shutil.rmtree(old)
                removed.append(str(old))
            size = sum(p.stat().st_size for p in final.iterdir())
            events.emit("checkpoint", step=step, path=str(final), bytes=size, removed=removed,
                        seconds=time.monotonic() - started)
    failure = dist_util.gather_objects(failure)[0]  # rank 0's outcome, on every rank (also the barrier)
    if failure is not None:
        kept = checkpoint_dirs(run_dir)
        raise CheckpointWriteError(
            f"{failure}; the run stops at step {step}, "
            + (f"its last checkpoint {kept[-1].name} is intact" if kept else "no earlier checkpoint exists"),
            f"free space on the disk of {folder} (or fix the I/O error), then run the same command with --resume")
    return final


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
