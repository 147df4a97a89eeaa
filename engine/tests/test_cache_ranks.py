"""`cache` under torchrun on CPU (gloo): 1, 2 and 3 processes write the same cache byte for byte; a rank killed
with SIGKILL in the middle of a shard, then the same command again, gives that cache too; a file that cannot be
decoded is listed as skipped, whichever rank met it.

The data: 4 images, 4 clips (one of them not a video) and 2 + 2 val items, in shards of 2 rows: 4 train and 2 val
shards, so 3 ranks get 2 shards each and one of them meets the broken clip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_cache import cache_files

from helpers import demo_config, write_config, write_dataset
from wanlora_engine.encoding import read_jsonl
from wanlora_engine.events import read_events

ENGINE = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, tiny_diffusers: Path) -> Path:
    root = tmp_path_factory.mktemp("cache_ranks")
    (root / "model").symlink_to(tiny_diffusers)
    write_dataset(root / "data", images=4, videos=4, video_frames=9)
    write_dataset(root / "data", images=2, videos=2, video_frames=9, name="val.csv", start=100)
    (root / "data" / "media" / "clip0005.mp4").write_bytes(b"not a video")
    return root


def config_for(root: Path, name: str) -> Path:
    return write_config(root, demo_config(run={"name": name}, derived={"run_dir": f"runs/{name}"},
                                          data={"cache_dir": f"cache-{name}"}, cache={"shard_items": 2}),
                        f"{name}.json")


def run_cache(root: Path, name: str, processes: int, faults: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ENGINE), PYTHONUNBUFFERED="1")
    env.pop("WANLORA_FAULT_INJECT", None)
    if faults:
        env["WANLORA_FAULT_INJECT"] = faults
    engine = ["-m", "wanlora_engine", "cache", "--config", str(config_for(root, name))]
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--standalone",
                                           f"--nproc-per-node={processes}"]
    return subprocess.run([sys.executable, *launcher, *engine], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def files(root: Path, name: str) -> dict[str, bytes]:
    return {k: v.replace(f"cache-{name}".encode(), b"<cache>") for k, v in cache_files(root, f"cache-{name}").items()}


def test_one_two_and_three_processes_write_the_same_cache(root):
    for name, processes in (("one", 1), ("two", 2), ("three", 3)):
        result = run_cache(root, name, processes)
        assert result.returncode == 0, result.stderr[-3000:]
    one = files(root, "one")
    assert files(root, "two") == one and files(root, "three") == one
    assert sorted(k for k in one if k.endswith(".safetensors")) == [
        "empty_prompt.safetensors",
        *[f"train/{kind}-{n:05d}.safetensors" for kind in ("latents", "text") for n in range(4)],
        *[f"val/{kind}-{n:05d}.safetensors" for kind in ("latents", "text") for n in range(2)],
    ]
    index = read_jsonl(root / "cache-three" / "train" / "index.jsonl")
    assert [r["id"] for r in index] == ["item0000", "item0001", "item0002", "item0003", "item0004", "item0006",
                                        "item0007"]
    assert [r["shard"] for r in index] == [0, 0, 1, 1, 2, 3, 3]
    # The broken clip is row 6 (line 7), in shard 2, which rank 2 of 3 encodes: rank 0 reports it.
    skipped = read_jsonl(root / "cache-three" / "train" / "skipped.jsonl")
    assert [(s["id"], s["line"]) for s in skipped] == [("item0005", 7)]
    assert "ffmpeg could not decode" in skipped[0]["reason"]
    events = read_events(root / "runs" / "three" / "cache-events.jsonl")
    warnings = [e for e in events if e["event"] == "warning" and e["code"] == "item_skipped"]
    assert [(w["id"], w["line"]) for w in warnings] == [("item0005", 7)]
    assert events[-1]["status"] == "completed" and events[-1]["summary"]["world_size"] == 3
    assert events[-1]["summary"]["train"]["items"] == 7 and events[-1]["summary"]["train"]["skipped"] == 1
    assert events[-1]["summary"]["items_new"] == 7 + 4 and events[-1]["summary"]["items_skipped_new"] == 1


def test_a_rank_killed_in_a_shard_loses_only_that_shard(root):
    if not (root / "cache-one").is_dir():
        assert run_cache(root, "one", 1).returncode == 0
    # Rank 1 of 2 encodes train shards 1 and 3 and val shard 1; it dies in train shard 3 after its latents file.
    killed = run_cache(root, "killed", 2, faults="kill:1@3:cache_shard")
    assert killed.returncode != 0
    cache = root / "cache-killed"
    assert (cache / "train" / "latents-00003.safetensors").is_file()
    assert not (cache / "train" / "shards" / "00003.json").is_file()
    assert not (cache / "train" / "index.jsonl").exists()  # written only when every shard is done
    records = sorted(cache.glob("*/shards/*.json"))
    assert cache / "train" / "shards" / "00001.json" in records  # the shard the killed rank finished stays done
    kept = sum(len(json.loads(p.read_text())["items"]) for p in records)
    again = run_cache(root, "killed", 2)
    assert again.returncode == 0, again.stderr[-3000:]
    events = read_events(root / "runs" / "killed" / "cache-events.jsonl")
    plan = [e for e in events if e["event"] == "cache_plan"][-1]
    assert plan["shards"] == 6 and plan["shards_pending"] == 6 - len(records) >= 1
    assert events[-1]["summary"]["items_new"] == 11 - kept
    assert files(root, "killed") == files(root, "one")
    assert json.loads((cache / "cache.json").read_text())["schema_version"] == 2
