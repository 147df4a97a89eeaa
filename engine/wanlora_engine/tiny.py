"""A tiny random Wan2.2 T2V model of the real architecture, written in either checkpoint layout.

Used by the tests and by `make demo`: every code path (loading, caching, training, export) runs on it in
seconds on a CPU. Same module classes as the 14B experts, only smaller: 2 blocks of width 16 (2 heads of
8), a VAE of base width 8 with the real 16 latent channels and 4x8x8 compression, a 2-layer UMT5 encoder
of width 32, and a SentencePiece tokenizer trained here on a few Korean and English sentences.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .files import save_safetensors
from .loading import (
    OFFICIAL_HIGH,
    OFFICIAL_LOW,
    OFFICIAL_T5,
    OFFICIAL_VAE,
    text_encoder_official_key,
    to_official_state_dict,
    transformer_official_key,
    vae_official_key,
)


@dataclass(frozen=True)
class TinySpec:
    heads: int = 2
    head_dim: int = 8
    layers: int = 2
    ffn_dim: int = 32
    text_dim: int = 32
    text_layers: int = 2
    text_heads: int = 4
    vae_base_dim: int = 8
    vae_res_blocks: int = 1


_CORPUS = [
    "한 남자가 거리를 걷고 있다.", "여러 사람들이 축제에 참여하고 있는 모습이다.",
    "전통 한옥 마을의 풍경을 담은 영상 자료로, 지붕과 담장이 보인다.",
    "강가에 벚꽃이 피어 있고 사람들이 산책을 하고 있습니다.",
    "무형문화유산 공연에서 무용수들이 춤을 추고 있다.", "유형문화유산인 석탑이 절 마당에 서 있다.",
    "사건 현장에 소방차와 경찰이 출동해 있다.", "밤하늘 아래 등불 축제가 열리고 있다.",
    "a man walks along a street at night", "a festival with lanterns and dancers",
    "mountains and a river under a clear sky", "an old temple with a stone pagoda",
]


def _write_tokenizer(folder: Path) -> Any:
    import sentencepiece as spm
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(_CORPUS * 20), model_prefix=f"{tmp}/spiece", vocab_size=400,
            hard_vocab_limit=False, model_type="unigram", character_coverage=1.0, pad_id=0, eos_id=1,
            unk_id=2, bos_id=-1, byte_fallback=True, minloglevel=2, num_threads=1,
        )
        source = Path(tmp) / "tok"
        source.mkdir()
        shutil.copy(f"{tmp}/spiece.model", source / "spiece.model")
        (source / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "T5Tokenizer", "extra_ids": 0, "model_max_length": 512}))
        tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
        folder.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(str(folder))
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def build_tiny_modules(seed: int = 0, spec: TinySpec = TinySpec(), tokenizer_dir: Path | None = None) -> dict[str, Any]:
    """Random tiny modules (float32): transformer (high noise), transformer_2 (low noise), vae, text encoder."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    own_tmp = None
    if tokenizer_dir is None:
        own_tmp = tempfile.TemporaryDirectory()
        tokenizer_dir = Path(own_tmp.name) / "tokenizer"
    tokenizer = _write_tokenizer(tokenizer_dir)
    torch.manual_seed(seed)

    def transformer() -> Any:
        model = WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=spec.heads, attention_head_dim=spec.head_dim,
            in_channels=16, out_channels=16, text_dim=spec.text_dim, freq_dim=256, ffn_dim=spec.ffn_dim,
            num_layers=spec.layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
        )
        # A freshly built WanTransformer3DModel is not zero-initialised anywhere that matters, but its
        # biases start at zero; random small biases make the tiny model's key mapping tests meaningful.
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith(".bias"):
                    param.normal_(0.0, 0.02)
        return model

    high = transformer()
    low = transformer()
    vae = AutoencoderKLWan(base_dim=spec.vae_base_dim, z_dim=16, dim_mult=[1, 1, 1, 1],
                           num_res_blocks=spec.vae_res_blocks, attn_scales=[],
                           temperal_downsample=[False, True, True])
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=spec.text_dim, d_kv=spec.text_dim // spec.text_heads,
        num_heads=spec.text_heads, d_ff=2 * spec.text_dim, num_layers=spec.text_layers,
        relative_attention_num_buckets=32, relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, tie_word_embeddings=False, dropout_rate=0.0,
    ))
    modules = {"transformer": high.eval(), "transformer_2": low.eval(), "vae": vae.eval(),
               "text_encoder": text_encoder.eval(), "tokenizer": tokenizer}
    if own_tmp is not None:
        own_tmp.cleanup()
    return modules


def _save_sharded(state: dict[str, torch.Tensor], folder: Path, shards: int) -> None:
    """Split a state dict into `shards` safetensors files with an index, as the official release does."""
    keys = sorted(state)
    per = math.ceil(len(keys) / shards)
    weight_map = {}
    for i in range(shards):
        name = f"diffusion_pytorch_model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k].contiguous() for k in keys[i * per:(i + 1) * per]}
        save_safetensors(part, folder / name, durable=False)
        weight_map.update({k: name for k in part})
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
                    "weight_map": weight_map}, indent=1))


def write_tiny_model(out: Path, layout: str, seed: int = 0, spec: TinySpec = TinySpec()) -> Path:
    """Write a tiny random model to `out` in the 'official' or 'diffusers' layout."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    if layout == "diffusers":
        from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

        with tempfile.TemporaryDirectory() as tmp:
            m = build_tiny_modules(seed, spec, Path(tmp) / "tokenizer")
            pipe = WanPipeline(tokenizer=m["tokenizer"], text_encoder=m["text_encoder"], vae=m["vae"],
                               scheduler=FlowMatchEulerDiscreteScheduler(shift=12.0),
                               transformer=m["transformer"], transformer_2=m["transformer_2"],
                               boundary_ratio=0.875)
            pipe.save_pretrained(str(out), safe_serialization=True)
        return out
    if layout != "official":
        raise ValueError(f"layout must be 'official' or 'diffusers', not {layout!r}")
    m = build_tiny_modules(seed, spec, out / "google" / "umt5-xxl")
    for name, folder_name in (("transformer", OFFICIAL_HIGH), ("transformer_2", OFFICIAL_LOW)):
        model = m[name]
        folder = out / folder_name
        folder.mkdir()
        _save_sharded(to_official_state_dict(model.state_dict(), transformer_official_key), folder, shards=2)
        config = model.config
        (folder / "config.json").write_text(json.dumps({
            "_class_name": "WanModel", "model_type": "t2v",
            "dim": config.num_attention_heads * config.attention_head_dim,
            "eps": config.eps, "ffn_dim": config.ffn_dim, "freq_dim": config.freq_dim,
            "in_dim": config.in_channels, "num_heads": config.num_attention_heads, "num_layers": config.num_layers,
            "out_dim": config.out_channels, "text_len": 512,
        }, indent=2))
    te_state = to_official_state_dict(m["text_encoder"].state_dict(), text_encoder_official_key)
    torch.save({k: v.to(torch.bfloat16) for k, v in te_state.items()}, out / OFFICIAL_T5)
    res_blocks = m["vae"].config.num_res_blocks
    torch.save(to_official_state_dict(m["vae"].state_dict(), lambda k: vae_official_key(k, res_blocks)),
               out / OFFICIAL_VAE)
    (out / "configuration.json").write_text(json.dumps({"framework": "Pytorch", "task": "text-to-video"}))
    return out
