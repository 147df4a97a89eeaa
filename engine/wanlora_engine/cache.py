"""Stage `cache`: VAE latents and UMT5 embeddings of every clip, so training never runs the encoders.

Layout of data.cache_dir (cache format 2, documented in docs/engine-contract.md):
    cache.json                  format, settings the cache was built with (a mismatch is an error, not a mix)
    empty_prompt.safetensors    'embedding': bf16 [tokens, text_dim], the "" prompt (CFG dropout)
    <split>/shards/NNNNN.json   shard NNNNN is done: its rows' ids, index lines and skipped rows
    <split>/latents-NNNNN.safetensors   item id -> bf16 [16, 1 + (F-1)/4, H/8, W/8], normalised latents
    <split>/text-NNNNN.safetensors      item id -> bf16 [tokens, text_dim], trimmed to the caption's tokens
    <split>/index.jsonl         one line per cached item, in manifest order (written once all shards are done)
    <split>/skipped.jsonl       one line per row that could not be cached, with the reason (same)

Latents are the VAE posterior mean, normalised per channel as WanPipeline expects: (z - mean) / std with
the VAE config's latents_mean / latents_std (encoding.encode_latent). Embeddings are UMT5's last hidden
state for the caption (encoding.clean_caption: Wan2.2's cleaning, ftfy.fix_text, HTML entities
decoded, whitespace collapsed), cut at training.text_length tokens (EOS included) and stored at the caption's
real token count;
the trainer pads with zeros to the model's 512 tokens when it builds a batch, as Wan2.2 and WanPipeline do
when sampling (data.MODEL_TEXT_TOKENS).

Shards and processes. Shard k of a split is the manifest's rows [k*S, (k+1)*S) (S = cache.shard_items),
whatever the number of processes. Under torchrun (`wanlora cache --gpus N [--nodes M]`) rank r of W encodes
the shards k with k mod W = r; every shard is encoded the same way (the same rows, the same UMT5 batches) in
any layout, so the files do not depend on N or M. A shard becomes done when its tensor files were renamed
into place and then its record (shards/NNNNN.json) was: a killed rank loses only the shard it was writing,
and the same command again encodes only the shards without a record. When every rank is done, rank 0 writes
index.jsonl and skipped.jsonl from the records (atomically), and the cache is complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from . import distributed, faults
from .config import ResolvedConfig
from .devices import resolve_device
from .encoding import (
    CACHE_FORMAT,
    TEXT_CLEANING,
    TextEncoder,
    caption_token_counts,
    encode_latent,
    latent_shape,
    read_cache_format,
    read_jsonl,
)
from .errors import DataError, DiskSpaceError, EngineError
from .events import EventWriter, log
from .files import save_safetensors, write_text_atomically
from .gpu_memory import apply_gpu_memory_limit
from .loading import load_components
from .media import ManifestRow, decode_media, read_manifest

# How long a rank that finished its shards waits at the end for the others (gloo's barrier): a rank with a
# few more shards, or slower media, may need hours on an archive.
FINISH_WAIT = timedelta(days=2)


def estimate_item_bytes(media_type: str, caption_tokens: int, config: ResolvedConfig, text_dim: int) -> int:
    """One item's cache size: bf16 latents + the bf16 embedding of its caption's tokens (cut at
    training.text_length, as the cache stores it) + 1 KiB for the safetensors headers and the index line."""
    frames = 1 if media_type == "image" else config.training.frames
    c, f, h, w = latent_shape(frames, config.training.resolution.height, config.training.resolution.width)
    return 2 * c * f * h * w + 2 * min(caption_tokens, config.training.text_length) * text_dim + 1024


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


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
        "shard_items": config.cache.shard_items,
        "model_fingerprint": fingerprint,
        "text_cleaning": TEXT_CLEANING,
    }


def check_or_write_settings(cache_dir: Path, config: ResolvedConfig, fingerprint: str, write: bool = True) -> None:
    """Refuses a cache of another format or other settings; writes cache.json into a new one (`write`: rank 0)."""
    settings = cache_settings(config, fingerprint)
    path = cache_dir / "cache.json"
    if path.is_file():
        require_writable_format(cache_dir)
        existing = json.loads(path.read_text()).get("settings", {})
        for key, value in settings.items():
            if existing.get(key) != value:
                raise DataError(
                    f"cache {cache_dir} was built with {key}={existing.get(key)!r}, the config asks {value!r}",
                    "point data.cache_dir at a new folder, or delete the old cache to rebuild it",
                )
        return
    if not write:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps({"schema_version": CACHE_FORMAT, "settings": settings,
                                            "model_path": str(config.model.checkpoint)}, indent=2))


def require_writable_format(cache_dir: Path) -> None:
    """A cache this engine can add to: none yet, or one of format CACHE_FORMAT."""
    if not (cache_dir / "cache.json").is_file():
        return
    found = read_cache_format(cache_dir)
    if found != CACHE_FORMAT:
        raise DataError(
            f"cache {cache_dir} has cache format {found}; this engine adds to format {CACHE_FORMAT} only "
            "(format 1 was written by one process, with shards numbered in the order they were written)",
            f"training still reads a finished format-1 cache as it is; to build or extend a cache, point "
            f"data.cache_dir at a new folder or delete {cache_dir}",
        )


@dataclass(frozen=True)
class Shard:
    """Shard `number` of a split: the manifest's rows [number*S, (number+1)*S)."""

    split: str
    number: int
    rows: list[ManifestRow]

    def record_path(self, cache_dir: Path) -> Path:
        return cache_dir / self.split / "shards" / f"{self.number:05d}.json"


def split_shards(split: str, rows: list[ManifestRow], shard_items: int) -> list[Shard]:
    return [Shard(split, k, rows[start:start + shard_items])
            for k, start in enumerate(range(0, len(rows), shard_items))]


def rank_share(shards: list[Shard], layout: distributed.Layout) -> list[Shard]:
    """The shards rank r of W encodes: every W-th of all splits' shards, from the r-th (disjoint, deterministic)."""
    return shards[layout.rank::layout.world_size]


def read_shard_record(shard: Shard, cache_dir: Path) -> dict[str, Any] | None:
    """The shard's record when it is done, checked against the manifest's rows; None when it is not done."""
    path = shard.record_path(cache_dir)
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    ids = [row.id for row in shard.rows]
    if record.get("ids") != ids:
        error = DataError(
            f"cache shard {path} holds other rows than rows {shard.number * len(ids) + 1}... of the {shard.split} "
            "manifest now: the manifest changed after the cache was started",
            f"point data.cache_dir at a new folder, or delete {cache_dir} to rebuild the cache",
        )
        error.all_ranks = True  # every rank reads every record
        raise error
    return record


def encode_shard(shard: Shard, cache_dir: Path, config: ResolvedConfig, vae: Any, text: TextEncoder,
                 device: torch.device, rank: int = 0) -> dict[str, Any]:
    """Encodes one shard, renames its tensor files into place, then its record; returns the record."""
    folder = cache_dir / shard.split
    latents: dict[str, torch.Tensor] = {}
    skipped: list[dict[str, Any]] = []
    ok_rows: list[ManifestRow] = []
    short: list[dict[str, Any]] = []
    size = config.training.resolution
    for row in shard.rows:
        try:
            video = decode_media(row, size.width, size.height, config.training.frames, config.training.fps)
        except DataError as error:
            skipped.append({"id": row.id, "line": row.line, "path": str(row.path), "reason": error.problem})
            continue
        if row.media_type == "video" and video.shape[1] < config.training.frames:
            short.append({"id": row.id, "line": row.line, "path": str(row.path), "frames": int(video.shape[1])})
        latents[row.id] = encode_latent(vae, video, device)
        ok_rows.append(row)
    index_lines: list[dict[str, Any]] = []
    texts: dict[str, torch.Tensor] = {}
    for b in range(0, len(ok_rows), config.cache.text_batch_size):
        batch = ok_rows[b:b + config.cache.text_batch_size]
        embeds, counts, truncated = text.encode([r.caption for r in batch])
        for row, embed, count, cut in zip(batch, embeds, counts, truncated):
            texts[row.id] = embed
            index_lines.append({
                "id": row.id, "line": row.line, "path": str(row.path), "media_type": row.media_type,
                "category": row.category, "weight": row.weight, "shard": shard.number,
                "latent_shape": list(latents[row.id].shape), "caption_tokens": count,
                "text_tokens": int(embed.shape[0]), "truncated": cut,
            })
    written = 0
    if ok_rows:
        for kind, tensors in (("latents", latents), ("text", texts)):
            path = folder / f"{kind}-{shard.number:05d}.safetensors"
            save_safetensors(tensors, path)
            written += path.stat().st_size
            if kind == "latents":
                faults.maybe_kill(rank, shard.number, "cache_shard")
    record = {"shard": shard.number, "ids": [row.id for row in shard.rows], "items": index_lines,
              "skipped": skipped, "short": short, "bytes": written}
    write_text_atomically(shard.record_path(cache_dir), json.dumps(record, ensure_ascii=False))
    return record


class _Progress:
    """Rank 0's view of all ranks' progress: the records on disk, read at most every 2 s."""

    def __init__(self, pending: list[Shard], cache_dir: Path, events: EventWriter, started: float) -> None:
        self.pending = pending
        self.cache_dir = cache_dir
        self.events = events
        self.started = started
        self.last = 0.0
        self.total = sum(len(s.rows) for s in pending)

    def update(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 2.0:
            return
        self.last = now
        done = sum(len(s.rows) for s in self.pending if s.record_path(self.cache_dir).is_file())
        self.events.emit("progress", stage="cache", phase="encode", done=done, total=self.total,
                         items_per_second=done / max(now - self.started, 1e-9))


def write_indexes(cache_dir: Path, shards: list[Shard]) -> None:
    """index.jsonl and skipped.jsonl of each split from its shards' records, in manifest order (rank 0)."""
    for split in sorted({s.split for s in shards}):
        index: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        for shard in (s for s in shards if s.split == split):
            record = read_shard_record(shard, cache_dir)
            if record is None:
                raise DataError(f"cache shard {shard.record_path(cache_dir)} is missing after every rank finished",
                                "run the same `wanlora cache` command again: it encodes the missing shards")
            index += record["items"]
            skipped += record["skipped"]
        write_text_atomically(cache_dir / split / "index.jsonl", _jsonl(index))
        write_text_atomically(cache_dir / split / "skipped.jsonl", _jsonl(skipped))


def run_cache(config: ResolvedConfig, events: EventWriter,
              layout: distributed.Layout | None = None) -> dict[str, Any]:
    """Cache latents and embeddings of the train (and val) manifests; returns the run_finished summary.

    `layout`: this process's place under torchrun (one process without it)."""
    layout = layout or distributed.Layout()
    started = time.monotonic()
    cache_dir = config.data.cache_dir
    splits: dict[str, list[ManifestRow]] = {
        "train": read_manifest(config.data.train_manifest, config.data.weight_column, config.data.category_column)
    }
    if config.data.val_manifest is not None:
        splits["val"] = read_manifest(config.data.val_manifest, config.data.weight_column, config.data.category_column)
    shards = [s for split, rows in splits.items() for s in split_shards(split, rows, config.cache.shard_items)]

    try:
        require_writable_format(cache_dir)
        for split in splits:
            (cache_dir / split / "shards").mkdir(parents=True, exist_ok=True)
        done_at_start = {(s.split, s.number) for s in shards if read_shard_record(s, cache_dir) is not None}
        pending = [s for s in shards if (s.split, s.number) not in done_at_start]
        mine = [s for s in rank_share(shards, layout) if (s.split, s.number) not in done_at_start]
        requested = resolve_device(config.cache.device, "cache.device", error=DataError)
    except EngineError as error:
        error.all_ranks = True  # the same files and settings on every rank: rank 0 reports
        raise
    groups = distributed.start(layout, requested.type, backend="gloo", timeout=FINISH_WAIT)
    device = groups.device if requested.type == "cuda" else requested
    try:
        apply_gpu_memory_limit(config, device, events)
        te_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        components = load_components(config.model.checkpoint, config.model.layout, torch.float32,
                                     {"vae", "text_encoder", "tokenizer"}, text_encoder_dtype=te_dtype)
        check_or_write_settings(cache_dir, config, model_fingerprint(components.vae, components.text_encoder),
                                write=layout.is_main)
        text_dim = int(components.text_encoder.config.d_model)
        pending_rows = [r for s in pending for r in s.rows]
        tokens = caption_token_counts(components.tokenizer, [r.caption for r in pending_rows])
        estimated = sum(estimate_item_bytes(r.media_type, n, config, text_dim) for r, n in zip(pending_rows, tokens))
        free = shutil.disk_usage(cache_dir).free
        events.emit("cache_plan", splits={s: len(r) for s, r in splits.items()},
                    items=sum(len(r) for r in splits.values()),
                    items_cached=sum(len(s.rows) for s in shards if (s.split, s.number) in done_at_start),
                    estimated_bytes=estimated, free_bytes=free, cache_dir=str(cache_dir),
                    shards=len(shards), shards_pending=len(pending), world_size=layout.world_size)
        if estimated + config.free_disk_margin_bytes > free:
            raise DiskSpaceError(
                f"the cache needs up to {estimated / 2**30:.1f} GiB "
                f"(+{config.cache.free_disk_margin_gib:.1f} GiB "
                f"margin) but {cache_dir} has {free / 2**30:.1f} GiB free",
                "free disk space, point data.cache_dir at a larger disk, or lower training.frames / "
                "training.resolution",
            )
    except EngineError as error:
        error.all_ranks = True
        raise

    vae = components.vae.to(device)
    if config.cache.vae_tiling:
        vae.enable_tiling()
    text = TextEncoder(components.tokenizer, components.text_encoder.to(device), device, config.training.text_length)
    empty_path = cache_dir / "empty_prompt.safetensors"
    if layout.is_main and not empty_path.is_file():
        embeds, _, _ = text.encode([""])
        save_safetensors({"embedding": embeds[0]}, empty_path)

    progress = _Progress(pending, cache_dir, events, started)
    for shard in mine:
        record = encode_shard(shard, cache_dir, config, vae, text, device, layout.rank)
        log(f"cache {shard.split} shard {shard.number}: {len(record['items'])} items, "
            f"{len(record['skipped'])} skipped (rank {layout.rank})")
        if layout.is_main:
            progress.update()
    distributed.barrier()
    progress.update(force=True)

    summary: dict[str, Any] = {"items_new": 0, "items_skipped_new": 0, "truncated_captions_new": 0,
                               "bytes_written": 0, "world_size": layout.world_size}
    if layout.is_main:
        for shard in pending:
            record = read_shard_record(shard, cache_dir) or {}
            # Every new skip and short clip is reported, whichever rank met it.
            for s in record.get("skipped", []):
                events.warning("item_skipped", f"{shard.split} line {s['line']} ({Path(s['path']).name}) not "
                               f"cached: {s['reason']}", split=shard.split, id=s["id"], line=s["line"],
                               path=s["path"])
            for s in record.get("short", []):
                events.warning("clip_short", f"{shard.split} line {s['line']} ({Path(s['path']).name}) has "
                               f"{s['frames']} of {config.training.frames} frames; cached with {s['frames']}",
                               split=shard.split, id=s["id"], line=s["line"], frames=s["frames"])
            summary["items_new"] += len(record.get("items", []))
            summary["items_skipped_new"] += len(record.get("skipped", []))
            summary["truncated_captions_new"] += sum(1 for r in record.get("items", []) if r["truncated"])
            summary["bytes_written"] += int(record.get("bytes", 0))
        write_indexes(cache_dir, shards)
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
        log(f"cache: {summary['items_new']} items new, {summary['items_skipped_new']} skipped")
    return summary
