"""Stage `cache`: VAE latents and UMT5 embeddings of every clip, so training never runs the encoders.

Layout of data.cache_dir (documented in docs/engine-contract.md):
    cache.json                  settings the cache was built with (a mismatch is an error, not a mix)
    empty_prompt.safetensors    'embedding': bf16 [tokens, text_dim], the "" prompt (CFG dropout)
    <split>/index.jsonl         one line per cached item (appended after its shard is on disk)
    <split>/skipped.jsonl       one line per row that could not be cached, with the reason
    <split>/latents-NNNNN.safetensors   item id -> bf16 [16, 1 + (F-1)/4, H/8, W/8], normalised latents
    <split>/text-NNNNN.safetensors      item id -> bf16 [tokens, text_dim], trimmed to the caption's tokens

Latents are the VAE posterior mean, normalised per channel as WanPipeline expects: (z - mean) / std with
the VAE config's latents_mean / latents_std (encoding.encode_latent). Embeddings are UMT5's last hidden
state for the caption (encoding.clean_caption: Wan2.2's cleaning, ftfy.fix_text, HTML entities decoded,
whitespace collapsed), cut at training.text_length tokens (EOS included) and stored without padding; the trainer pads
with zeros to the model's 512 tokens, as Wan2.2 and WanPipeline do when sampling (data.MODEL_TEXT_TOKENS).
Resumable: a shard becomes visible only after both files were renamed into place and its index lines
were appended, so a killed run redoes at most one shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from .config import ResolvedConfig
from .devices import resolve_device
from .encoding import TEXT_CLEANING, TextEncoder, encode_latent, latent_shape, read_jsonl
from .errors import DataError, DiskSpaceError
from .events import EventWriter, log
from .files import save_safetensors, write_text_atomically
from .gpu_memory import apply_gpu_memory_limit
from .loading import load_components
from .media import ManifestRow, decode_media, read_manifest

CACHE_SCHEMA_VERSION = 1


def estimate_item_bytes(media_type: str, config: ResolvedConfig, text_dim: int) -> int:
    """Upper bound of one item's cache size: bf16 latents + untrimmed bf16 embedding + 1 KiB overhead."""
    frames = 1 if media_type == "image" else config.training.frames
    c, f, h, w = latent_shape(frames, config.training.resolution.height, config.training.resolution.width)
    return 2 * c * f * h * w + 2 * config.training.text_length * text_dim + 1024


def _append_lines(path: Path, records: list[dict[str, Any]]) -> None:
    if not records:
        return
    with open(path, "a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def model_fingerprint(vae: Any, text_encoder: Any) -> str:
    """Identifies the encoders by their configs and a few weights, not by their folder (which may move)."""
    digest = hashlib.sha256()
    for config in (dict(vae.config), text_encoder.config.to_dict()):
        # keys starting with '_' hold the load path and library versions, not the model
        stable = {k: v for k, v in config.items()
                  if not k.startswith("_") and k not in ("transformers_version", "dtype", "torch_dtype")}
        digest.update(json.dumps(stable, sort_keys=True, default=str).encode())
    for tensor in (vae.encoder.conv_in.weight, text_encoder.shared.weight[:4]):
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cache_settings(config: ResolvedConfig, fingerprint: str) -> dict[str, Any]:
    return {
        "width": config.training.resolution.width,
        "height": config.training.resolution.height,
        "frames": config.training.frames,
        "fps": config.training.fps,
        "text_length": config.training.text_length,
        "model_fingerprint": fingerprint,
        "text_cleaning": TEXT_CLEANING,
    }


def check_or_write_settings(cache_dir: Path, config: ResolvedConfig, fingerprint: str) -> None:
    settings = cache_settings(config, fingerprint)
    path = cache_dir / "cache.json"
    if path.is_file():
        existing = json.loads(path.read_text()).get("settings", {})
        for key, value in settings.items():
            if existing.get(key) != value:
                raise DataError(
                    f"cache {cache_dir} was built with {key}={existing.get(key)!r}, the config asks {value!r}",
                    "point data.cache_dir at a new folder, or delete the old cache to rebuild it",
                )
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps({"schema_version": CACHE_SCHEMA_VERSION, "settings": settings,
                                            "model_path": str(config.model.checkpoint)}, indent=2))


def run_cache(config: ResolvedConfig, events: EventWriter) -> dict[str, Any]:
    """Cache latents and embeddings of the train (and val) manifests; returns the run_finished summary."""
    started = time.monotonic()
    cache_dir = config.data.cache_dir
    splits: dict[str, list[ManifestRow]] = {
        "train": read_manifest(config.data.train_manifest, config.data.weight_column, config.data.category_column)
    }
    if config.data.val_manifest is not None:
        splits["val"] = read_manifest(config.data.val_manifest, config.data.weight_column, config.data.category_column)

    done: dict[str, set[str]] = {}
    for split in splits:
        (cache_dir / split).mkdir(parents=True, exist_ok=True)
        indexed = read_jsonl(cache_dir / split / "index.jsonl")
        skipped = read_jsonl(cache_dir / split / "skipped.jsonl")
        done[split] = {r["id"] for r in indexed} | {r["id"] for r in skipped}

    device = resolve_device(config.cache.device, "cache.device", error=DataError)
    apply_gpu_memory_limit(config, device, events)
    te_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    components = load_components(config.model.checkpoint, config.model.layout, torch.float32,
                                 {"vae", "text_encoder", "tokenizer"}, text_encoder_dtype=te_dtype)
    check_or_write_settings(cache_dir, config, model_fingerprint(components.vae, components.text_encoder))
    vae = components.vae.to(device)
    if config.cache.vae_tiling:
        vae.enable_tiling()
    text = TextEncoder(components.tokenizer, components.text_encoder.to(device), device, config.training.text_length)

    pending = {split: [r for r in rows if r.id not in done[split]] for split, rows in splits.items()}
    estimated = sum(estimate_item_bytes(r.media_type, config, text.dim) for rows in pending.values() for r in rows)
    free = shutil.disk_usage(cache_dir).free
    events.emit("cache_plan", splits={s: len(r) for s, r in splits.items()},
                items=sum(len(r) for r in splits.values()),
                items_cached=sum(len(d) for d in done.values()), estimated_bytes=estimated, free_bytes=free,
                cache_dir=str(cache_dir))
    if estimated + config.free_disk_margin_bytes > free:
        raise DiskSpaceError(
            f"the cache needs up to {estimated / 2**30:.1f} GiB "
            f"(+{config.cache.free_disk_margin_gib:.1f} GiB "
            f"margin) but {cache_dir} has {free / 2**30:.1f} GiB free",
            "free disk space, point data.cache_dir at a larger disk, or lower training.frames / training.resolution",
        )

    empty_path = cache_dir / "empty_prompt.safetensors"
    if not empty_path.is_file():
        embeds, _, _ = text.encode([""])
        save_safetensors({"embedding": embeds[0]}, empty_path)

    totals = {"cached": 0, "skipped": 0, "truncated": 0, "bytes_written": 0}
    total_pending = sum(len(r) for r in pending.values())
    processed = 0
    last_progress = 0.0
    for split, rows in pending.items():
        folder = cache_dir / split
        shard = 1 + max((r["shard"] for r in read_jsonl(folder / "index.jsonl")), default=-1)
        for start in range(0, len(rows), config.cache.shard_items):
            chunk = rows[start:start + config.cache.shard_items]
            latents: dict[str, torch.Tensor] = {}
            skipped: list[dict[str, Any]] = []
            ok_rows: list[ManifestRow] = []
            for row in chunk:
                try:
                    size = config.training.resolution
                    video = decode_media(row, size.width, size.height, config.training.frames, config.training.fps)
                except DataError as error:
                    skipped.append({"id": row.id, "line": row.line, "path": str(row.path), "reason": error.problem})
                    events.warning("item_skipped",
                                   f"{split} line {row.line} ({row.path.name}) not cached: {error.problem}",
                                   split=split, id=row.id, line=row.line, path=str(row.path))
                    continue
                if row.media_type == "video" and video.shape[1] < config.training.frames:
                    events.warning("clip_short", f"{split} line {row.line} ({row.path.name}) has {video.shape[1]} of "
                                   f"{config.training.frames} frames; cached with {video.shape[1]}",
                                   split=split, id=row.id, line=row.line, frames=int(video.shape[1]))
                latents[row.id] = encode_latent(vae, video, device)
                ok_rows.append(row)
                processed += 1
                now = time.monotonic()
                if now - last_progress >= 2.0:
                    last_progress = now
                    events.emit("progress", stage="cache", phase=f"latents:{split}", done=processed + totals["skipped"],
                                total=total_pending, items_per_second=processed / max(now - started, 1e-9))
            index_lines: list[dict[str, Any]] = []
            if ok_rows:
                texts: dict[str, torch.Tensor] = {}
                for b in range(0, len(ok_rows), config.cache.text_batch_size):
                    batch = ok_rows[b:b + config.cache.text_batch_size]
                    embeds, counts, truncated = text.encode([r.caption for r in batch])
                    for row, embed, count, cut in zip(batch, embeds, counts, truncated):
                        texts[row.id] = embed
                        totals["truncated"] += int(cut)
                        index_lines.append({
                            "id": row.id, "line": row.line, "path": str(row.path), "media_type": row.media_type,
                            "category": row.category, "weight": row.weight, "shard": shard,
                            "latent_shape": list(latents[row.id].shape), "caption_tokens": count,
                            "text_tokens": int(embed.shape[0]), "truncated": cut,
                        })
                latent_path = folder / f"latents-{shard:05d}.safetensors"
                text_path = folder / f"text-{shard:05d}.safetensors"
                save_safetensors(latents, latent_path)
                save_safetensors(texts, text_path)
                totals["bytes_written"] += latent_path.stat().st_size + text_path.stat().st_size
                shard += 1
            _append_lines(folder / "skipped.jsonl", skipped)
            _append_lines(folder / "index.jsonl", index_lines)
            totals["cached"] += len(index_lines)
            totals["skipped"] += len(skipped)
            log(f"cache {split}: {processed}/{total_pending} items, {totals['skipped']} skipped")
        events.emit("progress", stage="cache", phase=f"done:{split}", done=processed + totals["skipped"],
                    total=total_pending, items_per_second=processed / max(time.monotonic() - started, 1e-9))

    summary: dict[str, Any] = {"items_new": totals["cached"], "items_skipped_new": totals["skipped"],
                               "truncated_captions_new": totals["truncated"], "bytes_written": totals["bytes_written"]}
    for split in splits:
        indexed = read_jsonl(cache_dir / split / "index.jsonl")
        summary[split] = {
            "items": len(indexed),
            "skipped": len(read_jsonl(cache_dir / split / "skipped.jsonl")),
            "truncated_captions": sum(1 for r in indexed if r["truncated"]),
            "max_caption_tokens": max((r["caption_tokens"] for r in indexed), default=0),
        }
    summary["cache_bytes"] = sum(p.stat().st_size for p in cache_dir.rglob("*") if p.is_file())
    summary["text_length"] = config.training.text_length
    return summary
