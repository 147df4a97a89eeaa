"""TensorBoard and MLflow logging of `train`: the scalars, the install of a missing package, the files written."""

import sys

import pytest

from helpers import demo_config, write_config
from wanlora_engine import metric_logs
from wanlora_engine.events import read_events
from wanlora_engine.metric_logs import LoggingPackageError, ensure_package, extra_requirements, scalars_of
from wanlora_engine.stage import run_stage


def test_step_and_eval_events_give_the_scalars_by_name():
    step = {"step": 7, "loss": 0.25, "loss_high": None, "loss_low": 0.5, "lr": 1e-4, "grad_norm": 2.0,
            "samples_per_second": 3.5, "seconds_per_step": 4.0, "gpu_memory_peak_bytes": None,
            "gpu_memory_allocated_bytes": None, "host_memory_peak_bytes": 1024}
    assert scalars_of("step", step) == {
        "train/loss": 0.25, "train/loss_low": 0.5, "train/lr": 1e-4, "train/grad_norm": 2.0,
        "throughput/samples_per_second": 3.5, "throughput/seconds_per_step": 4.0, "memory/host_peak_bytes": 1024.0}
    evaluation = {"step": 8, "val_loss": 0.3, "val_loss_high": 0.4, "val_loss_low": None,
                  "losses_by_timestep": {"100": 0.2, "900": 0.4, "500": None}}
    assert scalars_of("eval", evaluation) == {"eval/loss": 0.3, "eval/loss_high": 0.4, "eval/loss_t100": 0.2,
                                              "eval/loss_t900": 0.4}


def test_the_extras_come_from_the_engine_s_metadata():
    assert extra_requirements("tensorboard") == ["tensorboard>=2.15"]
    assert extra_requirements("mlflow") == ["mlflow-skinny>=3.0"]
    assert extra_requirements("no-such-extra") == []


def test_a_missing_package_is_installed_from_its_extra_or_the_error_says_how(tmp_path, monkeypatch):
    monkeypatch.setitem(metric_logs.BACKENDS, "tensorboard", ("wanlora_test_board", "tensorboard"))
    calls = []

    def failing(requirements):
        calls.append(requirements)
        return False, "ERROR: Could not find a version that satisfies the requirement tensorboard>=2.15"

    with pytest.raises(LoggingPackageError) as error:
        ensure_package("tensorboard", "training.tensorboard", failing)
    assert calls == [["tensorboard>=2.15"]]
    assert error.value.code == "logging_package_missing"
    assert "training.tensorboard is on" in error.value.problem and "'wanlora_test_board'" in error.value.problem
    assert "Could not find a version" in error.value.problem
    assert f"{sys.executable} -m pip install 'tensorboard>=2.15'" in error.value.remedy
    assert "turn training.tensorboard off" in error.value.remedy

    def installing(requirements):  # what pip does: the module appears on the path
        (tmp_path / "wanlora_test_board.py").write_text("")
        return True, ""

    monkeypatch.syspath_prepend(str(tmp_path))
    ensure_package("tensorboard", "training.tensorboard", installing)  # no error once it imports

    monkeypatch.setitem(metric_logs.BACKENDS, "mlflow", ("wanlora_test_flow", "mlflow"))
    with pytest.raises(LoggingPackageError, match="'wanlora_test_flow' is not installed"):
        ensure_package("mlflow", "training.mlflow_tracking_uri", lambda requirements: (True, ""))  # pip lied


def test_mlflow_file_uri_is_relative_to_runs_dir(tmp_path):
    assert metric_logs.mlflow_tracking_uri("file:mlruns", tmp_path) == (tmp_path / "mlruns").as_uri()
    assert metric_logs.mlflow_tracking_uri("file:///srv/mlruns", tmp_path) == "file:///srv/mlruns"
    assert metric_logs.mlflow_tracking_uri("http://mlflow:5000", tmp_path) == "http://mlflow:5000"


def test_a_tracking_uri_mlflow_cannot_open_is_a_config_error(tmp_path):
    from wanlora_engine.config import load_config
    from wanlora_engine.errors import ConfigError

    config = load_config(write_config(tmp_path, demo_config(training={"mlflow_tracking_uri": "nosuch://store"})))
    config.derived.run_dir.mkdir(parents=True)
    with pytest.raises(ConfigError, match="training.mlflow_tracking_uri = 'nosuch://store': MLflow cannot open"):
        metric_logs.open_loggers(config, is_main=True)
    assert not metric_logs.open_loggers(config, is_main=False).backends  # only the main process logs


def test_training_writes_the_same_scalars_to_tensorboard_and_mlflow(workspace):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = write_config(workspace, demo_config(
        training={"max_steps": 4, "logging_steps": 2, "eval_steps": 2, "save_steps": 0, "tensorboard": True,
                  "mlflow_tracking_uri": "file:mlruns"},
        eval={"val_loss_timesteps": [100, 900]}))
    assert run_stage("train", config, resume=False, echo=False) == 0
    run_dir = workspace / "runs" / "demo"
    events = read_events(run_dir / "events.jsonl")
    steps = [e for e in events if e["event"] == "step"]
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in steps] == [2, 4] and [e["step"] for e in evals] == [2, 4]

    board = EventAccumulator(str(run_dir / "tensorboard"))
    board.Reload()
    tags = set(board.Tags()["scalars"])
    assert {"train/loss", "train/lr", "throughput/samples_per_second", "memory/host_peak_bytes", "eval/loss",
            "eval/loss_t100", "eval/loss_t900"} <= tags
    assert [s.step for s in board.Scalars("train/loss")] == [2, 4]
    assert [s.value for s in board.Scalars("train/loss")] == pytest.approx([e["loss"] for e in steps], rel=1e-6)
    assert [s.value for s in board.Scalars("eval/loss_t900")] == pytest.approx(
        [e["losses_by_timestep"]["900"] for e in evals], rel=1e-6)

    client = MlflowClient(tracking_uri=(workspace / "runs" / "mlruns").as_uri())
    run = client.get_run((run_dir / "mlflow_run_id").read_text().strip())
    assert run.info.status == "FINISHED" and run.info.run_name == "demo"
    assert run.data.params["lora.rank"] == str(demo_config()["lora"]["rank"])
    history = client.get_metric_history(run.info.run_id, "train/lr")
    assert [m.step for m in history] == [2, 4]
    assert [m.value for m in history] == pytest.approx([e["lr"] for e in steps], rel=1e-12)
    assert [m.value for m in client.get_metric_history(run.info.run_id, "eval/loss_t100")] == pytest.approx(
        [e["losses_by_timestep"]["100"] for e in evals], rel=1e-12)
