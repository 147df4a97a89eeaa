"""What the stages share to turn media and captions into model inputs and back, written once.

- captions: `clean_caption` (every stage that tokenizes a caption or prompt cleans it the same way);
- text: `TextEncoder`, UMT5's last hidden state trimmed to each caption's tokens (cache, on-the-fly data);
- latents: `latent_shape`, `encode_latent` (VAE posterior mean, normalised per channel as WanPipeline
  expects: (z - mean) / std with the VAE config's latents_mean / latents_std) and `decode_latents` (the
  inverse, then the VAE decoder);
- `read_jsonl`: the JSON-lines indexes of the cache; `read_cache_format`: its format number (cache.json).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# The Wan2.1 VAE that Wan2.2-T2V-A14B uses: 16 latent channels, 4x in time, 8x in space.
LATENT_CHANNELS = 16
TEMPORAL_SCALE = 4
SPATIAL_SCALE = 8

# The cache's format (cache.json's schema_version). 1: one process, shards numbered in the order they were written,
# index.jsonl appended shard by shard. 2: shard k holds the manifest's rows [k*S, (k+1)*S), any number of processes,
# one record per finished shard and index.jsonl written at the end (cache.py). Both have the same index lines and
# tensor files (embeddings at the caption's token count), so training reads both.
CACHE_FORMAT = 2
READABLE_CACHE_FORMATS = (1, 2)


# Names the cleaning in cache.json: a cache whose embeddings were cleaned another way is refused, not mixed.
TEXT_CLEANING = "wan2.2: ftfy.fix_text, html.unescape x2, whitespace collapsed"


def clean_caption(text: str) -> str:
    """The text cleaning of Wan2.2's tokenizer wrapper (wan/modules/tokenizers.py, clean='whitespace'), which
    diffusers' WanPipeline repeats: `ftfy.fix_text`, HTML entities decoded twice, whitespace collapsed.

    The model was trained on text cleaned this way, so a caption or prompt must be too: ftfy straightens curly
    quotes, turns full-width letters, digits and spaces into their ASCII forms, splits ligatures and repairs
    mojibake, each of which changes UMT5's token ids. ftfy also normalises to NFC, which the archive's decomposed
    Hangul needs.
    """
    import ftfy

    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


def latent_shape(frames: int, height: int, width: int, vae: Any = None) -> tuple[int, int, int, int]:
    """[C, F', H', W'] of the latent of `frames` frames (1 for an image) at height x width.

    The first frame has a latent frame of its own, every `temporal` further frames one more. The VAE's config
    gives the channels and scale factors; without a VAE, Wan2.2-T2V-A14B's.
    """
    channels, temporal, spatial = LATENT_CHANNELS, TEMPORAL_SCALE, SPATIAL_SCALE
    if vae is not None:
        channels = int(vae.config.z_dim)
        temporal = int(getattr(vae.config, "scale_factor_temporal", TEMPORAL_SCALE))
        spatial = int(getattr(vae.config, "scale_factor_spatial", SPATIAL_SCALE))
    return (channels, (frames - 1) // temporal + 1, height // spatial, width // spatial)


def caption_token_counts(tokenizer: Any, captions: list[str]) -> list[int]:
    """Each caption's token count after Wan2.2's cleaning, end-of-sequence token included, before any cut."""
    if not captions:  # a tokenizer given an empty batch raises
        return []
    return [len(ids) for ids in tokenizer([clean_caption(c) for c in captions], add_special_tokens=True).input_ids]


@dataclass
class TextEncoder:
    tokenizer: Any
    model: Any
    device: torch.device
    length: int

    @property
    def dim(self) -> int:
        return int(self.model.config.d_model)

    @torch.no_grad()
    def encode(self, captions: list[str]) -> tuple[list[torch.Tensor], list[int], list[bool]]:
        """Embeddings trimmed to each caption's token count (<= length), the full counts, truncation flags."""
        cleaned = [clean_caption(c) for c in captions]
        full = caption_token_counts(self.tokenizer, captions)
        batch = self.tokenizer(cleaned, padding="max_length", max_length=self.length, truncation=True,
                               add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        ids = batch.input_ids.to(self.device)
        mask = batch.attention_mask.to(self.device)
        hidden = self.model(ids, attention_mask=mask).last_hidden_state
        lengths = mask.sum(dim=1).tolist()
        embeds = [hidden[i, : lengths[i]].to("cpu", torch.bfloat16) for i in range(len(cleaned))]
        return embeds, full, [n > self.length for n in full]


@torch.no_grad()
def encode_latent(vae: Any, video: torch.Tensor, device: torch.device) -> torch.Tensor:
    """[3, F, H, W] in [-1, 1] -> normalised bf16 latent [16, 1 + (F-1)/4, H/8, W/8] on the CPU."""
    dtype = next(vae.parameters()).dtype
    x = video.unsqueeze(0).to(device, dtype)
    z = vae.encode(x).latent_dist.mode()
    mean = torch.tensor(vae.config.latents_mean, device=device, dtype=torch.float32).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=device, dtype=torch.float32).view(1, -1, 1, 1, 1)
    return ((z.float() - mean) / std)[0].to("cpu", torch.bfloat16)


@torch.no_grad()
def decode_latents(vae: Any, latents: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Normalised latents [1, C, F, H, W] -> frames [F', H', W', 3] in [0, 1] (float32, CPU)."""
    dtype = next(vae.parameters()).dtype
    mean = torch.tensor(vae.config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1).to(device)
    std = torch.tensor(vae.config.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1).to(device)
    z = latents.to(device, torch.float32) * std + mean
    video = vae.decode(z.to(dtype), return_dict=False)[0]  # [1, 3, F', H', W'] in about [-1, 1]
    return (video[0].float().permute(1, 2, 3, 0) / 2 + 0.5).clamp(0, 1).cpu()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file ([] when it is missing); a torn last line (a killed run) ends it."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                # A torn last line from a killed run: its shard is redone.
                break
    return out


def read_cache_format(cache_dir: Path) -> int:
    """The format number of the cache at `cache_dir` (cache.json's schema_version); refuses an unreadable one."""
    from .errors import DataError

    path = Path(cache_dir) / "cache.json"
    try:
        found = json.loads(path.read_text(encoding="utf-8")).get("schema_version")
    except (OSError, ValueError, AttributeError):
        problem = f"{path} is missing or is not a wanlora cache description"
        remedy = "point data.cache_dir at a folder written by `wanlora cache`, or build the cache there"
        raise DataError(problem, remedy) from None
    if found not in READABLE_CACHE_FORMATS:
        raise DataError(
            f"cache {cache_dir} has cache format {found!r}; this engine reads formats "
            f"{', '.join(map(str, READABLE_CACHE_FORMATS))}",
            "use the wanlora version that wrote it, or point data.cache_dir at a new folder and run `wanlora cache`",
        )
    return int(found)
