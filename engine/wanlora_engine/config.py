"""The resolved config: the one JSON file (config.resolved.json) the Swift side writes and the engine reads.

It holds every key of the TOML configuration under the TOML's own section and key names
(`config.training.grad_accumulation` is the TOML's `training.grad_accumulation`), resolved by Swift:
the preset applied, `run.name` filled in, an empty `data.cache_dir` replaced by the folder it stands
for, paths absolute. `derived` holds the few values the engine needs that are no TOML key.

The keys and their types are declared once, in the Swift registry (Sources/Config/ConfigKeys.swift);
`config_schema.json` beside this file is generated from it (`wanlora config generate`, checked by a
Swift test), and this module builds its typed view from that schema. It checks the schema version,
that every key is present with its type and that no key is unknown. Value ranges were checked once,
in Swift, before the file was written; nothing is validated here a second time.

Relative paths (hand-written files) are relative to the folder that holds the config file; an empty
path means "none" and reads as None.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError
from .model_source import read_model_source

_SCHEMA_FILE = Path(__file__).with_name("config_schema.json")
SCHEMA: dict[str, Any] = json.loads(_SCHEMA_FILE.read_text(encoding="utf-8"))
SCHEMA_VERSION: int = SCHEMA["schema_version"]
SECTIONS: list[str] = list(SCHEMA["sections"])


def choices(section: str, name: str) -> tuple[str, ...]:
    """The values a choice key of the schema allows (the Swift registry's enum, written once)."""
    key = next(key for key in SCHEMA["sections"][section] if key["name"] == name)
    return tuple(key["values"])

Expert = Literal["high", "low"]

# Compute dtypes of model.weights_dtype as torch names. fp8 is the host format of the blocks that stream under
# hardware.gpu_memory_limit (docs/streaming.md): the GPU computes on bf16 weights, resident blocks included.
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "fp8": "bfloat16"}


@dataclass(frozen=True)
class Resolution:
    """`training.resolution` / `sample.resolution`, written "WIDTHxHEIGHT"."""

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class Derived:
    """Values the engine needs that are not TOML keys (docs/engine-contract.md §2, `derived`)."""

    run_dir: Path
    experts: list[Expert]


def _section_class(section: str) -> type:
    keys = SCHEMA["sections"][section]
    return dataclasses.make_dataclass(
        section.capitalize() + "Section", [(key["name"], Any) for key in keys], frozen=True
    )


_SECTION_CLASSES = {section: _section_class(section) for section in SECTIONS}
# The `lora` section's type (rank, alpha, dropout, targets), as lora.add_lora takes it.
LoraConfig = _SECTION_CLASSES["lora"]


@dataclass(frozen=True)
class ResolvedConfig:
    schema_version: int
    preset: str
    run: Any
    data: Any
    model: Any
    lora: Any
    training: Any
    cache: Any
    hardware: Any
    sample: Any
    eval: Any
    # `wanlora analyze`'s settings: carried for completeness, read by no engine stage.
    analyze: Any
    derived: Derived
    source_path: Path | None = field(default=None, metadata={"internal": True})

    @property
    def free_disk_margin_bytes(self) -> int:
        """`cache.free_disk_margin_gib` in bytes, rounded as Swift rounds (half away from zero)."""
        return int(math.floor(self.cache.free_disk_margin_gib * 2**30 + 0.5))

    @property
    def torch_dtype(self) -> str:
        """The torch dtype name of `model.weights_dtype`."""
        return TORCH_DTYPES[self.model.weights_dtype]

    @property
    def fp8_host_weights(self) -> bool:
        """Streamed blocks wait in host memory as float8 e4m3 with per-channel scales (`model.weights_dtype` fp8)."""
        return self.model.weights_dtype == "fp8"

    @property
    def gpu_memory_limit_bytes(self) -> int | None:
        """`hardware.gpu_memory_limit` (GiB) in bytes, rounded as Swift rounds; None for 0 (what the card has)."""
        gib = self.hardware.gpu_memory_limit
        return int(math.floor(gib * 2**30 + 0.5)) if gib > 0 else None

    def to_json_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values (the file's own spelling), without internal fields."""

        def convert(obj: Any) -> Any:
            if isinstance(obj, Resolution):
                return str(obj)
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

        out = convert(self)
        # A path that is None was "" in the file.
        for section in SECTIONS:
            for key in SCHEMA["sections"][section]:
                if key["type"] in ("path", "model_source") and out[section][key["name"]] is None:
                    out[section][key["name"]] = ""
        return out


def _describe(schema: dict[str, Any]) -> str:
    kind = schema["type"]
    if kind == "choice":
        return "one of " + ", ".join(json.dumps(v) for v in schema["values"])
    if kind == "array":
        return "an array of " + _describe(schema["items"])
    if kind == "resolution":
        return 'a string "WIDTHxHEIGHT"'
    return {"integer": "an integer", "number": "a number", "boolean": "true or false", "string": "a string",
            "path": "a path string", "model_source": "a path string or a Hugging Face repo id (Org/Name)"}[kind]


def _convert(value: Any, schema: dict[str, Any], where: str, base: Path) -> Any:
    wrong = ConfigError(
        f"config key '{where}' is {json.dumps(value, ensure_ascii=False)}, expected {_describe(schema)}",
        f"write '{where}' as {_describe(schema)} (docs/config.md describes every key)",
    )
    kind = schema["type"]
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise wrong
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise wrong
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise wrong
        return value
    if kind == "choice":
        if not isinstance(value, str) or value not in schema["values"]:
            raise wrong
        return value
    if kind == "path":
        if not isinstance(value, str):
            raise wrong
        if not value:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path)
    if kind == "model_source":
        if not isinstance(value, str):
            raise wrong
        return read_model_source(value, base) if value else None
    if kind == "resolution":
        parts = value.lower().replace("×", "x").split("x") if isinstance(value, str) else []
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise wrong
        return Resolution(int(parts[0]), int(parts[1]))
    if kind == "array":
        if not isinstance(value, list):
            raise wrong
        return [_convert(v, schema["items"], f"{where}[{i}]", base) for i, v in enumerate(value)]
    raise TypeError(f"unsupported schema type {kind!r} of '{where}'")


def _refuse_unknown(raw: dict[str, Any], known: list[str], where: str) -> None:
    unknown = sorted(set(raw) - set(known))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"config has unknown key '{prefix}{unknown[0]}'",
            f"remove it or correct its spelling; the keys of '{where or 'the top level'}' are: "
            + ", ".join(sorted(known)),
        )


def _require(raw: dict[str, Any], name: str, where: str, expected: str) -> Any:
    if name not in raw:
        raise ConfigError(
            f"config lacks the key '{where}' ({expected})",
            "regenerate config.resolved.json with `wanlora train`/`wanlora cache` "
            "(every key is required: the file has no defaults)",
        )
    return raw[name]


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"config key '{where}' is {json.dumps(value, ensure_ascii=False)}, expected an object",
            f"write '{where}' as a JSON object (docs/engine-contract.md §2)",
        )
    return value


def _parse_section(section: str, raw: Any, base: Path) -> Any:
    raw = _object(raw, section)
    keys = SCHEMA["sections"][section]
    _refuse_unknown(raw, [k["name"] for k in keys], section)
    values = {}
    for key in keys:
        where = f"{section}.{key['name']}"
        values[key["name"]] = _convert(_require(raw, key["name"], where, _describe(key)), key, where, base)
    return _SECTION_CLASSES[section](**values)


def _parse_derived(raw: Any, base: Path) -> Derived:
    raw = _object(raw, "derived")
    _refuse_unknown(raw, ["run_dir", "experts"], "derived")
    run_dir = _convert(_require(raw, "run_dir", "derived.run_dir", "a path string"), {"type": "path"},
                       "derived.run_dir", base)
    experts_schema = {"type": "array", "items": {"type": "choice", "values": ["high", "low"]}}
    experts = _convert(_require(raw, "experts", "derived.experts", _describe(experts_schema)), experts_schema,
                       "derived.experts", base)
    if run_dir is None or not experts or len(set(experts)) != len(experts):
        raise ConfigError(
            f"config key 'derived' is {json.dumps(raw)}: run_dir must be a path, experts 'high', 'low' or both once",
            "regenerate config.resolved.json with `wanlora train`/`wanlora cache`",
        )
    return Derived(run_dir=run_dir, experts=experts)


def parse_config(raw: dict[str, Any], base: Path) -> ResolvedConfig:
    """Check and type a decoded config.resolved.json; relative paths resolve against `base`."""
    if not isinstance(raw, dict):
        raise ConfigError("config is not a JSON object", "write config.resolved.json as one JSON object")
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ConfigError(
            f"config schema_version is {json.dumps(version)}, this engine reads version {SCHEMA_VERSION}",
            "regenerate config.resolved.json with the wanlora binary that ships with this engine",
        )
    _refuse_unknown(raw, ["schema_version", "preset", *SECTIONS, "derived"], "")
    preset = _convert(_require(raw, "preset", "preset", _describe(SCHEMA["preset"])), SCHEMA["preset"], "preset", base)
    sections = {s: _parse_section(s, _require(raw, s, s, "an object"), base) for s in SECTIONS}
    derived = _parse_derived(_require(raw, "derived", "derived", "an object"), base)
    return ResolvedConfig(schema_version=version, preset=preset, derived=derived, **sections)


def replace_keys(config: ResolvedConfig, **sections: dict[str, Any]) -> ResolvedConfig:
    """A copy with some keys changed: replace_keys(config, training={"grad_accumulation": 2})."""
    changed = {s: dataclasses.replace(getattr(config, s), **values) for s, values in sections.items()}
    return dataclasses.replace(config, **changed)


def load_config(path: Path) -> ResolvedConfig:
    """Read and check config.resolved.json."""
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
