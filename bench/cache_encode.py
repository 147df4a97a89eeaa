"""The cache stage's encoders on one GPU (issue 19): seconds per item, and a 200-item run of the stage itself.

1. Seconds per item as `wanlora cache` spends them, through the engine's own functions: `encoding.encode_latent`
   with the Wan2.1 VAE in float32 and tiling on (as the cache stage loads it by default) on a 1280x720 clip of
   81 frames, of 49 frames and on an image; `encoding.TextEncoder.encode` with UMT5-XXL in bf16 on captions padded
   to 512 tokens, at batch 1 and at cache.text_batch_size (8). Random weights of the real shapes (the time does not
   depend on the values); one warm-up, then the mean of the timed repeats.
2. `cache.run_cache` over 200 synthetic items in the archive's mix (80,106 videos to 90,074 images: 94 + 106),
   with the encoders above handed to it and each item's frames generated on the GPU instead of decoded (ffmpeg
   may be missing on the GPU machine), compared with the planner's model: videos x (VAE + UMT5) + images x
   (VAE + UMT5), from the seconds of part 1 (Sources/Planner/CacheModel.swift). Everything else the stage does
   (shards, safetensors files, fsync, records, indexes) is in the measured time. When the 81-frame run would
   not finish before --deadline, it runs at 49 frames and says so.

    python3 bench/cache_encode.py --deadline 300 --json cache_encode.json
    python3 bench/cache_encode.py --tiny        # a tiny model on the CPU: checks the script, measures nothing
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))

UMT5_XXL = dict(vocab_size=256_384, d_model=4096, d_kv=64, d_ff=10_240, num_layers=24, num_heads=64,
                relative_attention_num_buckets=32, relative_attention_max_distance=128,
                feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6)
TINY_UMT5 = dict(UMT5_XXL, vocab_size=512, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
WAN21_VAE: dict[str, Any] = {}  # AutoencoderKLWan's defaults are the Wan2.1 VAE (base 96, 16 latent channels)
TINY_VAE = dict(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, attn_scales=[],
                temperal_downsample=[False, True, True])
ARCHIVE_VIDEOS, ARCHIVE_IMAGES = 80_106, 90_074


class SyntheticTokenizer:
    """Token ids without a vocabulary, for timing: every caption is `tokens` ids, the last one EOS (1)."""

    def __init__(self, tokens: int, vocab: int) -> None:
        self.tokens = tokens
        self.vocab = vocab

    def __len__(self) -> int:
        return self.vocab

    def _ids(self, text: str) -> list[int]:
        if not text:
            return [1]
        generator = torch.Generator().manual_seed(sum(text.encode()) % (2**31))
        body = torch.randint(2, self.vocab, (self.tokens - 1,), generator=generator).tolist()
        return body + [1]

    def __call__(self, texts: list[str], padding: str | None = None, max_length: int | None = None,
                 truncation: bool = False, add_special_tokens: bool = True, return_attention_mask: bool = False,
                 return_tensors: str | None = None) -> Any:
        ids = [self._ids(t) for t in texts]
        if return_tensors != "pt":
            return SimpleNamespace(input_ids=ids)
        length = max_length or max(len(i) for i in ids)
        rows = [i[:length] for i in ids]
        input_ids = torch.zeros(len(rows), length, dtype=torch.long)
        mask = torch.zeros(len(rows), length, dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, :len(row)] = torch.tensor(row)
            mask[r, :len(row)] = 1
        return SimpleNamespace(input_ids=input_ids, attention_mask=mask)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Any, repeats: int, device: torch.device) -> float:
    """Mean seconds of `repeats` calls after one warm-up call."""
    fn()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - started) / repeats


def build_encoders(tiny: bool, device: torch.device) -> tuple[Any, Any, Any]:
    from diffusers import AutoencoderKLWan
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(**(TINY_VAE if tiny else WAN21_VAE)).to(device, torch.float32).eval()
    vae.requires_grad_(False)
    t5_dtype = torch.float32 if tiny else torch.bfloat16
    config = UMT5Config(**(TINY_UMT5 if tiny else UMT5_XXL))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(t5_dtype)  # built on the GPU in its dtype: 11 GB, not 23 GB of float32 first
    try:
        with torch.device(device):
            text_encoder = UMT5EncoderModel(config).to(t5_dtype).eval()
    finally:
        torch.set_default_dtype(previous)
    text_encoder.requires_grad_(False)
    return vae, text_encoder, SyntheticTokenizer(512 if not tiny else 32, config.vocab_size)


def cache_run(vae: Any, text_encoder: Any, tokenizer: Any, device: torch.device,
              width: int, height: int, frames: int, text_length: int, videos: int, images: int) -> dict[str, Any]:
    """The engine's cache stage over `videos` + `images` synthetic items; seconds and what it wrote."""
    from wanlora_engine import cache as cache_stage
    from wanlora_engine.config import load_config
    from wanlora_engine.events import EventWriter

    fixture = json.loads((ROOT / "engine" / "tests" / "fixtures" / "config.resolved.demo.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="cache-encode-"))
    fixture["training"].update({"resolution": f"{width}x{height}", "frames": frames, "text_length": text_length})
    fixture["cache"].update({"device": device.type, "shard_items": 256, "text_batch_size": 8, "vae_tiling": True,
                             "free_disk_margin_gib": 0})
    fixture["data"].update({"cache_dir": "cache", "train_manifest": "train.csv", "val_manifest": ""})
    fixture["hardware"]["gpu_memory_limit"] = 0
    (work / "config.resolved.json").write_text(json.dumps(fixture))
    # Videos spread evenly among the images, as in a shuffled manifest.
    total = videos + images
    order = ["video" if (i + 1) * videos // total > i * videos // total else "image" for i in range(total)]
    lines = ["path,media_type,caption,category,weight"]
    for i, kind in enumerate(order):
        lines.append(f"media/{i:04d}.{'mp4' if kind == 'video' else 'png'},{kind},caption {i},c,1")
    (work / "train.csv").write_text("\n".join(lines) + "\n")
    config = load_config(work / "config.resolved.json")

    def components(*_: Any, **__: Any) -> Any:
        return SimpleNamespace(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)

    def synthetic_media(row: Any, w: int, h: int, f: int, fps: int) -> torch.Tensor:
        generator = torch.Generator(device=device).manual_seed(int(row.id))
        count = 1 if row.media_type == "image" else f
        return torch.rand(3, count, h, w, generator=generator, device=device) * 2 - 1

    cache_stage.load_components = components
    cache_stage.decode_media = synthetic_media
    synchronize(device)
    started = time.perf_counter()
    summary = cache_stage.run_cache(config, EventWriter(None, echo=False))
    synchronize(device)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "items": summary["train"]["items"], "videos": videos, "images": images,
            "frames": frames, "cache_bytes": summary["cache_bytes"], "work": str(work)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds for the whole script")
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--tiny", action="store_true", help="tiny model on the CPU: checks the script")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    begun = time.perf_counter()

    from wanlora_engine.encoding import TextEncoder, encode_latent

    if args.tiny:
        device, width, height, long_frames, short_frames, tokens = torch.device("cpu"), 64, 48, 9, 5, 32
    else:
        if not torch.cuda.is_available():
            print("no CUDA GPU: run with --tiny to check the script on a CPU", file=sys.stderr)
            return 2
        device, width, height, long_frames, short_frames, tokens = torch.device("cuda"), 1280, 720, 81, 49, 512
    import diffusers
    import transformers

    built = time.perf_counter()
    vae, text_encoder, tokenizer = build_encoders(args.tiny, device)
    vae.enable_tiling()  # the cache stage's default (cache.vae_tiling = true)
    build_seconds = time.perf_counter() - built
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "torch": torch.__version__,
        "diffusers": diffusers.__version__, "transformers": transformers.__version__,
        "width": width, "height": height, "text_tokens": tokens, "build_seconds": build_seconds,
    }
    def measure_vae(frames: int, w: int, h: int, repeats: int) -> tuple[float, float | None]:
        generator = torch.Generator(device=device).manual_seed(frames)
        video = torch.rand(3, frames, h, w, generator=generator, device=device) * 2 - 1
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = timed(lambda: encode_latent(vae, video, device), repeats, device)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        print(f"VAE {frames} frames {w}x{h}: {seconds:.3f} s", file=sys.stderr, flush=True)
        return seconds, peak

    vae_seconds: dict[str, float] = {}
    peaks: dict[str, float | None] = {}
    for name, frames, repeats in (("vae_81", long_frames, 1), ("vae_49", short_frames, 1), ("vae_image", 1, 3)):
        vae_seconds[name], peaks[name] = measure_vae(frames, width, height, repeats)
    encoder = TextEncoder(tokenizer, text_encoder, device, tokens)
    text_seconds: dict[str, float] = {}
    for batch in (1, 8):
        captions = [f"caption {i}" for i in range(batch)]
        text_seconds[f"umt5_batch_{batch}"] = timed(lambda c=captions: encoder.encode(c), 3, device) / batch
        print(f"umt5 batch {batch}: {text_seconds[f'umt5_batch_{batch}']:.4f} s a caption", file=sys.stderr,
              flush=True)
    results.update(vae_seconds)
    results.update(text_seconds)
    results["peak_gib"] = peaks

    videos = round(args.items * ARCHIVE_VIDEOS / (ARCHIVE_VIDEOS + ARCHIVE_IMAGES))
    images = args.items - videos
    text = text_seconds["umt5_batch_8"]

    def predicted(video_seconds: float, image_seconds: float) -> float:
        return videos * (video_seconds + text) + images * (image_seconds + text)

    # The largest shape whose run fits the time left (shapes after the first are measured here first).
    small_w, small_h = (832, 480) if not args.tiny else (32, 24)
    shapes = [(long_frames, width, height), (short_frames, width, height), (short_frames, small_w, small_h),
              (17 if not args.tiny else 5, small_w, small_h)]
    measured_shapes = {(long_frames, width, height): (vae_seconds["vae_81"], vae_seconds["vae_image"]),
                       (short_frames, width, height): (vae_seconds["vae_49"], vae_seconds["vae_image"])}
    for frames, w, h in shapes:
        if (frames, w, h) not in measured_shapes:
            measured_shapes[(frames, w, h)] = (measure_vae(frames, w, h, 1)[0], measure_vae(1, w, h, 3)[0])
        video_seconds, image_seconds = measured_shapes[(frames, w, h)]
        left = args.deadline - (time.perf_counter() - begun)
        if predicted(video_seconds, image_seconds) * 1.2 < left:
            break
    results["shapes_measured"] = {f"{f}x{w}x{h}": list(v) for (f, w, h), v in measured_shapes.items()}
    run = cache_run(vae, text_encoder, tokenizer, device, w, h, frames, tokens, videos, images)
    run.update({"width": w, "height": h})
    run["predicted_seconds"] = predicted(video_seconds, image_seconds)
    run["measured_over_predicted"] = run["seconds"] / run["predicted_seconds"]
    results["cache_run"] = run
    results["total_seconds"] = time.perf_counter() - begun

    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print("\n| shape | s/item |\n|---|---|", file=sys.stderr)
    for key in ("vae_81", "vae_49", "vae_image", "umt5_batch_1", "umt5_batch_8"):
        print(f"| {key} | {results[key]:.4f} |", file=sys.stderr)
    print(f"| cache run {videos} videos ({frames} f, {w}x{h}) + {images} images | {run['seconds']:.1f} s measured, "
          f"{run['predicted_seconds']:.1f} s predicted, ratio {run['measured_over_predicted']:.3f} |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
