import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import demo_config, write_config
from wanlora_engine.checkpoints import checkpoint_dirs
from wanlora_engine.config import load_config
from wanlora_engine.events import EventWriter, read_events
from wanlora_engine.stage import run_stage
from wanlora_engine.train import Trainer

ENGINE_DIR = Path(__file__).resolve().parents[1]


def make_trainer(workspace: Path, **overrides) -> Trainer:
    config = load_config(write_config(workspace, demo_config(**overrides)))
    return Trainer(config, EventWriter(None, echo=False))


def events_of(workspace: Path) -> list[dict]:
    return read_events(workspace / "runs" / "demo" / "events.jsonl")


def test_lora_has_the_expected_size_on_both_experts(workspace):
    trainer = make_trainer(workspace, lora={"rank": 4})
    # 2 blocks x 8 attention projections (to_q, to_k, to_v, to_out.0 of self- and cross-attention),
    # each 16 -> 16 at rank 4: 4 * (16 + 16) parameters. SPEC: 40 * 8 * (5120 + 5120) * r for A14B.
    for expert in ("high", "low"):
        assert sum(p.numel() for p in trainer.params[expert]) == 2 * 8 * 4 * (16 + 16)
        assert all(p.dtype == torch.float32 and p.requires_grad for p in trainer.params[expert])
        frozen = [p for n, p in trainer.models[expert].named_parameters() if "lora_" not in n]
        assert frozen and not any(p.requires_grad for p in frozen)


def test_each_sample_trains_the_expert_of_its_timestep(workspace):
    trainer = make_trainer(workspace, training={"timestep_shift": 3.0})
    experts, sigmas = [], []
    for step in range(200):
        for sample in trainer.draw_step(trainer.sampler.take(4 * step, 4)):
            t = float(sample.sigma) * 1000
            assert sample.expert == ("high" if t >= 875 else "low")
            experts.append(sample.expert)
            sigmas.append(float(sample.sigma))
    share = experts.count("high") / len(experts)
    expected = 1 - 0.875 / (3.0 - 2.0 * 0.875)  # P(sigma >= 0.875) under shift 3
    assert share == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / len(experts)))


@pytest.mark.parametrize("only", ["high", "low"])
def test_training_one_expert_draws_only_its_timesteps(workspace, only):
    trainer = make_trainer(workspace, training={"expert": only}, derived={"experts": [only]})
    assert list(trainer.models) == [only]
    for step in range(50):
        for sample in trainer.draw_step(trainer.sampler.take(4 * step, 4)):
            assert sample.expert == only
            assert (float(sample.sigma) >= 0.875) == (only == "high")


def test_step_grouping_uses_one_expert_per_step_with_the_right_frequency(workspace):
    trainer = make_trainer(workspace, training={"expert_grouping": "step", "timestep_shift": 5.0})
    per_step = []
    for step in range(400):
        experts = {s.expert for s in trainer.draw_step(trainer.sampler.take(4 * step, 4))}
        assert len(experts) == 1
        per_step.append(experts.pop())
    p_high = 1 - 0.875 / (5.0 - 4.0 * 0.875)
    share = per_step.count("high") / len(per_step)
    assert share == pytest.approx(p_high, abs=4 * math.sqrt(p_high * (1 - p_high) / len(per_step)))


def test_cfg_dropout_rate_and_empty_prompt(workspace):
    trainer = make_trainer(workspace, training={"cfg_dropout": 0.1})
    dropped = 0
    total = 0
    for step in range(1000):
        for sample in trainer.draw_step(trainer.sampler.take(4 * step, 4)):
            total += 1
            if sample.dropped:
                dropped += 1
                assert torch.equal(sample.text, trainer.empty_prompt)
            else:
                assert torch.equal(sample.text, trainer.train_set.text(sample.index))
    assert dropped / total == pytest.approx(0.1, abs=4 * math.sqrt(0.1 * 0.9 / total))


def test_overfit_mode_loss_falls_and_reports_memory(workspace):
    config = write_config(workspace, demo_config(
        lora={"rank": 8, "alpha": 8},
        training={"max_steps": 40, "overfit_samples": 4, "cfg_dropout": 0.0, "micro_batch": 2, "grad_accumulation": 1,
                  "learning_rate": 0.01, "warmup_steps": 0, "schedule": "constant", "weight_decay": 0.0,
                  "eval_steps": 0, "save_steps": 0, "logging_steps": 10},
        eval={"val_loss_timesteps": [100, 500, 900]}))
    assert run_stage("train", config, resume=False, echo=False) == 0
    events = events_of(workspace)
    finished = events[-1]
    assert finished["event"] == "run_finished" and finished["status"] == "completed"
    overfit = finished["summary"]["overfit"]
    assert overfit["samples"] == 4 and overfit["loss_fell"] is True
    assert overfit["eval_loss_end"] < 0.9 * overfit["eval_loss_start"]
    assert overfit["host_memory_peak_bytes"] > 0 and overfit["gpu_memory_peak_bytes"] is None
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [0, 40] and evals[0]["split"] == "train_subset"
    warnings = {e["code"] for e in events if e["event"] == "warning"}
    assert "optimizer_fallback" not in warnings  # the demo asks for torch AdamW


def test_adamw8bit_without_gpu_falls_back_and_says_so(workspace):
    trainer = make_trainer(workspace, training={"optimizer": "adamw8bit"})
    assert trainer.optimizer_name == "adamw" and isinstance(trainer.optimizer, torch.optim.AdamW)
    config = write_config(workspace, demo_config(training={"max_steps": 1, "optimizer": "adamw8bit"}))
    assert run_stage("train", config, resume=False, echo=False) == 0
    warning = next(e for e in events_of(workspace) if e["event"] == "warning" and e["code"] == "optimizer_fallback")
    assert "no CUDA GPU" in warning["message"]


def _engine(args: list[str], cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ENGINE_DIR), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "wanlora_engine", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, predicate, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and predicate(read_events(path)):
            return
        if process.poll() is not None:
            raise AssertionError(f"engine exited early: {process.stderr.read()[-2000:]}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError("timed out waiting for the engine")


def test_resume_after_kill_is_bit_identical(tmp_path, cached):
    overrides = dict(training={"max_steps": 8, "warmup_steps": 2, "save_steps": 2, "keep_checkpoints": 2,
                               "eval_steps": 0}, lora={"dropout": 0.1})
    results = {}
    for name in ("straight", "killed"):
        ws = tmp_path / name
        ws.mkdir()
        for part in ("model", "data", "cache"):
            (ws / part).symlink_to(cached / part)
        config = write_config(ws, demo_config(**overrides))
        events_path = ws / "runs" / "demo" / "events.jsonl"
        if name == "killed":
            process = _engine(["train", "--config", str(config)], ws)
            _wait_for(events_path, lambda ev: any(e["event"] == "checkpoint" and e["step"] >= 4 for e in ev), process)
            process.kill()  # SIGKILL: no handler runs, nothing is saved on the way out
            process.wait()
            steps_before = max(e["step"] for e in read_events(events_path) if e["event"] == "checkpoint")
            assert steps_before < 8
            process = _engine(["train", "--config", str(config), "--resume"], ws)
        else:
            process = _engine(["train", "--config", str(config)], ws)
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        stdout_events = [json.loads(line) for line in out.splitlines()]
        assert stdout_events[-1]["event"] == "run_finished" and stdout_events[-1]["status"] == "completed"
        final = checkpoint_dirs(ws / "runs" / "demo")
        assert [p.name for p in final] == ["step-00000006", "step-00000008"]  # keep_last = 2
        results[name] = {e: load_file(str(final[-1] / f"lora-{e}.safetensors")) for e in ("high", "low")}
        results[name]["export"] = load_file(str(ws / "runs" / "demo" / "lora" / "high_noise.diffusers.safetensors"))
        if name == "killed":
            started = [e for e in read_events(events_path) if e["event"] == "run_started"]
            assert started[-1]["resumed_from_step"] == steps_before
    for part in ("high", "low", "export"):
        a, b = results["straight"][part], results["killed"][part]
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (part, key)
    # LoRA B starts at zero: training moved it
    assert any(results["straight"]["high"][k].abs().sum() > 0 for k in results["straight"]["high"] if "lora_B" in k)


def test_sigint_saves_a_checkpoint_and_exits_130(tmp_path, cached):
    for part in ("model", "data", "cache"):
        (tmp_path / part).symlink_to(cached / part)
    config = write_config(tmp_path, demo_config(training={"max_steps": 10_000, "save_steps": 0,
                                                          "eval_steps": 0}))
    process = _engine(["train", "--config", str(config)], tmp_path)
    events_path = tmp_path / "runs" / "demo" / "events.jsonl"
    _wait_for(events_path, lambda ev: any(e["event"] == "step" for e in ev), process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    events = read_events(events_path)
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "interrupted"
    saved = [e for e in events if e["event"] == "checkpoint"]
    assert len(saved) == 1 and saved[0]["step"] == events[-1]["step"] < 10_000
    assert checkpoint_dirs(tmp_path / "runs" / "demo")[-1].name == f"step-{saved[0]['step']:08d}"
    # a new start without --resume refuses to overwrite the run
    assert run_stage("train", config, resume=False, echo=False) == 2


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(workspace, monkeypatch):
    original = Trainer.train_step

    def poisoned(self):
        if self.state.step == 4:  # after the checkpoint of step 4, the weights go bad
            with torch.no_grad():
                self.params["high"][1].fill_(float("nan"))
                self.params["low"][1].fill_(float("nan"))
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    config = write_config(workspace, demo_config(training={"max_steps": 8, "save_steps": 2,
                                                           "eval_steps": 0}))
    assert run_stage("train", config, resume=False, echo=False) == 3
    events = events_of(workspace)
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "non_finite_loss" and error["step"] == 5
    assert error["last_checkpoint"].endswith("step-00000004")
    assert events[-1]["status"] == "diverged"
    assert [p.name for p in checkpoint_dirs(workspace / "runs" / "demo")] == ["step-00000002", "step-00000004"]
    good = load_file(str(checkpoint_dirs(workspace / "runs" / "demo")[-1] / "lora-high.safetensors"))
    assert all(torch.isfinite(t).all() for t in good.values())


def test_class_balanced_weighting_uses_category_counts(workspace):
    trainer = make_trainer(workspace, training={"loss_weighting": "class_balanced", "class_balanced_beta": 0.9})
    categories = trainer.train_set.categories()
    counts = {c: categories.count(c) for c in set(categories)}
    raw = {c: 0.1 / (1 - 0.9 ** n) for c, n in counts.items()}
    mean = sum(raw[c] for c in categories) / len(categories)
    assert trainer.item_loss_weight == pytest.approx([raw[c] / mean for c in categories])


def test_focal_weights_follow_the_loss_ratio(workspace):
    trainer = make_trainer(workspace, training={"loss_weighting": "focal", "focal_gamma": 2.0})
    trainer.state.focal_ema = 0.5
    losses = torch.tensor([0.25, 0.5, 1.0, 100.0])
    weights = trainer.loss_weights([0] * 4, losses)
    assert weights.tolist() == pytest.approx([0.25, 1.0, 4.0, 10.0])  # (l / 0.5)^2, capped at 10


def test_missing_validation_split_is_reported(workspace):
    config = write_config(workspace, demo_config(data={"val_manifest": ""}, training={"max_steps": 1,
                                                                                            "eval_steps": 1}))
    assert run_stage("train", config, resume=False, echo=False) == 0
    codes = [e.get("code") for e in events_of(workspace) if e["event"] == "warning"]
    assert "no_validation_split" in codes
    assert not [e for e in events_of(workspace) if e["event"] == "eval"]


def test_gradient_accumulation_equals_one_big_batch(workspace):
    """4 samples as 1 x 4 micro-batches or 4 x 1 (or 2 x 2): the same draws, loss and update."""
    results = []
    for micro, accum in ((4, 1), (1, 4), (2, 2)):
        trainer = make_trainer(workspace, lora={"dropout": 0.0},
                               training={"micro_batch": micro, "grad_accumulation": accum, "cfg_dropout": 0.5})
        record = trainer.train_step()
        params = {k: v.detach().clone() for k, v in trainer.models["low"].named_parameters() if "lora_" in k}
        results.append((record, params))
    (ref_record, ref_params) = results[0]
    for record, params in results[1:]:
        assert record.loss == pytest.approx(ref_record.loss, rel=1e-6)
        assert record.grad_norm == pytest.approx(ref_record.grad_norm, rel=1e-5)
        for key in ref_params:
            assert torch.allclose(params[key], ref_params[key], atol=1e-7), key


def test_on_the_fly_encoding_trains_like_the_cache(workspace):
    """data.source 'on_the_fly' encodes the same items to the same bf16 values the cache holds."""
    cached_trainer = make_trainer(workspace)
    fly_trainer = make_trainer(workspace, data={"source": "on_the_fly"})
    assert len(fly_trainer.train_set) == len(cached_trainer.train_set) == 8
    for index in (0, 5):  # an image and a video
        assert torch.equal(fly_trainer.train_set.latent(index), cached_trainer.train_set.latent(index))
        assert torch.allclose(fly_trainer.train_set.text(index).float(), cached_trainer.train_set.text(index).float(),
                              atol=1e-2)
    assert torch.allclose(fly_trainer.empty_prompt.float(), cached_trainer.empty_prompt.float(), atol=1e-2)
    a, b = cached_trainer.train_step(), fly_trainer.train_step()
    assert a.loss == pytest.approx(b.loss, rel=1e-3)
