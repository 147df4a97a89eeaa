import json
import shutil

import pytest
import torch

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
