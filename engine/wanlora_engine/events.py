"""JSON-lines events: the engine's only channel to the Swift side.

Each event is one JSON object on one line, written to the stage's events file (appended, flushed and
fsynced per line so a crash loses nothing already reported) and, when `echo` is on, to stdout. stdout
carries nothing but events; human-readable logs go to stderr. docs/engine-contract.md documents every
event type and field; `EVENT_FIELDS` below is the same list, and tests check each emitted event against it.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

EVENTS_SCHEMA_VERSION = 1

# Required fields of every event type (besides the common ones: event, schema_version, time, elapsed_s).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "run_started": (
        "stage", "run_name", "engine_version", "torch_version", "diffusers_version", "device", "device_name",
        "world_size", "config_path", "resumed_from_step",
    ),
    "cache_plan": (
        "splits", "items", "items_cached", "estimated_bytes", "free_bytes", "cache_dir",
    ),
    "progress": ("stage", "phase", "done", "total", "items_per_second"),
    "train_plan": (
        "experts", "trainable_parameters", "train_samples", "val_samples", "total_steps", "samples_per_step",
        "epochs", "optimizer", "mixed_precision", "gradient_checkpointing",
    ),
    "step": (
        "step", "total_steps", "epoch", "loss", "loss_high", "loss_low", "samples_high", "samples_low", "lr",
        "grad_norm", "seconds_per_step", "samples_per_second", "gpu_memory_allocated_bytes",
        "gpu_memory_peak_bytes", "host_memory_peak_bytes", "eta_seconds",
    ),
    "eval": ("step", "split", "samples", "val_loss", "val_loss_high", "val_loss_low", "losses_by_timestep"),
    "checkpoint": ("step", "path", "bytes", "removed"),
    # training stopped on a signal after a step; saved: whether that step's checkpoint was written
    "stopped": ("reason", "signal", "step", "saved", "checkpoint", "seconds_since_signal", "grace_seconds"),
    # a non-finite loss answered by train.on_nonfinite 'skip' or 'rollback'
    "nonfinite_skipped": ("step", "problem", "skipped_steps"),
    "nonfinite_rollback": ("step", "problem", "checkpoint", "resumed_at_step", "lr_scale", "rollbacks"),
    # stage `sample` (wanlora sample)
    "sample_plan": (
        "videos", "videos_existing", "steps", "steps_high", "steps_low", "schedule", "solver", "schedule_kind",
        "shift", "guidance_high", "guidance_low", "boundary", "width", "height", "frames", "fps", "loras",
        "inactive_expert", "vae_tiling", "text_encoder_device", "planned_peak_bytes", "device_total_bytes",
        "plan_gpu", "output_dir",
    ),
    "sample_step": (
        "video", "videos", "id", "step", "steps", "timestep", "sigma", "expert", "guidance", "seconds",
        "seconds_per_step", "eta_seconds",
    ),
    "sample_video": ("video", "videos", "id", "category", "path", "sidecar", "poster", "seconds", "seed", "existing"),
    "warning": ("code", "message"),
    "error": ("code", "problem", "remedy", "step", "last_checkpoint"),
    "run_finished": ("stage", "status", "step", "seconds", "outputs", "summary"),
    # evaluate stage (docs/evaluate.md)
    "evaluate_plan": (
        "metrics", "generated_videos", "reference_videos", "reference_rows", "categories", "paired_videos",
        "frames_per_video", "fvd_frames",
    ),
    "evaluate_progress": ("phase", "done", "total", "videos_per_second"),
    # morphemes stage (`wanlora analyze --morphemes`, curate's template flag)
    "morpheme_progress": ("done", "total", "captions_per_second"),
    "morpheme_summary": (
        "analyser", "captions", "morphemes", "content_words", "morpheme_types", "content_word_types", "scripts",
        "unit", "workers", "model_load_seconds", "seconds", "peak_rss_bytes",
    ),
}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite_or_none(obj: Any) -> Any:
    """JSON has no NaN/Infinity: non-finite floats become null (the Swift decoder would reject them)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


class EventWriter:
    """Appends events to a JSON-lines file and echoes them to stdout.

    `enabled=False` (a non-zero rank of a distributed run) makes every call a no-op, so callers need
    no rank checks.
    """

    def __init__(self, path: Path | None, echo: bool = True, enabled: bool = True,
                 stream: IO[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.echo = echo
        self.enabled = enabled
        self.stream = stream
        self._start = time.monotonic()
        self._file: IO[str] | None = None
        if self.enabled and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
            if self._file.tell() > 0:
                with open(self.path, "rb") as existing:
                    existing.seek(-1, os.SEEK_END)
                    if existing.read(1) != b"\n":  # a killed process's torn last line: end it
                        self._file.write("\n")

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        required = EVENT_FIELDS.get(event)
        if required is None:
            raise ValueError(f"unknown event type {event!r}")
        missing = [name for name in required if name not in fields]
        if missing:
            raise ValueError(f"event {event!r} lacks fields {missing}")
        record: dict[str, Any] = {
            "event": event,
            "schema_version": EVENTS_SCHEMA_VERSION,
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "elapsed_s": round(time.monotonic() - self._start, 3),
        }
        record.update(fields)
        record = _finite_or_none(record)
        if not self.enabled:
            return record
        line = json.dumps(record, ensure_ascii=False, default=_json_default, allow_nan=False)
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        if self.echo:
            out = self.stream if self.stream is not None else sys.stdout
            out.write(line + "\n")
            out.flush()
        return record

    def started_at(self, other: EventWriter) -> None:
        """Count elapsed_s from `other`'s start (a second writer for the same stage)."""
        self._start = other._start

    def warning(self, code: str, message: str, **details: Any) -> dict[str, Any]:
        return self.emit("warning", code=code, message=message, **details)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: Path) -> list[dict[str, Any]]:
    """All events of a JSON-lines file (a torn last line, from a killed process, is skipped)."""
    events = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


_LOG = {"enabled": True}


def set_log_enabled(enabled: bool) -> None:
    """Processes other than rank 0 of a distributed run keep quiet (their errors still reach stderr)."""
    _LOG["enabled"] = enabled


def log(message: str) -> None:
    """Human-readable progress on stderr (stdout is reserved for events)."""
    if not _LOG["enabled"]:
        return
    sys.stderr.write(message.rstrip() + "\n")
    sys.stderr.flush()
