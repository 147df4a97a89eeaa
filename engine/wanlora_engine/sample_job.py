"""The sample job: the one JSON file (`sample-job.json`) that `wanlora sample` writes and the `sample` stage reads.

Like config.resolved.json, every key is required and unknown keys are errors; the defaults live in the Swift
config layer. Relative paths are relative to the folder holding the job file. docs/engine-contract.md §7
documents each key. The memory candidates are the planner's (Swift) numbers for each way of placing the
models on one GPU, in the order the user prefers them; the engine takes the first that fits the real card.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .config import choices
from .errors import ConfigError
from .strict_json import _check, _frames_4n_plus_1, _multiple_of_16, _non_negative, _parse_dataclass, _positive

SAMPLE_JOB_SCHEMA_VERSION = 2  # 2: sampler.attention

_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _unit_interval_open(value: float) -> str | None:
    return None if 0.0 < value < 1.0 else "must be in (0, 1)"


def _at_least_one(value: float) -> str | None:
    return None if value >= 1.0 else "must be >= 1 (1 = no guidance)"


def _crf(value: int) -> str | None:
    return None if 0 <= value <= 51 else "must be in 0..51 (x264 constant rate factor; 18 is visually lossless)"


def _seed(value: int) -> str | None:
    return None if 0 <= value < 2**63 else "must be in [0, 2^63)"


def _attention_kernel(value: str) -> str | None:
    kernels = choices("sample", "attention")
    return None if value in kernels else f"must be one of {', '.join(kernels)}"


def _not_empty(value: list) -> str | None:
    return None if value else "must not be empty"


@dataclass(frozen=True)
class SampleModel:
    path: Path | str = field(metadata={"model_source": True})  # a folder, or a repo id in the local hub cache
    layout: Literal["auto", "official", "diffusers"]
    dtype: Literal["bfloat16", "float16", "float32"]
    boundary: float = field(metadata=_check(_unit_interval_open))
    num_train_timesteps: int = field(metadata=_check(_positive))
    # Single-file expert checkpoints (official / ComfyUI key names) that replace the folder's experts; None: none.
    high_noise_file: Path | None = None
    low_noise_file: Path | None = None


@dataclass(frozen=True)
class SamplerSettings:
    solver: Literal["euler", "unipc"]
    schedule: Literal["wan", "diffusers_unipc", "diffusers_euler"]
    steps: int = field(metadata=_check(_positive))
    shift: float = field(metadata=_check(_positive))
    guidance_high: float = field(metadata=_check(_at_least_one))
    guidance_low: float = field(metadata=_check(_at_least_one))
    negative_prompt: str
    text_length: int = field(metadata=_check(_positive))
    attention: str = field(metadata=_check(_attention_kernel))  # the fast blocks' kernel (sample.attention)


@dataclass(frozen=True)
class VideoSettings:
    width: int = field(metadata=_check(_multiple_of_16))
    height: int = field(metadata=_check(_multiple_of_16))
    frames: int = field(metadata=_check(_frames_4n_plus_1))
    fps: int = field(metadata=_check(_positive))
    crf: int = field(metadata=_check(_crf))


@dataclass(frozen=True)
class LoraSlot:
    path: Path
    scale: float


@dataclass(frozen=True)
class LoraSettings:
    high: LoraSlot | None
    low: LoraSlot | None


@dataclass(frozen=True)
class MemoryItem:
    name: str
    phase: Literal["encode", "denoise", "decode"]
    bytes: int = field(metadata=_check(_non_negative))
    basis: str


@dataclass(frozen=True)
class MemoryCandidate:
    inactive_expert: Literal["gpu", "cpu"]
    vae_tiling: bool
    peak_bytes: int = field(metadata=_check(_non_negative))
    items: list[MemoryItem]


@dataclass(frozen=True)
class MemoryAlternative:
    label: str
    peak_bytes: int = field(metadata=_check(_non_negative))


@dataclass(frozen=True)
class MemorySettings:
    text_encoder_device: Literal["gpu", "cpu"]
    plan_gpu: str | None
    reserved_bytes: int = field(metadata=_check(_non_negative))
    candidates: list[MemoryCandidate] = field(metadata=_check(_not_empty))
    alternatives: list[MemoryAlternative]


@dataclass(frozen=True)
class OutputSettings:
    dir: Path
    overwrite: bool


@dataclass(frozen=True)
class PromptItem:
    id: str
    prompt: str
    category: str | None
    seed: int = field(metadata=_check(_seed))


@dataclass(frozen=True)
class SampleJob:
    schema_version: int
    kind: Literal["sample"]
    device: Literal["auto", "cpu", "cuda"]
    model: SampleModel
    sampler: SamplerSettings
    video: VideoSettings
    loras: LoraSettings
    memory: MemorySettings
    output: OutputSettings
    prompts: list[PromptItem] = field(metadata=_check(_not_empty))
    source_path: Path | None = field(default=None, metadata={"internal": True})


def parse_sample_job(raw: object, base: Path) -> SampleJob:
    """Validate a decoded sample job; relative paths resolve against `base`."""
    if not isinstance(raw, dict):
        raise ConfigError("sample job is not a JSON object", "write sample-job.json as one JSON object")
    version = raw.get("schema_version")
    if version != SAMPLE_JOB_SCHEMA_VERSION:
        raise ConfigError(
            f"sample job schema_version is {json.dumps(version)}, "
            f"this engine reads version {SAMPLE_JOB_SCHEMA_VERSION}",
            "write the job again with the wanlora binary that ships with this engine",
        )
    try:
        job: SampleJob = _parse_dataclass(SampleJob, raw, "", base)
    except ConfigError as error:  # the shared parser speaks of config.resolved.json; say which file it is
        raise ConfigError(_as_job_text(error.problem), _as_job_text(error.remedy)) from None
    seen: dict[str, int] = {}
    for index, item in enumerate(job.prompts):
        where = f"prompts[{index}]"
        if not _ID_PATTERN.fullmatch(item.id):
            raise ConfigError(
                f"sample job key '{where}.id' is {json.dumps(item.id, ensure_ascii=False)}: it names the video files, "
                "so it must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-' (not starting with '.', '_' or '-')",
                f"change '{where}.id', e.g. to \"{index + 1:04d}\"",
            )
        if item.id in seen:
            raise ConfigError(
                f"sample job key '{where}.id' repeats the id {item.id!r} of prompts[{seen[item.id]}]",
                "give every prompt its own id",
            )
        seen[item.id] = index
        if not item.prompt.strip():
            raise ConfigError(f"sample job key '{where}.prompt' is empty",
                              "remove the prompt or write its text")
    return job


def _as_job_text(text: str) -> str:
    for old, new in (("config key", "sample job key"), ("config lacks", "sample job lacks"),
                     ("config has unknown", "sample job has unknown"), ("config.resolved.json", "sample-job.json"),
                     ("`wanlora train`/`wanlora cache`", "`wanlora sample`")):
        text = text.replace(old, new)
    return text


def load_sample_job(path: Path) -> SampleJob:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"sample job {path} does not exist",
                          "pass the sample-job.json that `wanlora sample` wrote into the output folder") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"sample job {path} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}",
            "write it again with `wanlora sample` or fix the JSON syntax",
        ) from None
    job = parse_sample_job(raw, path.resolve().parent)
    return dataclasses.replace(job, source_path=path.resolve())


def job_to_json(job: SampleJob) -> dict[str, object]:
    """The job as JSON-ready values (paths as strings), without internal fields."""

    def convert(obj: object) -> object:
        if dataclasses.is_dataclass(obj):
            return {f.name: convert(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                    if not f.metadata.get("internal")}
        if isinstance(obj, Path):
            return str(obj)
        if isinstance(obj, list):
            return [convert(v) for v in obj]
        return obj

    return convert(job)  # type: ignore[return-value]
