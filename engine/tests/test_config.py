import json
from pathlib import Path

import pytest

from helpers import FIXTURES
from wanlora_engine.config import SCHEMA_VERSION, load_config, parse_config
from wanlora_engine.errors import ConfigError


def test_v100_fixture_parses_with_every_value():
    config = load_config(FIXTURES / "config.resolved.v100.json")
    assert config.schema_version == SCHEMA_VERSION
    assert config.model.boundary == 0.875
    assert config.model.inactive_expert_device == "cpu"
    assert (config.data.width, config.data.height, config.data.frames, config.data.text_length) == (1280, 720, 49, 256)
    assert config.lora.rank == 16 and config.lora.alpha == 16.0 and config.lora.dropout == 0.05
    assert config.lora.targets == ["to_q", "to_k", "to_v", "to_out.0"]
    assert config.lora.experts == ["high", "low"]
    assert config.train.micro_batch * config.train.grad_accum == 16
    assert config.train.optimizer.name == "adamw8bit"
    assert config.train.optimizer.lr == 1e-4 and config.train.optimizer.weight_decay == 0.01
    assert config.train.optimizer.warmup_steps == 100 and config.train.optimizer.schedule == "cosine"
    assert config.train.optimizer.betas == [0.9, 0.999]
    assert config.train.cfg_dropout == 0.1 and config.train.seed == 42
    assert config.train.max_steps is None
    assert config.cache.free_disk_margin_bytes == 10 * 2**30
    assert config.checkpoint.keep_last == 2 and config.eval.timesteps[-1] == 950
    assert config.data.cache_dir == Path("/data/cache/1280x720-49f-256t")


def test_demo_fixture_resolves_relative_paths_against_its_folder(tmp_path):
    raw = json.loads((FIXTURES / "config.resolved.demo.json").read_text())
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "config.resolved.json"
    path.write_text(json.dumps(raw))
    config = load_config(path)
    assert config.model.path == tmp_path / "sub" / "model"
    assert config.data.train_manifest == tmp_path / "sub" / "data" / "train.csv"
    assert config.run.dir == tmp_path / "sub" / "runs" / "demo"
    assert config.source_path == path.resolve()


@pytest.mark.parametrize("name,key", sorted(json.loads((FIXTURES / "config.invalid.cases.json").read_text()).items()))
def test_invalid_fixtures_name_the_offending_key(name, key):
    with pytest.raises(ConfigError) as caught:
        load_config(FIXTURES / name)
    assert key in caught.value.problem
    assert caught.value.remedy
    assert caught.value.exit_code == 2


def test_round_trip_through_json_dict_is_identity():
    config = load_config(FIXTURES / "config.resolved.v100.json")
    again = parse_config(json.loads(json.dumps(config.to_json_dict())), Path("/"))
    assert again.to_json_dict() == config.to_json_dict()


def test_booleans_are_not_integers_and_nan_is_rejected():
    raw = json.loads((FIXTURES / "config.resolved.v100.json").read_text())
    raw["lora"]["rank"] = True
    with pytest.raises(ConfigError, match="lora.rank"):
        parse_config(raw, Path("/"))
    raw = json.loads((FIXTURES / "config.resolved.v100.json").read_text())
    raw["train"]["optimizer"]["lr"] = float("nan")
    with pytest.raises(ConfigError, match="train.optimizer.lr"):
        parse_config(raw, Path("/"))


def test_missing_file_and_bad_json_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1,\n "run": }')
    with pytest.raises(ConfigError, match="line 2"):
        load_config(bad)
