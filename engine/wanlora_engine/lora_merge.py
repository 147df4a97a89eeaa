"""Read a LoRA file in the diffusers, official/ComfyUI or kohya/musubi naming and merge it into an expert.

Accepted keys (docs/engine-contract.md §6):
- diffusers: `transformer.<module>.lora_A.weight` / `.lora_B.weight` on diffusers module names
  (`blocks.N.attn1.to_q`); lora_B already carries alpha / rank. `transformer_2.` is accepted as well.
- official / ComfyUI: `diffusion_model.<module>.lora_A.weight` / `.lora_B.weight` (or `.lora_down` / `.lora_up`)
  and `.alpha` on the official module names (`blocks.N.self_attn.q`); the update is scaled by alpha / rank.
- kohya / musubi-tuner (the most common naming of Wan LoRAs shared online): `lora_unet_<module>.lora_down.weight`
  / `.lora_up.weight` and `.alpha`, the module name with its dots turned into underscores
  (`lora_unet_blocks_0_self_attn_q`, official names as musubi-tuner trains them; diffusers names are accepted
  too); the update is scaled by alpha / rank, by 1 without an alpha, as kohya's scripts do.

Files are written in the first two namings only (lora.py). Merging adds scale * factor * B @ A to each adapted
Linear weight (computed in float32, stored in the weight's dtype), so sampling runs at the base model's speed.
Scale 0 leaves every weight bit-identical.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import EngineError
from .loading import transformer_lora_official_module


class LoraError(EngineError):
    """A LoRA file is missing, unreadable, or does not fit the model."""

    code = "lora_invalid"


_PREFIXES = {"transformer.": "diffusers", "transformer_2.": "diffusers", "diffusion_model.": "official",
             "lora_unet_": "kohya"}
_PARTS = {"lora_A.weight": "A", "lora_down.weight": "A", "lora_B.weight": "B", "lora_up.weight": "B", "alpha": "alpha"}


@dataclass
class LoraFile:
    """The adapted modules of one file, on diffusers module names: name -> (A [r, in], B [out, r], factor)."""

    path: Path
    naming: str  # 'diffusers' | 'official' | 'kohya'
    modules: dict[str, tuple[torch.Tensor, torch.Tensor, float]]
    metadata: dict[str, str] = field(default_factory=dict)
    sha256: str = ""

    @property
    def ranks(self) -> list[int]:
        return sorted({int(a.shape[0]) for a, _, _ in self.modules.values()})

    @property
    def expert(self) -> str | None:
        """The expert the file says it was trained for ('high' / 'low'), from wanlora's metadata."""
        value = self.metadata.get("wanlora_expert")
        return {"high_noise": "high", "low_noise": "low"}.get(value or "")

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "naming": self.naming, "modules": len(self.modules), "ranks": self.ranks,
                "expert_in_metadata": self.expert, "sha256": self.sha256}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _split_key(key: str) -> tuple[str, str, str] | None:
    """'transformer.blocks.0.attn1.to_q.lora_A.weight' -> ('diffusers', 'blocks.0.attn1.to_q', 'A');
    'lora_unet_blocks_0_self_attn_q.alpha' -> ('kohya', 'lora_unet_blocks_0_self_attn_q', 'alpha')."""
    for prefix, naming in _PREFIXES.items():
        if key.startswith(prefix):
            rest = key[len(prefix):]
            for suffix, part in _PARTS.items():
                if rest.endswith("." + suffix):
                    module = rest[: -len(suffix) - 1]
                    return naming, (prefix + module if naming == "kohya" else module), part
            return None
    return None


def official_to_diffusers_names(transformer: Any) -> dict[str, str]:
    """Official module name -> diffusers module name, for every Linear of the transformer that has one."""
    table = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear):
            try:
                table[transformer_lora_official_module(name)] = name
            except KeyError:
                continue
    return table


def kohya_to_diffusers_names(transformer: Any) -> dict[str, str]:
    """kohya module name -> diffusers module name: `lora_unet_` + the official name (as musubi-tuner writes it)
    or the diffusers name, dots turned into underscores (`lora_unet_blocks_0_self_attn_q`,
    `lora_unet_blocks_0_attn1_to_q`)."""
    table = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear):
            table["lora_unet_" + name.replace(".", "_")] = name
    for official, name in official_to_diffusers_names(transformer).items():
        table["lora_unet_" + official.replace(".", "_")] = name
    return table


def read_lora(path: Path, transformer: Any) -> LoraFile:
    """Read and check a LoRA file against `transformer` (names and shapes); raises LoraError naming the key."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise LoraError(f"LoRA file {path} does not exist",
                        "pass a file that `wanlora train` wrote, e.g. runs/NAME/lora/high_noise.comfyui.safetensors")
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
        keys = list(handle.keys())
        metadata = dict(handle.metadata() or {})
    except Exception as error:  # safetensors raises its own error types for a bad header
        raise LoraError(f"LoRA file {path} is not a readable safetensors file ({error})",
                        "pass the .safetensors file itself; re-export it if it was cut short") from None
    parts: dict[str, dict[str, torch.Tensor]] = {}
    namings = set()
    for key in keys:
        split = _split_key(key)
        if split is None:
            raise LoraError(
                f"LoRA file {path} has the key '{key}', which is in none of the namings read here: diffusers "
                "(transformer.blocks.N.attn1.to_q.lora_A.weight), official/ComfyUI "
                "(diffusion_model.blocks.N.self_attn.q.lora_A.weight), kohya/musubi-tuner "
                "(lora_unet_blocks_N_self_attn_q.lora_down.weight)",
                "export the LoRA with wanlora (runs/NAME/lora/*.safetensors) or convert it to one of these namings",
            )
        naming, module, part = split
        namings.add(naming)
        parts.setdefault(module, {})[part] = handle.get_tensor(key)
    if not parts:
        raise LoraError(f"LoRA file {path} holds no tensors", "re-export the LoRA")
    if len(namings) > 1:
        raise LoraError(f"LoRA file {path} mixes key namings ({', '.join(sorted(namings))})",
                        "use a file in one naming, as wanlora exports them")
    naming = namings.pop()

    linears = {name: m for name, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)}
    renamed = {"official": official_to_diffusers_names, "kohya": kohya_to_diffusers_names}.get(naming)
    targets = renamed(transformer) if renamed else {name: name for name in linears}
    blocks = len(getattr(transformer, "blocks", []))
    width = getattr(getattr(transformer, "config", None), "num_attention_heads", 0) * \
        getattr(getattr(transformer, "config", None), "attention_head_dim", 0)
    modules: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = {}
    for module, found in sorted(parts.items()):
        target_name = targets.get(module)
        if target_name is None or target_name not in linears:
            raise LoraError(
                f"LoRA file {path} adapts '{module}', which this model does not have as a Linear layer "
                f"(it has {blocks} blocks of width {width})",
                "use a LoRA trained for this model (Wan2.2-T2V-A14B), and the high-noise file for the "
                "high-noise expert",
            )
        if "A" not in found or "B" not in found:
            missing = "lora_A (lora_down)" if "A" not in found else "lora_B (lora_up)"
            raise LoraError(f"LoRA file {path} lacks {missing} for '{module}'", "re-export the LoRA")
        a, b = found["A"], found["B"]
        weight = linears[target_name].weight
        rank = a.shape[0]
        if (a.ndim != 2 or b.ndim != 2 or b.shape[1] != rank or a.shape[1] != weight.shape[1]
                or b.shape[0] != weight.shape[0]):
            raise LoraError(
                f"LoRA file {path}: '{module}' has A {tuple(a.shape)} and B {tuple(b.shape)}, the layer's weight is "
                f"{tuple(weight.shape)} (A must be [rank, {weight.shape[1]}], B [{weight.shape[0]}, rank])",
                "use a LoRA trained for this model (Wan2.2-T2V-A14B, not the 5B or 1.3B models)",
            )
        factor = float(found["alpha"].float().item()) / rank if "alpha" in found else 1.0
        modules[target_name] = (a, b, factor)
    return LoraFile(path=path, naming=naming, modules=modules, metadata=metadata, sha256=file_sha256(path))


@torch.no_grad()
def merge_lora(transformer: Any, lora: LoraFile, scale: float, compute_device: torch.device | None = None) -> int:
    """Add scale * factor * B @ A to each adapted weight; returns the number of merged layers.

    The product is formed in float32 on `compute_device` (default: where the weight is), so a bf16 expert waiting
    on the CPU can be merged on the GPU one layer at a time.
    """
    linears = dict(transformer.named_modules())
    for name, (a, b, factor) in lora.modules.items():
        weight = linears[name].weight
        device = compute_device or weight.device
        base = weight.data.to(device, torch.float32)
        delta = (b.to(device, torch.float32) @ a.to(device, torch.float32)) * (scale * factor)
        weight.data.copy_((base + delta).to(weight.dtype).to(weight.device))
    return len(lora.modules)
