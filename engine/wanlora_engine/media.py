"""Manifest rows and media decoding for the cache stage.

A prepared manifest (CSV with a header row, RFC 4180, UTF-8; or JSON Lines) has one row per clip or image:
    path        required; relative to the manifest's folder, or absolute
    caption     required; may be empty (an empty caption is the unconditional prompt)
    id          optional; defaults to the 1-based data row number
    media_type  optional; 'image' | 'video', else guessed from the file extension
    <category>  optional; the column named by data.category_column
    <weight>    optional; the column named by data.weight_column (a number >= 0; default 1)
A malformed row stops the stage with its line number: the prepare stage wrote the file, so a bad row is
a bug upstream, not something to skip.

Video frames come from ffmpeg (rawvideo rgb24 on a pipe), images from Pillow; both are resized to cover
the target size and centre-cropped (the prepare stage already did this; here it is a no-op then), and
scaled to [-1, 1] as the Wan VAE expects.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import DataError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".mxf"}


@dataclass(frozen=True)
class ManifestRow:
    line: int  # line number in the file (1-based; CSV counts the header as line 1)
    id: str
    path: Path
    media_type: str
    caption: str
    category: str | None
    weight: float


def _media_type(path: Path, declared: str | None, where: str) -> str:
    if declared:
        if declared not in ("image", "video"):
            raise DataError(f"{where}: media_type is '{declared}'", "use 'image' or 'video'")
        return declared
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    raise DataError(f"{where}: cannot tell whether {path.name} is an image or a video",
                    "add a media_type column ('image' or 'video')")


def read_manifest(path: Path, weight_column: str | None, category_column: str | None) -> list[ManifestRow]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest {path} does not exist", "run `wanlora prepare` first, or fix data.train_manifest")
    base = path.parent
    records: list[tuple[int, dict[str, str]]] = []
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: not valid JSON ({error.msg})", "fix or remove the line") from None
            if not isinstance(value, dict):
                raise DataError(f"{path}:{number}: not a JSON object", "write one object per line")
            records.append((number, {k: "" if v is None else str(v) for k, v in value.items()}))
    else:
        text = path.read_text(encoding="utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"manifest {path} is empty", "write a header row: path,caption,...") from None
        for column, key in ((weight_column, "data.weight_column"), (category_column, "data.category_column")):
            if column and column not in header:
                raise DataError(f"manifest {path} has no column '{column}' ({key})",
                                f"add the column to the manifest, or set {key} to \"\" (none)")
        for row in reader:
            line = reader.line_num
            if not row or all(not cell for cell in row):
                continue
            if len(row) != len(header):
                raise DataError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}",
                                "quote fields that contain commas, quotes or newlines (RFC 4180)")
            records.append((line, dict(zip(header, row))))
    rows: list[ManifestRow] = []
    seen: dict[str, int] = {}
    for index, (line, record) in enumerate(records, start=1):
        where = f"{path}:{line}"
        for column in ("path", "caption"):
            if column not in record:
                raise DataError(f"{path}: no '{column}' column", "the manifest needs 'path' and 'caption' columns")
        media = Path(record["path"])
        if not record["path"]:
            raise DataError(f"{where}: empty path", "every row needs the path of its clip or image")
        media = media if media.is_absolute() else base / media
        weight = 1.0
        if weight_column:
            raw = record.get(weight_column, "")
            if raw != "":
                try:
                    weight = float(raw)
                except ValueError:
                    raise DataError(f"{where}: {weight_column} is '{raw}', not a number",
                                    "write sampling weights as numbers >= 0") from None
                if not np.isfinite(weight) or weight < 0:
                    raise DataError(f"{where}: {weight_column} is {raw}", "sampling weights must be finite and >= 0")
        item_id = record.get("id") or str(index)
        if item_id in seen:
            raise DataError(f"{where}: id '{item_id}' repeats line {seen[item_id]}", "give every row its own id")
        seen[item_id] = line
        rows.append(ManifestRow(
            line=line, id=item_id, path=media, media_type=_media_type(media, record.get("media_type") or None, where),
            caption=record["caption"], category=(record.get(category_column) or None) if category_column else None,
            weight=weight,
        ))
    return rows


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 [F, H, W, 3] -> float32 [3, F, H, W] in [-1, 1]."""
    video = torch.from_numpy(frames).permute(3, 0, 1, 2).float()
    return video / 127.5 - 1.0


def decode_image(path: Path, width: int, height: int) -> torch.Tensor:
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        scale = max(width / image.width, height / image.height)
        size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
        left, top = (size[0] - width) // 2, (size[1] - height) // 2
        image = image.crop((left, top, left + width, top + height))
        return _to_tensor(np.array(image)[None])


def ffmpeg_binary() -> str:
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise DataError("ffmpeg is not installed (needed to decode video clips)",
                        "install it: apt-get install ffmpeg (or `make deps-media`)")
    return binary


def decode_video(path: Path, width: int, height: int, frames: int, fps: int) -> torch.Tensor:
    """The first `frames` frames at `fps`, or fewer (4n+1) when the clip is shorter; [3, F, H, W]."""
    vf = (f"fps={fps},scale={width}:{height}:force_original_aspect_ratio=increase:flags=bicubic,"
          f"crop={width}:{height}")
    command = [ffmpeg_binary(), "-v", "error", "-nostdin", "-i", str(path), "-vf", vf, "-frames:v", str(frames),
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    frame_bytes = width * height * 3
    count = len(result.stdout) // frame_bytes
    if result.returncode != 0 and count == 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = message[-1] if message else f"exit {result.returncode}"
        raise DataError(f"ffmpeg could not decode {path}: {reason}",
                        "re-run `wanlora prepare` for this clip or remove its row")
    if count == 0:
        raise DataError(f"{path} has no video frames", "re-run `wanlora prepare` for this clip or remove its row")
    usable = (count - 1) // 4 * 4 + 1
    data = np.frombuffer(bytearray(result.stdout[: usable * frame_bytes]), dtype=np.uint8)
    data = data.reshape(usable, height, width, 3)
    return _to_tensor(data)


def decode_media(row: ManifestRow, width: int, height: int, frames: int, fps: int) -> torch.Tensor:
    if not row.path.is_file():
        raise DataError(f"line {row.line}: {row.path} does not exist", "re-run `wanlora prepare` or fix the path")
    if row.media_type == "image":
        try:
            return decode_image(row.path, width, height)
        except (OSError, ValueError) as error:
            raise DataError(f"line {row.line}: cannot decode image {row.path}: {error}",
                            "re-run `wanlora prepare` for this image or remove its row") from None
    return decode_video(row.path, width, height, frames, fps)
