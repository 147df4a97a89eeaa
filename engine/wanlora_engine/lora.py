"""LoRA adapters on the experts (peft) and their export in the two formats users load.

- diffusers format: keys `transformer.blocks.N.attn1.to_q.lora_A.weight` / `lora_B.weight`, loadable by
  `WanPipeline.load_lora_weights(path)` into `transformer` (high noise) and with
  `load_into_transformer_2=True` into `transformer_2` (low noise). peft scales LoRA by alpha / rank; the
  file has no alpha, so lora_B is stored multiplied by alpha / rank (the product B·A is what counts).
- official / ComfyUI format: keys `diffusion_model.blocks.N.self_attn.q.lora_A.weight`, `lora_B.weight`
  and `diffusion_model.blocks.N.self_attn.q.alpha` (scale alpha / rank), on the official module names.
  diffusers reads this format too.
Exports are bf16; training checkpoints keep float32.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .config import LoraConfig
from .files import save_safetensors
from .loading import transformer_lora_official_module

ADAPTER = "default"


def add_lora(transformer: Any, config: LoraConfig, seed: int) -> list[torch.nn.Parameter]:
    """Attach a LoRA adapter to the target modules; returns its trainable parameters (float32)."""
    from peft import LoraConfig as PeftLoraConfig

    torch.manual_seed(seed)
    transformer.add_adapter(PeftLoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
        target_modules=list(config.targets), init_lora_weights=True,
    ), adapter_name=ADAPTER)
    params = []
    for name, param in transformer.named_parameters():
        if "lora_" in name:
            param.data = param.data.float()
            param.requires_grad_(True)
            params.append(param)
        else:
            param.requires_grad_(False)
    if not params:
        raise ValueError(f"no module matched the LoRA targets {config.targets}")
    return params


def lora_parameters(transformer: Any) -> dict[str, torch.nn.Parameter]:
    """Trainable LoRA parameters by their peft name without the adapter: `blocks.0.attn1.to_q.lora_A.weight`."""
    return {name.replace(f".{ADAPTER}", ""): p for name, p in transformer.named_parameters() if "lora_" in name}


def lora_modules(transformer: Any) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module name -> (A [rank, in], B [out, rank]) of the adapter."""
    params = lora_parameters(transformer)
    modules = {}
    for name, a in params.items():
        if name.endswith(".lora_A.weight"):
            module = name[: -len(".lora_A.weight")]
            modules[module] = (a.detach(), params[f"{module}.lora_B.weight"].detach())
    return modules


def export_diffusers(transformer: Any, config: LoraConfig, path: Path, expert: str) -> Path:
    scale = config.alpha / config.rank
    tensors = {}
    for module, (a, b) in sorted(lora_modules(transformer).items()):
        tensors[f"transformer.{module}.lora_A.weight"] = a.to("cpu", torch.bfloat16).contiguous()
        tensors[f"transformer.{module}.lora_B.weight"] = (b.float() * scale).to("cpu", torch.bfloat16).contiguous()
    _save(tensors, path, config, expert, "diffusers")
    return path


def export_official(transformer: Any, config: LoraConfig, path: Path, expert: str) -> Path:
    tensors = {}
    for module, (a, b) in sorted(lora_modules(transformer).items()):
        name = f"diffusion_model.{transformer_lora_official_module(module)}"
        tensors[f"{name}.lora_A.weight"] = a.to("cpu", torch.bfloat16).contiguous()
        tensors[f"{name}.lora_B.weight"] = b.to("cpu", torch.bfloat16).contiguous()
        tensors[f"{name}.alpha"] = torch.tensor(float(config.alpha), dtype=torch.bfloat16)
    _save(tensors, path, config, expert, "official")
    return path


def _save(tensors: dict[str, torch.Tensor], path: Path, config: LoraConfig, expert: str, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": "pt",
        "wanlora_format": fmt,
        "wanlora_expert": "high_noise" if expert == "high" else "low_noise",
        "wanlora_rank": str(config.rank),
        "wanlora_alpha": str(config.alpha),
        "wanlora_targets": json.dumps(list(config.targets)),
    }
    save_safetensors(tensors, path, metadata)


def lora_files(run_dir: Path, expert: str) -> dict[str, Path]:
    stem = "high_noise" if expert == "high" else "low_noise"
    return {
        "diffusers": run_dir / "lora" / f"{stem}.diffusers.safetensors",
        "official": run_dir / "lora" / f"{stem}.comfyui.safetensors",
    }
