import json
from pathlib import Path

import pytest

from helpers import FIXTURES
from wanlora_engine.config import SCHEMA, SCHEMA_VERSION, SECTIONS, Resolution, load_config, parse_config
from wanlora_engine.errors import ConfigError


def test_v100_fixture_parses_with_every_value():
    config = load_config(FIXTURES / "config.resolved.v100.json")
    assert config.schema_version == SCHEMA_VERSION == 2
    assert config.preset == "v100"
    assert config.model.boundary == 0.875 and config.model.weights_dtype == "bf16" and config.torch_dtype == "bfloat16"
    assert config.hardware.inactive_expert == "offload"
    assert config.training.resolution == Resolution(1280, 720)
    assert (config.training.frames, config.training.text_length) == (49, 256)
    assert config.lora.rank == 16 and config.lora.alpha == 16.0 and config.lora.dropout == 0.05
    assert config.lora.targets == ["to_q", "to_k", "to_v", "to_out.0"]
    assert config.derived.experts == ["high", "low"]
    assert config.training.micro_batch * config.training.grad_accumulation == 16
    assert config.training.optimizer == "adamw8bit"
    assert config.training.learning_rate == 1e-4 and config.training.weight_decay == 0.01
    assert config.training.warmup_steps == 100 and config.training.schedule == "cosine"
    assert config.training.adam_betas == [0.9, 0.999]
    assert config.training.cfg_dropout == 0.1 and config.training.seed == 42
    assert config.training.max_steps == 0 and config.training.overfit_samples == 0
    assert config.cache.free_disk_margin_gib == 10.0 and config.free_disk_margin_bytes == 10 * 2**30
    assert config.training.keep_checkpoints == 2 and config.eval.val_loss_timesteps[-1] == 950
    assert config.data.cache_dir == Path("/data/cache/1280x720-49f-256t")
    assert config.derived.run_dir == Path("/data/runs/mbc-v100")
    assert config.eval.i3d_weights is None  # "" is "none"


def test_every_registry_key_is_in_the_swift_written_fixture_under_its_dotted_name():
    """The schema (generated from the Swift registry) and the file Swift wrote name the same keys."""
    raw = json.loads((FIXTURES / "config.resolved.demo.json").read_text())
    assert sorted(raw) == sorted(["schema_version", "preset", *SECTIONS, "derived"])
    for section in SECTIONS:
        names = [key["name"] for key in SCHEMA["sections"][section]]
        assert sorted(raw[section]) == sorted(names), section
    assert sorted(raw["derived"]) == ["experts", "run_dir"]
    # The TOML's own names, never the engine's old ones.
    assert "grad_accumulation" in raw["training"] and "train" not in raw and "blocks" not in raw


def test_demo_fixture_resolves_relative_paths_against_its_folder(tmp_path):
    raw = json.loads((FIXTURES / "config.resolved.demo.json").read_text())
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "config.resolved.json"
    path.write_text(json.dumps(raw))
    config = load_config(path)
    assert config.model.checkpoint == tmp_path / "sub" / "model"
    assert config.data.train_manifest == tmp_path / "sub" / "data" / "train.csv"
    assert config.derived.run_dir == tmp_path / "sub" / "runs" / "demo"
    assert config.source_path == path.resolve()


def invalid_case(case: dict) -> dict:
    """The demo fixture with one edit of config.invalid.cases.json (the Swift tests make the same)."""
    raw = json.loads((FIXTURES / "config.resolved.demo.json").read_text())
    path = (case.get("remove") or case["set"]).split(".")
    inner = raw
    for part in path[:-1]:
        inner = inner[part]
    if "remove" in case:
        del inner[path[-1]]
    else:
        inner[path[-1]] = case["value"]
    return raw


@pytest.mark.parametrize("case", json.loads((FIXTURES / "config.invalid.cases.json").read_text()),
                         ids=lambda case: case["key"])
def test_invalid_cases_name_the_offending_key(case, tmp_path):
    path = tmp_path / "config.resolved.json"
    path.write_text(json.dumps(invalid_case(case)))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    key = case["key"]
    assert f"'{key}" in caught.value.problem or key == "schema_version" and key in caught.value.problem
    assert caught.value.remedy
    assert caught.value.exit_code == 2


def test_round_trip_through_json_dict_is_identity():
    config = load_config(FIXTURES / "config.resolved.v100.json")
    raw = json.loads((FIXTURES / "config.resolved.v100.json").read_text())
    assert config.to_json_dict() == raw
    again = parse_config(json.loads(json.dumps(config.to_json_dict())), Path("/"))
    assert again.to_json_dict() == raw


def test_types_are_strict_and_ranges_are_not_checked_twice():
    def broken(section, key, value):
        raw = json.loads((FIXTURES / "config.resolved.v100.json").read_text())
        raw[section][key] = value
        return raw

    for section, key, value in [("lora", "rank", True), ("training", "learning_rate", float("nan")),
                                ("lora", "rank", 16.5), ("training", "optimizer", "sgd"),
                                ("training", "resolution", "1280"), ("eval", "val_loss_timesteps", [1, "2"])]:
        with pytest.raises(ConfigError, match=f"'{section}.{key}"):
            parse_config(broken(section, key, value), Path("/"))
    # A value out of range but of the right type is Swift's to refuse, before launch: read as given.
    assert parse_config(broken("training", "cfg_dropout", 1.5), Path("/")).training.cfg_dropout == 1.5


def test_missing_file_and_bad_json_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 2,\n "run": }')
    with pytest.raises(ConfigError, match="line 2"):
        load_config(bad)
