"""Seconds per video of `wanlora evaluate`'s feature extraction, network by network, at real shapes.

    engine/.venv/bin/python bench/evaluate_throughput.py --device cuda --frames 81 --width 1280 --height 720 \
        --videos 8 --json bench-evaluate.json
    engine/.venv/bin/python bench/evaluate_throughput.py --tiny      # CPU smoke run, timings mean nothing

Random weights of the real networks at their real sizes: the FVD I3D (16 frames at 224×224), torchvision's
Inception-v3 (299×299), LPIPS AlexNet (shortest side 256), CLIP ViT-B/32 (224×224; transformers' default
CLIPConfig is openai/clip-vit-base-patch32's shape) on every frame for temporal consistency, and the
multilingual DistilBERT text encoder (768 wide, 6 layers, 119,547-token vocabulary). The videos are random
uint8 frames already in memory: ffmpeg decoding is measured separately (`decode_seconds`, one 81-frame
720p H.264 clip written by ffmpeg's testsrc2), since it runs on the CPU beside the GPU work.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from wanlora_engine.evaluate import i3d as i3d_module  # noqa: E402
from wanlora_engine.evaluate import inception as inception_module  # noqa: E402
from wanlora_engine.evaluate.i3d import InceptionI3D  # noqa: E402
from wanlora_engine.evaluate.inception import inception_v3  # noqa: E402
from wanlora_engine.evaluate.inputs import decode_frames, sample_indices  # noqa: E402
from wanlora_engine.evaluate.lpips import LPIPS  # noqa: E402


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ClipImage(torch.nn.Module):
    def __init__(self, tiny: bool) -> None:
        super().__init__()
        from transformers import CLIPConfig, CLIPModel

        config = CLIPConfig() if not tiny else CLIPConfig(
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2))
        model = CLIPModel(config)
        self.vision_model, self.visual_projection = model.vision_model, model.visual_projection
        from wanlora_engine.evaluate.clip import ImagePreprocessing

        self.preprocess = ImagePreprocessing(size=224, crop=224)

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.visual_projection(self.vision_model(pixel_values=self.preprocess(frames)).pooler_output)


def timed(device: torch.device, fn) -> float:
    synchronise(device)
    start = time.perf_counter()
    fn()
    synchronise(device)
    return time.perf_counter() - start


@torch.no_grad()
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--videos", type=int, default=8, help="timed videos (after one warm-up video)")
    parser.add_argument("--fvd-frames", type=int, default=16)
    parser.add_argument("--frames-per-video", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: 9 frames of 64×48, small CLIP")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.tiny:
        args.device, args.frames, args.width, args.height, args.videos, args.fvd_frames = "cpu", 9, 64, 48, 1, 9
        args.frames_per_video = 2
    device = torch.device(args.device)
    torch.manual_seed(0)
    nets = {
        "i3d": InceptionI3D().eval().to(device),
        "inception": inception_v3().eval().to(device),
        "lpips": LPIPS("alex").eval().to(device),
        "clip_image": ClipImage(args.tiny).eval().to(device),
    }
    rng = np.random.default_rng(0)
    videos = [torch.from_numpy(rng.integers(0, 256, (args.frames, args.height, args.width, 3), dtype=np.uint8))
              for _ in range(args.videos + 1)]
    per_network: dict[str, list[float]] = {name: [] for name in nets}
    per_video: list[float] = []
    for index, video in enumerate(videos):
        picks = sample_indices(args.frames, args.frames_per_video)
        times = {
            "i3d": timed(device, lambda video=video: nets["i3d"](
                i3d_module.preprocess_clip(video[: args.fvd_frames].to(device))[None])),
            "inception": timed(device, lambda video=video, picks=picks: [nets["inception"](
                inception_module.preprocess_frames(video[picks][s:s + args.batch_size].to(device)))
                for s in range(0, len(picks), args.batch_size)]),
            "clip_image": timed(device, lambda video=video: [nets["clip_image"](video[s:s + args.batch_size].to(device))
                                                 for s in range(0, args.frames, args.batch_size)]),
        }
        small = torch.nn.functional.interpolate(video[picks].to(device).permute(0, 3, 1, 2).float(),
                                                scale_factor=256 / min(args.height, args.width), mode="bilinear",
                                                antialias=True) / 127.5 - 1
        times["lpips"] = timed(device, lambda small=small: nets["lpips"](small, small.flip(0)))
        if index == 0:
            continue  # warm-up: kernel selection, allocator
        for name, seconds in times.items():
            per_network[name].append(seconds)
        per_video.append(sum(times.values()))

    decode_seconds = None
    if shutil.which("ffmpeg"):
        with tempfile.TemporaryDirectory() as folder:
            clip = Path(folder) / "clip.mp4"
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                            f"testsrc2=size={args.width}x{args.height}:rate=16", "-frames:v", str(args.frames),
                            "-pix_fmt", "yuv420p", "-c:v", "libx264", str(clip)], check=True)
            start = time.perf_counter()
            decode_frames(clip, args.width, args.height, 16, max_frames=args.frames)
            decode_seconds = time.perf_counter() - start

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    result = {
        "device": device_name, "torch": torch.__version__, "frames": args.frames, "width": args.width,
        "height": args.height, "videos": args.videos, "fvd_frames": args.fvd_frames,
        "frames_per_video": args.frames_per_video,
        "seconds_per_video": statistics.median(per_video),
        "seconds_per_video_by_network": {name: statistics.median(values) for name, values in per_network.items()},
        "decode_seconds": decode_seconds,
        "peak_gpu_memory_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
