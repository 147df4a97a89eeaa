"""The resolved config: the one JSON file (config.resolved.json) the Swift side writes and the engine reads.

Every key is required (defaults live in one place, the Swift config layer); unknown keys are errors, so
a typo never silently falls back to a default. docs/engine-contract.md documents each key; the fixture
files in engine/tests/fixtures/ are parsed by both the Swift tests and the Python tests.

Relative paths are relative to the folder that holds the config file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

SCHEMA_VERSION = 1

Expert = Literal["high", "low"]


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be > 0"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be >= 0"


def _unit_interval_open_right(value: float) -> str | None:
    return None if 0.0 <= value < 1.0 else "must be in [0, 1)"


def _unit_interval_open(value: float) -> str | None:
    return None if 0.0 < value < 1.0 else "must be in (0, 1)"


def _multiple_of_16(value: int) -> str | None:
    return None if value > 0 and value % 16 == 0 else "must be a positive multiple of 16 (VAE 8x, patch 2x)"


def _frames_4n_plus_1(value: int) -> str | None:
    return None if value >= 1 and (value - 1) % 4 == 0 else "must be 4n+1 (1, 5, ..., 49, 81): the VAE compresses time 4x"


def _non_empty(value: list[Any]) -> str | None:
    return None if len(value) > 0 else "must not be empty"


def _distinct_experts(value: list[str]) -> str | None:
    return None if len(set(value)) == len(value) and len(value) > 0 else "must list 'high', 'low' or both, each once"


def _timesteps(value: list[int]) -> str | None:
    if not value:
        return "must not be empty"
    return None if all(0 <= t <= 999 for t in value) else "every timestep must be in [0, 999]"


def _check(fn: typing.Callable[[Any], str | None]) -> dict[str, Any]:
    return {"check": fn}


@dataclass(frozen=True)
class RunConfig:
    name: str
    dir: Path


@dataclass(frozen=True)
class ModelConfig:
    path: Path
    layout: Literal["auto", "official", "diffusers"]
    dtype: Literal["bfloat16", "float16", "float32"]
    boundary: float = field(metadata=_check(_unit_interval_open))
    num_train_timesteps: int = field(metadata=_check(_positive))
    inactive_expert_device: Literal["same", "cpu"]
    # issue 18: how streamed blocks wait in host memory (docs/streaming.md): exact bf16, or float8 e4m3 with
    # a float32 scale per output channel, dequantized into the bf16 slot (streaming.py's host_format)
    host_weights_dtype: Literal["bfloat16", "float8_e4m3fn"]


@dataclass(frozen=True)
class DataConfig:
    train_manifest: Path
    val_manifest: Path | None
    cache_dir: Path
    width: int = field(metadata=_check(_multiple_of_16))
    height: int = field(metadata=_check(_multiple_of_16))
    frames: int = field(metadata=_check(_frames_4n_plus_1))
    fps: int = field(metadata=_check(_positive))
    text_length: int = field(metadata=_check(_positive))
    weight_column: str | None
    category_column: str | None
    source: Literal["cache", "on_the_fly"]


@dataclass(frozen=True)
class CacheConfig:
    device: Literal["auto", "cpu", "cuda"]
    shard_items: int = field(metadata=_check(_positive))
    text_batch_size: int = field(metadata=_check(_positive))
    vae_tiling: bool
    free_disk_margin_bytes: int = field(metadata=_check(_non_negative))


@dataclass(frozen=True)
class LoraConfig:
    rank: int = field(metadata=_check(_positive))
    alpha: float = field(metadata=_check(_positive))
    dropout: float = field(metadata=_check(_unit_interval_open_right))
    targets: list[str] = field(metadata=_check(_non_empty))
    experts: list[Expert] = field(metadata=_check(_distinct_experts))


@dataclass(frozen=True)
class OptimizerConfig:
    name: Literal["adamw8bit", "adamw"]
    lr: float = field(metadata=_check(_positive))
    betas: list[float]
    eps: float = field(metadata=_check(_positive))
    weight_decay: float = field(metadata=_check(_non_negative))
    warmup_steps: int = field(metadata=_check(_non_negative))
    schedule: Literal["cosine", "constant"]
    max_grad_norm: float = field(metadata=_check(_non_negative))


@dataclass(frozen=True)
class TimestepConfig:
    sampling: Literal["uniform", "logit_normal"]
    shift: float = field(metadata=_check(_positive))
    logit_mean: float
    logit_std: float = field(metadata=_check(_positive))


@dataclass(frozen=True)
class TrainConfig:
    device: Literal["auto", "cpu", "cuda"]
    epochs: int = field(metadata=_check(_positive))
    max_steps: int | None
    micro_batch: int = field(metadata=_check(_positive))
    grad_accum: int = field(metadata=_check(_positive))
    mixed_precision: Literal["bf16", "no"]
    gradient_checkpointing: bool
    cfg_dropout: float = field(metadata=_check(_unit_interval_open_right))
    seed: int = field(metadata=_check(_non_negative))
    expert_grouping: Literal["sample", "step"]
    loss_weighting: Literal["none", "class_balanced", "focal"]
    class_balanced_beta: float = field(metadata=_check(_unit_interval_open))
    focal_gamma: float = field(metadata=_check(_non_negative))
    overfit_samples: int | None
    optimizer: OptimizerConfig
    timesteps: TimestepConfig


@dataclass(frozen=True)
class LoggingConfig:
    every_steps: int = field(metadata=_check(_positive))
    tensorboard: bool


@dataclass(frozen=True)
class EvalConfig:
    every_steps: int = field(metadata=_check(_non_negative))
    timesteps: list[int] = field(metadata=_check(_timesteps))
    max_samples: int = field(metadata=_check(_positive))
    seed: int = field(metadata=_check(_non_negative))


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = field(metadata=_check(_non_negative))
    keep_last: int = field(metadata=_check(_positive))


@dataclass(frozen=True)
class BlocksConfig:
    """How the transformer blocks run (wanlora_engine.fast_model; docs/engine-contract.md §2.10)."""

    implementation: Literal["fast", "diffusers"]
    attention: Literal["auto", "cudnn", "flash", "efficient", "math"]
    keep_attention: bool
    activation_offload: Literal["auto", "none", "all"]
    compile: bool


@dataclass(frozen=True)
class ResolvedConfig:
    schema_version: int
    run: RunConfig
    model: ModelConfig
    data: DataConfig
    cache: CacheConfig
    lora: LoraConfig
    train: TrainConfig
    logging: LoggingConfig
    eval: EvalConfig
    checkpoint: CheckpointConfig
    blocks: BlocksConfig
    source_path: Path | None = field(default=None, metadata={"internal": True})

    def to_json_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values (paths as strings), without internal fields."""

        def convert(obj: Any) -> Any:
            if dataclasses.is_dataclass(obj):
                return {
                    f.name: convert(getattr(obj, f.name))
                    for f in dataclasses.fields(obj)
                    if not f.metadata.get("internal")
                }
            if isinstance(obj, Path):
                return str(obj)
            if isinstance(obj, list):
                return [convert(v) for v in obj]
            return obj

        return convert(self)


_TYPE_NAMES = {int: "integer", float: "number", bool: "boolean", str: "string", Path: "string (path)"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _describe(args[0]) + " or null"
    if origin is list:
        return "array of " + _describe(typing.get_args(tp)[0])
    if dataclasses.is_dataclass(tp):
        return "object"
    return _TYPE_NAMES.get(tp, str(tp))


def _convert(value: Any, tp: Any, where: str, base: Path) -> Any:
    origin = typing.get_origin(tp)
    wrong = ConfigError(
        f"config key '{where}' is {json.dumps(value, ensure_ascii=False)}, expected {_describe(tp)}",
        f"write '{where}' as {_describe(tp)} (docs/engine-contract.md lists every key)",
    )
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], where, base)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise wrong
        return value
    if origin is list:
        if not isinstance(value, list):
            raise wrong
        (item_tp,) = typing.get_args(tp)
        return [_convert(v, item_tp, f"{where}[{i}]", base) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise wrong
        return _parse_dataclass(tp, value, where, base)
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise wrong
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise wrong
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise wrong
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path)
    raise TypeError(f"unsupported config type {tp!r}")


def _parse_dataclass(cls: Any, raw: dict[str, Any], where: str, base: Path) -> Any:
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]
    known = {f.name for f in fields}
    prefix = f"{where}." if where else ""
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"config has unknown key '{prefix}{unknown[0]}'",
            f"remove it or correct its spelling; the keys of '{where or 'the top level'}' are: "
            + ", ".join(sorted(known)),
        )
    values: dict[str, Any] = {}
    for f in fields:
        key = f"{prefix}{f.name}"
        if f.name not in raw:
            raise ConfigError(
                f"config lacks the key '{key}' ({_describe(hints[f.name])})",
                "regenerate config.resolved.json with `wanlora train`/`wanlora cache`, or add the key "
                "(docs/engine-contract.md lists every key and its default)",
            )
        value = _convert(raw[f.name], hints[f.name], key, base)
        check = f.metadata.get("check")
        if check is not None and value is not None:
            problem = check(value)
            if problem:
                raise ConfigError(
                    f"config key '{key}' is {json.dumps(raw[f.name], ensure_ascii=False)}: it {problem}",
                    f"change '{key}' so that it {problem}",
                )
        values[f.name] = value
    return cls(**values)


def parse_config(raw: dict[str, Any], base: Path) -> ResolvedConfig:
    """Validate a decoded config.resolved.json; relative paths resolve against `base`."""
    if not isinstance(raw, dict):
        raise ConfigError("config is not a JSON object", "write config.resolved.json as one JSON object")
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ConfigError(
            f"config schema_version is {json.dumps(version)}, this engine reads version {SCHEMA_VERSION}",
            "regenerate config.resolved.json with the wanlora binary that ships with this engine",
        )
    config: ResolvedConfig = _parse_dataclass(ResolvedConfig, raw, "", base)
    _check_cross_field(config)
    return config


def _check_cross_field(config: ResolvedConfig) -> None:
    betas = config.train.optimizer.betas
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ConfigError(
            f"config key 'train.optimizer.betas' is {betas}: it must be two numbers in [0, 1)",
            "set 'train.optimizer.betas' to e.g. [0.9, 0.999]",
        )
    if config.train.max_steps is not None and config.train.max_steps <= 0:
        raise ConfigError(
            f"config key 'train.max_steps' is {config.train.max_steps}: it must be > 0 or null",
            "set 'train.max_steps' to null to train for 'train.epochs' epochs",
        )
    if config.train.overfit_samples is not None and config.train.overfit_samples <= 0:
        raise ConfigError(
            f"config key 'train.overfit_samples' is {config.train.overfit_samples}: it must be > 0 or null",
            "set 'train.overfit_samples' to 100 for the overfit test, or null for normal training",
        )


def load_config(path: Path) -> ResolvedConfig:
    """Read and validate config.resolved.json."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist",
            "pass the config.resolved.json that `wanlora train` wrote into the run folder",
        ) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"config file {path} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}",
            "regenerate it with `wanlora train`/`wanlora cache` or fix the JSON syntax",
        ) from None
    config = parse_config(raw, path.resolve().parent)
    return dataclasses.replace(config, source_path=path.resolve())
