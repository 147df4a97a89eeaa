import json
import shutil
from pathlib import Path

import pytest
import torch

from helpers import hub_cache_with
from wanlora_engine.errors import ModelLoadError
from wanlora_engine.loading import (
    detect_layout,
    load_components,
    text_encoder_official_key,
    transformer_official_key,
    vae_official_key,
)

ALL = {"high", "low", "vae", "text_encoder", "tokenizer"}


def test_official_names_match_the_published_checkpoints():
    # Names as they appear in the Wan2.2 release (wan/modules/*.py) and diffusers' conversion script.
    assert transformer_official_key("blocks.0.attn1.to_q.weight") == "blocks.0.self_attn.q.weight"
    assert transformer_official_key("blocks.39.attn2.to_out.0.bias") == "blocks.39.cross_attn.o.bias"
    assert transformer_official_key("blocks.3.norm2.weight") == "blocks.3.norm3.weight"
    assert transformer_official_key("blocks.3.scale_shift_table") == "blocks.3.modulation"
    assert transformer_official_key("blocks.3.ffn.net.0.proj.weight") == "blocks.3.ffn.0.weight"
    assert transformer_official_key("condition_embedder.time_proj.weight") == "time_projection.1.weight"
    assert transformer_official_key("condition_embedder.text_embedder.linear_2.bias") == "text_embedding.2.bias"
    assert transformer_official_key("scale_shift_table") == "head.modulation"
    assert transformer_official_key("proj_out.weight") == "head.head.weight"
    assert (text_encoder_official_key("encoder.block.5.layer.1.DenseReluDense.wi_0.weight")
            == "blocks.5.ffn.gate.0.weight")
    assert text_encoder_official_key("encoder.block.5.layer.1.DenseReluDense.wi_1.weight") == "blocks.5.ffn.fc1.weight"
    assert (text_encoder_official_key("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
            == "blocks.0.pos_embedding.embedding.weight")
    assert text_encoder_official_key("shared.weight") == "token_embedding.weight"
    # The real VAE has num_res_blocks = 2: decoder levels of 3 resnets + 1 upsampler.
    assert (vae_official_key("decoder.up_blocks.1.resnets.0.conv_shortcut.weight", 2)
            == "decoder.upsamples.4.shortcut.weight")
    assert (vae_official_key("decoder.up_blocks.2.upsamplers.0.resample.1.weight", 2)
            == "decoder.upsamples.11.resample.1.weight")
    assert vae_official_key("decoder.up_blocks.3.resnets.2.conv2.bias", 2) == "decoder.upsamples.14.residual.6.bias"
    assert vae_official_key("encoder.down_blocks.5.time_conv.weight", 2) == "encoder.downsamples.5.time_conv.weight"
    assert vae_official_key("encoder.mid_block.resnets.1.norm1.gamma", 2) == "encoder.middle.2.residual.0.gamma"
    assert vae_official_key("decoder.mid_block.attentions.0.to_qkv.weight", 2) == "decoder.middle.1.to_qkv.weight"
    assert vae_official_key("quant_conv.weight", 2) == "conv1.weight"
    assert vae_official_key("encoder.norm_out.gamma", 2) == "encoder.head.0.gamma"


def test_both_layouts_load_to_the_same_modules(tiny_official, tiny_diffusers):
    assert detect_layout(tiny_official) == "official" and detect_layout(tiny_diffusers) == "diffusers"
    official = load_components(tiny_official, "auto", "float32", ALL)
    diffusers = load_components(tiny_diffusers, "auto", "float32", ALL)
    for name in ("high", "low", "vae"):
        a, b = getattr(official, name).state_dict(), getattr(diffusers, name).state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    # the official text encoder file is bf16 (as released): equal up to bf16 rounding
    a, b = official.text_encoder.state_dict(), diffusers.text_encoder.state_dict()
    for key in a:
        assert torch.allclose(a[key], b[key].to(torch.bfloat16).float()), key
    assert not torch.equal(official.high.state_dict()["blocks.0.attn1.to_q.weight"],
                           official.low.state_dict()["blocks.0.attn1.to_q.weight"])
    # same forward through the official-loaded expert and the diffusers one
    x = torch.randn(1, 16, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    text = torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([900.0])
    with torch.no_grad():
        out_a = official.high(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
        out_b = diffusers.high(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
    assert torch.equal(out_a, out_b)
    ids = official.tokenizer(["축제 현장"], return_tensors="pt").input_ids
    assert ids.tolist() == diffusers.tokenizer(["축제 현장"], return_tensors="pt").input_ids.tolist()
    with torch.no_grad():
        text_a = official.text_encoder(ids).last_hidden_state
        text_b = diffusers.text_encoder(ids).last_hidden_state
    assert not any(t.is_meta for t in official.text_encoder.state_dict().values())
    assert torch.allclose(text_a, text_b, atol=0.05), (text_a - text_b).abs().max()


def test_official_bf16_load_keeps_fp32_modules_like_diffusers(tiny_official, tiny_diffusers):
    official = load_components(tiny_official, "official", torch.bfloat16, {"high"}).high
    diffusers = load_components(tiny_diffusers, "diffusers", torch.bfloat16, {"high"}).high
    dtypes_a = {k: v.dtype for k, v in official.state_dict().items()}
    dtypes_b = {k: v.dtype for k, v in diffusers.state_dict().items()}
    assert dtypes_a == dtypes_b
    assert dtypes_a["blocks.0.attn1.to_q.weight"] == torch.bfloat16
    assert dtypes_a["blocks.0.scale_shift_table"] == torch.float32


@pytest.mark.parametrize("remove,expected", [
    ("Wan2.1_VAE.pth", "Wan2.1_VAE.pth"),
    ("models_t5_umt5-xxl-enc-bf16.pth", "models_t5_umt5-xxl-enc-bf16.pth"),
    ("low_noise_model/diffusion_pytorch_model-00002-of-00002.safetensors", "diffusion_pytorch_model-00002-of-00002"),
    ("high_noise_model/config.json", "config.json"),
    ("google", "tokenizer folder"),
])
def test_official_missing_file_is_named(tmp_path, tiny_official, remove, expected):
    model = tmp_path / "model"
    shutil.copytree(tiny_official, model)
    target = model / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(ModelLoadError) as caught:
        load_components(model, "auto", "float32", ALL)
    assert expected in caught.value.problem
    assert caught.value.remedy


def test_official_missing_and_extra_keys_are_named(tmp_path, tiny_official):
    model = tmp_path / "model"
    shutil.copytree(tiny_official, model)
    state = torch.load(model / "Wan2.1_VAE.pth", weights_only=True)
    del state["decoder.upsamples.3.shortcut.weight"]
    torch.save(state, model / "Wan2.1_VAE.pth")
    with pytest.raises(ModelLoadError, match=r"lacks the key 'decoder\.upsamples\.3\.shortcut\.weight'"):
        load_components(model, "auto", "float32", {"vae"})
    state = torch.load(tiny_official / "models_t5_umt5-xxl-enc-bf16.pth", weights_only=True)
    state["blocks.0.attn.k_img.weight"] = torch.zeros(1)
    torch.save(state, model / "models_t5_umt5-xxl-enc-bf16.pth")
    with pytest.raises(ModelLoadError, match="k_img"):
        load_components(model, "auto", "float32", {"text_encoder"})


def test_diffusers_missing_expert_is_named(tmp_path, tiny_diffusers):
    model = tmp_path / "model"
    shutil.copytree(tiny_diffusers, model)
    shutil.rmtree(model / "transformer_2")
    with pytest.raises(ModelLoadError, match=r"transformer_2/ \(low-noise expert\)"):
        load_components(model, "auto", "float32", {"low"})
    # the high-noise expert alone still loads
    assert load_components(model, "auto", "float32", {"high"}).high is not None


def test_layout_mismatch_and_unknown_folder(tmp_path, tiny_diffusers):
    with pytest.raises(ModelLoadError, match="diffusers layout"):
        load_components(tiny_diffusers, "official", "float32", {"high"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="neither the official layout"):
        detect_layout(tmp_path / "empty")
    with pytest.raises(ModelLoadError, match="does not exist"):
        detect_layout(tmp_path / "missing")


def test_model_index_says_high_then_low(tiny_diffusers):
    index = json.loads((tiny_diffusers / "model_index.json").read_text())
    assert index["transformer"][1] == "WanTransformer3DModel" and index["transformer_2"][1] == "WanTransformer3DModel"
    assert index["boundary_ratio"] == 0.875


# ---------------------------------------------------------------------------------------------------
# Model sources: repo ids in the local hub cache, single-file experts


def test_a_repo_id_loads_from_the_hub_cache_offline(tmp_path, monkeypatch, tiny_diffusers):
    from huggingface_hub import snapshot_download

    from wanlora_engine.model_source import hub_cache_dir, read_model_source

    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hub_cache_dir() == (tmp_path / "hf" / "hub", "$HF_HOME/hub")
    snapshot = hub_cache_with(tmp_path / "hf" / "hub", "Wan-AI/Wan2.2-T2V-A14B-Diffusers", tiny_diffusers)
    # huggingface_hub, offline, finds the same snapshot folder
    assert Path(snapshot_download("Wan-AI/Wan2.2-T2V-A14B-Diffusers", local_files_only=True,
                                  cache_dir=str(tmp_path / "hf" / "hub"))) == snapshot
    base = tmp_path / "configs"
    base.mkdir()
    assert read_model_source("Wan-AI/Wan2.2-T2V-A14B-Diffusers", base) == "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
    parts = load_components("Wan-AI/Wan2.2-T2V-A14B-Diffusers", "auto", "float32", {"high", "tokenizer"})
    folder = load_components(tiny_diffusers, "auto", "float32", {"high"})
    assert parts.layout == "diffusers"
    assert all(torch.equal(v, folder.high.state_dict()[k]) for k, v in parts.high.state_dict().items())
    # HF_HUB_CACHE wins over HF_HOME; a folder that exists wins over a repo id of the same spelling
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "other"))
    with pytest.raises(ModelLoadError) as caught:
        load_components("Wan-AI/Wan2.2-T2V-A14B-Diffusers", "auto", "float32", {"high"})
    assert str(tmp_path / "other" / "models--Wan-AI--Wan2.2-T2V-A14B-Diffusers") in caught.value.problem
    assert "$HF_HUB_CACHE" in caught.value.problem and "nothing is downloaded" in caught.value.problem
    assert "huggingface-cli download Wan-AI/Wan2.2-T2V-A14B-Diffusers" in caught.value.remedy
    # Not in this hub cache: the value is a (missing) folder, reported with the cache it was not found in.
    assert read_model_source("Wan-AI/Wan2.2-T2V-A14B-Diffusers", base) == base / "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
    with pytest.raises(ModelLoadError, match="does not exist") as caught:
        load_components(base / "Wan-AI/Wan2.2-T2V-A14B-Diffusers", "auto", "float32", {"high"})
    assert str(tmp_path / "other") in caught.value.remedy
    (base / "Wan-AI" / "Wan2.2-T2V-A14B-Diffusers").mkdir(parents=True)
    assert read_model_source("Wan-AI/Wan2.2-T2V-A14B-Diffusers", base) == base / "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
    assert read_model_source("model", base) == base / "model"
    assert read_model_source("./a/b", base) == base / "a/b" and read_model_source("a/b/c", base) == base / "a/b/c"


def test_a_hub_cache_entry_without_refs_main_says_so(tmp_path, monkeypatch, tiny_diffusers):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    hub_cache_with(tmp_path, "Org/Model", tiny_diffusers)
    (tmp_path / "models--Org--Model" / "refs" / "main").unlink()
    with pytest.raises(ModelLoadError, match="has no refs/main"):
        load_components("Org/Model", "auto", "float32", {"high"})


def test_the_resolved_config_keeps_a_repo_id_and_anchors_a_folder(tmp_path, monkeypatch, tiny_diffusers):
    from helpers import demo_config, write_config
    from wanlora_engine.config import load_config

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    hub_cache_with(tmp_path / "hub", "Wan-AI/Wan2.2-T2V-A14B-Diffusers", tiny_diffusers)
    config = load_config(write_config(tmp_path, demo_config(model={"checkpoint": "Wan-AI/Wan2.2-T2V-A14B-Diffusers"})))
    assert config.model.checkpoint == "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
    assert config.to_json_dict()["model"]["checkpoint"] == "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
    config = load_config(write_config(tmp_path, demo_config(model={"checkpoint": "model"})))
    assert config.model.checkpoint == tmp_path / "model" and config.model.high_noise_file is None


def _single_file(folder, path, prefix):
    """An official expert folder's shards as one .safetensors file, keys under `prefix` (as ComfyUI saves them)."""
    from safetensors.torch import load_file, save_file

    state = {}
    for shard in sorted(folder.glob("*.safetensors")):
        state.update(load_file(str(shard)))
    save_file({prefix + k: v for k, v in state.items()}, str(path))
    return path


def test_single_file_experts_load_like_the_official_folders(tmp_path):
    from wanlora_engine.tiny import TinySpec, write_tiny_model

    # Heads of 128 channels, as every Wan model has: a single file carries no config.json to say so.
    model = write_tiny_model(tmp_path / "official", "official", seed=3, spec=TinySpec(heads=1, head_dim=128, layers=1))
    high = _single_file(model / "high_noise_model", tmp_path / "wan2.2_t2v_high_noise_14B_fp16.safetensors",
                        "model.diffusion_model.")
    low = _single_file(model / "low_noise_model", tmp_path / "wan2.2_t2v_low_noise_14B_fp16.safetensors", "")
    reference = load_components(model, "auto", "float32", {"high", "low"})
    # The folder then needs only the VAE, text encoder and tokenizer.
    shutil.rmtree(model / "high_noise_model")
    shutil.rmtree(model / "low_noise_model")
    parts = load_components(model, "auto", "float32", {"high", "low", "vae"}, expert_files={"high": high, "low": low})
    for name in ("high", "low"):
        ours, theirs = getattr(parts, name), getattr(reference, name)
        assert ours.config == theirs.config
        assert ours.state_dict().keys() == theirs.state_dict().keys()
        assert all(torch.equal(v, theirs.state_dict()[k]) for k, v in ours.state_dict().items())
    x = torch.randn(1, 16, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    text = torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out_a = parts.high(hidden_states=x, timestep=torch.tensor([900.0]), encoder_hidden_states=text,
                           return_dict=False)[0]
        out_b = reference.high(hidden_states=x, timestep=torch.tensor([900.0]), encoder_hidden_states=text,
                               return_dict=False)[0]
    # Equal weights, equal config; the CPU kernels' rounding depends on where the tensors sit in memory (the
    # two files place them at other offsets), so the outputs agree to float32 rounding, not bit for bit.
    assert torch.allclose(out_a, out_b, rtol=0, atol=2e-6), (out_a - out_b).abs().max()
    # Only experts asked for: no folder needed at all.
    assert load_components("", "auto", "float32", {"high"}, expert_files={"high": high}).layout == "single_file"
    with pytest.raises(ModelLoadError, match=r"lacks high_noise_model/") as caught:
        load_components(model, "auto", "float32", {"high"})
    assert "model.high_noise_file" in caught.value.remedy


def test_single_file_errors_name_the_file(tmp_path, tiny_official):
    from safetensors.torch import save_file

    with pytest.raises(ModelLoadError, match=r"missing\.safetensors \(model\.low_noise_file\) does not exist"):
        load_components(tiny_official, "auto", "float32", {"low"},
                        expert_files={"low": tmp_path / "missing.safetensors"})
    scaled = tmp_path / "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"
    save_file({"blocks.0.self_attn.q.weight": torch.zeros(2, 2), "blocks.0.self_attn.q.scale_weight": torch.ones(1)},
              str(scaled))
    with pytest.raises(ModelLoadError, match="scaled-fp8") as caught:
        load_components(tiny_official, "auto", "float32", {"high"}, expert_files={"high": scaled})
    assert "fp16" in caught.value.remedy


def test_the_a14b_configuration_follows_from_the_weight_shapes_alone():
    """Wan2.2-T2V-A14B's expert (SPEC §5: dim 5120, FFN 13,824, 40 heads, 40 layers, frequency dim 256,
    patch (1,2,2), QK norm, cross-attention norm, eps 1e-6), from meta tensors of its shapes."""
    from wanlora_engine.loading import transformer_config_from_weights

    shapes = {"patch_embedding.weight": (5120, 16, 1, 2, 2), "text_embedding.0.weight": (5120, 4096),
              "time_embedding.0.weight": (5120, 256), "blocks.0.ffn.0.weight": (13824, 5120),
              "head.head.weight": (64, 5120), "blocks.0.norm3.weight": (5120,),
              "blocks.0.self_attn.norm_q.weight": (5120,)}
    shapes.update({f"blocks.{i}.self_attn.q.weight": (5120, 5120) for i in range(40)})
    state = {k: torch.empty(v, device="meta") for k, v in shapes.items()}
    config = transformer_config_from_weights(state, None, 1e-6, Path("wan2.2_t2v_high_noise_14B_fp16.safetensors"))
    assert config == {"patch_size": (1, 2, 2), "num_attention_heads": 40, "attention_head_dim": 128,
                      "in_channels": 16, "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 13824,
                      "num_layers": 40, "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6}
