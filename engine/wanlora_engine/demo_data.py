"""A small dataset of real media files (PNG images, H.264 clips via ffmpeg) with Korean captions.

Used by the tests and by `make -C engine demo`; the Swift `wanlora demo-data` + `prepare` stages make
the full-size demo. Deterministic for a given start index.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import numpy as np

CAPTIONS = [
    "한 남자가 거리를 걷고 있다.", "여러 사람들이 축제에 참여하고 있는 모습이다.",
    "전통 한옥 마을의 풍경을 담은 영상 자료로, 지붕과 담장이 보인다.", "강가에 벚꽃이 피어 있다.",
    "무형문화유산 공연에서 무용수들이 춤을 추고 있다.", "유형문화유산인 석탑이 절 마당에 서 있다.",
    "사건 현장에 소방차와 경찰이 출동해 있다.", "밤하늘 아래 등불 축제가 열리고 있다.",
]
CATEGORIES = ["생활/문화", "축제", "자연/풍경", "무형문화유산"]


def write_image(path: Path, seed: int, width: int = 64, height: int = 48) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(1, 1, 3))
    gradient = np.linspace(0, 1, width)[None, :, None] * rng.integers(0, 255, size=(1, 1, 3))
    pixels = np.clip(base * 0.5 + gradient * 0.5 + rng.normal(0, 8, (height, width, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


def write_video(path: Path, seed: int, frames: int, width: int = 64, height: int = 48) -> None:
    pattern = ["testsrc", "testsrc2", "smptebars", "rgbtestsrc"][seed % 4]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", f"{pattern}=size={width}x{height}:rate=16",
         "-frames:v", str(frames), "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path)],
        check=True,
    )


def write_dataset(folder: Path, images: int, videos: int, video_frames: int = 9, weights: list[float] | None = None,
                  name: str = "train.csv", start: int = 0) -> Path:
    """A prepared manifest with real PNG images and H.264 clips (needs ffmpeg for videos)."""
    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(images + videos):
        n = start + i
        if i < images:
            path = media / f"img{n:04d}.png"
            write_image(path, seed=n)
            kind = "image"
        else:
            path = media / f"clip{n:04d}.mp4"
            write_video(path, seed=n, frames=video_frames)
            kind = "video"
        rows.append({"id": f"item{n:04d}", "path": f"media/{path.name}", "media_type": kind,
                     "caption": CAPTIONS[n % len(CAPTIONS)], "category": CATEGORIES[n % len(CATEGORIES)],
                     "weight": 1.0 if weights is None else weights[i]})
    manifest = folder / name
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest
