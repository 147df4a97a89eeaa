"""Where the fast blocks' kept activations wait between forward and backward: on the GPU, or in host memory.

With gradient checkpointing each block keeps its input (and, with the attention output kept, that output
too): at 81 frames 1280×720 that is 2 × 75,600 × 5,120 × 2 B = 1.55 GB a block, 62 GB for the 40 blocks of
an A14B expert — more than what is left of an 80 GB card beside the 28.6 GB of weights. Blocks run in order
forward and in reverse order backward, and each takes far longer than copying its activations over PCIe
(about 0.3 s of compute against 0.03–0.06 s of copy at 81 frames), so the copies hide behind the compute:

- forward: `put` hands the tensors to a side stream that copies them into pinned host buffers once the
  compute stream has produced them; the GPU memory returns to the allocator when the copy is done
  (`record_stream`), nothing waits on the compute stream;
- backward: `take` waits for its own block (normally already copied back) and starts copying back the
  `prefetch` blocks that the backward needs next, into memory allocated on the compute stream.

Modes: `none` keeps everything on the GPU; `all` offloads every block but the last (whose backward comes
right after the forward); `auto` is `all` on a GPU and `none` on a CPU. Measured on an H100 (docs/BENCHMARKS.md):
55 GB/s each way, and a 49-frame step takes the same time with and without the offload, so the default keeps
the GPU lean. Host buffers are registered with CUDA (page-locked) at their exact size (torch's pinned
allocator rounds up to a power of two: 1 GiB for a 774 MB tensor) and reused from step to step; a request
that would leave the host less than 8 GiB free keeps its block on the GPU, and
`warn("activation_offload_limited", …)` says so once.

On a CPU `all` copies into separate host buffers synchronously, so the tests run the same bookkeeping.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

# Host memory left to everyone else when pinning buffers.
HOST_RESERVE_BYTES = 8 << 30


def host_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class _HostBuffer:
    """One page-locked byte buffer (exact size; registered with cudaHostRegister on CUDA machines)."""

    def __init__(self, nbytes: int, pin: bool) -> None:
        self.nbytes = nbytes
        self.data = torch.empty(nbytes, dtype=torch.uint8)
        self.pinned = False
        if pin:
            error = int(torch.cuda.cudart().cudaHostRegister(self.data.data_ptr(), nbytes, 0))
            if error != 0:
                raise RuntimeError(f"cudaHostRegister of {nbytes} bytes failed with CUDA error {error}")
            self.pinned = True

    def view(self, like: torch.Tensor) -> torch.Tensor:
        nbytes = like.numel() * like.element_size()
        return self.data[:nbytes].view(like.dtype).view(like.shape)

    def release(self) -> None:
        if self.pinned:
            torch.cuda.cudart().cudaHostUnregister(self.data.data_ptr())
            self.pinned = False
        self.data = torch.empty(0, dtype=torch.uint8)


class _HostPool:
    """Host buffers reused across steps: best fit; a new buffer first frees the idle smaller ones."""

    def __init__(self, pin: bool, drain: Callable[[], None]) -> None:
        self.pin = pin
        self.drain = drain  # waits for the copies in flight: a buffer is freed only when no copy reads it
        self.idle: list[_HostBuffer] = []
        self.busy = 0  # bytes handed out
        self.held = 0  # bytes allocated in all

    def get(self, nbytes: int) -> _HostBuffer | None:
        fitting = [b for b in self.idle if b.nbytes >= nbytes]
        if fitting:
            best = min(fitting, key=lambda b: b.nbytes)
            self.idle.remove(best)
            self.busy += best.nbytes
            return best
        smaller = [b for b in self.idle if b.nbytes < nbytes]
        if smaller:
            self.drain()
        for small in smaller:
            self.idle.remove(small)
            self.held -= small.nbytes
            small.release()
        available = host_available_bytes()
        if available is not None and available - nbytes < HOST_RESERVE_BYTES:
            return None
        try:
            buffer = _HostBuffer(nbytes, self.pin)
        except RuntimeError:  # the host refused to lock more memory: keep this block on the GPU
            return None
        self.held += nbytes
        self.busy += nbytes
        return buffer

    def put(self, buffer: _HostBuffer) -> None:
        self.busy -= buffer.nbytes
        self.idle.append(buffer)

    def close(self) -> None:
        self.drain()
        for buffer in self.idle:
            buffer.release()
        self.held -= sum(b.nbytes for b in self.idle)
        self.idle = []


@dataclass(eq=False)
class StashHandle:
    """One block call's kept tensors: on the GPU (`tensors`), or in host buffers (`host`) with copy events."""

    index: int
    shapes: list[tuple[torch.Size, torch.dtype]]
    tensors: list[torch.Tensor] | None = None
    host: list[torch.Tensor] | None = None
    buffers: list[_HostBuffer] = field(default_factory=list)
    copied: Any = None  # event: the last copy (to host or back) finished on the copy stream
    taken: bool = False
    store: Any = None

    @property
    def nbytes(self) -> int:
        return sum(s.numel() * d.itemsize for s, d in self.shapes)

    def __del__(self) -> None:  # a forward whose backward never ran: return the buffers
        store = self.store() if self.store is not None else None
        if store is not None and self.buffers:
            for buffer in self.buffers:
                store.pool.put(buffer)
            self.buffers = []


class ActivationStore:
    def __init__(self, device: torch.device, mode: str, prefetch: int = 1,
                 warn: Callable[[str, str], None] | None = None) -> None:
        if mode not in ("auto", "none", "all"):
            raise ValueError(f"activation offload mode {mode!r}: expected auto, none or all")
        self.device = torch.device(device)
        self.mode = mode
        self.prefetch = max(0, prefetch)
        self.warn = warn
        self.cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if self.cuda and mode != "none" else None
        self.pool = _HostPool(pin=self.cuda, drain=self._drain)
        self.pending: list[StashHandle] = []  # handles of the current forward, in forward order
        self.resident_from: int | None = None  # blocks with index >= this stay on the GPU (per forward)
        self.warned = False
        self.offloaded_bytes = 0  # statistics of the last forward
        self.resident_bytes = 0

    # -----------------------------------------------------------------------------------------------

    def _plan(self, count: int) -> None:
        """At a forward's first block: blocks with index >= resident_from stay on the GPU."""
        self.pending = [h for h in self.pending if not h.taken]
        self.offloaded_bytes = self.resident_bytes = 0
        if self.mode == "none" or (self.mode == "auto" and not self.cuda):
            self.resident_from = 0
        else:
            # The last block's backward comes right after the forward: copying it out and back would only wait.
            self.resident_from = count - 1

    def put(self, index: int, count: int, tensors: list[torch.Tensor]) -> StashHandle:
        """Keep `tensors` (contiguous) for the backward of block `index` of `count`."""
        for t in tensors:
            if not t.is_contiguous():
                raise ValueError("the activation store keeps contiguous tensors only")
        if index == 0 or self.resident_from is None:
            self._plan(count)
        handle = StashHandle(index, [(t.shape, t.dtype) for t in tensors], store=weakref.ref(self))
        self.pending.append(handle)
        if index >= self.resident_from:
            handle.tensors = list(tensors)
            self.resident_bytes += handle.nbytes
            return handle
        buffers = []
        for t in tensors:
            buffer = self.pool.get(t.numel() * t.element_size())
            if buffer is None:
                for b in buffers:
                    self.pool.put(b)
                if not self.warned and self.warn is not None:
                    self.warn("activation_offload_limited", "too little free host memory to offload the kept "
                              "block activations: they stay on the GPU (more GPU memory, maybe out of memory)")
                self.warned = True
                handle.tensors = list(tensors)
                self.resident_bytes += handle.nbytes
                return handle
            buffers.append(buffer)
        handle.buffers = buffers
        handle.host = [b.view(t) for b, t in zip(buffers, tensors)]
        if self.cuda:
            produced = torch.cuda.current_stream(self.device).record_event()
            self.stream.wait_event(produced)
            with torch.cuda.stream(self.stream):
                for t, h in zip(tensors, handle.host):
                    h.copy_(t, non_blocking=True)
                    t.record_stream(self.stream)  # its memory is reused only after this copy
                handle.copied = self.stream.record_event()
        else:
            for t, h in zip(tensors, handle.host):
                h.copy_(t)
        self.offloaded_bytes += handle.nbytes
        return handle

    def _fetch(self, handle: StashHandle) -> None:
        """Start copying an offloaded handle back to the GPU (no-op when it is there or on its way)."""
        if handle.tensors is not None or handle.host is None:
            return
        if not self.cuda:
            handle.tensors = [h.clone() for h in handle.host]
            return
        compute = torch.cuda.current_stream(self.device)
        # allocated on the compute stream, which uses them next; the copy waits until that memory is free
        handle.tensors = [torch.empty(shape, dtype=dtype, device=self.device) for shape, dtype in handle.shapes]
        self.stream.wait_event(compute.record_event())
        with torch.cuda.stream(self.stream):
            for t, h in zip(handle.tensors, handle.host):
                t.copy_(h, non_blocking=True)
            handle.copied = self.stream.record_event()

    def take(self, handle: StashHandle) -> list[torch.Tensor]:
        """The tensors of `handle` on the GPU, for its backward; prefetches the blocks before it."""
        if handle.taken:
            raise RuntimeError("a block's kept activations were used twice (backward through the graph twice "
                               "needs retain_graph, which the fast blocks do not support)")
        self._fetch(handle)
        if self.cuda and handle.copied is not None:
            torch.cuda.current_stream(self.device).wait_event(handle.copied)
        tensors = handle.tensors
        handle.taken = True
        handle.tensors = None
        if handle.buffers:  # the copy stream reuses a buffer only after this handle's copy back (same stream)
            for buffer in handle.buffers:
                self.pool.put(buffer)
            handle.buffers = []
            handle.host = None
        if handle in self.pending:
            position = self.pending.index(handle)
            for earlier in self.pending[max(0, position - self.prefetch):position][::-1]:
                if not earlier.taken:
                    self._fetch(earlier)
            self.pending.remove(handle)
        return tensors

    def _drain(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()

    def close(self) -> None:
        """Free the host buffers (pinned memory is a scarce resource of the machine)."""
        self.pending = []
        self.pool.close()
