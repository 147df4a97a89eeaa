"""Fault injection (issue 21): the faults a multi-week run meets, made on the CPU with 2 processes on gloo.

Every case trains the tiny model for STEPS optimizer steps, a checkpoint every 2, and ends in one of two
ways: the run finishes (by itself through torchrun's elastic restart, or after the same command again
with --resume) with LoRA tensors bitwise equal to those of an uninterrupted run, or it stops with a clear
error event and its last checkpoint whole. Faults are injected by wanlora_engine.faults (the environment
variable WANLORA_FAULT_INJECT): a SIGKILL of one rank at a named point of a named step, a write error
while a checkpoint is written, a NaN loss.

Each case adds a row to the table of docs/fault-tolerance.md (fault, where, outcome, steps repeated, as
measured here). Regenerate it with

    cd engine && WANLORA_FAULT_TABLE=/tmp/faults.json .venv/bin/python -m pytest -q -p no:cacheprovider \
        tests/test_faults.py && .venv/bin/python tests/fault_table.py /tmp/faults.json > ../docs/fault-table.md

The 10-point SIGKILL sweep is marked `fault_sweep` (`-m "not fault_sweep"` leaves it out).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_distributed import cached_80x48, dist_config  # noqa: F401  (a fixture and the configs of those tests)

from helpers import write_config
from wanlora_engine.checkpoints import CORRUPT_PREFIX, checkpoint_dirs, checkpoint_problem
from wanlora_engine.events import read_events
from wanlora_engine.faults import POINTS, parse
from wanlora_engine.stage import EXIT_INTERRUPTED

TESTS = Path(__file__).resolve().parent
ENGINE = TESTS.parent
STEPS = 6
CHECKPOINT_EVERY = 2
SWEEP_SEED = 21
ROWS: list[dict] = []


@pytest.fixture(scope="module", autouse=True)
def fault_table():
    """Writes the rows of this module's cases to $WANLORA_FAULT_TABLE (JSON) when it is set."""
    yield
    target = os.environ.get("WANLORA_FAULT_TABLE")
    if target and ROWS:
        Path(target).write_text(json.dumps(ROWS, indent=1))


def record(fault: str, where: str, outcome: str, steps_repeated: int | None, seconds: float) -> None:
    ROWS.append({"fault": fault, "where": where, "outcome": outcome, "steps_repeated": steps_repeated,
                 "seconds": round(seconds, 1)})


_shared: dict[str, Path] = {}  # model, data and cache of the module's workspace (the `shared` fixture)


@pytest.fixture(scope="module")
def shared(cached_80x48):  # noqa: F811
    for part in ("model", "data", "cache"):
        _shared[part] = cached_80x48 / part
    return cached_80x48


def workspace(root: Path, name: str, config: dict | None = None) -> tuple[Path, Path]:
    """A run's workspace (model, data and cache linked from `shared`) and its config (default: STEPS steps, a
    checkpoint every CHECKPOINT_EVERY)."""
    work = root / name
    work.mkdir()
    for part in ("model", "data", "cache"):
        (work / part).symlink_to(_shared[part])
    config = config or dist_config(checkpoint_every=CHECKPOINT_EVERY, max_steps=STEPS)
    return work, write_config(work, config)


def engine_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ENGINE), PYTHONUNBUFFERED="1")
    env.pop("WANLORA_FAULT_INJECT", None)
    env.update(extra)
    return env


def torchrun_args(config: Path, restarts: int = 0, resume: bool = False, nodes: tuple[int, str] | None = None,
                  nproc: int = 2) -> list[str]:
    """torchrun on 2 processes (or one node of 2, each of `nproc`), gloo; `nodes`: (node rank, rendezvous port)."""
    # several nodes: the static rendezvous that `wanlora train --nodes` and the Slurm script use
    rendezvous = ["--standalone"] if nodes is None else [
        "--nnodes=2", f"--node-rank={nodes[0]}", "--master-addr=127.0.0.1", f"--master-port={nodes[1]}"]
    args = [sys.executable, "-m", "torch.distributed.run", *rendezvous, f"--nproc-per-node={nproc}",
            f"--max-restarts={restarts}", "--monitor-interval=0.2", "--shutdown-timeout=15",
            "--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
            "-m", "wanlora_engine", "train", "--config", str(config)]
    return args + (["--resume"] if resume else [])


def run(args: list[str], cwd: Path, timeout: int = 400, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=engine_env(**env), capture_output=True, text=True, timeout=timeout)


def lora_of(work: Path) -> dict[str, torch.Tensor]:
    final = checkpoint_dirs(work / "runs" / "demo")[-1]
    assert final.name == f"step-{STEPS:08d}", final
    return {f"{e}/{k}": v for e in ("high", "low") for k, v in load_file(str(final / f"lora-{e}.safetensors")).items()}


def assert_bitwise(work: Path, reference: dict[str, torch.Tensor]) -> None:
    got = lora_of(work)
    assert got.keys() == reference.keys()
    for name, tensor in reference.items():
        assert torch.equal(got[name], tensor), name


def resume(work: Path, config: Path) -> None:
    """The same command again with --resume, which must end well."""
    again = run(torchrun_args(config, resume=True), work)
    assert again.returncode == 0, again.stderr[-3000:]


def events_of(work: Path) -> list[dict]:
    return read_events(work / "runs" / "demo" / "events.jsonl")


def repeated_steps(events: list[dict]) -> int:
    """Steps trained twice: the highest step reported before each (re)start minus the step it resumed from."""
    total, highest = 0, 0
    for event in events:
        if event["event"] == "run_started" and event["resumed_from_step"] is not None:
            total += max(0, highest - event["resumed_from_step"])
        elif event["event"] in ("step", "checkpoint"):
            highest = max(highest, event["step"])
    return total


@pytest.fixture(scope="module")
def reference(shared, tmp_path_factory) -> dict[str, torch.Tensor]:
    """The uninterrupted 2-process run's LoRA tensors after STEPS steps."""
    root = tmp_path_factory.mktemp("reference")
    work, config = workspace(root, "straight")
    started = time.monotonic()
    result = run(torchrun_args(config), work)
    assert result.returncode == 0, result.stderr[-3000:]
    record("none (reference run)", "2 processes, gloo", "completed", 0, time.monotonic() - started)
    return lora_of(work)


# ---------------------------------------------------------------------------------------------------
# SIGKILL of one rank, restarted by torchrun (--max-restarts 1)


def sweep_points() -> list[tuple[int, int, str]]:
    """10 seeded (rank, step, point): the step points on either rank, the checkpoint points on rank 0 (it writes)."""
    valid = [(rank, step, point) for rank in (0, 1) for step in range(1, STEPS + 1)
             for point in ("step_start", "before_update")]
    valid += [(0, step, point) for step in range(CHECKPOINT_EVERY, STEPS + 1, CHECKPOINT_EVERY)
              for point in ("checkpoint_write", "checkpoint_published")]
    return random.Random(SWEEP_SEED).sample(sorted(valid), 10)


@pytest.mark.fault_sweep
@pytest.mark.parametrize("rank,step,point", sweep_points())
def test_sigkill_of_one_rank_is_restarted_by_torchrun_and_ends_bitwise_equal(reference, tmp_path, rank, step, point):
    work, config = workspace(tmp_path, "killed")
    started = time.monotonic()
    result = run(torchrun_args(config, restarts=1), work, WANLORA_FAULT_INJECT=f"kill:{rank}@{step}:{point}")
    assert result.returncode == 0, result.stderr[-3000:]
    events = events_of(work)
    starts = [e for e in events if e["event"] == "run_started"]
    assert [e["restarted_by"] for e in starts] == [None, "torchrun"], "the kill did not happen"
    before = step - 1 if point in ("step_start", "before_update") else step
    want = before if point == "checkpoint_published" else before - before % CHECKPOINT_EVERY
    if point == "checkpoint_write":
        want = step - CHECKPOINT_EVERY
    assert starts[1]["resumed_from_step"] == (want or None)
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "completed"
    assert_bitwise(work, reference)
    assert not list((work / "runs" / "demo" / "checkpoints").glob(".tmp-*"))
    record("SIGKILL of one rank", f"rank {rank}, step {step}, {point}", "restarted by torchrun, bitwise equal",
           repeated_steps(events), time.monotonic() - started)


def test_sigkill_on_one_of_two_nodes_restarts_both_nodes(reference, tmp_path):
    """Two torchrun agents ("nodes") of one process each, node 0's rendezvous on 127.0.0.1."""
    work, config = workspace(tmp_path, "nodes")
    port = str(29_600 + os.getpid() % 300)
    started = time.monotonic()
    fault = "kill:1@3:before_update"
    agents = [subprocess.Popen(torchrun_args(config, restarts=1, nodes=(node, port), nproc=1), cwd=work,
                               env=engine_env(WANLORA_FAULT_INJECT=fault), stdout=subprocess.DEVNULL,
                               stderr=open(tmp_path / f"node{node}.txt", "w")) for node in (0, 1)]
    codes = [agent.wait(timeout=400) for agent in agents]
    assert codes == [0, 0], (tmp_path / "node1.txt").read_text()[-3000:]
    events = events_of(work)
    starts = [e for e in events if e["event"] == "run_started"]
    assert [e["restarted_by"] for e in starts] == [None, "torchrun"] and starts[1]["resumed_from_step"] == 2
    assert_bitwise(work, reference)
    record("SIGKILL of one rank", "node 1 of 2 (rank 1), step 3, before_update", "both nodes restarted, bitwise equal",
           repeated_steps(events), time.monotonic() - started)


def test_sigkill_without_restarts_then_the_same_command_again(reference, tmp_path):
    work, config = workspace(tmp_path, "again")
    started = time.monotonic()
    first = run(torchrun_args(config), work, WANLORA_FAULT_INJECT="kill:1@5:step_start")
    assert first.returncode != 0
    assert [p.name for p in checkpoint_dirs(work / "runs" / "demo")] == ["step-00000002", "step-00000004"]
    resume(work, config)
    assert_bitwise(work, reference)
    record("SIGKILL of one rank, no restarts", "rank 1, step 5, step_start",
           "run failed; the same command with --resume: bitwise equal", repeated_steps(events_of(work)),
           time.monotonic() - started)


# ---------------------------------------------------------------------------------------------------
# SIGTERM (preemption) of the job


def test_sigterm_of_the_job_stops_after_a_step_with_its_checkpoint(reference, tmp_path):
    work, config = workspace(tmp_path, "preempted")
    started = time.monotonic()
    job = subprocess.Popen(torchrun_args(config), cwd=work, env=engine_env(), stdout=subprocess.DEVNULL,
                           stderr=open(tmp_path / "stderr.txt", "w"), start_new_session=True)
    events_file = work / "runs" / "demo" / "events.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (
            events_file.is_file() and any(e["event"] == "step" and e["step"] >= 3 for e in read_events(events_file))):
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)  # what a scheduler sends: torchrun passes it on to every rank
    job.wait(timeout=300)
    events = read_events(events_file)
    stopped = [e for e in events if e["event"] == "stopped"]
    assert len(stopped) == 1, (tmp_path / "stderr.txt").read_text()[-3000:]
    assert stopped[0]["reason"] == "preempted" and stopped[0]["signal"] == "SIGTERM" and stopped[0]["saved"]
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "interrupted"
    stop_step = stopped[0]["step"]
    assert checkpoint_dirs(work / "runs" / "demo")[-1].name == f"step-{stop_step:08d}"
    if stop_step < STEPS:
        resume(work, config)
    assert_bitwise(work, reference)
    record("SIGTERM of the job (preemption)", f"torchrun, after step {stop_step}",
           "stopped after the step with its checkpoint; --resume: bitwise equal", repeated_steps(events_of(work)),
           time.monotonic() - started)


def test_a_signal_that_reaches_one_rank_after_the_stop_vote_stops_every_rank_after_the_next_step(reference, tmp_path):
    """Rank 1 alone gets SIGTERM just after the ranks agreed to go on after step 3 (the window a SIGTERM that
    torchrun sends to every rank can hit on a loaded machine): no rank may act on its own flag, so both train
    step 4, agree to stop, and save it; `--resume` ends bitwise equal."""
    work, config = workspace(tmp_path, "late")
    started = time.monotonic()
    first = run(torchrun_args(config), work, WANLORA_FAULT_INJECT="term:1@3:after_stop_vote")
    # torchrun exits 1 when a rank exits non-zero; each rank exited EXIT_INTERRUPTED (none failed)
    assert first.returncode == 1 and first.stderr.count(f"exitcode  : {EXIT_INTERRUPTED} ") == 2, first.stderr[-3000:]
    events = events_of(work)
    stopped = [e for e in events if e["event"] == "stopped"]
    assert [(e["step"], e["signal"], e["reason"], e["saved"]) for e in stopped] == [(4, "SIGTERM", "preempted", True)]
    # rank 0, which writes the event and decides the grace, did not get the signal: it counts from rank 1's
    assert 0 < stopped[0]["seconds_since_signal"] < stopped[0]["grace_seconds"]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3, 4]
    assert [p.name for p in checkpoint_dirs(work / "runs" / "demo")] == ["step-00000002", "step-00000004"]
    resume(work, config)
    assert_bitwise(work, reference)
    record("SIGTERM of one rank after the stop vote", "rank 1, after step 3",
           "both ranks stopped after step 4 with its checkpoint; --resume: bitwise equal",
           repeated_steps(events_of(work)), time.monotonic() - started)


# ---------------------------------------------------------------------------------------------------
# Checkpoints: a full disk while writing, a truncated checkpoint


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint_and_stops_with_a_clear_error(reference, tmp_path):
    work, config = workspace(tmp_path, "full")
    started = time.monotonic()
    first = run(torchrun_args(config), work, WANLORA_FAULT_INJECT="write_error@4")
    assert first.returncode == 1
    events = events_of(work)
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1 and errors[0]["code"] == "checkpoint_write_failed"
    assert "No space left on device" in errors[0]["problem"] and "step-00000002 is intact" in errors[0]["problem"]
    assert "--resume" in errors[0]["remedy"]
    folder = work / "runs" / "demo" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["step-00000002"]  # no temporary folder left
    assert checkpoint_problem(folder / "step-00000002") is None
    resume(work, config)
    assert_bitwise(work, reference)
    record("full disk while saving (injected ENOSPC)", "checkpoint of step 4, after its first file",
           "error checkpoint_write_failed, step 2 intact; --resume: bitwise equal", repeated_steps(events_of(work)),
           time.monotonic() - started)


def test_a_truncated_latest_checkpoint_is_skipped_for_the_one_before(reference, tmp_path):
    work, config = workspace(tmp_path, "truncated")
    started = time.monotonic()
    first = run(torchrun_args(config), work, WANLORA_FAULT_INJECT="kill:0@5:step_start")
    assert first.returncode != 0
    latest = checkpoint_dirs(work / "runs" / "demo")[-1]
    assert latest.name == "step-00000004"
    victim = latest / "lora-high.safetensors"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])  # a node lost mid-write
    assert "lora-high.safetensors has" in checkpoint_problem(latest)
    resume(work, config)
    events = events_of(work)
    corrupt = [e for e in events if e["event"] == "warning" and e["code"] == "checkpoint_corrupt"]
    assert len(corrupt) == 1 and "lora-high.safetensors" in corrupt[0]["message"]
    assert [e["resumed_from_step"] for e in events if e["event"] == "run_started"] == [None, 2]
    assert (latest.parent / (CORRUPT_PREFIX + latest.name)).is_dir()
    assert_bitwise(work, reference)
    record("truncated latest checkpoint", "step 4's lora-high.safetensors cut to half",
           "warning checkpoint_corrupt, resumed from step 2: bitwise equal", repeated_steps(events),
           time.monotonic() - started)


# ---------------------------------------------------------------------------------------------------
# A NaN loss: stop, skip, rollback (two processes, a checkpoint every step)


@pytest.mark.parametrize("action", ["stop", "skip", "rollback"])
def test_a_nan_loss_stops_skips_or_rolls_back(reference, tmp_path, action):
    work, config = workspace(tmp_path, action, dist_config(checkpoint_every=1, max_steps=STEPS, on_nonfinite=action,
                                                           rollback_lr_factor=0.5, keep_checkpoints=10))
    started = time.monotonic()
    result = run(torchrun_args(config), work, WANLORA_FAULT_INJECT="nan@5")
    events = events_of(work)
    folder = work / "runs" / "demo"
    steps = {e["step"]: e for e in events if e["event"] == "step"}
    if action == "stop":
        assert result.returncode == 1 and "exitcode  : 3" in result.stderr  # torchrun exits 1; the ranks exited 3
        error = next(e for e in events if e["event"] == "error")
        assert error["code"] == "non_finite_loss" and error["step"] == 5
        assert error["last_checkpoint"].endswith("step-00000004") and events[-1]["status"] == "diverged"
        assert checkpoint_problem(checkpoint_dirs(folder)[-1]) is None
        outcome, repeated = "error non_finite_loss (exit 3), step 4's checkpoint whole", None
    else:
        assert result.returncode == 0, result.stderr[-3000:]
        saved = folder / "checkpoints"
        lora = {s: {f"{e}/{k}": v for e in ("high", "low")
                    for k, v in load_file(str(saved / f"step-{s:08d}" / f"lora-{e}.safetensors")).items()}
                for s in (4, 5)}
        if action == "skip":
            skipped = [e for e in events if e["event"] == "nonfinite_skipped"]
            assert [(e["step"], e["skipped_steps"]) for e in skipped] == [(5, 1)] and 5 not in steps
            assert all(torch.equal(lora[4][k], lora[5][k]) for k in lora[4])  # no update at step 5
            assert events[-1]["summary"]["nonfinite"]["skipped_steps"] == 1
            outcome, repeated = "step 5 skipped (no update), run completed", 0  # nothing is trained again
        else:
            rollback = [e for e in events if e["event"] == "nonfinite_rollback"]
            assert [(e["step"], e["resumed_at_step"], e["lr_scale"]) for e in rollback] == [(5, 4, 0.5)]
            assert not all(torch.equal(lora[4][k], lora[5][k]) for k in lora[4])  # step 5 trained again
            assert events[-1]["summary"]["nonfinite"] == {"skipped_steps": 0, "rollbacks": 1, "lr_scale": 0.5}
            outcome = "rolled back to step 4, learning rate x 0.5, run completed"
            repeated = rollback[0]["step"] - 1 - rollback[0]["resumed_at_step"]  # completed steps lost
        assert events[-1]["status"] == "completed" and len(checkpoint_dirs(folder)) == STEPS
    record(f"NaN loss, on_nonfinite = {action}", "step 5, every rank", outcome, repeated, time.monotonic() - started)


def test_rollback_lowers_the_learning_rate_of_the_repeated_step_exactly(shared, tmp_path, monkeypatch):
    """One process: the lr after a rollback is the schedule's lr times rollback_lr_factor."""
    from wanlora_engine.stage import run_stage

    work, config = workspace(tmp_path, "lr", dist_config(
        checkpoint_every=1, max_steps=6, on_nonfinite="rollback", rollback_lr_factor=0.25,
        learning_rate=1e-3, warmup_steps=0, schedule="constant"))
    monkeypatch.setenv("WANLORA_FAULT_INJECT", "nan@5")
    assert run_stage("train", config, resume=False, echo=False) == 0
    steps = {e["step"]: e for e in events_of(work) if e["event"] == "step"}
    assert steps[4]["lr"] == 1e-3 and steps[5]["lr"] == 0.25e-3 and steps[6]["lr"] == 0.25e-3


def test_fault_specs_are_parsed_and_refused_when_malformed():
    faults = parse("kill:1@5:before_update, write_error@4,nan@7,term:0@2:after_stop_vote")
    assert faults.kills == {(1, 5, "before_update")} and faults.write_errors == {4} and faults.nans == {7}
    assert faults.terms == {(0, 2, "after_stop_vote")}
    with pytest.raises(ValueError, match="the point must be one of"):
        parse("kill:0@3:somewhere")
    for malformed in ("oom@3", "kill@3:step_start", "stop:1@3:step_start"):
        with pytest.raises(ValueError, match="is not kill:RANK@STEP:POINT"):
            parse(malformed)
    assert set(POINTS) == {"step_start", "before_update", "checkpoint_write", "checkpoint_published",
                           "after_stop_vote", "cache_shard"}


# ---------------------------------------------------------------------------------------------------
# A stale run lock (the Swift CLI's; Tests/RunsTests/RunStatusTests.swift checks the lock itself)

WANLORA = ENGINE.parent / ".build" / "debug" / "wanlora"


@pytest.mark.skipif(not WANLORA.is_file(), reason="the Swift CLI is not built (swift build; make test builds it first)")
def test_a_stale_lock_of_a_killed_wanlora_is_taken_over_with_a_warning(shared, tmp_path):
    work = tmp_path / "lock"
    work.mkdir()
    for part in ("model", "data", "cache"):
        (work / part).symlink_to(_shared[part])
    (work / "wanlora.toml").write_text((ENGINE.parent / "configs" / "demo.toml").read_text())
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid names no process now
    lock = work / "runs" / "demo" / ".wanlora.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(f"pid {dead.pid}, start 4242, train, since 2026-12-07T01:00:00Z\n")
    env = engine_env()
    env.pop("WANLORA_ENGINE_PYTHON", None)
    started = time.monotonic()
    result = subprocess.run([str(WANLORA), "train", "--config", "wanlora.toml", "--engine-python", sys.executable,
                             "--progress", "plain", "--set", 'training.resolution="80x48"',
                             "--set", "training.max_steps=2", "--set", "training.eval_steps=0",
                             "--set", "training.save_steps=2"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"warning: took over the lock of {work / 'runs' / 'demo'} from wanlora pid {dead.pid}" in result.stderr
    assert lock.read_text() == ""  # released at the end
    assert events_of(work)[-1]["status"] == "completed"
    record("stale run lock", f"wanlora pid {dead.pid} killed without releasing it", "taken over with a warning, "
           "run completed", None, time.monotonic() - started)


# ---------------------------------------------------------------------------------------------------
# Pure parts: the manifest check, the stop grace


def test_the_manifest_catches_a_changed_byte_a_missing_file_and_a_missing_manifest(tmp_path):
    import hashlib

    folder = tmp_path / "step-00000002"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"\x00\x01\x02\x03")
    (folder / "trainer_state.json").write_text("{}")
    files = {p.name: {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
             for p in folder.iterdir()}
    (folder / "manifest.json").write_text(json.dumps({"step": 2, "files": files}))
    assert checkpoint_problem(folder) is None
    (folder / "a.bin").write_bytes(b"\x00\x01\x02\x04")  # same size, one bit changed
    assert checkpoint_problem(folder) == "a.bin does not match its sha256 in the manifest"
    (folder / "a.bin").unlink()
    assert checkpoint_problem(folder) == "a.bin is missing"
    (folder / "manifest.json").write_text('{"step": 2, "fil')
    assert checkpoint_problem(folder).startswith("manifest.json is unreadable")
    (folder / "manifest.json").unlink()
    assert checkpoint_problem(folder) is None  # a checkpoint of an engine before manifests


def test_a_stop_that_cannot_save_within_the_grace_keeps_the_last_checkpoint(shared, tmp_path, monkeypatch):
    """One process: SIGTERM during step 3, the step ends 1.5 s later, the grace is 1 s: no checkpoint of step 3."""
    from wanlora_engine.stage import run_stage
    from wanlora_engine.train import Trainer

    work, config = workspace(tmp_path, "grace", dist_config(checkpoint_every=2, max_steps=100, stop_grace_seconds=1))
    original = Trainer.train_step

    def slow_third_step(self):
        if self.state.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.5)
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", slow_third_step)
    assert run_stage("train", config, resume=False, echo=False) == 130
    events = events_of(work)
    stopped = next(e for e in events if e["event"] == "stopped")
    assert (stopped["reason"], stopped["signal"], stopped["step"]) == ("preempted", "SIGTERM", 3)
    assert stopped["saved"] is False
    assert stopped["checkpoint"].endswith("step-00000002") and stopped["seconds_since_signal"] > 1.0
    assert [p.name for p in checkpoint_dirs(work / "runs" / "demo")] == ["step-00000002"]
    assert events[-1]["status"] == "interrupted"
