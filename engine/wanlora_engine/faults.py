"""Fault injection for the fault-tolerance tests (tests/test_faults.py): read here and nowhere else.

The environment variable WANLORA_FAULT_INJECT names the faults of one run, separated by commas:

    kill:RANK@STEP:POINT   SIGKILL rank RANK at POINT of optimizer step STEP (1-based), first attempt only
    term:RANK@STEP:POINT   SIGTERM to rank RANK alone at POINT of step STEP (a stop request one rank sees late)
    write_error@STEP       the checkpoint of step STEP fails with "No space left on device" after its first file
    nan@STEP               the loss of step STEP is NaN on every rank (once per process)

POINT is one of POINTS: `step_start` (before the step's forward passes), `before_update` (gradients summed,
before the optimizer), `checkpoint_write` (rank 0 inside the checkpoint's temporary folder, one file written),
`checkpoint_published` (the checkpoint renamed into place, before older ones are pruned), `after_stop_vote` (step
STEP done and the ranks agreed whether to stop, before they act on it); for the cache stage
`cache_shard`, where STEP is the shard's number (as in its file names): the shard's latents file is in place,
its text file and record are not. A kill or term fires only
on a process's first attempt (TORCHELASTIC_RESTART_COUNT 0 or unset), so an elastic restart runs on. Unset,
every hook is a no-op that costs one dictionary lookup.
"""

from __future__ import annotations

import errno
import os
import signal
from dataclasses import dataclass

ENV = "WANLORA_FAULT_INJECT"
POINTS = ("step_start", "before_update", "checkpoint_write", "checkpoint_published", "after_stop_vote", "cache_shard")
SIGNALS = {"kill": signal.SIGKILL, "term": signal.SIGTERM}


@dataclass(frozen=True)
class Faults:
    kills: frozenset[tuple[int, int, str]] = frozenset()  # (rank, step, point): SIGKILL
    terms: frozenset[tuple[int, int, str]] = frozenset()  # (rank, step, point): SIGTERM
    write_errors: frozenset[int] = frozenset()
    nans: frozenset[int] = frozenset()


def parse(text: str) -> Faults:
    signals: dict[str, set[tuple[int, int, str]]] = {name: set() for name in SIGNALS}
    write_errors, nans = set(), set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, where = item.partition("@")
        name, _, rank = kind.partition(":")
        if name in SIGNALS and rank:
            step, _, point = where.partition(":")
            if point not in POINTS:
                raise ValueError(f"{ENV}: {item!r}: the point must be one of {', '.join(POINTS)}")
            signals[name].add((int(rank), int(step), point))
        elif kind == "write_error":
            write_errors.add(int(where))
        elif kind == "nan":
            nans.add(int(where))
        else:
            raise ValueError(f"{ENV}: {item!r} is not kill:RANK@STEP:POINT, term:RANK@STEP:POINT, write_error@STEP "
                             "or nan@STEP")
    return Faults(frozenset(signals["kill"]), frozenset(signals["term"]), frozenset(write_errors), frozenset(nans))


_nans_done: set[int] = set()


def _faults() -> Faults | None:
    text = os.environ.get(ENV)
    return parse(text) if text else None


def maybe_kill(rank: int, step: int, point: str) -> None:
    """SIGKILL (or SIGTERM) this process when the faults name (rank, step, point) and this is the first attempt.
    A SIGTERM's handler runs before this returns (CPython runs it at the next bytecode of the main thread)."""
    faults = _faults()
    if faults is None or int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0:
        return
    where = (rank, step, point)
    if where in faults.kills:
        os.kill(os.getpid(), signal.SIGKILL)
    elif where in faults.terms:
        os.kill(os.getpid(), signal.SIGTERM)


def maybe_write_error(step: int) -> None:
    """Raise the OSError of a full disk while the checkpoint of `step` is written."""
    faults = _faults()
    if faults is not None and step in faults.write_errors:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def nan_loss(step: int) -> bool:
    """True once per process for a step the faults poison."""
    faults = _faults()
    if faults is None or step not in faults.nans or step in _nans_done:
        return False
    _nans_done.add(step)
    return True
