"""Several processes on CPU (torch.distributed on gloo, started by torchrun): FSDP, Ulysses and both give
the losses and LoRA gradients of the one-process run on the same tiny model, data and seed.

The data are 80x48 so that an image has 15 tokens: odd, so Ulysses over 2 ranks pads (and a video of
2 latent frames, 30 tokens, does not). Samples per step = micro_batch x grad_accum x data-parallel
groups, so a layout with DP groups is compared with a one-process run with DP times the accumulation.
Tolerances are float32's: the sums over ranks add the same terms in another order. The one-process
reference trains the fast blocks (the fixture's blocks.implementation); the Ulysses layouts run the fast
blocks' sequence-parallel attention with the attention output kept and recomputed, and diffusers' blocks
through the Ulysses attention processor.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from dist_worker import record_run
from safetensors.torch import load_file

from helpers import demo_config, write_config
from wanlora_engine import distributed
from wanlora_engine.checkpoints import checkpoint_dirs
from wanlora_engine.config import load_config, replace_keys
from wanlora_engine.errors import ConfigError
from wanlora_engine.events import EventWriter, read_events
from wanlora_engine.stage import run_stage
from wanlora_engine.train import Trainer
from wanlora_engine.ulysses import local_slice, padded_length, split_tokens

TESTS = Path(__file__).resolve().parent
ENGINE = TESTS.parent
# float32: relative 1e-5 of the value, or 1e-6 absolute near zero. The text is 512 keys (the model's length, mostly
# zero padding), summed in another order per layout; AdamW turns the rounding of a near-zero gradient into a weight
# difference of up to ~2e-7 after two steps (lr 1e-3), which 1e-7 was too tight for.
RTOL, ATOL = 1e-5, 1e-6


def dist_config(checkpoint_every: int = 2, **train: object) -> dict:
    return demo_config(
        training={"resolution": "80x48", "micro_batch": 1, "grad_accumulation": 1, "expert_grouping": "step",
                  "seed": 4, "max_steps": 4, "cfg_dropout": 0.1, "eval_steps": 0, "save_steps": checkpoint_every,
                  "keep_checkpoints": 2, "logging_steps": 1, **train},
    )


@pytest.fixture(scope="module")
def cached_80x48(tmp_path_factory: pytest.TempPathFactory, tiny_diffusers: Path, dataset: Path) -> Path:
    root = tmp_path_factory.mktemp("dist")
    (root / "model").symlink_to(tiny_diffusers)
    (root / "data").symlink_to(dataset)
    config = write_config(root, dist_config())
    assert run_stage("cache", config, resume=False, echo=False) == 0
    # gradients as the optimizer sees them, without clipping, for the exact comparison
    write_config(root, dist_config(max_grad_norm=0.0), "config.grads.json")
    return root


def torchrun(nproc: int, args: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ENGINE), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


_references: dict[tuple, dict] = {}


def reference(root: Path, accum: int, micro: int = 1, grouping: str = "step") -> dict:
    """The one-process run (this process, no torch.distributed) with the same samples per step."""
    key = (root, accum, micro, grouping)
    if key not in _references:
        config = load_config(root / "config.grads.json")
        changed = replace_keys(config, training={"grad_accumulation": accum, "micro_batch": micro,
                                                 "expert_grouping": grouping})
        trainer = Trainer(changed, EventWriter(None, echo=False))
        _references[key] = record_run(trainer, steps=2)
    return _references[key]


def assert_same_run(got: dict, want: dict) -> None:
    assert got["samples_per_step"] == want["samples_per_step"]
    assert got["losses"] == pytest.approx(want["losses"], rel=RTOL)
    assert sorted(got["grads"]) == sorted(want["grads"]) and want["grads"]
    for name, grad in want["grads"].items():
        torch.testing.assert_close(got["grads"][name], grad, rtol=RTOL, atol=ATOL,
                                   msg=lambda m, name=name: f"{name}: {m}")
    for name, weight in want["weights"].items():
        torch.testing.assert_close(got["weights"][name], weight, rtol=RTOL, atol=ATOL,
                                   msg=lambda m, name=name: f"{name}: {m}")


def run_layouts(root: Path, nproc: int, layouts: list[str], out: Path) -> dict[str, dict]:
    result = torchrun(nproc, [str(TESTS / "dist_worker.py"), "--config", str(root / "config.grads.json"),
                              "--out", str(out), "--steps", "2", *[f"--layout={spec}" for spec in layouts]], cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return {spec.split(":")[0]: torch.load(out / f"{spec.split(':')[0]}.pt") for spec in layouts}


# ---------------------------------------------------------------------------------------------------


def test_two_processes_fsdp_ulysses_and_both_equal_one_process(cached_80x48, tmp_path):
    runs = run_layouts(cached_80x48, 2, [
        "fsdp:1:1:1:1:step",  # FSDP, 2 data-parallel groups, 1 sample each
        "ulysses:2:0:2:1:step",  # Ulysses U=2: both ranks on each sample, 2 micro-batches (fast blocks)
        "ulysses_recompute:2:0:2:1:step:fast_recompute",  # the same, self-attention recomputed in the backward
        "ulysses_diffusers:2:0:2:1:step:diffusers",  # diffusers' blocks with the Ulysses attention processor
        "fsdp_ulysses:2:1:2:1:step",  # both: the expert sharded over the 2 ranks of the Ulysses group
        "fsdp_ulysses_recompute:2:1:2:1:step:fast_recompute",
        "fsdp_mixed:1:1:1:2:step",  # micro-batches of an image and a video: uneven forward passes, aligned
        "replicated_sample:1:0:1:1:sample",  # no FSDP, per-sample experts: each rank trains another expert
    ], tmp_path)
    reference_step = reference(cached_80x48, accum=2)
    assert reference_step["blocks"] == "fast" and reference_step["keep_attention"]
    for name in ("fsdp", "ulysses", "ulysses_recompute", "ulysses_diffusers", "fsdp_ulysses", "fsdp_ulysses_recompute"):
        assert_same_run(runs[name], reference_step)
    assert runs["fsdp"]["blocks"] == "fast" and runs["ulysses_diffusers"]["blocks"] == "diffusers"
    for name in ("ulysses", "ulysses_recompute", "fsdp_ulysses", "fsdp_ulysses_recompute"):
        assert runs[name]["blocks"] == "fast+ulysses"
        assert runs[name]["keep_attention"] == (not name.endswith("recompute"))
        # the images' 15 tokens are padded to 2 x 8, the 2-latent-frame videos' 30 split evenly
        assert set(runs[name]["token_counts"]) == {(15, 8), (30, 15)}
    assert_same_run(runs["fsdp_mixed"], reference(cached_80x48, accum=2, micro=2))
    per_sample = reference(cached_80x48, accum=2, grouping="sample")
    # seed 4's first step draws one sample of each expert: rank 0 trains 'low', rank 1 'high'
    assert {name.split("/")[0] for name in per_sample["grads"]} == {"high", "low"}
    assert_same_run(runs["replicated_sample"], per_sample)


def test_four_processes_fsdp_and_fsdp_with_ulysses_equal_one_process(cached_80x48, tmp_path):
    runs = run_layouts(cached_80x48, 4, [
        "fsdp4:1:1:1:1:step",  # 4 data-parallel groups
        "fsdp_ulysses2x2:2:1:1:1:step",  # 2 Ulysses groups of 2 ranks, the expert sharded over all 4
    ], tmp_path)
    assert_same_run(runs["fsdp4"], reference(cached_80x48, accum=4))
    assert_same_run(runs["fsdp_ulysses2x2"], reference(cached_80x48, accum=2))
    assert runs["fsdp_ulysses2x2"]["blocks"] == "fast+ulysses"


def test_torchrun_entry_point_matches_one_process_and_resumes_on_one(cached_80x48, tmp_path):
    """`python -m wanlora_engine train` under torchrun (what `wanlora train --gpus 2` starts)."""
    work = tmp_path / "w"
    work.mkdir()
    for name in ("model", "data", "cache"):
        (work / name).symlink_to(cached_80x48 / name)
    config = write_config(work, dist_config())
    result = torchrun(2, ["-m", "wanlora_engine", "train", "--config", str(config), "--fsdp", "--ulysses", "1"],
                      cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = work / "runs" / "demo"
    events = read_events(run_dir / "events.jsonl")
    assert [e["event"] for e in events].count("run_started") == 1  # rank 0 alone writes events
    started = events[0]
    assert (started["world_size"], started["data_parallel_size"], started["fsdp"]) == (2, 2, True)
    plan = next(e for e in events if e["event"] == "train_plan")
    assert plan["samples_per_step"] == 2
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 4 and all(len(e["gpu_memory_peak_bytes_by_rank"]) == 2 for e in steps)
    assert events[-1]["status"] == "completed"
    # only the events on stdout: torchrun passes each rank's stdout through
    stdout_events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [e["event"] for e in stdout_events] == [e["event"] for e in events]

    # the same run in one process with twice the accumulation
    single = tmp_path / "single"
    single.mkdir()
    for name in ("model", "data", "cache"):
        (single / name).symlink_to(cached_80x48 / name)
    assert run_stage("train", write_config(single, dist_config(grad_accumulation=2)), resume=False, echo=False) == 0
    one = [e for e in read_events(single / "runs" / "demo" / "events.jsonl") if e["event"] == "step"]
    assert [e["loss"] for e in steps] == pytest.approx([e["loss"] for e in one], rel=RTOL)
    assert [e["grad_norm"] for e in steps] == pytest.approx([e["grad_norm"] for e in one], rel=1e-4)
    final_two = checkpoint_dirs(run_dir)[-1]
    for expert in ("high", "low"):
        want = load_file(str(checkpoint_dirs(single / "runs" / "demo")[-1] / f"lora-{expert}.safetensors"))
        got = load_file(str(final_two / f"lora-{expert}.safetensors"))
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=RTOL, atol=ATOL)

    # resume the 2-process run's step-2 checkpoint on 1 process, config unchanged (grad_accum 1)
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in ("model", "data", "cache"):
        (resumed / name).symlink_to(cached_80x48 / name)
    (resumed / "runs" / "demo" / "checkpoints").mkdir(parents=True)
    shutil.copytree(run_dir / "checkpoints" / "step-00000002",
                    resumed / "runs" / "demo" / "checkpoints" / "step-00000002")
    assert run_stage("train", write_config(resumed, dist_config()), resume=True, echo=False) == 0
    later = read_events(resumed / "runs" / "demo" / "events.jsonl")
    adjusted = next(e for e in later if e["event"] == "warning" and e["code"] == "grad_accum_adjusted")
    assert adjusted["grad_accum"] == 2 and adjusted["samples_per_step"] == 2
    assert [e["step"] for e in later if e["event"] == "step"] == [3, 4]
    assert [e["loss"] for e in later if e["event"] == "step"] == pytest.approx([e["loss"] for e in steps[2:]], rel=RTOL)
    final_one = checkpoint_dirs(resumed / "runs" / "demo")[-1]
    assert final_one.name == final_two.name == "step-00000004"
    for expert in ("high", "low"):
        want = load_file(str(final_two / f"lora-{expert}.safetensors"))
        got = load_file(str(final_one / f"lora-{expert}.safetensors"))
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=RTOL, atol=ATOL)


def test_ctrl_c_to_torchrun_stops_every_rank_after_the_same_step_with_one_checkpoint(cached_80x48, tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    for name in ("model", "data", "cache"):
        (work / name).symlink_to(cached_80x48 / name)
    config = write_config(work, dist_config(checkpoint_every=0, max_steps=100_000))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ENGINE))
    # --shutdown-timeout as `wanlora train` passes it (torchrun's own 30 s SIGKILLs ranks still writing their
    # checkpoint on a loaded 2-core machine)
    process = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                                "--shutdown-timeout=120", "-m", "wanlora_engine", "train", "--config", str(config),
                                "--ulysses", "2"],
                               cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "stderr.txt", "w"),
                               start_new_session=True)
    events_file = work / "runs" / "demo" / "events.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
            events_file.is_file() and any(e["event"] == "step" for e in read_events(events_file))):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)  # torchrun passes it on to both ranks
    process.wait(timeout=120)
    stderr = (tmp_path / "stderr.txt").read_text()
    events = read_events(events_file)
    saved = [e for e in events if e["event"] == "checkpoint"]
    assert len(saved) == 1, stderr[-2000:]
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "interrupted"
    assert events[-1]["step"] == saved[0]["step"] == max(e["step"] for e in events if e["event"] == "step")
    assert [p.name for p in checkpoint_dirs(work / "runs" / "demo")] == [f"step-{saved[0]['step']:08d}"]
    # Ulysses 2 trains the fast blocks (their self-attention sequence-parallel), with no fallback warning
    plan = next(e for e in events if e["event"] == "train_plan")
    assert plan["ulysses_degree"] == 2 and plan["blocks"]["implementation"] == "fast"
    assert not [e for e in events if e["event"] == "warning" and e["code"] == "fast_blocks_replaced"]


WANLORA = ENGINE.parent / ".build" / "debug" / "wanlora"


@pytest.mark.skipif(not WANLORA.is_file(), reason="the Swift CLI is not built (swift build; make test builds it first)")
def test_wanlora_train_starts_torchrun_with_two_ranks(tiny_diffusers, dataset, tmp_path):
    """The whole chain: `wanlora cache`, then `wanlora train --gpus 2 --ulysses 2` (Swift: TOML -> run folder ->
    torchrun) -> 2 engine processes (gloo)."""
    work = tmp_path / "w"
    work.mkdir()
    (work / "model").symlink_to(tiny_diffusers)
    (work / "data").symlink_to(dataset)
    shutil.copy(ENGINE.parent / "configs" / "demo.toml", work / "wanlora.toml")
    # PYTHONPATH reaches the engine only because the launcher passes the environment through
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ENGINE))
    env.pop("WANLORA_ENGINE_PYTHON", None)
    common = ["--config", "wanlora.toml", "--engine-python", sys.executable, "--progress", "plain"]
    cache = subprocess.run([str(WANLORA), "cache", *common], cwd=work, env=env, capture_output=True, text=True,
                           timeout=240)
    assert cache.returncode == 0, cache.stderr[-3000:]
    result = subprocess.run([str(WANLORA), "train", *common, "--gpus", "2", "--ulysses", "2", "--fsdp",
                             "--set", "training.max_steps=2", "--set", "training.micro_batch=1",
                             "--set", "training.grad_accumulation=1", "--set", "training.eval_steps=0",
                             "--set", "training.save_steps=2"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    events = read_events(work / "runs" / "demo" / "events.jsonl")
    assert (events[0]["world_size"], events[0]["ulysses_degree"], events[0]["fsdp"]) == (2, 2, True)
    # the fast blocks run Ulysses attention themselves: no fallback to the diffusers blocks
    assert not [e for e in events if e["event"] == "warning" and e["code"] == "fast_blocks_replaced"]
    plan = next(e for e in events if e["event"] == "train_plan")
    assert plan["blocks"]["implementation"] == "fast" and plan["ulysses_degree"] == 2
    assert events[-1]["status"] == "completed" and events[-1]["step"] == 2


FAILING_RANK = """
import sys
from wanlora_engine import __main__ as entry
from wanlora_engine.errors import DataError
from wanlora_engine.train import Trainer
import os

original = Trainer.train_step

def train_step(self):
    if self.layout.rank == 1 and self.state.step == 1:
        raise DataError("cache shard latents-00007.safetensors is unreadable on rank 1", "re-run wanlora cache")
    return original(self)

Trainer.train_step = train_step
sys.exit(entry.main(sys.argv[1:]))
"""


def test_a_failing_rank_stops_all_and_its_error_is_reported_once(cached_80x48, tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    for name in ("model", "data", "cache"):
        (work / name).symlink_to(cached_80x48 / name)
    config = write_config(work, dist_config(max_steps=50))
    script = work / "fail_on_rank_1.py"
    script.write_text(FAILING_RANK)
    result = torchrun(2, [str(script), "train", "--config", str(config), "--fsdp"], cwd=work, timeout=120)
    assert result.returncode != 0
    events = read_events(work / "runs" / "demo" / "events.jsonl")
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1, errors
    assert errors[0]["rank"] == 1 and errors[0]["code"] == "data_invalid"
    assert "unreadable on rank 1" in errors[0]["problem"]
    # rank 0's event of the step before may land after rank 1's report: two processes write
    finished = [e for e in events if e["event"] == "run_finished"]
    assert len(finished) == 1 and finished[0]["status"] == "failed" and finished[0]["rank"] == 1
    assert max(e["step"] for e in events if e["event"] == "step") == 1  # everyone stopped at step 2


# ---------------------------------------------------------------------------------------------------
# Pure parts


def test_layout_from_the_torchrun_environment():
    layout = distributed.layout_from_environment(2, True, {"WORLD_SIZE": "8", "RANK": "5", "LOCAL_RANK": "1"})
    assert (layout.data_parallel, layout.dp_rank, layout.sp_rank, layout.local_rank) == (4, 2, 1, 1)
    assert layout.describe() == {"world_size": 8, "ulysses_degree": 2, "data_parallel_size": 4, "fsdp": True}
    assert distributed.layout_from_environment(1, False, {}) == distributed.Layout()
    with pytest.raises(ConfigError, match="does not divide the 6 processes"):
        distributed.layout_from_environment(4, False, {"WORLD_SIZE": "6", "RANK": "0"})
    with pytest.raises(ConfigError, match="WORLD_SIZE='two'"):
        distributed.layout_from_environment(1, False, {"WORLD_SIZE": "two"})
    with pytest.raises(ConfigError, match="RANK=2 and WORLD_SIZE=2"):
        distributed.layout_from_environment(1, False, {"WORLD_SIZE": "2", "RANK": "2"})


def test_token_padding_and_shares():
    assert [padded_length(n, 2) for n in (15, 30, 46_800, 75_600)] == [16, 30, 46_800, 75_600]
    assert padded_length(15, 4) == 16 and local_slice(15, 4, 3) == slice(12, 16)
    x = torch.arange(15.0).view(1, 15, 1)
    parts = [split_tokens(x, 1, 2, r) for r in range(2)]
    assert [p.shape[1] for p in parts] == [8, 8]
    assert parts[1][0, :, 0].tolist() == [8, 9, 10, 11, 12, 13, 14, 0]  # the padding is at the very end


def test_ulysses_degree_must_divide_the_heads(tiny_diffusers):
    from diffusers import WanTransformer3DModel

    from wanlora_engine.ulysses import enable_ulysses

    model = WanTransformer3DModel.from_pretrained(str(tiny_diffusers / "transformer"))
    with pytest.raises(ValueError, match="does not divide the model's 2 attention heads"):
        enable_ulysses(model, group=None, degree=4, rank=0)


def test_engine_refuses_a_ulysses_degree_that_does_not_divide_the_processes(cached_80x48, tmp_path):
    config = write_config(tmp_path, dist_config())
    env = dict(os.environ, WORLD_SIZE="2", RANK="0", LOCAL_RANK="0", PYTHONPATH=str(ENGINE))
    command = [sys.executable, "-m", "wanlora_engine", "train", "--config", str(config), "--ulysses", "4"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    event = json.loads(result.stdout.splitlines()[-1])
    assert event["event"] == "error" and "--ulysses 4 does not divide the 2 processes" in event["problem"]


@pytest.mark.parametrize("signal_came", [True, False])
def test_a_collective_that_fails_after_a_stop_signal_reached_the_rank_is_that_stop(tmp_path, monkeypatch,
                                                                                    signal_came):
    """Rank 1 of two, in a collective that fails because the ranks a SIGTERM stopped left (the signal's handler
    ran only after the failure, as Python runs handlers between bytecodes): it ends interrupted, reports
    nothing and leaves without the closing barrier. Without the signal the same failure is the run's."""
    from wanlora_engine import stage
    from wanlora_engine.stage import EXIT_FAILED, EXIT_INTERRUPTED

    monkeypatch.setattr(distributed._Step, "together", True)
    signals = stage._Signals()

    def work(events: EventWriter) -> stage.StageResult:
        if signal_came:
            signals.received = signal.SIGTERM  # what the handler does once it runs with `raising` off
        raise RuntimeError("[gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:35737")

    events_path = tmp_path / "sample-events.jsonl"
    run = stage.StageRun(events_path, "demo", "cpu", None, work)
    layout = distributed.Layout(world_size=2, rank=1)
    with EventWriter(events_path, echo=False, enabled=layout.is_main) as events:
        code = stage._run_with_events("sample", run, events, layout, False, signals)
    if signal_came:
        assert (code, signals.raising, distributed.can_stop_together()) == (EXIT_INTERRUPTED, False, False)
        assert not events_path.exists()
    else:
        assert (code, distributed.can_stop_together()) == (EXIT_FAILED, True)
        reported = read_events(events_path)
        assert [(e["event"], e.get("rank"), e.get("code") or e.get("status")) for e in reported] == [
            ("error", 1, "internal"), ("run_finished", 1, "failed")]
        assert "Connection closed by peer" in reported[0]["problem"]
