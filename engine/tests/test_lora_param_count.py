"""The planner's exact LoRA and model parameter counts, checked against peft and diffusers.

`wanlora plan` counts LoRA parameters from the model's dimensions (Sources/Planner/LoRACount.swift)
and pins them in Tests/PlannerTests/LoRACountTests.swift. This test builds the real diffusers
WanTransformer3DModel of each architecture on the meta device (shapes only, no memory, no weights),
applies peft's LoRA the way training does and counts what peft creates: both sides must agree.
"""
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (engine venv: make -C engine venv)")
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (engine venv: make -C engine venv)")
peft = pytest.importorskip("peft", reason="peft is not installed (engine venv: make -C engine venv)")

from diffusers import AutoencoderKLWan, WanTransformer3DModel  # noqa: E402
from peft import LoraConfig, inject_adapter_in_model  # noqa: E402

# diffusers transformer configs of the official releases (transformer/config.json).
WAN_T2V_A14B_EXPERT = dict(  # also Wan2.1-T2V-14B
    patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=16, out_channels=16,
    text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", eps=1e-6,
)
WAN_TI2V_5B = dict(WAN_T2V_A14B_EXPERT, num_attention_heads=24, in_channels=48, out_channels=48, ffn_dim=14336,
                   num_layers=30)
WAN_T2V_1_3B = dict(WAN_T2V_A14B_EXPERT, num_attention_heads=12, ffn_dim=8960, num_layers=30)

ATTENTION = ["to_q", "to_k", "to_v", "to_out.0"]
FFN = ["ffn.net.0.proj", "ffn.net.2"]


def meta_transformer(config: dict) -> torch.nn.Module:
    with torch.device("meta"):
        model = WanTransformer3DModel(**config)
    model.requires_grad_(False)
    return model


def lora_parameter_count(config: dict, rank: int, targets: list[str]) -> int:
    model = meta_transformer(config)
    lora = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.05, target_modules=targets)
    model = inject_adapter_in_model(lora, model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    ("rank", "targets", "expected"),
    [
        (16, ATTENTION, 52_428_800),  # SPEC §7: 8 Linear 5120x5120 a block, 3,276,800·r
        (32, ATTENTION, 104_857_600),
        (16, ATTENTION + FFN, 76_677_120),  # 10 a block, musubi-tuner's 400 modules
        (16, ["attn1.to_q"], 6_553_600),  # a qualified name matches self-attention only
        (8, ["proj_out", "time_proj"], 328_192),  # the Linears outside the blocks
    ],
)
def test_a14b_expert_lora_count_matches_planner(rank, targets, expected):
    assert lora_parameter_count(WAN_T2V_A14B_EXPERT, rank, targets) == expected


def test_attention_lora_is_3276800_per_rank():
    for rank in (1, 4):
        assert lora_parameter_count(WAN_T2V_A14B_EXPERT, rank, ATTENTION) == 3_276_800 * rank


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (WAN_T2V_A14B_EXPERT, 14_288_491_584),
        (WAN_TI2V_5B, 4_999_787_712),
        (WAN_T2V_1_3B, 1_418_996_800),
    ],
)
def test_transformer_parameter_counts_match_planner(config, expected):
    assert sum(p.numel() for p in meta_transformer(config).parameters()) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, 126_892_531),  # Wan2.1 VAE (diffusers defaults)
        (dict(base_dim=160, decoder_base_dim=256, z_dim=48, in_channels=12, out_channels=12, patch_size=2,
              scale_factor_spatial=16, scale_factor_temporal=4, is_residual=True), 704_688_668),  # Wan2.2 VAE
    ],
)
def test_vae_parameter_counts_match_planner(config, expected):
    with torch.device("meta"):
        vae = AutoencoderKLWan(**config)
    assert sum(p.numel() for p in vae.parameters()) == expected
