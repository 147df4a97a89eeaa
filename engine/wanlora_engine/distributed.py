"""Several GPUs and nodes: the process layout, FSDP2 sharding of the frozen experts, gradient reduction.

The engine is started once per GPU by torchrun (`wanlora train --gpus N` builds that command) and reads
its place from the environment torchrun sets: WORLD_SIZE, RANK, LOCAL_RANK. The launch chooses the
layout (`--ulysses U`, `--fsdp` on the engine's command line, not in the run's config, so that a run can
be resumed on another number of GPUs):

    world = U x DP. Ranks r = d·U + u: the U consecutive ranks of a Ulysses group (u = r mod U) share one
    sample's tokens (ulysses.py); the DP = world / U groups (d = r div U) train different samples.

Samples per optimizer step = micro_batch x grad_accum x DP. All ranks draw the whole step from the same
seeded generator (the same draws as a one-process run with DP times the accumulation), and group d trains
its contiguous share of the step's micro-batches, so a run gives the same losses and gradients on any
layout, up to float rounding.

Policy (documented in docs/distributed.md):
- Frozen expert weights: with --fsdp, FSDP2 `fully_shard` per transformer block and once at the root,
  over all ranks, in the weights' dtype (bf16 on GPUs): each GPU stores 1/world of each expert and
  gathers one block at a time. Without it every rank holds the whole expert.
- LoRA parameters (float32) stay whole on every rank, outside FSDP (`ignored_params`). After the step's
  backward their gradients are summed over all ranks in one flat all-reduce: over the data-parallel
  groups that is the sum over samples, within a Ulysses group the sum over token shares.
- Optimizer state is replicated (every rank applies the same update to the same parameters): at rank 16
  one A14B expert has 52.4M LoRA parameters, 0.1 GB of 8-bit AdamW state (0.4 GB in 32-bit AdamW), small
  next to the expert itself; replicated state makes checkpoints layout-free.
- Checkpoints and exports are written by rank 0 only; every rank reads a checkpoint when resuming (the
  run folder, like the cache, must be on storage all nodes see).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from .errors import ConfigError

FAILURE_KEY = "wanlora/failure_reporters"


@dataclass(frozen=True)
class Layout:
    """Where this process sits in the run."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    ulysses: int = 1
    fsdp: bool = False

    @property
    def data_parallel(self) -> int:
        return self.world_size // self.ulysses

    @property
    def dp_rank(self) -> int:
        return self.rank // self.ulysses

    @property
    def sp_rank(self) -> int:
        return self.rank % self.ulysses

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "ulysses_degree": self.ulysses,
                "data_parallel_size": self.data_parallel, "fsdp": self.fsdp}


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer",
                          "start the engine through torchrun (wanlora train --gpus N), which sets it") from None


def layout_from_environment(ulysses: int = 1, fsdp: bool = False,
                            env: Mapping[str, str] | None = None) -> Layout:
    """The layout from torchrun's variables (WORLD_SIZE, RANK, LOCAL_RANK) and the launch's choices."""
    env = os.environ if env is None else env
    world = _env_int(env, "WORLD_SIZE", 1)
    rank = _env_int(env, "RANK", 0)
    local_rank = _env_int(env, "LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} and WORLD_SIZE={world} do not describe a process of the run",
                          "start the engine through torchrun, which sets both")
    if ulysses < 1:
        raise ConfigError(f"--ulysses {ulysses}: the Ulysses degree must be 1 or more",
                          "pass --ulysses 1 (off) or a divisor of the GPU count and of 40 heads")
    if world % ulysses:
        raise ConfigError(f"--ulysses {ulysses} does not divide the {world} processes of the run",
                          f"use a Ulysses degree that divides {world} (world = Ulysses x data parallel)")
    return Layout(world_size=world, rank=rank, local_rank=local_rank, ulysses=ulysses, fsdp=fsdp)


@dataclass
class Groups:
    """The process groups of a started layout (None where a group would have one rank)."""

    layout: Layout
    device: torch.device
    sequence: Any = None  # this rank's Ulysses group
    mesh: Any = None  # the 1-D device mesh FSDP shards over (all ranks)


def start(layout: Layout, device_type: str, backend: str | None = None, timeout: timedelta | None = None) -> Groups:
    """Join the process group (NCCL on GPUs, gloo on CPUs, or `backend`) and build the Ulysses groups.

    The cache stage joins on gloo with a long `timeout`: its only collective is the barrier at the end, where a
    rank that finished its shards may wait long for the others."""
    if device_type == "cuda":
        torch.cuda.set_device(layout.local_rank)
        device = torch.device("cuda", layout.local_rank)
    else:
        device = torch.device("cpu")
    if not layout.distributed:
        return Groups(layout, device)
    if not dist.is_initialized():
        backend = backend or ("nccl" if device.type == "cuda" else "gloo")
        # The rendezvous store outlives an elastic restart: without a prefix per attempt, a restarted rank
        # can read the dead attempt's addresses (gloo: "connectFullMesh failed ... Connection refused") and
        # the failure report's claim (claim_failure_report) would already be taken.
        store, rank, world_size = next(dist.rendezvous("env://"))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or "0"
        dist.init_process_group(backend, store=dist.PrefixStore(f"wanlora/attempt_{attempt}", store), rank=rank,
                                world_size=world_size, timeout=timeout,
                                device_id=device if backend == "nccl" else None)
    groups = Groups(layout, device)
    if layout.ulysses > 1:
        # Every rank creates every group, in the same order (a torch.distributed rule).
        for first in range(0, layout.world_size, layout.ulysses):
            members = list(range(first, first + layout.ulysses))
            group = dist.new_group(members)
            if layout.rank in members:
                groups.sequence = group
    if layout.fsdp:
        from torch.distributed.device_mesh import init_device_mesh

        groups.mesh = init_device_mesh(device.type, (layout.world_size,))
    return groups


def is_started() -> bool:
    return dist.is_available() and dist.is_initialized()


class _Step:
    together = True  # False once this rank stopped on its own (a signal), out of step with the others


def stopped_alone() -> None:
    """This rank left its work where a signal found it, not at a point every rank reaches: the others may be in
    a collective it never enters, so it must leave without `stop`'s barrier."""
    _Step.together = False


def can_stop_together() -> bool:
    return _Step.together


def stop() -> None:
    """Leave the process group after a run every rank finished (rank 0 may still be writing files)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------------
# Model placement


def shard_expert(model: torch.nn.Module, groups: Groups, trainable: Iterable[torch.nn.Parameter],
                 reshard_after_forward: bool = True) -> torch.nn.Module:
    """FSDP2 over all ranks: one unit per transformer block, one for the rest; LoRA parameters excluded.

    The frozen weights keep their dtype (bf16 on GPUs): there is nothing to train in them, so no
    float32 master copy and no gradient reduce-scatter; FSDP only all-gathers each block before use
    (again in the checkpoint recompute and backward) and frees it after.
    """
    from torch.distributed.fsdp import fully_shard

    # The root returns a view of the unpatchified output; the trainer never modifies it in place (it
    # computes `pred.float() - target`), which is what this warning is about.
    warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")
    ignored = set(trainable)
    for param in ignored:  # FSDP moves what it manages; the LoRA weights move here
        param.data = param.data.to(groups.device)
    for block in model.blocks:
        fully_shard(block, mesh=groups.mesh, reshard_after_forward=reshard_after_forward, ignored_params=ignored)
    fully_shard(model, mesh=groups.mesh, reshard_after_forward=reshard_after_forward, ignored_params=ignored)
    # fully_shard moves parameters, not buffers outside managed modules: the RoPE tables must follow
    for buffer_owner in model.modules():
        for name, buffer in list(buffer_owner.named_buffers(recurse=False)):
            if buffer.device != groups.device:
                setattr(buffer_owner, name, buffer.to(groups.device))
    return model


def broadcast_parameters(params: Iterable[torch.nn.Parameter], source: int = 0) -> None:
    """Make every rank start from rank `source`'s values (the seeded LoRA init already agrees; this
    guards against anything that drew from the global RNG differently on one rank)."""
    params = list(params)
    if not params or not dist.is_initialized():
        return
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    dist.broadcast(flat, src=source)
    with torch.no_grad():
        offset = 0
        for p in params:
            p.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()


def sum_gradients(params: list[torch.nn.Parameter], bucket_bytes: int = 256 << 20) -> None:
    """Sum the gradients of `params` over all ranks, in flat buckets; a missing gradient counts as zero.

    Every rank must pass the same list (the trainer passes the LoRA parameters of the experts the step
    trained, which every rank knows from the shared draw). Afterwards every parameter has a gradient.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    bucket: list[torch.nn.Parameter] = []
    size = 0
    for param in params:
        bucket.append(param)
        size += param.numel() * param.element_size()
        if size >= bucket_bytes:
            _reduce_bucket(bucket)
            bucket, size = [], 0
    if bucket:
        _reduce_bucket(bucket)


def _reduce_bucket(params: list[torch.nn.Parameter]) -> None:
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        value = flat[offset:offset + p.numel()].view_as(p)
        if p.grad is None:
            p.grad = value.clone()
        else:
            p.grad.copy_(value)
        offset += p.numel()


def sum_values(values: list[float], device: torch.device) -> list[float]:
    """Sum a few floats over all ranks (float64; NaN stays NaN)."""
    if not dist.is_initialized():
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on at least one (stop requests)."""
    if not dist.is_initialized():
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def gather_objects(value: Any) -> list[Any]:
    if not dist.is_initialized():
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def claim_failure_report() -> bool:
    """True for the first rank that fails (it reports the error); later failures stay in their logs.

    Uses the rendezvous store, which torchrun's agent hosts and which outlives the workers.
    """
    if not dist.is_initialized():
        return True
    try:
        store = dist.distributed_c10d._get_default_store()
        return int(store.add(FAILURE_KEY, 1)) == 1
    except Exception:  # the store is gone: better two reports than none
        return True


__all__ = ["Layout", "Groups", "layout_from_environment", "start", "is_started", "stop", "stopped_alone",
           "can_stop_together", "shard_expert",
           "broadcast_parameters",
           "sum_gradients", "sum_values", "any_rank", "gather_objects", "barrier", "claim_failure_report"]
