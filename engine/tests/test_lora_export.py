import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from helpers import demo_config, write_config
from wanlora_engine.stage import run_stage


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cached):
    """A short run whose LoRA B matrices are far from zero, so the adapters change the output."""
    ws = tmp_path_factory.mktemp("export")
    for part in ("model", "data", "cache"):
        (ws / part).symlink_to(cached / part)
    config = write_config(ws, demo_config(
        lora={"rank": 4, "alpha": 8},
        training={"max_steps": 6, "learning_rate": 0.05, "warmup_steps": 0, "eval_steps": 0, "save_steps": 0}))
    assert run_stage("train", config, resume=False, echo=False) == 0
    return ws


def _forward(transformer, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 16, 2, 6, 8, generator=generator)
    text = torch.randn(1, 32, 32, generator=generator)
    with torch.no_grad():
        return transformer(hidden_states=x, timestep=torch.tensor([950.0]), encoder_hidden_states=text,
                           return_dict=False)[0]


def _pipeline(model_dir):
    from diffusers import WanPipeline

    return WanPipeline.from_pretrained(str(model_dir), dtype=torch.float32, local_files_only=True)


def _our_adapted_expert(ws, expert):
    """The expert with our float32 checkpoint weights, through peft (the training-time model)."""
    from wanlora_engine.checkpoints import checkpoint_dirs
    from wanlora_engine.config import load_config
    from wanlora_engine.events import EventWriter
    from wanlora_engine.train import Trainer

    trainer = Trainer(load_config(ws / "config.resolved.json"), EventWriter(None, echo=False))
    trainer.load_checkpoint(checkpoint_dirs(ws / "runs" / "demo")[-1])
    model = trainer.models[expert].eval()
    return model


def test_diffusers_files_load_into_transformer_and_transformer_2(trained):
    pipe = _pipeline(trained / "model")
    base_high, base_low = _forward(pipe.transformer), _forward(pipe.transformer_2)
    pipe.load_lora_weights(str(trained / "runs/demo/lora/high_noise.diffusers.safetensors"), adapter_name="high")
    pipe.load_lora_weights(str(trained / "runs/demo/lora/low_noise.diffusers.safetensors"), adapter_name="low",
                           load_into_transformer_2=True)
    out_high, out_low = _forward(pipe.transformer), _forward(pipe.transformer_2)
    assert (out_high - base_high).abs().max() > 1e-3
    assert (out_low - base_low).abs().max() > 1e-3
    # and the change is ours: it matches the trained model (bf16 export rounding aside)
    ours_high = _forward(_our_adapted_expert(trained, "high"))
    ours_low = _forward(_our_adapted_expert(trained, "low"))
    assert torch.allclose(out_high, ours_high, atol=2e-2, rtol=2e-2)
    assert torch.allclose(out_low, ours_low, atol=2e-2, rtol=2e-2)
    assert (out_high - ours_high).abs().max() < 0.1 * (out_high - base_high).abs().max()


def test_comfyui_official_naming_and_alpha(trained):
    path = trained / "runs/demo/lora/high_noise.comfyui.safetensors"
    tensors = load_file(str(path))
    assert "diffusion_model.blocks.0.self_attn.q.lora_A.weight" in tensors
    assert "diffusion_model.blocks.1.cross_attn.o.lora_B.weight" in tensors
    assert float(tensors["diffusion_model.blocks.0.self_attn.q.alpha"]) == 8.0
    assert tensors["diffusion_model.blocks.0.self_attn.q.lora_A.weight"].shape == (4, 16)
    # 2 blocks x 8 projections x (A, B, alpha)
    assert len(tensors) == 2 * 8 * 3
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    assert metadata["wanlora_expert"] == "high_noise" and metadata["wanlora_rank"] == "4"
    diffusers_file = load_file(str(trained / "runs/demo/lora/high_noise.diffusers.safetensors"))
    # same product B·A·(alpha/r) in both files
    a = tensors["diffusion_model.blocks.1.cross_attn.o.lora_A.weight"].float()
    b = tensors["diffusion_model.blocks.1.cross_attn.o.lora_B.weight"].float()
    da = diffusers_file["transformer.blocks.1.attn2.to_out.0.lora_A.weight"].float()
    db = diffusers_file["transformer.blocks.1.attn2.to_out.0.lora_B.weight"].float()
    assert torch.allclose(b @ a * 2.0, db @ da, atol=1e-2, rtol=1e-2)


def test_official_naming_also_loads_through_diffusers(trained):
    pipe = _pipeline(trained / "model")
    base = _forward(pipe.transformer)
    pipe.load_lora_weights(str(trained / "runs/demo/lora/high_noise.comfyui.safetensors"))
    via_official = _forward(pipe.transformer)
    pipe2 = _pipeline(trained / "model")
    pipe2.load_lora_weights(str(trained / "runs/demo/lora/high_noise.diffusers.safetensors"))
    via_diffusers = _forward(pipe2.transformer)
    assert (via_official - base).abs().max() > 1e-3
    assert torch.allclose(via_official, via_diffusers, atol=1e-2, rtol=1e-2)


def test_run_and_cache_files_follow_the_umask(trained, cached):
    """LoRAs, checkpoint files and cache shards get 0666 less the umask (safetensors alone writes 0600)."""
    import stat

    from wanlora_engine.files import default_file_mode

    written = [p for root in (trained / "runs" / "demo", cached / "cache") for p in root.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"high_noise.comfyui.safetensors", "lora-high.safetensors", "manifest.json"} <= names
    assert any(p.name.startswith("latents-") for p in written)
    modes = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in written if p.suffix in (".safetensors", ".json")}
    assert set(modes.values()) == {oct(default_file_mode())}, modes
