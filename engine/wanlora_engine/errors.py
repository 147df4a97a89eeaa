"""Errors the engine reports to its user: what went wrong (problem) and how to fix it (remedy).

The Swift side shows `problem` and `remedy` as they are (the `error` event carries both), so both are
sentences about the user's files and settings, never about engine internals.
"""

from __future__ import annotations


class EngineError(Exception):
    """An error with a stable machine code, a problem statement and a remedy."""

    code: str = "engine_error"
    exit_code: int = 1

    def __init__(self, problem: str, remedy: str, code: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.remedy = remedy
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.problem}\n  fix: {self.remedy}"


class ConfigError(EngineError):
    """The resolved config is missing a key, has a key of the wrong type, or a value out of range."""

    code = "config_invalid"
    exit_code = 2


class ModelLoadError(EngineError):
    """A model folder lacks a file, or a checkpoint lacks (or has extra) keys."""

    code = "model_load_failed"


class DataError(EngineError):
    """A manifest row, a media file or the cache is unusable."""

    code = "data_invalid"


class DiskSpaceError(EngineError):
    """The cache would not fit on the disk that holds it."""

    code = "disk_space"


class NonFiniteLossError(EngineError):
    """The loss became NaN or infinite; training stops and keeps the last good checkpoint."""

    code = "non_finite_loss"
    exit_code = 3
