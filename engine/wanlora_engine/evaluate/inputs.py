"""What is evaluated: the generated videos (MP4 + JSON sidecar, as `wanlora sample` writes them) and the
reference clips (rows of the prepared val manifest), and how their frames are decoded.

A generated video is `<stem>.mp4` with `<stem>.json` beside it holding at least `prompt` (the text it was
generated from) and optionally `category`, `id`, `seed` and `reference_id` (the val row it was prompted from).
An MP4 without a sidecar, or a sidecar that is not JSON or has no prompt, stops the stage naming the file: the
numbers would otherwise silently describe a different set of videos.
"""

from __future__ import annotations

import json
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..media import ffmpeg_binary, read_manifest

UNCATEGORISED = "(none)"


@dataclass(frozen=True)
class EvalVideo:
    id: str
    path: Path
    text: str  # prompt (generated) or caption (reference)
    category: str
    reference_id: str | None = None  # generated: the reference row it pairs with, when known
    line: int | None = None  # reference: manifest line


def normalise_text(text: str) -> str:
    """NFC, whitespace collapsed: how a prompt is matched to the caption it was taken from."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def read_generated(folder: Path) -> list[EvalVideo]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"generated-videos folder {folder} does not exist",
                        "pass the --out folder of `wanlora sample` as --generated")
    videos = []
    for mp4 in sorted(folder.glob("*.mp4")):
        sidecar = mp4.with_suffix(".json")
        if not sidecar.is_file():
            raise DataError(f"{mp4} has no sidecar {sidecar.name}",
                            "evaluate the folder `wanlora sample` wrote (it writes a JSON sidecar per video), "
                            "or remove videos that did not come from it")
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DataError(f"{sidecar} is not valid JSON ({error})",
                            "sample the video again or fix the file") from None
        prompt = meta.get("prompt") if isinstance(meta, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"{sidecar} has no 'prompt'", "the sidecar must record the prompt the video was made from")
        category = meta.get("category")
        videos.append(EvalVideo(
            id=str(meta.get("id") or mp4.stem), path=mp4, text=prompt,
            category=category if isinstance(category, str) and category else UNCATEGORISED,
            reference_id=str(meta["reference_id"]) if meta.get("reference_id") is not None else None,
        ))
    if not videos:
        raise DataError(f"{folder} holds no .mp4 videos", "run `wanlora sample` into it first")
    return videos


@dataclass(frozen=True)
class ReferenceSet:
    videos: list[EvalVideo]  # every video row of the manifest
    images_ignored: int


def read_reference(manifest: Path, category_column: str | None) -> ReferenceSet:
    rows = read_manifest(manifest, weight_column=None, category_column=category_column)
    videos = [EvalVideo(id=row.id, path=row.path, text=row.caption, category=row.category or UNCATEGORISED,
                        line=row.line)
              for row in rows if row.media_type == "video"]
    if not videos:
        raise DataError(f"{manifest} has no video rows",
                        "pass the prepared val manifest (with video clips) as --reference")
    return ReferenceSet(videos=videos, images_ignored=len(rows) - len(videos))


def select_reference(reference: list[EvalVideo], generated: list[EvalVideo], per_category: int,
                     seed: int) -> tuple[list[EvalVideo], dict[str, str]]:
    """Reference videos of the generated videos' categories, and the pairing generated id → reference id.

    A generated video pairs with a reference row named by its sidecar's `reference_id`, else with a row of the
    same category whose caption equals its prompt (NFC, whitespace collapsed). Paired rows are always kept;
    the rest of each category is a seeded random draw up to `per_category` rows in all (0: every row).
    """
    categories = sorted({video.category for video in generated})
    by_id = {video.id: video for video in reference}
    by_text: dict[tuple[str, str], EvalVideo] = {}
    for video in reference:
        by_text.setdefault((video.category, normalise_text(video.text)), video)
    pairs: dict[str, str] = {}
    for video in generated:
        match = by_id.get(video.reference_id) if video.reference_id else None
        match = match or by_text.get((video.category, normalise_text(video.text)))
        if match is not None:
            pairs[video.id] = match.id
    paired_ids = set(pairs.values())
    rng = np.random.default_rng(seed)
    chosen: list[EvalVideo] = []
    for category in categories:
        rows = [video for video in reference if video.category == category]
        keep = [video for video in rows if video.id in paired_ids]
        rest = [video for video in rows if video.id not in paired_ids]
        room = len(rest) if per_category == 0 else max(per_category - len(keep), 0)
        if room < len(rest):
            picks = sorted(rng.choice(len(rest), size=room, replace=False).tolist())
            rest = [rest[i] for i in picks]
        chosen.extend(sorted(keep + rest, key=lambda v: (v.line or 0, v.id)))
    return chosen, pairs


def decode_frames(path: Path, width: int, height: int, fps: int, max_frames: int | None = None) -> np.ndarray:
    """uint8 [F, height, width, 3]: the clip at `fps`, scaled to cover width×height and centre-cropped (the
    prepare stage's geometry, so prepared clips and generated videos at that size pass unchanged)."""
    if not Path(path).is_file():
        raise DataError(f"{path} does not exist", "fix the manifest row or the generated folder")
    vf = (f"fps={fps},scale={width}:{height}:force_original_aspect_ratio=increase:flags=bicubic,"
          f"crop={width}:{height}")
    command = [ffmpeg_binary(), "-v", "error", "-nostdin", "-i", str(path), "-vf", vf]
    if max_frames is not None:
        command += ["-frames:v", str(max_frames)]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    frame_bytes = width * height * 3
    count = len(result.stdout) // frame_bytes
    if count == 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DataError(f"ffmpeg could not decode {path}: {message[-1] if message else 'no frames'}",
                        "re-encode the file (ffmpeg -i IN -c:v libx264 OUT.mp4) or remove it")
    pixels = np.frombuffer(bytearray(result.stdout[: count * frame_bytes]), dtype=np.uint8)
    return pixels.reshape(count, height, width, 3)


def sample_indices(frame_count: int, wanted: int) -> list[int]:
    """`wanted` frame indices evenly spread from the first to the last frame (all frames when fewer)."""
    if frame_count <= wanted:
        return list(range(frame_count))
    if wanted == 1:
        return [frame_count // 2]
    return sorted({round(i * (frame_count - 1) / (wanted - 1)) for i in range(wanted)})
