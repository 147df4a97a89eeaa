"""Decoded frames to files: an H.264 MP4 through ffmpeg, a JPEG poster, a JSON sidecar; each written under a
temporary name and renamed, so a killed run never leaves a half file under the final name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import EngineError


class VideoWriteError(EngineError):
    """ffmpeg is missing or failed to encode."""

    code = "ffmpeg_failed"


def frames_to_uint8(video: torch.Tensor) -> np.ndarray:
    """[F, H, W, 3] floats in [0, 1] -> uint8 (rounded, as diffusers' PIL conversion does)."""
    return (video.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def write_mp4(frames: np.ndarray, path: Path, fps: int, crf: int = 18, ffmpeg: str | None = None) -> int:
    """Encode uint8 RGB frames [F, H, W, 3] as H.264 (yuv420p, +faststart); returns the file's bytes."""
    binary = ffmpeg or shutil.which("ffmpeg")
    if binary is None:
        raise VideoWriteError("ffmpeg is not on PATH, so the videos cannot be written",
                              "install it (Debian: apt-get install ffmpeg; `make deps-media` does it)")
    count, height, width, channels = frames.shape
    if channels != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {frames.shape}")
    tmp = path.with_name(path.name + ".tmp.mp4")
    command = [binary, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "medium",
               "-crf", str(crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(tmp)]
    try:
        result = subprocess.run(command, input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
    except OSError as error:
        raise VideoWriteError(f"could not start ffmpeg ({binary}): {error}", "check the ffmpeg installation") from None
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise VideoWriteError(f"ffmpeg could not encode {path.name} ({width}x{height}, {count} frames): "
                              + " / ".join(message),
                              "check that ffmpeg has libx264 (ffmpeg -encoders | grep 264) and the disk is not full")
    os.replace(tmp, path)
    return path.stat().st_size


def write_poster(frame: np.ndarray, path: Path) -> None:
    """One frame [H, W, 3] uint8 as a JPEG (the gallery's preview image)."""
    from PIL import Image

    tmp = path.with_name(path.name + ".tmp.jpg")
    Image.fromarray(frame).save(tmp, format="JPEG", quality=90)
    os.replace(tmp, path)


def write_json(data: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
