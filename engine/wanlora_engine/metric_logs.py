"""Training metrics for TensorBoard and MLflow, beside events.jsonl (which stays the record `wanlora runs` reads).

Configured by `training.tensorboard` (scalars in RUN/tensorboard) and `training.mlflow_tracking_uri` (an MLflow
tracking store; `file:mlruns`, relative to the run's runs_dir, is a local file store shared by its runs). Each
backend's package is an extra of the engine (pyproject.toml: `tensorboard`, `mlflow`); when a configured one is
missing, the engine installs that extra's requirement into its own Python with pip before the first step, and
stops with the command to run by hand when that fails (an offline cluster).

Both get the same scalars under the same names (SCALARS below), at the optimizer step they describe. Only the
main process writes them. An MLflow run is continued on --resume: its id is kept in RUN/mlflow_run_id.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError, EngineError
from .events import log

# Scalar name → (event, field) of events.jsonl it is taken from (docs/runs.md lists both).
SCALARS: dict[str, tuple[str, str]] = {
    "train/loss": ("step", "loss"),
    "train/loss_high": ("step", "loss_high"),
    "train/loss_low": ("step", "loss_low"),
    "train/lr": ("step", "lr"),
    "train/grad_norm": ("step", "grad_norm"),
    "throughput/samples_per_second": ("step", "samples_per_second"),
    "throughput/seconds_per_step": ("step", "seconds_per_step"),
    "memory/gpu_peak_bytes": ("step", "gpu_memory_peak_bytes"),
    "memory/gpu_allocated_bytes": ("step", "gpu_memory_allocated_bytes"),
    "memory/host_peak_bytes": ("step", "host_memory_peak_bytes"),
    "eval/loss": ("eval", "val_loss"),
    "eval/loss_high": ("eval", "val_loss_high"),
    "eval/loss_low": ("eval", "val_loss_low"),
}
# plus eval/loss_t{T} for each T of the eval event's losses_by_timestep (training.val_loss_timesteps)

# The Python module each backend imports and the engine extra that brings it.
BACKENDS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}
MLFLOW_EXPERIMENT = "wanlora"
MLFLOW_RUN_ID_FILE = "mlflow_run_id"


class LoggingPackageError(EngineError):
    """A configured metric logger's package is not installed and could not be installed."""

    code = "logging_package_missing"


def scalars_of(event: str, record: Mapping[str, Any]) -> dict[str, float]:
    """The logged scalars of one `step` or `eval` event (None values and non-finite ones are left out)."""
    values = {name: record.get(key) for name, (source, key) in SCALARS.items() if source == event}
    if event == "eval":
        for timestep, loss in (record.get("losses_by_timestep") or {}).items():
            values[f"eval/loss_t{timestep}"] = loss
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and abs(float(v)) != float("inf")
            and v == v}


def extra_requirements(extra: str) -> list[str]:
    """The requirements of the engine's extra `extra`, as the installed engine's metadata (pyproject.toml) says."""
    from packaging.requirements import Requirement

    try:
        lines = importlib.metadata.requires("wanlora_engine") or []
    except importlib.metadata.PackageNotFoundError:
        lines = []
    found = []
    for line in lines:
        requirement = Requirement(line)
        if requirement.marker is not None and requirement.marker.evaluate({"extra": extra}) \
                and not requirement.marker.evaluate({"extra": ""}):
            requirement.marker = None
            found.append(str(requirement))
    return found


Installer = Callable[[list[str]], tuple[bool, str]]


def pip_install(requirements: list[str]) -> tuple[bool, str]:
    """`python -m pip install` into the engine's own Python; (succeeded, the end of pip's output)."""
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *requirements],
                            capture_output=True, text=True)
    return result.returncode == 0, (result.stdout + result.stderr).strip()[-2000:]


def ensure_package(backend: str, key: str, install: Installer = pip_install) -> None:
    """Import the backend's package, installing the engine extra that brings it when it is missing."""
    module, extra = BACKENDS[backend]
    if importlib.util.find_spec(module) is not None:
        return
    requirements = extra_requirements(extra)
    by_hand = f"`{sys.executable} -m pip install '{' '.join(requirements) or 'wanlora_engine[' + extra + ']'}'`"
    if not requirements:
        raise LoggingPackageError(
            f"{key} is on but the Python package {module!r} is not installed, and the engine's metadata names no "
            f"extra {extra!r} to install (the engine was not installed with pip)",
            f"install the engine with `make -C engine venv`, then run {by_hand}; or turn {key} off")
    log(f"{key} is on: installing {' '.join(requirements)} into {sys.executable}")
    succeeded, output = install(requirements)
    importlib.invalidate_caches()
    if not succeeded or importlib.util.find_spec(module) is None:
        raise LoggingPackageError(
            f"{key} is on but the Python package {module!r} is not installed, and installing "
            f"{' '.join(requirements)} failed: {output or 'pip reported nothing'}",
            f"install it by hand with {by_hand}, from a machine that reaches the package index or from a "
            f"downloaded wheel (pip install FILE.whl); or turn {key} off")


def mlflow_tracking_uri(value: str, runs_dir: Path) -> str:
    """`file:` URIs with a relative path are relative to runs_dir; any other URI is passed to MLflow as it is."""
    if value.startswith("file:") and not value.startswith("file:/"):
        return (runs_dir / value.removeprefix("file:")).resolve().as_uri()
    return value


class TensorBoardBackend:
    def __init__(self, folder: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder))

    def log(self, scalars: dict[str, float], step: int) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self, status: str) -> None:
        self.writer.close()


class MLflowBackend:
    """MLflow's client API (no global active run): one MLflow run per wanlora run, continued on resume."""

    STATUS = {"completed": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}

    def __init__(self, uri: str, run_dir: Path, params: dict[str, Any]) -> None:
        if uri.startswith("file:"):  # MLflow ≥ 3.7 refuses its file store unless asked for it
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        id_file = run_dir / MLFLOW_RUN_ID_FILE
        if id_file.is_file():
            self.run_id = id_file.read_text().strip()
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(MLFLOW_EXPERIMENT)
        self.run_id = self.client.create_run(experiment_id, run_name=run_dir.name).info.run_id
        id_file.write_text(self.run_id + "\n")
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 parameters a batch
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def log(self, scalars: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in scalars.items()])

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=self.STATUS.get(status, "FAILED"))


class MetricLoggers:
    """The configured backends; `log_event` takes a `step` or `eval` event's fields."""

    def __init__(self, backends: list[Any]) -> None:
        self.backends = backends

    def log_event(self, event: str, record: Mapping[str, Any]) -> None:
        scalars = scalars_of(event, record)
        if scalars:
            for backend in self.backends:
                backend.log(scalars, int(record["step"]))

    def close(self, status: str) -> None:
        for backend in self.backends:
            backend.close(status)
        self.backends = []


def logged_params(config: Any) -> dict[str, Any]:
    """The settings MLflow shows beside the curves: the lora and training sections, flattened."""
    values = config.to_json_dict()
    return {f"{section}.{key}": value for section in ("lora", "training") for key, value in values[section].items()}


def open_loggers(config: Any, is_main: bool, install: Installer = pip_install) -> MetricLoggers:
    """The backends `config.training` turns on (none on a non-main process)."""
    backends: list[Any] = []
    if not is_main:
        return MetricLoggers(backends)
    run_dir = config.derived.run_dir
    if config.training.tensorboard:
        ensure_package("tensorboard", "training.tensorboard", install)
        backends.append(TensorBoardBackend(run_dir / "tensorboard"))
    if config.training.mlflow_tracking_uri:
        ensure_package("mlflow", "training.mlflow_tracking_uri", install)
        import logging

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines would interleave with the log
        uri = mlflow_tracking_uri(config.training.mlflow_tracking_uri, Path(config.run.runs_dir))
        try:
            backends.append(MLflowBackend(uri, run_dir, logged_params(config)))
        except Exception as error:  # MLflow's own exceptions: an unknown scheme, a server that does not answer
            for backend in backends:
                backend.close("failed")
            raise ConfigError(f"training.mlflow_tracking_uri = {config.training.mlflow_tracking_uri!r}: MLflow "
                              f"cannot open the tracking store {uri} ({type(error).__name__}: {error})",
                              "use file:mlruns for a local file store in runs_dir, file:///absolute/folder, or the "
                              "http(s) URI of a running MLflow server; or set it to \"\" to log to events.jsonl "
                              "only") from error
    return MetricLoggers(backends)
