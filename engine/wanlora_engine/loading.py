"""Load Wan2.2-T2V-A14B from a local folder, in either checkpoint layout, onto the diffusers modules.

Official layout (as released by the Wan team):
    high_noise_model/   config.json + diffusion_pytorch_model*.safetensors (+ .index.json)
    low_noise_model/    same
    models_t5_umt5-xxl-enc-bf16.pth     UMT5-XXL encoder (Wan's own key names)
    Wan2.1_VAE.pth                      Wan2.1 VAE (Wan's own key names)
    google/umt5-xxl/                    tokenizer
Diffusers layout (WanPipeline.save_pretrained):
    transformer/ (high noise)  transformer_2/ (low noise)  vae/  text_encoder/  tokenizer/

Single-file expert checkpoint (ComfyUI's `wan2.2_t2v_high_noise_14B_fp16.safetensors` / `..._low_noise_...`):
    one .safetensors file per expert, official key names (optionally under `model.diffusion_model.`), no
    config.json: the configuration comes from the weight shapes (heads of 128 channels, as in every Wan model).
    `model.high_noise_file` / `model.low_noise_file` name them; they replace the folder's experts, and the folder
    then needs only the VAE, text encoder and tokenizer.
The folder is a path, or a Hugging Face repo id resolved offline in the local hub cache (model_source.py).

All end up as WanTransformer3DModel, AutoencoderKLWan, UMT5EncoderModel and a tokenizer. The official
key names are mapped by explicit rules (`*_official_key` below: diffusers name -> official name), applied
to the keys the diffusers module expects, so a checkpoint with a missing or an extra key is an error
naming the file and the key. Nothing here touches the network.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from .errors import ModelLoadError
from .model_source import hub_cache_dir, model_folder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

Component = Literal["high", "low", "vae", "text_encoder", "tokenizer"]

OFFICIAL_HIGH = "high_noise_model"
OFFICIAL_LOW = "low_noise_model"
OFFICIAL_T5 = "models_t5_umt5-xxl-enc-bf16.pth"
OFFICIAL_VAE = "Wan2.1_VAE.pth"
OFFICIAL_TOKENIZER_DIRS = ("google/umt5-xxl", "tokenizer")

DIFFUSERS_FOLDERS: dict[str, str] = {
    "high": "transformer",
    "low": "transformer_2",
    "vae": "vae",
    "text_encoder": "text_encoder",
    "tokenizer": "tokenizer",
}

DTYPES: dict[str, torch.dtype] = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass
class WanComponents:
    """The modules of a Wan2.2 T2V model that a stage asked for (others are None)."""

    layout: str  # 'official' | 'diffusers' | 'single_file' (only experts, each from its own file)
    high: Any = None
    low: Any = None
    vae: Any = None
    text_encoder: Any = None
    tokenizer: Any = None

    def expert(self, name: str) -> Any:
        return self.high if name == "high" else self.low


# ---------------------------------------------------------------------------------------------------
# Layout detection


def detect_layout(path: Path) -> str:
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(
            f"model folder {path} does not exist",
            "set model.checkpoint (TOML; model.path in a sample job) to the folder of Wan2.2-T2V-A14B "
            "(official release or diffusers format), or to its Hugging Face repo id (Wan-AI/Wan2.2-T2V-A14B-Diffusers) "
            f"once it is in the local hub cache {hub_cache_dir()[0]} (wanlora downloads nothing)",
        )
    # The experts may come as single files (model.high_noise_file / low_noise_file): then a folder with only the
    # VAE, the text encoder and the tokenizer is enough.
    if any((path / name).exists() for name in (OFFICIAL_HIGH, OFFICIAL_LOW, OFFICIAL_VAE, OFFICIAL_T5)):
        return "official"
    if any((path / name).exists() for name in ("model_index.json", "transformer", "vae", "text_encoder")):
        return "diffusers"
    raise ModelLoadError(
        f"model folder {path} is neither the official layout (no {OFFICIAL_HIGH}/ or {OFFICIAL_LOW}/) "
        "nor the diffusers layout (no model_index.json or transformer/)",
        "point model.checkpoint (TOML; model.path in a sample job) at the folder that holds high_noise_model/ "
        "and low_noise_model/, "
        "or at a WanPipeline folder with transformer/ and transformer_2/",
    )


# ---------------------------------------------------------------------------------------------------
# Key mappings: diffusers name -> official name. Pure functions, unit-tested.

_TRANSFORMER_TOP = {
    "condition_embedder.time_embedder.linear_1": "time_embedding.0",
    "condition_embedder.time_embedder.linear_2": "time_embedding.2",
    "condition_embedder.text_embedder.linear_1": "text_embedding.0",
    "condition_embedder.text_embedder.linear_2": "text_embedding.2",
    "condition_embedder.time_proj": "time_projection.1",
    "proj_out": "head.head",
    "scale_shift_table": "head.modulation",
    "patch_embedding": "patch_embedding",
}
_TRANSFORMER_BLOCK = {
    "attn1.to_q": "self_attn.q",
    "attn1.to_k": "self_attn.k",
    "attn1.to_v": "self_attn.v",
    "attn1.to_out.0": "self_attn.o",
    "attn1.norm_q": "self_attn.norm_q",
    "attn1.norm_k": "self_attn.norm_k",
    "attn2.to_q": "cross_attn.q",
    "attn2.to_k": "cross_attn.k",
    "attn2.to_v": "cross_attn.v",
    "attn2.to_out.0": "cross_attn.o",
    "attn2.norm_q": "cross_attn.norm_q",
    "attn2.norm_k": "cross_attn.norm_k",
    # The official block applies norm1 (self-attn), norm3 (cross-attn, affine), norm2 (FFN); diffusers
    # numbers them in call order, so official norm3 is diffusers norm2.
    "norm2": "norm3",
    "ffn.net.0.proj": "ffn.0",
    "ffn.net.2": "ffn.2",
    "scale_shift_table": "modulation",
}


def _split_param(key: str) -> tuple[str, str]:
    module, _, param = key.rpartition(".")
    return module, param


def transformer_official_key(key: str) -> str:
    """`blocks.3.attn1.to_q.weight` -> `blocks.3.self_attn.q.weight` (raises KeyError for unknown names)."""
    if key in ("scale_shift_table",):
        return _TRANSFORMER_TOP[key]
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
    if match:
        index, rest = match.groups()
        if rest == "scale_shift_table":
            return f"blocks.{index}.modulation"
        module, param = _split_param(rest)
        return f"blocks.{index}.{_TRANSFORMER_BLOCK[module]}.{param}"
    module, param = _split_param(key)
    return f"{_TRANSFORMER_TOP[module]}.{param}"


def transformer_lora_official_module(module: str) -> str:
    """`blocks.3.attn1.to_out.0` -> `blocks.3.self_attn.o` (a module name, for LoRA keys)."""
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", module)
    if not match:
        return _TRANSFORMER_TOP[module]
    index, rest = match.groups()
    return f"blocks.{index}.{_TRANSFORMER_BLOCK[rest]}"


def text_encoder_official_key(key: str) -> str:
    """UMT5EncoderModel names -> names in models_t5_umt5-xxl-enc-bf16.pth."""
    if key in ("shared.weight", "encoder.embed_tokens.weight"):
        return "token_embedding.weight"
    if key == "encoder.final_layer_norm.weight":
        return "norm.weight"
    match = re.fullmatch(r"encoder\.block\.(\d+)\.layer\.(\d)\.(.+)", key)
    if not match:
        raise KeyError(key)
    index, layer, rest = match.groups()
    table = {
        ("0", "SelfAttention.q.weight"): "attn.q.weight",
        ("0", "SelfAttention.k.weight"): "attn.k.weight",
        ("0", "SelfAttention.v.weight"): "attn.v.weight",
        ("0", "SelfAttention.o.weight"): "attn.o.weight",
        ("0", "SelfAttention.relative_attention_bias.weight"): "pos_embedding.embedding.weight",
        ("0", "layer_norm.weight"): "norm1.weight",
        ("1", "DenseReluDense.wi_0.weight"): "ffn.gate.0.weight",
        ("1", "DenseReluDense.wi_1.weight"): "ffn.fc1.weight",
        ("1", "DenseReluDense.wo.weight"): "ffn.fc2.weight",
        ("1", "layer_norm.weight"): "norm2.weight",
    }
    return f"blocks.{index}.{table[(layer, rest)]}"


_VAE_RESNET = {"norm1.gamma": "residual.0.gamma", "conv1": "residual.2", "norm2.gamma": "residual.3.gamma",
               "conv2": "residual.6", "conv_shortcut": "shortcut"}


def _vae_resnet_part(rest: str) -> str:
    if rest.endswith(".gamma"):
        return _VAE_RESNET[rest]
    module, param = _split_param(rest)
    return f"{_VAE_RESNET[module]}.{param}"


def vae_official_key(key: str, num_res_blocks: int) -> str:
    """AutoencoderKLWan names -> names in Wan2.1_VAE.pth.

    The official decoder keeps one flat list per level: (num_res_blocks + 1) residual blocks, then an
    upsampler (not after the last level); diffusers groups them as up_blocks.L.resnets.R / upsamplers.0.
    """
    simple = {
        "quant_conv": "conv1", "post_quant_conv": "conv2",
        "encoder.conv_in": "encoder.conv1", "decoder.conv_in": "decoder.conv1",
        "encoder.conv_out": "encoder.head.2", "decoder.conv_out": "decoder.head.2",
    }
    module, param = _split_param(key)
    if module in simple:
        return f"{simple[module]}.{param}"
    if key in ("encoder.norm_out.gamma", "decoder.norm_out.gamma"):
        return key.replace("norm_out", "head.0")
    match = re.fullmatch(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)", key)
    if match:
        side, kind, index, rest = match.groups()
        if kind == "attentions":
            return f"{side}.middle.1.{rest}"
        return f"{side}.middle.{0 if index == '0' else 2}.{_vae_resnet_part(rest)}"
    match = re.fullmatch(r"encoder\.down_blocks\.(\d+)\.(.+)", key)
    if match:
        index, rest = match.groups()
        if rest.startswith(("resample.", "time_conv.")):
            return f"encoder.downsamples.{index}.{rest}"
        return f"encoder.downsamples.{index}.{_vae_resnet_part(rest)}"
    match = re.fullmatch(r"decoder\.up_blocks\.(\d+)\.(resnets|upsamplers)\.(\d+)\.(.+)", key)
    if match:
        level, kind, index, rest = match.groups()
        per_level = num_res_blocks + 1
        base = int(level) * (per_level + 1)
        if kind == "upsamplers":
            return f"decoder.upsamples.{base + per_level}.{rest}"
        return f"decoder.upsamples.{base + int(index)}.{_vae_resnet_part(rest)}"
    raise KeyError(key)


def to_official_state_dict(state_dict: dict[str, torch.Tensor], mapper: Any) -> dict[str, torch.Tensor]:
    """Rename a diffusers-named state dict to official names (tied tensors appear once)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        out.setdefault(mapper(key), value)
    return out


def _load_mapped(module: torch.nn.Module, official: Mapping[str, torch.Tensor], mapper: Any, source: Path,
                 dtype_for: Any) -> None:
    """Fill `module` from an official-named state dict; a missing or extra key names `source`.

    `dtype_for(key)` gives each tensor's dtype, cast once from the file's own precision.
    """
    expected = module.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for key, target in expected.items():
        official_key = mapper(key)
        if official_key not in official:
            raise ModelLoadError(
                f"{source} lacks the key '{official_key}' (needed for '{key}')",
                f"re-download {source.name}: the file is incomplete or is not a Wan2.2 T2V checkpoint",
            )
        tensor = official[official_key]
        if tuple(tensor.shape) != tuple(target.shape):
            raise ModelLoadError(
                f"{source}: key '{official_key}' has shape {tuple(tensor.shape)}, the model expects "
                f"{tuple(target.shape)}",
                "check that the file belongs to Wan2.2-T2V-A14B (not the 5B TI2V or an I2V model)",
            )
        mapped[key] = tensor.to(dtype_for(key))
        used.add(official_key)
    extra = sorted(set(official) - used)
    if extra:
        raise ModelLoadError(
            f"{source} has {len(extra)} key(s) this model does not use, e.g. '{extra[0]}'",
            "check that the file belongs to Wan2.2-T2V-A14B (not the 5B TI2V or an I2V model)",
        )
    module.load_state_dict(mapped, strict=True, assign=True)


def _keeps_fp32(model: Any, key: str) -> bool:
    """diffusers keeps some modules (time embedder, modulation tables, norms) in float32 under bf16."""
    patterns = getattr(model, "_keep_in_fp32_modules", None) or []
    parts = key.split(".")
    return any(p in parts for p in patterns)


# ---------------------------------------------------------------------------------------------------
# File reading helpers


class LazySafetensors(Mapping[str, torch.Tensor]):
    """The tensors of several safetensors files, read one at a time on access.

    An A14B expert is tens of GB; reading a tensor only when it is mapped (and casting it at once) keeps
    host memory near one copy of the model in its target dtype.
    """

    def __init__(self, paths: list[Path], strip_prefix: str = "") -> None:
        from safetensors import safe_open

        self._where: dict[str, tuple[Any, str]] = {}
        self._handles = [safe_open(str(path), framework="pt", device="cpu") for path in paths]
        for handle in self._handles:
            for key in handle.keys():
                name = key[len(strip_prefix):] if strip_prefix and key.startswith(strip_prefix) else key
                self._where[name] = (handle, key)

    def __getitem__(self, key: str) -> torch.Tensor:
        handle, stored = self._where[key]
        return handle.get_tensor(stored)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: object) -> bool:
        return key in self._where


def _read_safetensors_folder(folder: Path) -> Mapping[str, torch.Tensor]:
    index_path = folder / "diffusion_pytorch_model.safetensors.index.json"
    if index_path.is_file():
        index = json.loads(index_path.read_text())
        files = sorted(set(index.get("weight_map", {}).values()))
        for name in files:
            if not (folder / name).is_file():
                raise ModelLoadError(
                    f"{folder} lacks the weight shard {name} listed in {index_path.name}",
                    f"re-download {folder.name}/{name}",
                )
        paths = [folder / name for name in files]
    else:
        paths = sorted(folder.glob("*.safetensors"))
    if not paths:
        raise ModelLoadError(
            f"{folder} has no weights (*.safetensors)",
            f"re-download {folder.name}/: it must hold diffusion_pytorch_model*.safetensors",
        )
    return LazySafetensors(paths)


def _read_pth(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelLoadError(
            f"model folder {path.parent} lacks {path.name}",
            f"copy {path.name} from the Wan2.2-T2V-A14B release into {path.parent}",
        )
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path} does not hold a state dict", f"re-download {path.name}")
    return state


def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise ModelLoadError(
            f"model folder {path.parent} lacks {path.name} ({what})",
            f"copy {path.name} from the model release into {path.parent}",
        )


# ---------------------------------------------------------------------------------------------------
# Official layout


def official_transformer_config(folder: Path, state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The diffusers config of an official expert, from config.json (heads) and the weight shapes."""
    config_path = folder / "config.json"
    _require_file(config_path, "expert configuration")
    raw = json.loads(config_path.read_text())
    if "num_heads" not in raw:
        raise ModelLoadError(f"{config_path} lacks the key 'num_heads'", f"re-download {folder.name}/config.json")
    return transformer_config_from_weights(state, int(raw["num_heads"]), float(raw.get("eps", 1e-6)), folder)


# Every released Wan model (1.3B: 12 heads of 1536, 5B: 24 of 3072, 14B: 40 of 5120) has heads of 128 channels;
# a single-file checkpoint has no config.json, so its head count is its width / 128 (as diffusers' single-file
# loader gets it from the known configurations).
WAN_HEAD_DIM = 128


def transformer_config_from_weights(state: Mapping[str, torch.Tensor], num_heads: int | None, eps: float,
                                    source: Path) -> dict[str, Any]:
    """The diffusers config of an expert from its official-named weights; `num_heads` None: width / 128."""
    for key in ("patch_embedding.weight", "text_embedding.0.weight", "time_embedding.0.weight",
                "blocks.0.ffn.0.weight", "head.head.weight"):
        if key not in state:
            raise ModelLoadError(f"{source} weights lack the key '{key}'",
                                 f"check that {source.name} is a Wan2.2 T2V expert; re-download it")
    dim, in_dim, *patch = state["patch_embedding.weight"].shape
    num_layers = len({int(k.split(".")[1]) for k in state if k.startswith("blocks.")})
    if num_heads is None:
        num_heads = max(1, int(dim) // WAN_HEAD_DIM)
    if dim % num_heads:
        raise ModelLoadError(f"{source}: the width {dim} is not divisible by {num_heads} heads",
                             f"check that {source.name} is a Wan2.2 T2V expert; re-download it")
    out_dim = state["head.head.weight"].shape[0] // (patch[0] * patch[1] * patch[2])
    return {
        "patch_size": tuple(int(p) for p in patch),
        "num_attention_heads": num_heads,
        "attention_head_dim": dim // num_heads,
        "in_channels": int(in_dim),
        "out_channels": int(out_dim),
        "text_dim": int(state["text_embedding.0.weight"].shape[1]),
        "freq_dim": int(state["time_embedding.0.weight"].shape[1]),
        "ffn_dim": int(state["blocks.0.ffn.0.weight"].shape[0]),
        "num_layers": num_layers,
        "cross_attn_norm": "blocks.0.norm3.weight" in state,
        "qk_norm": "rms_norm_across_heads" if "blocks.0.self_attn.norm_q.weight" in state else None,
        "eps": eps,
    }


def load_official_transformer(folder: Path, dtype: torch.dtype) -> Any:
    if not folder.is_dir():
        key = "model.high_noise_file" if folder.name == OFFICIAL_HIGH else "model.low_noise_file"
        raise ModelLoadError(f"model folder {folder.parent} lacks {folder.name}/",
                             f"copy {folder.name}/ from the Wan2.2-T2V-A14B release, or set {key} to the "
                             "expert's single-file checkpoint")
    state = _read_safetensors_folder(folder)
    return _official_transformer(state, official_transformer_config(folder, state), folder, dtype)


def _official_transformer(state: Mapping[str, torch.Tensor], config: dict[str, Any], source: Path,
                          dtype: torch.dtype) -> Any:
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        model = WanTransformer3DModel(**config)
    keep = dtype in (torch.float16, torch.bfloat16)
    _load_mapped(model, state, transformer_official_key, source,
                 lambda key: torch.float32 if keep and _keeps_fp32(model, key) else dtype)
    # Buffers (the RoPE tables) are not in checkpoints: rebuild them on the CPU.
    model.rope = type(model.rope)(config["attention_head_dim"], config["patch_size"], model.config.rope_max_seq_len)
    return model.eval().requires_grad_(False)


# ComfyUI saves a diffusion model's keys as they sit in its model object; other tools drop the first part.
SINGLE_FILE_PREFIXES = ("model.diffusion_model.", "diffusion_model.")


def load_single_file_transformer(path: Path, dtype: torch.dtype, key: str) -> Any:
    """One expert from a single .safetensors file in the official naming (`key`: the config key naming it)."""
    from safetensors import safe_open

    path = Path(path)
    fix = (f"set {key} to the expert's .safetensors file (e.g. ComfyUI's wan2.2_t2v_high_noise_14B_fp16.safetensors), "
           "or to \"\" to take the expert from model.checkpoint")
    if not path.is_file():
        raise ModelLoadError(f"the single-file checkpoint {path} ({key}) does not exist", fix)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            keys = list(handle.keys())
    except Exception as error:  # safetensors raises its own error types for a bad header
        raise ModelLoadError(f"{path} ({key}) is not a readable safetensors file ({error})",
                             f"re-download {path.name}; only .safetensors files are read here, not .pth/.ckpt"
                             ) from None
    prefix = next((p for p in SINGLE_FILE_PREFIXES if keys and all(k.startswith(p) for k in keys)), "")
    scaled = [k for k in keys if k.endswith(("scale_weight", "scaled_fp8", "scale_input"))]
    if scaled:
        raise ModelLoadError(
            f"{path} ({key}) is a scaled-fp8 checkpoint (it has the key '{scaled[0]}'): its weights are not the "
            "model's exact bf16 weights",
            "use the fp16 or bf16 file of the same expert (wan2.2_t2v_*_14B_fp16.safetensors); "
            "model.weights_dtype = \"fp8\" makes wanlora's own fp8 copy where memory needs it")
    state = LazySafetensors([path], strip_prefix=prefix)
    return _official_transformer(state, transformer_config_from_weights(state, None, 1e-6, path), path, dtype)


def official_vae_config(state: dict[str, torch.Tensor], source: Path) -> dict[str, Any]:
    for key in ("encoder.conv1.weight", "conv2.weight"):
        if key not in state:
            raise ModelLoadError(f"{source} lacks the key '{key}'", f"re-download {source.name}")
    base_dim = int(state["encoder.conv1.weight"].shape[0])
    z_dim = int(state["conv2.weight"].shape[0])
    indices = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.downsamples.")})
    levels: list[list[int]] = [[]]
    temporal: list[bool] = []
    for index in indices:
        prefix = f"encoder.downsamples.{index}."
        if f"{prefix}residual.6.weight" in state:
            levels[-1].append(int(state[f"{prefix}residual.6.weight"].shape[0]))
        elif f"{prefix}resample.1.weight" in state:
            temporal.append(f"{prefix}time_conv.weight" in state)
            levels.append([])
        else:
            raise ModelLoadError(
                f"{source}: encoder block {index} is neither a residual block nor a resampler "
                "(attention inside the encoder is not part of the Wan2.1 VAE)",
                f"check that {source.name} is the Wan2.1 VAE",
            )
    num_res_blocks = len(levels[0])
    return {
        "base_dim": base_dim,
        "z_dim": z_dim,
        "dim_mult": [lv[-1] // base_dim for lv in levels],
        "num_res_blocks": num_res_blocks,
        "attn_scales": [],
        "temperal_downsample": temporal,
    }


def load_official_vae(path: Path, dtype: torch.dtype) -> Any:
    from diffusers import AutoencoderKLWan

    state = _read_pth(path)
    config = official_vae_config(state, path)
    model = AutoencoderKLWan(**config)
    _load_mapped(model, state, lambda k: vae_official_key(k, config["num_res_blocks"]), path, lambda k: dtype)
    return model.eval().requires_grad_(False)


def official_text_encoder_config(state: dict[str, torch.Tensor], source: Path) -> Any:
    from transformers import UMT5Config

    for key in ("token_embedding.weight", "blocks.0.pos_embedding.embedding.weight", "blocks.0.attn.q.weight",
                "blocks.0.ffn.fc1.weight"):
        if key not in state:
            raise ModelLoadError(f"{source} lacks the key '{key}'", f"re-download {source.name}")
    vocab, d_model = state["token_embedding.weight"].shape
    buckets, heads = state["blocks.0.pos_embedding.embedding.weight"].shape
    inner = state["blocks.0.attn.q.weight"].shape[0]
    return UMT5Config(
        vocab_size=int(vocab), d_model=int(d_model), d_kv=int(inner // heads), num_heads=int(heads),
        d_ff=int(state["blocks.0.ffn.fc1.weight"].shape[0]),
        num_layers=len({int(k.split(".")[1]) for k in state if k.startswith("blocks.")}),
        relative_attention_num_buckets=int(buckets), relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, tie_word_embeddings=False,
        dropout_rate=0.0,
    )


def load_official_text_encoder(path: Path, dtype: torch.dtype) -> Any:
    from transformers import UMT5EncoderModel

    state = _read_pth(path)
    config = official_text_encoder_config(state, path)
    with torch.device("meta"):  # no 23 GB random init for UMT5-XXL: the file's tensors are assigned
        model = UMT5EncoderModel(config)
    _load_mapped(model, state, text_encoder_official_key, path, lambda k: dtype)
    model.encoder.embed_tokens = model.shared
    return model.eval().requires_grad_(False)


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    if not folder.is_dir():
        raise ModelLoadError(f"tokenizer folder {folder} does not exist",
                             "copy the tokenizer folder (google/umt5-xxl/) from the model release")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "spiece.model")):
        raise ModelLoadError(f"tokenizer folder {folder} has neither tokenizer.json nor spiece.model",
                             "copy the complete tokenizer folder (google/umt5-xxl/) from the model release")
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def _official_tokenizer_folder(root: Path) -> Path:
    for name in OFFICIAL_TOKENIZER_DIRS:
        if (root / name).is_dir():
            return root / name
    raise ModelLoadError(
        f"model folder {root} lacks a tokenizer folder ({' or '.join(OFFICIAL_TOKENIZER_DIRS)})",
        "copy google/umt5-xxl/ from the Wan2.2-T2V-A14B release into the model folder",
    )


# ---------------------------------------------------------------------------------------------------
# Diffusers layout


def _diffusers_folder(root: Path, component: str) -> Path:
    folder = root / DIFFUSERS_FOLDERS[component]
    if not folder.is_dir():
        what = {"high": "high-noise expert", "low": "low-noise expert"}.get(component, component)
        raise ModelLoadError(
            f"model folder {root} lacks {folder.name}/ ({what})",
            f"copy {folder.name}/ of the Wan2.2-T2V-A14B diffusers release into {root}",
        )
    if component != "tokenizer":
        _require_file(folder / "config.json", f"{component} configuration")
        weights = list(folder.glob("*.safetensors")) + list(folder.glob("*.bin"))
        if not weights:
            raise ModelLoadError(f"{folder} has no weight files (*.safetensors)", f"re-download {folder.name}/")
        index = next(iter(folder.glob("*.safetensors.index.json")), None)
        if index is not None:
            for name in sorted(set(json.loads(index.read_text()).get("weight_map", {}).values())):
                if not (folder / name).is_file():
                    raise ModelLoadError(f"{folder} lacks the weight shard {name} listed in {index.name}",
                                         f"re-download {folder.name}/{name}")
    return folder


def load_diffusers_component(root: Path, component: str, dtype: torch.dtype) -> Any:
    folder = _diffusers_folder(root, component)
    try:
        if component in ("high", "low"):
            from diffusers import WanTransformer3DModel

            return WanTransformer3DModel.from_pretrained(str(folder), dtype=dtype, local_files_only=True
                                                         ).eval().requires_grad_(False)
        if component == "vae":
            from diffusers import AutoencoderKLWan

            return AutoencoderKLWan.from_pretrained(str(folder), dtype=dtype, local_files_only=True
                                                    ).eval().requires_grad_(False)
        if component == "text_encoder":
            from transformers import UMT5EncoderModel

            return UMT5EncoderModel.from_pretrained(str(folder), dtype=dtype, local_files_only=True
                                                    ).eval().requires_grad_(False)
        return load_tokenizer(folder)
    except ModelLoadError:
        raise
    except (OSError, ValueError, RuntimeError) as error:
        raise ModelLoadError(f"could not load {folder}: {error}",
                             f"re-download {folder.name}/ of the Wan2.2-T2V-A14B diffusers release") from error


# ---------------------------------------------------------------------------------------------------


def load_components(path: Path | str, layout: str, dtype: str | torch.dtype, components: set[str],
                    text_encoder_dtype: torch.dtype | None = None,
                    expert_files: Mapping[str, Path | None] | None = None) -> WanComponents:
    """Load the requested components; `layout` is 'auto', 'official' or 'diffusers'.

    `path` is a folder or a repo id in the local hub cache; `expert_files` ('high' / 'low' -> a single-file
    checkpoint or None) replaces the folder's experts.
    """
    files = {name: Path(file) for name, file in (expert_files or {}).items() if file}
    torch_dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    te_dtype = text_encoder_dtype or torch_dtype
    found = "single_file"
    root = Path()
    if any(c not in files for c in components):
        root = model_folder(path)
        found = detect_layout(root)
        if layout != "auto" and layout != found:
            raise ModelLoadError(
                f"model.layout is '{layout}' but {root} is in the {found} layout",
                f"set model.layout to 'auto' or '{found}'",
            )
    out = WanComponents(layout=found)
    for component in ("high", "low", "vae", "text_encoder", "tokenizer"):
        if component not in components:
            continue
        if component in files:
            value = load_single_file_transformer(files[component], torch_dtype, f"model.{component}_noise_file")
        elif found == "diffusers":
            value = load_diffusers_component(root, component, te_dtype if component == "text_encoder" else torch_dtype)
        elif component in ("high", "low"):
            value = load_official_transformer(root / (OFFICIAL_HIGH if component == "high" else OFFICIAL_LOW),
                                              torch_dtype)
        elif component == "vae":
            value = load_official_vae(root / OFFICIAL_VAE, torch_dtype)
        elif component == "text_encoder":
            value = load_official_text_encoder(root / OFFICIAL_T5, te_dtype)
        else:
            value = load_tokenizer(_official_tokenizer_folder(root))
        setattr(out, component, value)
    return out
