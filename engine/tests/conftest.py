"""Shared, session-scoped builds: the tiny models in both layouts, a small dataset and its cache."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from helpers import demo_config, have_ffmpeg, write_config, write_dataset  # noqa: E402


@pytest.fixture(scope="session")
def tiny_official(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wanlora_engine.tiny import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("models") / "official", "official", seed=0)


@pytest.fixture(scope="session")
def tiny_diffusers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wanlora_engine.tiny import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("models") / "diffusers", "diffusers", seed=0)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 train items (4 PNG images, 4 H.264 clips of 9 frames) and 4 val items."""
    if not have_ffmpeg():
        pytest.fail("ffmpeg is needed to build the test clips: apt-get install ffmpeg (make deps-media)")
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, images=4, videos=4, video_frames=9)
    write_dataset(root, images=2, videos=2, video_frames=9, name="val.csv", start=100)
    return root


@pytest.fixture(scope="session")
def cached(tmp_path_factory: pytest.TempPathFactory, tiny_diffusers: Path, dataset: Path) -> Path:
    """A workspace with model, data and a finished cache; tests copy it before changing anything."""
    from wanlora_engine.stage import run_stage

    root = tmp_path_factory.mktemp("workspace")
    shutil.copytree(tiny_diffusers, root / "model")
    shutil.copytree(dataset, root / "data")
    config = write_config(root, demo_config())
    assert run_stage("cache", config, resume=False, echo=False) == 0
    return root


@pytest.fixture
def workspace(tmp_path: Path, cached: Path) -> Path:
    """A private workspace: model and data linked from the shared build, cache copied."""
    (tmp_path / "model").symlink_to(cached / "model")
    (tmp_path / "data").symlink_to(cached / "data")
    shutil.copytree(cached / "cache", tmp_path / "cache")
    return tmp_path
