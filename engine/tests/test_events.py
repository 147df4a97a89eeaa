import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FIXTURES, demo_config, write_config
from wanlora_engine.events import EVENT_FIELDS, EventWriter, read_events
from wanlora_engine.stage import run_stage

COMMON = {"event", "schema_version", "time", "elapsed_s"}
ENGINE_DIR = Path(__file__).resolve().parents[1]


def sample_events(name="events.sample.jsonl"):
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


def test_sample_fixture_covers_every_event_type_with_its_fields():
    # the evaluate and morphemes stages' events live in their own fixtures (read by the Swift Evaluation
    # library and Runs.MorphemeJob, not EngineEvent)
    events = (sample_events() + sample_events("events.evaluate.sample.jsonl")
              + sample_events("events.morphemes.sample.jsonl"))
    assert {e["event"] for e in events} == set(EVENT_FIELDS)
    for event in events:
        assert COMMON <= event.keys()
        assert set(EVENT_FIELDS[event["event"]]) <= event.keys(), event["event"]
    statuses = {e["status"] for e in events if e["event"] == "run_finished"}
    assert statuses == {"completed", "interrupted", "diverged"}


def test_a_real_run_emits_the_fields_of_the_sample(tmp_path, cached):
    for part in ("model", "data", "cache"):
        (tmp_path / part).symlink_to(cached / part)
    config = write_config(tmp_path, demo_config(training={"max_steps": 2, "eval_steps": 2, "save_steps": 2,
                                                          "logging_steps": 1}))
    assert run_stage("train", config, resume=False, echo=False) == 0
    real = read_events(tmp_path / "runs" / "demo" / "events.jsonl")
    # the train stage's lines (run_started also opens the cache and sample stages, without the layout fields)
    sample = {(e["event"]): set(e) for e in sample_events()
              if e["event"] in ("step", "eval", "checkpoint", "train_plan", "run_started")
              and e.get("stage", "train") == "train"}
    for event in real:
        if event["event"] in sample:
            assert set(event) == sample[event["event"]], event["event"]
    finished = real[-1]
    assert finished["event"] == "run_finished" and finished["status"] == "completed"
    assert set(finished["outputs"]) == {"high_noise_diffusers", "high_noise_comfyui", "low_noise_diffusers",
                                        "low_noise_comfyui", "checkpoint"}
    assert all(Path(p).exists() for p in finished["outputs"].values())


def test_writer_checks_fields_and_writes_json_without_nan(tmp_path):
    stream = io.StringIO()
    writer = EventWriter(tmp_path / "e.jsonl", stream=stream)
    with pytest.raises(ValueError, match="lacks fields"):
        writer.emit("checkpoint", step=1)
    with pytest.raises(ValueError, match="unknown event"):
        writer.emit("nonsense")
    writer.emit("eval", step=1, split="val", samples=1, val_loss=float("nan"), val_loss_high=float("inf"),
                val_loss_low=0.5, losses_by_timestep={"100": float("nan")})
    writer.close()
    line = (tmp_path / "e.jsonl").read_text().strip()
    assert stream.getvalue().strip() == line
    decoded = json.loads(line)
    assert decoded["val_loss"] is None and decoded["val_loss_high"] is None
    assert decoded["losses_by_timestep"]["100"] is None
    assert decoded["time"].endswith("Z")
    silent = EventWriter(tmp_path / "rank1.jsonl", enabled=False)
    silent.emit("warning", code="x", message="y")
    assert not (tmp_path / "rank1.jsonl").exists()


def _cli(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ENGINE_DIR))
    return subprocess.run([sys.executable, "-m", "wanlora_engine", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_bad_config_exits_2_with_an_error_event_on_stdout(tmp_path):
    raw = demo_config()
    del raw["training"]["cfg_dropout"]
    result = _cli(["train", "--config", str(write_config(tmp_path, raw))], tmp_path)
    assert result.returncode == 2
    (event,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert event["event"] == "error" and event["code"] == "config_invalid"
    assert "training.cfg_dropout" in event["problem"] and event["remedy"]
    assert "training.cfg_dropout" in result.stderr


def test_cli_tiny_model_and_help(tmp_path):
    result = _cli(["tiny-model", "--out", str(tmp_path / "m"), "--layout", "official"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m" / "high_noise_model" / "config.json").is_file()
    assert result.stdout == ""
    again = _cli(["tiny-model", "--out", str(tmp_path / "m")], tmp_path)
    assert again.returncode == 2 and "not empty" in again.stderr
    help_text = _cli(["--help"], tmp_path).stdout
    assert "cache" in help_text and "train" in help_text and "Exit codes" in help_text


def test_engine_gives_the_allocator_expandable_segments_unless_the_user_configured_it():
    from wanlora_engine.__main__ import ALLOCATOR_DEFAULT, default_allocator_settings

    environ: dict[str, str] = {}
    assert default_allocator_settings(environ) == ALLOCATOR_DEFAULT == "expandable_segments:True"
    assert environ == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    for key in ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF"):
        mine = {key: "max_split_size_mb:512"}
        assert default_allocator_settings(mine) is None
        assert mine == {key: "max_split_size_mb:512"}  # the user's setting is kept as it is


def test_the_engine_process_reports_its_allocator_settings(tmp_path, cached):
    for part in ("model", "data", "cache"):
        (tmp_path / part).symlink_to(cached / part)
    config = write_config(tmp_path, demo_config(training={"max_steps": 1, "eval_steps": 0,
                                                          "save_steps": 0}))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")}
    env["PYTHONPATH"] = str(ENGINE_DIR)
    for setting, expected in ((None, "expandable_segments:True"), ("garbage_collection_threshold:0.8",
                                                                   "garbage_collection_threshold:0.8")):
        if setting:
            env["PYTORCH_CUDA_ALLOC_CONF"] = setting
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)
        result = subprocess.run([sys.executable, "-m", "wanlora_engine", "train", "--config", str(config)],
                                env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        started = [json.loads(line) for line in result.stdout.splitlines() if '"run_started"' in line]
        assert started[-1]["cuda_alloc_conf"] == expected


def test_step_events_carry_each_window_peak_and_the_run_peak(monkeypatch):
    import torch

    from wanlora_engine.devices import GPUMemoryPeaks

    # A fake CUDA allocator: the peak counter PyTorch keeps, read and reset per window.
    state = {"allocated": 10, "peak": 10}
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: state["allocated"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: state["peak"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats",
                        lambda device=None: state.update(peak=state["allocated"]))
    peaks = GPUMemoryPeaks(torch.device("cuda", 0))
    state["peak"] = 80  # an 81-frame step
    assert peaks.window() == (10, 80, 80)
    state["peak"] = 50  # then a 49-frame step: its own peak, the run's stays
    assert peaks.window() == (10, 50, 80)
    state["peak"] = 60
    assert peaks.run() == (10, 80)
    assert GPUMemoryPeaks(torch.device("cpu")).window() == (None, None, None)
