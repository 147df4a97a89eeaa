"""Weight streaming (issue 18): the frozen expert's blocks that do not fit a GPU memory limit wait in pinned host
memory and are copied to the GPU on a side stream, `prefetch` blocks ahead of their use, in the forward and in
the backward (checkpoint recompute + backward of the same block, one visit). docs/streaming.md is the contract.

- Which blocks stay resident: `plan_streaming(limit_bytes, ...)` (the rule, one formula, see `StreamPlan`).
  The blocks that stream are the LAST ones (indices >= resident): the forward starts on resident blocks while
  the first streamed ones are copied in, and the backward ends on them while the next step's first streamed
  blocks are copied in.
- Streamed block weights live in one exact-size page-locked buffer per block (bf16 as loaded, or fp8 e4m3 with
  per-output-channel scales, `fp8.py`), and run from one of `prefetch + 1` GPU slots of one block's size. A
  slot is overwritten only after an event recorded on the compute stream after the last kernel that read it;
  the compute stream waits for the copy's event before the block runs. Both ways are explicit events, no
  synchronisation of the host with the GPU.
- Between uses a streamed block's parameters point at their host copies (CPU tensors): a kernel that touched
  a block outside `acquire`/`release` would fail on the device mismatch instead of reading a stale slot.
- The LoRA parameters (anything with requires_grad) never stream: they stay on the GPU with their gradients
  and optimizer state. Non-block modules (patch and text embeddings, time projection, head) stay resident.

On a CPU the same bookkeeping runs with CPU "slots" and synchronous copies (the tests: streamed and unstreamed
steps give equal losses and LoRA gradients, and with `poison_released` every released slot is filled with NaN,
so a weight read outside its acquire window would show in the loss).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .fast_model import KEPT_LINEARS_PER_BLOCK, dropout_input_features
from .offload import _HostBuffer, host_available_bytes

ALIGN = 256  # bytes: every parameter's view in a slot starts on a 256-byte boundary (vectorised copies/kernels)
PHASES = ("forward_train", "forward", "backward")


class StreamingError(ValueError):
    """A streaming set-up that cannot work, with what to change."""


# ---------------------------------------------------------------------------------------------------
# The rule


@dataclass(frozen=True)
class StreamPlan:
    """Where the blocks go under a GPU memory limit.

    resident = clamp(floor((limit - fixed - working - slots) / block), 0, blocks), with slots = (prefetch + 1)
    x block when any block streams and 0 when all are resident (then resident = blocks iff
    limit >= fixed + working + blocks x block). Blocks [0, resident) stay on the GPU, [resident, blocks) stream.
    """

    blocks: int
    resident: int
    block_bytes: int  # GPU bytes of one block's frozen weights (bf16 as loaded)
    host_block_bytes: int  # host bytes of one streamed block (bf16: = block_bytes; fp8: about half)
    prefetch: int
    fixed_bytes: int  # non-block weights + LoRA parameters, gradients and optimizer state
    working_bytes: int  # activations of the largest step (estimate_working_bytes)
    limit_bytes: int | None

    @property
    def streamed(self) -> int:
        return self.blocks - self.resident

    @property
    def slot_count(self) -> int:
        return self.prefetch + 1 if self.streamed else 0

    @property
    def gpu_weight_bytes(self) -> int:
        return (self.resident + self.slot_count) * self.block_bytes

    @property
    def host_weight_bytes(self) -> int:
        return self.streamed * self.host_block_bytes

    @property
    def link_bytes_per_step(self) -> int:
        """Host->GPU weight bytes of one training step after the first: each streamed block once forward and
        once backward, less the prefetch + 1 blocks still in the slots at each of the two turns (forward ->
        backward, backward -> next forward): 2 · (streamed - prefetch - 1) blocks (the first step: + prefetch + 1)."""
        return 2 * max(0, self.streamed - self.slot_count) * self.host_block_bytes

    def to_json(self) -> dict[str, Any]:
        return {"blocks": self.blocks, "resident": self.resident, "streamed": self.streamed,
                "block_bytes": self.block_bytes, "host_block_bytes": self.host_block_bytes,
                "prefetch": self.prefetch, "slots": self.slot_count, "fixed_bytes": self.fixed_bytes,
                "working_bytes": self.working_bytes, "limit_bytes": self.limit_bytes,
                "gpu_weight_bytes": self.gpu_weight_bytes, "host_weight_bytes": self.host_weight_bytes,
                "link_bytes_per_step": self.link_bytes_per_step}


def plan_streaming(limit_bytes: int | None, blocks: int, block_bytes: int, fixed_bytes: int, working_bytes: int,
                   prefetch: int = 1, host_block_bytes: int | None = None) -> StreamPlan:
    """The rule of `StreamPlan`; `limit_bytes` None: no limit, every block resident."""
    if prefetch < 1:
        raise StreamingError(f"weight prefetch depth {prefetch}: at least 1 block must be copied ahead")
    host = block_bytes if host_block_bytes is None else host_block_bytes
    if limit_bytes is None or limit_bytes >= fixed_bytes + working_bytes + blocks * block_bytes:
        return StreamPlan(blocks, blocks, block_bytes, host, prefetch, fixed_bytes, working_bytes, limit_bytes)
    room = limit_bytes - fixed_bytes - working_bytes - (prefetch + 1) * block_bytes
    if room < 0:
        need = fixed_bytes + working_bytes + (prefetch + 1) * block_bytes
        raise StreamingError(
            f"a GPU memory limit of {limit_bytes / 2**30:.2f} GiB is below what streaming every block needs: "
            f"{need / 2**30:.2f} GiB ({fixed_bytes / 2**30:.2f} fixed + {working_bytes / 2**30:.2f} activations + "
            f"{prefetch + 1} block slots of {block_bytes / 2**30:.2f}); train fewer frames or a smaller size, "
            f"or raise the limit")
    resident = min(blocks, room // block_bytes)
    return StreamPlan(blocks, int(resident), block_bytes, host, prefetch, fixed_bytes, working_bytes, limit_bytes)


def estimate_working_bytes(tokens: int, dim: int, ffn_dim: int, text_tokens: int, ffn_chunk_tokens: int,
                           activation_prefetch: int = 1, element_size: int = 2, kept_linears: int = 0,
                           dropout_features: int = 0) -> int:
    """GPU activation bytes at the peak of one step (a block's recompute + backward), in units of one
    [tokens, dim] activation U; see docs/streaming.md for the count and its calibration on the H100.

    Recompute graph of the attention half: 19 U (inputs, q/k/v before and after norm+RoPE, kept attention output,
    cross-attention q/out, residuals); gradients in flight at the self-attention backward: 4 U; the block's own
    kept activations (input + attention output) and the next block's prefetched ones: 2 U x (1 + prefetch).
    The feed-forward part: 3 hidden-size tensors of the tokens it runs at once (all, or ffn_chunk_tokens).
    `kept_linears` (6 when blocks keep their linear outputs, FastBlockOptions.keep_linear_blocks): the block in
    backward replays them in place of the recompute's own (no more memory), the prefetched blocks' are extra.
    `dropout_features` (`fast_model.dropout_input_features`: Σ in_features of the video-side adapted linears whose
    LoRA dropout is active, 6 x dim for the attention targets): each keeps its dropped-out input for its A gradient,
    tokens x in_features more (6 U at dropout > 0; the calibration's runs had dropout 0).
    """
    unit = tokens * dim * element_size
    ffn_tokens = tokens if ffn_chunk_tokens <= 0 else min(tokens, ffn_chunk_tokens)
    ffn = 3 * ffn_tokens * ffn_dim * element_size
    text = 4 * text_tokens * dim * element_size
    dropout = tokens * dropout_features * element_size
    return int((19 + 4 + 2 * (1 + activation_prefetch) + kept_linears * activation_prefetch) * unit + ffn + text
               + dropout)


# ---------------------------------------------------------------------------------------------------
# The layout of one block's frozen parameters in a flat byte buffer


@dataclass(frozen=True)
class _Entry:
    path: str  # parameter name inside the block ("attn1.to_q.base_layer.weight")
    offset: int
    nbytes: int
    shape: torch.Size
    dtype: torch.dtype


def _frozen_parameters(block: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(name, p) for name, p in block.named_parameters() if not p.requires_grad]


def block_layout(block: torch.nn.Module) -> tuple[list[_Entry], int]:
    entries = []
    offset = 0
    for name, p in _frozen_parameters(block):
        nbytes = p.numel() * p.element_size()
        entries.append(_Entry(name, offset, nbytes, p.shape, p.dtype))
        offset += -(-nbytes // ALIGN) * ALIGN
    return entries, offset


def _view(buffer: torch.Tensor, entry: _Entry) -> torch.Tensor:
    return buffer[entry.offset:entry.offset + entry.nbytes].view(entry.dtype).view(entry.shape)


def frozen_block_bytes(block: torch.nn.Module) -> int:
    """Bytes of one block's frozen weights as the slots hold them (aligned)."""
    return block_layout(block)[1]


def fixed_bytes_of(model: Any, blocks: list[torch.nn.Module], optimizer_bytes_per_param: int = 2) -> int:
    """Non-block weights + trainable parameters (fp32 value + gradient + optimizer state per parameter)."""
    in_blocks = {id(p) for b in blocks for p in b.parameters()}
    frozen_outside = sum(p.numel() * p.element_size() for p in model.parameters()
                         if id(p) not in in_blocks and not p.requires_grad)
    trainable = sum(p.numel() * (2 * p.element_size() + optimizer_bytes_per_param)
                    for p in model.parameters() if p.requires_grad)
    return frozen_outside + trainable


# ---------------------------------------------------------------------------------------------------
# The streamer


@dataclass
class _Slot:
    buffer: torch.Tensor
    block: int | None = None
    ready: Any = None  # event on the copy stream: the block's weights are in the buffer
    free_after: Any = None  # event on the compute stream: the last kernel reading the buffer was issued before
    in_use: bool = False


@dataclass
class StreamStats:
    copies: int = 0  # host->GPU block copies issued
    copied_bytes: int = 0
    waits_unprefetched: int = 0  # acquisitions that found their block neither loaded nor on its way
    host_pinned_bytes: int = 0
    sequence: list[tuple[str, int]] = field(default_factory=list)  # (phase, block) acquisitions, when recorded


class WeightStreamer:
    """Binds each streamed block's parameters to a GPU slot for the span of one use (see the module doc)."""

    def __init__(self, blocks: list[torch.nn.Module], plan: StreamPlan, device: torch.device,
                 host_format: Callable[..., Any] | None = None, poison_released: bool = False,
                 record_sequence: bool = False) -> None:
        self.blocks = blocks
        self.plan = plan
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.poison_released = poison_released
        self.stats = StreamStats()
        self.record_sequence = record_sequence
        self.layout, self.slot_bytes = block_layout(blocks[0])
        for i, block in enumerate(blocks[1:], 1):
            entries, _ = block_layout(block)
            if [(e.path, e.shape, e.dtype) for e in entries] != [(e.path, e.shape, e.dtype) for e in self.layout]:
                raise StreamingError(f"block {i} has other frozen parameters than block 0: weight streaming needs "
                                     "blocks of one shape")
        self.params: list[dict[str, torch.nn.Parameter]] = [dict(_frozen_parameters(b)) for b in blocks]
        self.streamed = list(range(plan.resident, plan.blocks))
        self.host: dict[int, Any] = {}
        self.slots: list[_Slot] = []
        self.stream = torch.cuda.Stream(self.device) if self.cuda else None
        self.host_format = host_format  # fp8.Fp8HostFormat or None (exact bytes)
        self._place()

    # -----------------------------------------------------------------------------------------------

    def _place(self) -> None:
        """Resident blocks to the device; streamed blocks' frozen weights into their host buffers."""
        for i, block in enumerate(self.blocks):
            for p in block.parameters():
                if p.requires_grad or i < self.plan.resident:
                    if p.device != self.device:
                        p.data = p.data.to(self.device)
        if not self.streamed:
            return
        need = len(self.streamed) * self.plan.host_block_bytes
        available = host_available_bytes()
        if self.cuda and available is not None and available < need:
            raise StreamingError(f"weight streaming needs {need / 2**30:.1f} GiB of host memory for "
                                 f"{len(self.streamed)} blocks but {available / 2**30:.1f} GiB is available; "
                                 "raise the GPU memory limit (fewer streamed blocks) or use fp8 host weights")
        for i in self.streamed:
            self.host[i] = self._to_host(i)
            self._bind_host(i)
        for _ in range(self.plan.slot_count):
            self.slots.append(_Slot(torch.empty(self.slot_bytes, dtype=torch.uint8, device=self.device)))

    def _to_host(self, index: int) -> Any:
        params = self.params[index]
        if self.host_format is not None:
            record = self.host_format.pack(self.layout, params, pin=self.cuda)
            self.stats.host_pinned_bytes += record.nbytes
            return record
        buffer = _HostBuffer(self.slot_bytes, pin=self.cuda)
        for entry in self.layout:
            _view(buffer.data, entry).copy_(params[entry.path].data)
        self.stats.host_pinned_bytes += buffer.nbytes
        return buffer

    def _bind_host(self, index: int) -> None:
        """Between uses the parameters point at host memory (a stray GPU use fails loudly)."""
        host = self.host[index]
        if self.host_format is not None:
            for entry in self.layout:  # fp8 records hold no exact bf16 copy: an empty CPU placeholder
                self.params[index][entry.path].data = torch.empty(0, dtype=entry.dtype)
            return
        for entry in self.layout:
            self.params[index][entry.path].data = _view(host.data, entry)

    def _bind_slot(self, index: int, slot: _Slot) -> None:
        for entry in self.layout:
            self.params[index][entry.path].data = _view(slot.buffer, entry)

    # -----------------------------------------------------------------------------------------------

    def _upcoming(self, index: int, phase: str) -> list[int]:
        """The next `prefetch` streamed blocks after block `index` in `phase` (forward 0..n-1, backward n-1..0;
        a training forward turns into its backward, a backward into the next step's forward)."""
        n = self.plan.blocks
        if phase == "backward":
            order = list(range(index - 1, -1, -1)) + list(range(n))
        elif phase == "forward_train":
            order = list(range(index + 1, n)) + list(range(n - 1, -1, -1))
        else:
            order = list(range(index + 1, n)) + list(range(n))
        found: list[int] = []
        for i in order:
            if i >= self.plan.resident and i != index and i not in found:
                found.append(i)
                if len(found) == self.plan.prefetch:
                    break
        return found

    def _slot_of(self, index: int) -> _Slot | None:
        return next((s for s in self.slots if s.block == index), None)

    def _load(self, index: int, keep: set[int]) -> _Slot:
        """Start copying block `index` into a slot that holds nothing in `keep` and is not in use."""
        candidates = [s for s in self.slots if not s.in_use and s.block not in keep]
        if not candidates:
            raise RuntimeError("weight streaming: no free slot (prefetch depth and slots disagree)")
        slot = next((s for s in candidates if s.block is None), candidates[0])
        slot.block = index
        if self.cuda:
            if slot.free_after is not None:
                self.stream.wait_event(slot.free_after)
            with torch.cuda.stream(self.stream):
                self._copy_in(index, slot)
                slot.ready = self.stream.record_event()
        else:
            self._copy_in(index, slot)
        self.stats.copies += 1
        self.stats.copied_bytes += self.plan.host_block_bytes
        return slot

    def _copy_in(self, index: int, slot: _Slot) -> None:
        host = self.host[index]
        if self.host_format is not None:
            self.host_format.unpack(host, slot.buffer, self.layout)
        else:
            slot.buffer.copy_(host.data, non_blocking=self.cuda)

    def acquire(self, index: int, phase: str) -> None:
        """Block `index` is about to run in `phase`: its weights on the GPU, the next ones on their way."""
        if phase not in PHASES:
            raise ValueError(f"streaming phase {phase!r}: expected one of {PHASES}")
        if self.record_sequence:
            self.stats.sequence.append((phase, index))
        upcoming = self._upcoming(index, phase) if self.streamed else []
        if index >= self.plan.resident:
            slot = self._slot_of(index)
            if slot is None:
                self.stats.waits_unprefetched += 1
                slot = self._load(index, keep={index} | set(upcoming))
            if self.cuda:
                torch.cuda.current_stream(self.device).wait_event(slot.ready)
            slot.in_use = True
            self._bind_slot(index, slot)
        keep = {index} | set(upcoming)
        for i in upcoming:
            if self._slot_of(i) is None:
                self._load(i, keep)

    def release(self, index: int) -> None:
        """Block `index`'s kernels are issued: its slot may be overwritten once they have run."""
        if index < self.plan.resident:
            return
        slot = self._slot_of(index)
        if slot is None or not slot.in_use:
            raise RuntimeError(f"weight streaming: block {index} released without being acquired")
        slot.in_use = False
        if self.cuda:
            slot.free_after = torch.cuda.current_stream(self.device).record_event()
        self._bind_host(index)
        if self.poison_released:
            slot.buffer.fill_(255)  # NaN in every float format: a read after release would poison the loss
            slot.block = None

    def move_slots(self, device: torch.device) -> None:
        """Slots on the streaming device (the expert trains) or none (it waits in host memory, `move_model`)."""
        if self.stream is not None:
            self.stream.synchronize()
        if self.cuda:
            torch.cuda.current_stream(self.device).synchronize()  # no kernel still reads a slot given back
        here = torch.device(device).type == self.device.type
        for slot in self.slots:
            if slot.in_use:
                raise RuntimeError("weight streaming: an expert moved while one of its blocks runs")
            slot.buffer = (torch.empty(self.slot_bytes, dtype=torch.uint8, device=self.device) if here
                           else torch.empty(0, dtype=torch.uint8))
            slot.block, slot.ready, slot.free_after = None, None, None

    def close(self) -> None:
        """Every block back on the device in its own memory (the exact bf16 weights; fp8 copies dequantized)."""
        if self.stream is not None:
            self.stream.synchronize()
        for i in self.streamed:
            own = torch.empty(self.slot_bytes, dtype=torch.uint8, device=self.device)
            slot = _Slot(own, block=i)
            self._copy_in(i, slot)
            for entry in self.layout:
                self.params[i][entry.path].data = _view(own, entry)
            release = getattr(self.host[i], "release", None)
            if release is not None:
                release()
        if self.stream is not None:
            self.stream.synchronize()
        self.host = {}
        self.slots = []
        self.streamed = []


def enable_weight_streaming(model: Any, limit_bytes: int | None, working_bytes: int, device: torch.device,
                            prefetch: int = 1, host_format: Any = None, poison_released: bool = False,
                            record_sequence: bool = False, optimizer_bytes_per_param: int = 2) -> WeightStreamer:
    """Stream the frozen blocks of a fast-blocks model under `limit_bytes` of GPU memory (None: no limit).

    Call after `fast_model.enable_fast_blocks` and after the LoRA adapters exist; the model must not be moved
    with `.to()` afterwards (that would pull the streamed blocks back onto the GPU). `working_bytes`: the
    activations of the largest step (`estimate_working_bytes`). `optimizer_bytes_per_param`: the optimizer's state
    per trainable parameter (2 for 8-bit AdamW, 8 for 32-bit AdamW: `fixed_bytes_of`). Returns the streamer (its
    `plan` says where each block went); `disable_weight_streaming(model)` puts every block back on the device.
    """
    fast = getattr(model, "_wanlora_fast_blocks", None)
    if fast is None:
        raise StreamingError("weight streaming runs inside the fast blocks: call enable_fast_blocks first "
                             "(training.blocks 'fast')")
    if not fast.options.checkpoint:
        raise StreamingError("weight streaming needs gradient checkpointing (training.gradient_checkpointing true): "
                             "without it autograd keeps every block's weights until the backward")
    existing = getattr(model, "_wanlora_streamer", None)
    if existing is not None:
        disable_weight_streaming(model)
    device = torch.device(device)
    blocks = list(model.blocks)
    # Everything but the blocks' frozen weights goes to the device (the model may come straight from loading,
    # on the CPU: an expert is never moved to the GPU whole, which is what a small card cannot hold).
    _move_outside_blocks(model, device)
    layout, block_bytes = block_layout(blocks[0])
    fixed = fixed_bytes_of(model, blocks, optimizer_bytes_per_param)
    host_block_bytes = None
    if host_format is not None:
        host_block_bytes = host_format.host_bytes(layout)
        fixed += host_format.gpu_staging_bytes(layout)  # fp8 only: dequantization buffers on the weight stream
    plan = plan_streaming(limit_bytes, len(blocks), block_bytes, fixed, working_bytes, prefetch, host_block_bytes)
    streamer = WeightStreamer(blocks, plan, device, host_format, poison_released, record_sequence)
    for runner in fast.runners:
        runner.streamer = streamer
    model._wanlora_streamer = streamer
    if streamer.cuda:
        torch.cuda.empty_cache()
    return streamer


def _move_outside_blocks(model: Any, device: torch.device) -> None:
    """The non-block modules, top-level parameters (diffusers' scale_shift_table) and every buffer to `device`."""
    for name, module in model.named_children():
        if name != "blocks":
            module.to(device)
    for param in model.parameters(recurse=False):
        param.data = param.data.to(device)
    for owner in [model, *model.blocks.modules()]:
        for key, buffer in owner._buffers.items():
            if buffer is not None:
                owner._buffers[key] = buffer.to(device)


def move_model(model: Any, device: torch.device) -> None:
    """`model.to(device)` for an expert whose blocks may stream (the trainer's inactive expert going to host memory
    and back): the streamed blocks' frozen weights stay where they wait, in host memory; everything else moves,
    LoRA parameters and their gradients included, and the streamer's GPU slots are given back while the expert is
    off the GPU (taken again when it returns). Without a streamer this is `model.to(device)`."""
    streamer = getattr(model, "_wanlora_streamer", None)
    if streamer is None:
        model.to(device)
        return
    device = torch.device(device)
    _move_outside_blocks(model, device)
    streamed = {id(p) for i in streamer.streamed for p in streamer.params[i].values()}
    for block in streamer.blocks:
        for p in block.parameters():
            if id(p) in streamed:
                continue
            p.data = p.data.to(device)
            if p.grad is not None:
                p.grad = p.grad.to(device)
    streamer.move_slots(device)


def disable_weight_streaming(model: Any) -> None:
    streamer = getattr(model, "_wanlora_streamer", None)
    if streamer is None:
        return
    streamer.close()
    fast = getattr(model, "_wanlora_fast_blocks", None)
    if fast is not None:
        for runner in fast.runners:
            runner.streamer = None
    del model._wanlora_streamer


def enable_weight_streaming_for(model: Any, limit_bytes: int | None, max_tokens: int, text_tokens: int,
                                device: torch.device, prefetch: int = 1, fp8: bool = False,
                                optimizer_bytes_per_param: int = 2) -> WeightStreamer:
    """`enable_weight_streaming` with the working set of the largest sample the run trains (`max_tokens` latent
    tokens after patching, e.g. 75,600 for 81 frames at 1280x720) estimated from the model's own shape and the
    fast blocks' options: the one call a trainer needs, given `hardware.gpu_memory_limit` in bytes."""
    fast = getattr(model, "_wanlora_fast_blocks", None)
    if fast is None:
        raise StreamingError("weight streaming runs inside the fast blocks: call enable_fast_blocks first "
                             "(training.blocks 'fast')")
    config = model.config
    dim = config.num_attention_heads * config.attention_head_dim
    element_size = next(iter(model.blocks[0].ffn.parameters())).element_size()
    kept = KEPT_LINEARS_PER_BLOCK if fast.options.keep_linear_blocks else 0
    working = estimate_working_bytes(max_tokens, dim, config.ffn_dim, text_tokens, fast.options.ffn_chunk_tokens,
                                     fast.options.prefetch_blocks, element_size, kept,
                                     dropout_input_features(model.blocks[0]))
    host_format = None
    if fp8:
        from .fp8 import Fp8HostFormat

        host_format = Fp8HostFormat()
    return enable_weight_streaming(model, limit_bytes, working, device, prefetch, host_format,
                                   optimizer_bytes_per_param=optimizer_bytes_per_param)
