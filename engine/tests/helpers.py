"""Builders for the tests: tiny datasets of real media files and configs derived from the fixtures."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from wanlora_engine.demo_data import CAPTIONS, CATEGORIES, write_dataset, write_image, write_video  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures"


def demo_config(**overrides: Any) -> dict[str, Any]:
    """The demo fixture with nested overrides: demo_config(training={"max_steps": 4})."""
    config = json.loads((FIXTURES / "config.resolved.demo.json").read_text())

    def merge(into: dict[str, Any], values: dict[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = copy.deepcopy(value)

    merge(config, overrides)
    return config


def write_config(folder: Path, config: dict[str, Any], name: str = "config.resolved.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False))
    return path


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None


def hub_cache_with(root: Path, repo_id: str, model: Path, commit: str = "0123abcd") -> Path:
    """A Hugging Face hub cache as huggingface_hub lays it out, holding `model` as the `main` snapshot of `repo_id`."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots").mkdir()
    (repo / "snapshots" / commit).symlink_to(model, target_is_directory=True)
    return repo / "snapshots" / commit
