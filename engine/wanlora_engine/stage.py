"""One lifecycle for every engine stage (cache, train, sample, evaluate), written once.

    config → run_started → the stage's work (events) → [error] → run_finished → exit code

A stage contributes only what differs: how its configuration is read, where its events go, its name in
`run_started`, and its work. Everything else is here: the exit codes, the versions and device fields of
`run_started`, SIGINT/SIGTERM turned into KeyboardInterrupt (an `interrupted` run_finished instead of a
dead process), the error event of a bad config (on stdout only: no run folder is known yet), of an engine
error and of an unexpected exception (with the traceback's tail), and, under torchrun, the error report
of the first rank that fails. docs/engine-contract.md documents the events.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import distributed
from .errors import ConfigError, EngineError
from .events import EventWriter, log, set_log_enabled

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130

STAGES = ("cache", "train", "sample", "evaluate")


def engine_versions() -> dict[str, str]:
    """The versions `run_started` reports."""
    import diffusers
    import torch

    from . import __version__

    return {"engine_version": __version__, "torch_version": torch.__version__,
            "diffusers_version": diffusers.__version__}


def device_fields(name: str) -> dict[str, object]:
    """`device` and `device_name` of `run_started` for a device setting ('auto', 'cpu' or 'cuda')."""
    import torch

    use_cuda = name == "cuda" or (name == "auto" and torch.cuda.is_available())
    if use_cuda and torch.cuda.is_available():
        return {"device": "cuda", "device_name": torch.cuda.get_device_name(0)}
    return {"device": "cpu", "device_name": "cpu"}


@dataclass
class StageResult:
    """What the stage's work returns for `run_finished`; `interrupted` exits with EXIT_INTERRUPTED."""

    status: str = "completed"  # 'completed' or 'interrupted'
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    step: int | None = None


@dataclass
class StageRun:
    """One stage with its configuration read: what `run_started` says about it, and its work."""

    events_path: Path
    run_name: str
    device: str  # the device setting: 'auto', 'cpu' or 'cuda'
    config_path: Path | None
    work: Callable[[EventWriter], StageResult]
    resumed_from_step: int | None = None
    restarted_by: str | None = None  # 'torchrun' or 'slurm' when a launcher started this process again
    interrupted_note: str | None = None  # logged when a signal stops the stage


@dataclass(frozen=True)
class StageOptions:
    """The command line's options besides --config (`train` and `sample`)."""

    resume: bool = False
    ulysses: int = 1
    fsdp: bool = False


# ---------------------------------------------------------------------------------------------------
# The stages: each reads its configuration (raising ConfigError) and names its work.


def _cache(config_path: Path, options: StageOptions, layout: distributed.Layout) -> StageRun:
    from .cache import run_cache
    from .config import load_config

    config = load_config(config_path)

    def work(events: EventWriter) -> StageResult:
        return StageResult(summary=run_cache(config, events, layout))

    return StageRun(config.derived.run_dir / "cache-events.jsonl", config.run.name, config.cache.device,
                    config.source_path, work)


def restarted_by_launcher(env: dict[str, str] | None = None) -> str | None:
    """Which launcher restarted this process ('torchrun' after an elastic restart, 'slurm' in a requeued job),
    or None on a first start."""
    env = dict(os.environ) if env is None else env
    for name, launcher in (("TORCHELASTIC_RESTART_COUNT", "torchrun"), ("SLURM_RESTART_COUNT", "slurm")):
        try:
            if int(env.get(name, "0") or 0) > 0:
                return launcher
        except ValueError:
            continue
    return None


def _train(config_path: Path, options: StageOptions, layout: distributed.Layout) -> StageRun:
    from .checkpoints import checkpoint_dirs, checkpoint_step, checkpoint_to_resume
    from .config import load_config
    from .devices import resolve_device
    from .train import run_train

    config = load_config(config_path)
    # A restart by torchrun (a rank died) or a requeued Slurm job runs the first command again: it continues
    # from the last whole checkpoint when there is one, whether or not that command said --resume.
    restarted = restarted_by_launcher()
    run_dir = config.derived.run_dir
    resume = options.resume or (restarted is not None and bool(checkpoint_dirs(run_dir)))
    point = checkpoint_to_resume(run_dir, resume)

    def work(events: EventWriter) -> StageResult:
        groups = distributed.start(layout, resolve_device(config.training.device, "training.device").type)
        status, outputs, summary = run_train(config, events, point, groups)
        return StageResult(status, outputs, summary, step=summary.get("steps_done"))

    return StageRun(run_dir / "events.jsonl", config.run.name, config.training.device, config.source_path, work,
                    resumed_from_step=checkpoint_step(point.folder) if point.folder else None,
                    restarted_by=restarted)


def _sample(config_path: Path, options: StageOptions, layout: distributed.Layout) -> StageRun:
    from .sample import run_sample, sample_device
    from .sample_job import load_sample_job

    job = load_sample_job(config_path)

    def work(events: EventWriter) -> StageResult:
        groups = distributed.start(layout, sample_device(job).type)
        status, outputs, summary = run_sample(job, events, groups)
        return StageResult(status, outputs, summary)

    return StageRun(job.output.dir / "sample-events.jsonl", job.output.dir.name, job.device, job.source_path, work,
                    interrupted_note="interrupted: finished videos are kept; "
                                     "run the same command again to make the rest")


def _evaluate(config_path: Path, options: StageOptions, layout: distributed.Layout) -> StageRun:
    from .evaluate.config import load_evaluate_config
    from .evaluate.run import run_evaluate

    config = load_evaluate_config(config_path)

    def work(events: EventWriter) -> StageResult:
        outputs, summary = run_evaluate(config, events)
        return StageResult("completed", outputs, summary)

    return StageRun(config.out_dir / "evaluate-events.jsonl", config.out_dir.name, config.device, config.source_path,
                    work)


_PREPARE: dict[str, Callable[[Path, StageOptions, distributed.Layout], StageRun]] = {
    "cache": _cache, "train": _train, "sample": _sample, "evaluate": _evaluate,
}


# ---------------------------------------------------------------------------------------------------
# The lifecycle


def _interrupted(run: StageRun, layout: distributed.Layout) -> tuple[StageResult, int]:
    """A stop signal ended the stage's work. On several ranks, rank 0 (which writes the run's end) claims the
    failure report, so that a rank whose collective then fails because rank 0 left does not report the run as
    failed after it (where the signal reached only another rank, rank 0's own failure still ends the run's
    events); and every rank leaves without waiting for the others, which the signal may have stopped elsewhere."""
    if layout.distributed:
        if layout.is_main:
            distributed.claim_failure_report()
        distributed.stopped_alone()
    if run.interrupted_note:
        log(run.interrupted_note)
    return StageResult(status="interrupted"), EXIT_INTERRUPTED


class _Signals:
    """SIGINT, SIGTERM and SIGUSR1 (a scheduler's preemption notice) raise KeyboardInterrupt while the stage
    works (the main thread only can set handlers), are ignored while the last events are written, and get their
    old handlers back at the end. Training installs its own handlers (stop after the step, train.py).

    Python runs a handler between bytecodes, so a signal that reaches a rank blocked in a collective waits
    there; when the ranks the same signal stopped leave, the collective fails first. `received` tells that
    failure from a real one: setting `raising` to False (an attribute store, which runs no handler) makes a
    later handler only record its signal, and `received_any()` (a call, which runs a waiting handler) says
    whether one came."""

    NUMBERS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.received: int | None = None
        self.raising = True

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signum
        if self.raising:
            raise KeyboardInterrupt

    def interrupt(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.signal(number, self._handle) for number in self.NUMBERS}

    def received_any(self) -> bool:
        return self.received is not None

    def ignore(self) -> None:
        # A second signal must not cut the last event short.
        for number in self.previous:
            signal.signal(number, signal.SIG_IGN)

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def run_stage(stage: str, config_path: Path, resume: bool = False, echo: bool = True, ulysses: int = 1,
              fsdp: bool = False) -> int:
    """Run one stage with its events; returns the process exit code.

    Under torchrun (WORLD_SIZE > 1) every rank calls this; `cache`, `train` and `sample` run there, and
    `ulysses` and `fsdp` choose the layout of `train` and `sample`.
    """
    options = StageOptions(resume=resume, ulysses=ulysses, fsdp=fsdp)
    try:
        layout = distributed.layout_from_environment(ulysses, fsdp)
        set_log_enabled(layout.is_main)
        run = _PREPARE[stage](config_path, options, layout)
        if stage not in ("cache", "train", "sample") and layout.distributed:
            raise ConfigError(f"the {stage} stage runs in one process, but WORLD_SIZE is {layout.world_size}",
                              f"start `python -m wanlora_engine {stage}` without torchrun")
    except ConfigError as error:
        # No run folder is known yet: the error event goes to stdout only. Every rank reads the same
        # config and environment, so rank 0 speaks for all.
        if os.environ.get("RANK", "0") in ("0", ""):
            with EventWriter(None, echo=echo) as events:
                events.emit("error", code=error.code, problem=error.problem, remedy=error.remedy, step=None,
                            last_checkpoint=None)
            log(str(error))
        return error.exit_code

    signals = _Signals()
    signals.interrupt()
    try:
        with EventWriter(run.events_path, echo=echo, enabled=layout.is_main) as events:
            return _run_with_events(stage, run, events, layout, echo, signals)
    finally:
        signals.restore()


def _run_with_events(stage: str, run: StageRun, events: EventWriter, layout: distributed.Layout, echo: bool,
                     signals: _Signals) -> int:
    started = time.monotonic()
    result = StageResult(status="failed")
    code = EXIT_FAILED
    failure: dict[str, object] | None = None  # the error event, when this rank has one to report
    all_ranks_failed = False  # an error every rank raised at once (rank 0 reports it through `events`)
    try:
        events.emit("run_started", stage=stage, run_name=run.run_name, **engine_versions(),
                    **device_fields(run.device), config_path=str(run.config_path),
                    resumed_from_step=run.resumed_from_step, restarted_by=run.restarted_by,
                    cuda_alloc_conf=os.environ.get("PYTORCH_CUDA_ALLOC_CONF") or os.environ.get("PYTORCH_ALLOC_CONF"),
                    **layout.describe())
        result = run.work(events)
        code = EXIT_OK if result.status == "completed" else EXIT_INTERRUPTED
    except EngineError as error:
        if error.code != "non_finite_loss":  # that one already reported its step and checkpoint
            failure = dict(code=error.code, problem=error.problem, remedy=error.remedy, step=None,
                           last_checkpoint=None)
        if getattr(error, "all_ranks", False):
            all_ranks_failed = True
        result = StageResult(status="diverged" if error.code == "non_finite_loss" else "failed")
        code = error.exit_code
        print(str(error), file=sys.stderr, flush=True)  # every rank: set_log_enabled quiets log() off rank 0
    except KeyboardInterrupt:
        result, code = _interrupted(run, layout)
    except Exception as error:  # an engine bug or an environment failure (out of memory, CUDA error)
        signals.raising = False  # first, and no call before it: a signal on its way must not cut this short
        if layout.distributed and signals.received_any():
            # The stop signal reached this rank in a collective, which failed when the ranks it had stopped
            # left: this rank stops too; the failure is that stop's, not the run's.
            result, code = _interrupted(run, layout)
            print(f"rank {layout.rank}: stopped by {signal.Signals(signals.received).name} in a collective "
                  f"({type(error).__name__})", file=sys.stderr, flush=True)
        else:
            tail = traceback.format_exc().strip().splitlines()[-12:]
            failure = dict(code="internal", problem=f"{type(error).__name__}: {error}",
                           remedy="see the traceback in the engine log; report it if it is not an out-of-memory "
                                  "error", step=None, last_checkpoint=None, traceback=tail)
            traceback.print_exc()
    signals.ignore()
    finished = dict(stage=stage, status=result.status, step=result.step, seconds=time.monotonic() - started,
                    outputs=result.outputs, summary=result.summary)
    if failure is not None and layout.distributed and not all_ranks_failed:
        # One rank failed on its own (the others wait in a collective until torchrun stops them): the
        # first rank to fail reports, whatever its number, naming itself.
        if distributed.claim_failure_report():
            with EventWriter(run.events_path, echo=echo) as reporter:
                reporter.started_at(events)  # elapsed_s continues the run's clock
                reporter.emit("error", rank=layout.rank, **failure)
                reporter.emit("run_finished", rank=layout.rank, **finished)
        return code
    if failure is not None:
        events.emit("error", **failure)
    events.emit("run_finished", **finished)
    return code
