"""Strict reading of a JSON object into frozen dataclasses: every field required, unknown keys refused,
types exact (a boolean is not an integer), per-field checks from the field's metadata.

Used by the contracts whose dataclasses are written by hand (the sample job, evaluate.json); the resolved
config is read through its generated schema instead (config.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError
from .model_source import read_model_source


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be > 0"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be >= 0"


def _unit_interval_open(value: float) -> str | None:
    return None if 0.0 < value < 1.0 else "must be in (0, 1)"


def _multiple_of_16(value: int) -> str | None:
    return None if value > 0 and value % 16 == 0 else "must be a positive multiple of 16 (VAE 8x, patch 2x)"


def _frames_4n_plus_1(value: int) -> str | None:
    if value >= 1 and (value - 1) % 4 == 0:
        return None
    return "must be 4n+1 (1, 5, ..., 49, 81): the VAE compresses time 4x"


def _check(fn: typing.Callable[[Any], str | None]) -> dict[str, Any]:
    return {"check": fn}


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
        if f.metadata.get("model_source"):  # a folder, a file or a repo id (model_source.read_model_source)
            if not isinstance(raw[f.name], str) or not raw[f.name]:
                raise ConfigError(f"config key '{key}' is {json.dumps(raw[f.name], ensure_ascii=False)}, expected "
                                  "a path string or a Hugging Face repo id (Org/Name)",
                                  f"write '{key}' as a model folder or a repo id")
            value = read_model_source(raw[f.name], base)
        else:
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
