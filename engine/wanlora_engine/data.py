"""Training data over the cache: a dataset of (latent, text embedding) items and a deterministic sampler.

The sampler is a pure function of (seed, epoch): the order of epoch e is drawn from a generator seeded
with seed * 1_000_003 + e, so the data position of a resumed run is just the number of samples consumed.
With all weights equal an epoch is a permutation of the items; otherwise it is len(items) draws with
replacement, each item drawn with probability weight / sum(weights) (the curation stage's class-balance
weights), as torch's WeightedRandomSampler does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from .encoding import read_cache_format, read_jsonl
from .errors import DataError


@dataclass(frozen=True)
class CachedItem:
    id: str
    shard: int
    latent_shape: tuple[int, ...]
    category: str | None
    weight: float
    media_type: str


class CachedDataset:
    """Items of one split of the cache; tensors are read lazily from the shards (memory-mapped)."""

    def __init__(self, cache_dir: Path, split: str, text_length: int, limit: int | None = None) -> None:
        self.folder = Path(cache_dir) / split
        index = read_jsonl(self.folder / "index.jsonl")
        if index:
            read_cache_format(Path(cache_dir))  # refuses a format this engine cannot read
        if not index:
            raise DataError(f"the cache has no {split} items ({self.folder / 'index.jsonl'} is missing or empty)",
                            "run `wanlora cache --config FILE` first")
        if limit is not None:
            index = index[:limit]
        self.items = [CachedItem(r["id"], int(r["shard"]), tuple(r["latent_shape"]), r.get("category"),
                                 float(r.get("weight", 1.0)), r.get("media_type", "video")) for r in index]
        self.text_length = text_length
        self._handles: dict[tuple[str, int], Any] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _handle(self, kind: str, shard: int) -> Any:
        key = (kind, shard)
        if key not in self._handles:
            path = self.folder / f"{kind}-{shard:05d}.safetensors"
            if not path.is_file():
                raise DataError(f"cache shard {path} is missing", "re-run `wanlora cache` to rebuild it")
            self._handles[key] = safe_open(str(path), framework="pt", device="cpu")
        return self._handles[key]

    def latent(self, index: int) -> torch.Tensor:
        item = self.items[index]
        return self._handle("latents", item.shard).get_tensor(item.id)

    def text(self, index: int) -> torch.Tensor:
        """The caption embedding (at most text_length tokens) zero-padded to the model's 512: [512, text_dim]."""
        item = self.items[index]
        return pad_text(self._handle("text", item.shard).get_tensor(item.id)[:self.text_length])

    def weights(self) -> torch.Tensor:
        return torch.tensor([item.weight for item in self.items], dtype=torch.float64)

    def categories(self) -> list[str | None]:
        return [item.category for item in self.items]


# Wan2.1/2.2 read 512 text tokens: the official code (`text_len`) and WanPipeline (`max_sequence_length`) zero-pad
# every caption embedding to 512, however short the caption or the tokenizer cut. Training pads to the same
# length, so that the cross-attention sees during training the zero tokens it sees when sampling;
# training.text_length only says where captions are cut (and what the cache stores).
MODEL_TEXT_TOKENS = 512


def pad_text(embedding: torch.Tensor, length: int = MODEL_TEXT_TOKENS) -> torch.Tensor:
    tokens, dim = embedding.shape
    if tokens >= length:
        return embedding[:length]
    return torch.cat([embedding, embedding.new_zeros(length - tokens, dim)], dim=0)


def load_empty_prompt(cache_dir: Path, text_length: int) -> torch.Tensor:
    path = Path(cache_dir) / "empty_prompt.safetensors"
    if not path.is_file():
        raise DataError(f"the cache lacks {path.name} (the empty-prompt embedding for CFG dropout)",
                        "re-run `wanlora cache --config FILE`")
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        return pad_text(handle.get_tensor("embedding")[:text_length])


class EpochSampler:
    """Deterministic per-epoch order of item indices (see module docstring)."""

    def __init__(self, weights: torch.Tensor, seed: int) -> None:
        if len(weights) == 0:
            raise DataError("no training items", "cache at least one item")
        if torch.any(weights < 0) or not torch.isfinite(weights).all() or float(weights.sum()) <= 0:
            raise DataError("sampling weights must be finite, >= 0, and not all 0",
                            "fix the weight column of the manifest")
        self.weights = weights.double()
        self.seed = seed
        self.uniform = bool(torch.all(self.weights == self.weights[0]))
        self._cache: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.weights)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if self.uniform:
            order = torch.randperm(len(self.weights), generator=generator)
        else:
            order = torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator)
        self._cache = (epoch, order)
        return order

    def index_at(self, position: int) -> int:
        """The item drawn at global sample position `position` (0-based, across epochs)."""
        epoch, offset = divmod(position, len(self.weights))
        return int(self.epoch_order(epoch)[offset])

    def take(self, position: int, count: int) -> list[int]:
        return [self.index_at(p) for p in range(position, position + count)]


def class_balanced_weights(categories: list[str | None], beta: float) -> dict[str | None, float]:
    """Per-category loss weights of Cui et al. (2019): (1 - beta) / (1 - beta^n_c), scaled to mean 1 over items."""
    counts: dict[str | None, int] = {}
    for category in categories:
        counts[category] = counts.get(category, 0) + 1
    raw = {c: (1.0 - beta) / (1.0 - beta ** n) for c, n in counts.items()}
    mean = sum(raw[c] for c in categories) / len(categories)
    return {c: w / mean for c, w in raw.items()}


class EncodedOnTheFly:
    """The same items as a cache split, encoded when drawn: media decoded, VAE latents and UMT5 embeddings
    computed on `cache.device` (on 'cpu' the encoders stay off the GPU, as the report planned) and
    rounded to bf16 exactly as the cache stores them. For datasets whose cache would not fit on disk;
    much slower per step (the planner says by how much). A file that cannot be decoded stops training
    with its manifest line, since there is no cache stage to skip it beforehand.
    """

    def __init__(self, config: Any, manifest: Path, limit: int | None = None) -> None:
        from .devices import resolve_device
        from .encoding import TextEncoder, latent_shape
        from .loading import load_components
        from .media import read_manifest

        self.config = config
        self.rows = read_manifest(manifest, config.data.weight_column, config.data.category_column)
        if limit is not None:
            self.rows = self.rows[:limit]
        if not self.rows:
            raise DataError(f"manifest {manifest} has no rows", "point data.train_manifest at the prepared manifest")
        size = config.training.resolution
        self.items = [CachedItem(r.id, -1, latent_shape(1 if r.media_type == "image" else config.training.frames,
                                                        size.height, size.width),
                                 r.category, r.weight, r.media_type)
                      for r in self.rows]
        self.device = resolve_device(config.cache.device, "cache.device", error=DataError)
        te_dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        parts = load_components(config.model.checkpoint, config.model.layout, torch.float32,
                                {"vae", "text_encoder", "tokenizer"}, text_encoder_dtype=te_dtype)
        self.vae = parts.vae.to(self.device)
        if config.cache.vae_tiling:
            self.vae.enable_tiling()
        self.encoder = TextEncoder(parts.tokenizer, parts.text_encoder.to(self.device), self.device,
                                   config.training.text_length)
        self.text_length = config.training.text_length

    def __len__(self) -> int:
        return len(self.items)

    def latent(self, index: int) -> torch.Tensor:
        from .encoding import encode_latent
        from .media import decode_media

        row = self.rows[index]
        training = self.config.training
        video = decode_media(row, training.resolution.width, training.resolution.height, training.frames, training.fps)
        return encode_latent(self.vae, video, self.device)

    def text(self, index: int) -> torch.Tensor:
        embeds, _, _ = self.encoder.encode([self.rows[index].caption])
        return pad_text(embeds[0])

    def empty_prompt(self) -> torch.Tensor:
        embeds, _, _ = self.encoder.encode([""])
        return pad_text(embeds[0])

    def weights(self) -> torch.Tensor:
        return torch.tensor([item.weight for item in self.items], dtype=torch.float64)

    def categories(self) -> list[str | None]:
        return [item.category for item in self.items]
