"""The evaluation config (`evaluate.json`): the one file `wanlora evaluate` writes and the engine reads.

Same rules as config.resolved.json: every key is required (the defaults live in the Swift config layer),
unknown keys are errors, relative paths are relative to the file's folder. docs/engine-contract.md §7 lists
every key.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from ..strict_json import _check, _parse_dataclass, _positive

SCHEMA_VERSION = 1
METRICS = ("fvd", "is", "lpips", "clip", "temporal")
Metric = Literal["fvd", "is", "lpips", "clip", "temporal"]


def _non_negative(value: int) -> str | None:
    return None if value >= 0 else "must be >= 0"


def _at_least_9(value: int) -> str | None:
    return None if value >= 9 else "must be >= 9 (I3D divides time by 8 and its head pools 2 steps)"


def _even(value: int) -> str | None:
    return None if value > 0 and value % 2 == 0 else "must be a positive even number (H.264 needs even sides)"


def _metrics(value: list[str]) -> str | None:
    if not value:
        return "must name at least one metric"
    return None if len(set(value)) == len(value) else "must name each metric once"


@dataclass(frozen=True)
class EvaluateInputs:
    generated_dir: Path  # *.mp4 with a <stem>.json sidecar each (wanlora sample)
    reference_manifest: Path  # prepared val manifest: path, caption, category, media_type
    category_column: str | None
    reference_per_category: int = field(metadata=_check(_non_negative))  # 0 = every reference video
    seed: int = field(metadata=_check(_non_negative))


@dataclass(frozen=True)
class VideoDecoding:
    width: int = field(metadata=_check(_even))
    height: int = field(metadata=_check(_even))
    fps: int = field(metadata=_check(_positive))
    max_frames: int = field(metadata=_check(_positive))  # the first frames only: a long source clip stays bounded


@dataclass(frozen=True)
class FVDSettings:
    i3d_weights: Path
    frames: int = field(metadata=_check(_at_least_9))
    min_samples: int = field(metadata=_check(_positive))


@dataclass(frozen=True)
class InceptionSettings:
    weights: Path
    splits: int = field(metadata=_check(_positive))


@dataclass(frozen=True)
class LPIPSSettings:
    net: Literal["alex", "vgg"]
    linear_weights: Path
    backbone_weights: Path | None  # null when linear_weights is a full LPIPS state dict
    size: int = field(metadata=_check(_positive))  # shortest side of the frames compared, pixels
    max_pairs: int = field(metadata=_check(_positive))  # diversity pairs per category


@dataclass(frozen=True)
class CLIPSettings:
    image_model: Path
    text_model: Path


@dataclass(frozen=True)
class EvaluateConfig:
    schema_version: int
    kind: Literal["evaluate"]
    out_dir: Path
    device: Literal["auto", "cpu", "cuda"]
    metrics: list[Metric] = field(metadata=_check(_metrics))
    frames_per_video: int = field(metadata=_check(_positive))
    batch_size: int = field(metadata=_check(_positive))
    inputs: EvaluateInputs
    video: VideoDecoding
    fvd: FVDSettings
    inception: InceptionSettings
    lpips: LPIPSSettings
    clip: CLIPSettings
    source_path: Path | None = field(default=None, metadata={"internal": True})

    def wants(self, metric: str) -> bool:
        return metric in self.metrics


def parse_evaluate_config(raw: Any, base: Path) -> EvaluateConfig:
    if not isinstance(raw, dict):
        raise ConfigError("evaluation config is not a JSON object", "write evaluate.json as one JSON object")
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(f"evaluation config schema_version is {json.dumps(raw.get('schema_version'))}, "
                          f"this engine reads version {SCHEMA_VERSION}",
                          "write it again with the wanlora binary that ships with this engine")
    return _parse_dataclass(EvaluateConfig, raw, "", base)


def load_evaluate_config(path: Path) -> EvaluateConfig:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"evaluation config {path} does not exist",
                          "pass the evaluate.json that `wanlora evaluate` wrote into its --out folder") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"evaluation config {path} is not valid JSON: {error.msg} at line {error.lineno}",
                          "write it again with `wanlora evaluate` or fix the JSON syntax") from None
    config = parse_evaluate_config(raw, path.resolve().parent)
    return dataclasses.replace(config, source_path=path.resolve())
