"""The `evaluate` stage: features of every generated and reference video, then the metrics per category.

    python -m wanlora_engine evaluate --config OUT/evaluate.json

Order of work: read the inputs and load every network first (a missing weight file fails in seconds, not
after an hour of decoding), then one pass over the videos, each decoded once and fed to every network that
needs it, then the metrics from the collected features. Per-video features are kept in OUT/features/ under a
digest of the video file and every setting that changes them, so a stopped run resumes where it stopped and a
re-run with another metric list recomputes only what is missing.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from ..events import EventWriter, log
from . import i3d as i3d_module
from . import inception as inception_module
from .config import EvaluateConfig
from .inputs import EvalVideo, decode_frames, read_generated, read_reference, sample_indices, select_reference
from .metrics import clip_score, frechet_distance_of_features, inception_score, softmax, temporal_consistency
from .networks import Networks, load_networks

METRICS_SCHEMA_VERSION = 1
FEATURE_CACHE_VERSION = 1
IS_REFERENCE_FRAMES = 50_000  # Salimans et al. 2016


@dataclass
class VideoFeatures:
    video: EvalVideo
    frames: int
    i3d: np.ndarray | None = None  # [400] time-averaged logits
    probabilities: np.ndarray | None = None  # [K, 1000] softmax of the sampled frames
    clip_score: float | None = None
    temporal: float | None = None
    lpips_frames: np.ndarray | None = None  # uint8 [K, h, w, 3], shortest side lpips.size


@dataclass
class Collected:
    generated: list[VideoFeatures] = field(default_factory=list)
    reference: list[VideoFeatures] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _file_stamp(path: Path | None) -> list[Any]:
    if path is None:
        return []
    path = Path(path)
    if path.is_dir():
        return sorted([p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in path.rglob("*") if p.is_file())
    return [path.stat().st_size, int(path.stat().st_mtime)] if path.exists() else []


def _settings_digest(config: EvaluateConfig) -> str:
    """Everything besides the video itself that changes its features (so a cached feature is still valid)."""
    settings = {
        "version": FEATURE_CACHE_VERSION, "metrics": sorted(config.metrics), "k": config.frames_per_video,
        "video": dataclasses.asdict(config.video), "fvd_frames": config.fvd.frames, "lpips_size": config.lpips.size,
        "weights": {"i3d": _file_stamp(config.fvd.i3d_weights), "inception": _file_stamp(config.inception.weights),
                    "clip_image": _file_stamp(config.clip.image_model),
                    "clip_text": _file_stamp(config.clip.text_model)},
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cache_path(folder: Path, role: str, video: EvalVideo, settings: str) -> Path:
    stat = video.path.stat()
    key = json.dumps([role, str(video.path.resolve()), stat.st_size, stat.st_mtime_ns, video.text, settings])
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


def _save_features(path: Path, features: VideoFeatures) -> None:
    arrays: dict[str, np.ndarray] = {"frames": np.array(features.frames)}
    for name in ("i3d", "probabilities", "lpips_frames"):
        value = getattr(features, name)
        if value is not None:
            arrays[name] = value
    for name in ("clip_score", "temporal"):
        value = getattr(features, name)
        if value is not None:
            arrays[name] = np.array(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)


def _load_features(path: Path, video: EvalVideo) -> VideoFeatures | None:
    try:
        with np.load(path) as data:
            values = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError):
        return None  # a torn file from a killed run: recompute
    return VideoFeatures(
        video=video, frames=int(values["frames"]), i3d=values.get("i3d"), probabilities=values.get("probabilities"),
        clip_score=float(values["clip_score"]) if "clip_score" in values else None,
        temporal=float(values["temporal"]) if "temporal" in values else None, lpips_frames=values.get("lpips_frames"),
    )


def _resize_short_side(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [K, H, W, 3] → uint8 [K, h, w, 3] with min(h, w) = size (bilinear, antialiased)."""
    x = frames.permute(0, 3, 1, 2).float()
    h, w = x.shape[2:]
    scale = size / min(h, w)
    x = F.interpolate(x, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="bilinear",
                      align_corners=False, antialias=True)
    return x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1)


@torch.no_grad()
def extract_features(video: EvalVideo, frames: np.ndarray, nets: Networks, config: EvaluateConfig,
                     text_embedding: torch.Tensor | None, keep_lpips_frames: bool) -> VideoFeatures:
    device = nets.device
    clip = torch.from_numpy(frames)
    result = VideoFeatures(video=video, frames=int(frames.shape[0]))
    picks = sample_indices(frames.shape[0], config.frames_per_video)
    sampled = clip[picks]
    if nets.i3d is not None and frames.shape[0] >= config.fvd.frames:
        x = i3d_module.preprocess_clip(clip[: config.fvd.frames].to(device))
        result.i3d = nets.i3d(x[None]).double().cpu().numpy()[0]
    if nets.inception is not None:
        logits = []
        for start in range(0, len(picks), config.batch_size):
            batch = inception_module.preprocess_frames(sampled[start:start + config.batch_size].to(device))
            logits.append(nets.inception(batch).double().cpu())
        result.probabilities = softmax(torch.cat(logits).numpy())
    if nets.image_encoder is not None:
        wanted = range(frames.shape[0]) if config.wants("temporal") else picks
        embeddings = torch.cat([nets.image_encoder(clip[list(wanted)[s:s + config.batch_size]])
                                for s in range(0, len(wanted), config.batch_size)]).double().cpu().numpy()
        if config.wants("temporal"):
            result.temporal = temporal_consistency(embeddings)
            embeddings = embeddings[picks]
        if config.wants("clip") and text_embedding is not None:
            result.clip_score = clip_score(text_embedding.double().cpu().numpy(), embeddings)
    if keep_lpips_frames:
        result.lpips_frames = _resize_short_side(sampled, config.lpips.size).numpy()
    return result


def _summary(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std()), "videos": int(array.size)}


def _is_summary(items: list[VideoFeatures], splits: int) -> dict[str, Any] | None:
    probabilities = [item.probabilities for item in items if item.probabilities is not None]
    if not probabilities:
        return None
    score = inception_score(np.concatenate(probabilities), splits=splits)
    return {"mean": score.mean, "std": score.std, "splits": score.splits, "frames": score.samples,
            "videos": len(probabilities)}


@torch.no_grad()
def _lpips_pairs(nets: Networks, pairs: list[tuple[np.ndarray, np.ndarray]], device: torch.device) -> list[float]:
    """Mean LPIPS over the sampled frames of each pair of videos (frames matched by position)."""
    values = []
    for a, b in pairs:
        n = min(len(a), len(b))
        if n == 0 or a.shape[1:] != b.shape[1:]:
            continue
        x = torch.from_numpy(a[:n]).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        y = torch.from_numpy(b[:n]).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        values.append(float(nets.lpips(x, y).double().mean()))
    return values


def _diversity_pairs(items: list[VideoFeatures], max_pairs: int, seed: int) -> list[tuple[int, int]]:
    pairs = [(i, j) for i in range(len(items)) for j in range(i + 1, len(items))]
    if len(pairs) > max_pairs:
        rng = np.random.default_rng(seed)
        pairs = [pairs[k] for k in sorted(rng.choice(len(pairs), size=max_pairs, replace=False).tolist())]
    return pairs


def compute_group(name: str | None, generated: list[VideoFeatures], reference: list[VideoFeatures],
                  pairs: dict[str, str], config: EvaluateConfig, nets: Networks, events: EventWriter,
                  warnings: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics of one category (or of all, name None)."""
    label = "all categories" if name is None else f"category {name}"
    group: dict[str, Any] = {"category": name, "generated_videos": len(generated), "reference_videos": len(reference)}

    def warn(code: str, message: str) -> None:
        warnings.append({"code": code, "category": name, "message": message})
        events.warning(code, message, category=name)

    if config.wants("fvd"):
        gen = [item.i3d for item in generated if item.i3d is not None]
        ref = [item.i3d for item in reference if item.i3d is not None]
        fvd: dict[str, Any] = {"value": None, "generated": len(gen), "reference": len(ref), "frames": config.fvd.frames,
                               "stable": False, "note": None}
        if len(gen) < 2 or len(ref) < 2:
            fvd["note"] = (f"needs at least 2 clips of >= {config.fvd.frames} frames in each set; "
                           f"has {len(gen)} generated and {len(ref)} reference")
            warn("fvd_unavailable", f"FVD of {label} not computed: {fvd['note']}.")
        else:
            fvd["value"] = frechet_distance_of_features(np.stack(gen), np.stack(ref))
            fvd["stable"] = min(len(gen), len(ref)) >= config.fvd.min_samples
            if not fvd["stable"]:
                rank = min(len(gen), len(ref)) - 1
                fvd["note"] = (f"{len(gen)} generated and {len(ref)} reference clips: "
                               f"below {config.fvd.min_samples} per set FVD is biased upward and varies from draw "
                               f"to draw (the 400×400 covariance has rank "
                               f"≤ {rank}); compare it only with FVDs from the same sample counts")
                warn("fvd_few_samples", f"FVD of {label}: {fvd['note']}.")
        group["fvd"] = fvd
    if config.wants("is"):
        group["inception_score"] = {"generated": _is_summary(generated, config.inception.splits),
                                    "reference": _is_summary(reference, config.inception.splits)}
        frames = (group["inception_score"]["generated"] or {}).get("frames", 0)
        if 0 < frames < IS_REFERENCE_FRAMES // 10:
            warn("is_few_samples", f"Inception Score of {label} from {frames} frames: IS grows with the number of "
                 f"samples (the reference uses {IS_REFERENCE_FRAMES:,} images in {config.inception.splits} splits), so "
                 "compare it only with scores from as many frames")
    if config.wants("clip"):
        group["clip_score"] = {"generated": _summary([i.clip_score for i in generated if i.clip_score is not None]),
                               "reference": _summary([i.clip_score for i in reference if i.clip_score is not None])}
    if config.wants("temporal"):
        group["temporal_consistency"] = {
            "generated": _summary([i.temporal for i in generated if i.temporal is not None]),
            "reference": _summary([i.temporal for i in reference if i.temporal is not None])}
    if config.wants("lpips"):
        by_id = {item.video.id: item for item in reference}
        paired = [(g.lpips_frames, by_id[pairs[g.video.id]].lpips_frames) for g in generated
                  if g.video.id in pairs and pairs[g.video.id] in by_id and g.lpips_frames is not None
                  and by_id[pairs[g.video.id]].lpips_frames is not None]
        to_reference = _lpips_pairs(nets, paired, nets.device)
        diversity: list[float] = []
        categories = sorted({g.video.category for g in generated})
        for category in categories:  # diversity only compares videos of one category (the overall pools them)
            members = [g for g in generated if g.video.category == category and g.lpips_frames is not None]
            chosen = _diversity_pairs(members, config.lpips.max_pairs, config.inputs.seed)
            diversity += _lpips_pairs(nets, [(members[i].lpips_frames, members[j].lpips_frames) for i, j in chosen],
                                      nets.device)

        def pair_summary(values: list[float]) -> dict[str, Any] | None:
            summary = _summary(values)
            if summary is None:
                return None
            return {"mean": summary["mean"], "std": summary["std"], "pairs": summary["videos"]}

        group["lpips"] = {"net": config.lpips.net, "to_reference": pair_summary(to_reference),
                          "diversity": pair_summary(diversity)}
    return group


def run_evaluate(config: EvaluateConfig, events: EventWriter) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate; returns (outputs, summary) for run_finished. Writes out_dir/metrics.json."""
    started = time.monotonic()
    generated = read_generated(config.inputs.generated_dir)
    reference_set = read_reference(config.inputs.reference_manifest, config.inputs.category_column)
    reference, pairs = select_reference(reference_set.videos, generated, config.inputs.reference_per_category,
                                        config.inputs.seed)
    warnings: list[dict[str, Any]] = []

    def warn(code: str, message: str, **details: Any) -> None:
        warnings.append({"code": code, "message": message, **details})
        events.warning(code, message, **details)

    categories = sorted({video.category for video in generated})
    for category in categories:
        if not any(video.category == category for video in reference):
            warn("reference_category_missing", f"the reference manifest has no video of category {category} "
                 f"({sum(v.category == category for v in generated)} generated videos): its FVD and LPIPS to the "
                 "reference cannot be computed", category=category)
    if reference_set.images_ignored:
        warn("reference_images_ignored", f"{reference_set.images_ignored} image rows of "
             f"{config.inputs.reference_manifest.name} are not used: the metrics compare videos")

    plan_categories = {c: {"generated": sum(v.category == c for v in generated),
                           "reference": sum(v.category == c for v in reference)} for c in categories}
    events.emit("evaluate_plan", metrics=list(config.metrics), generated_videos=len(generated),
                reference_videos=len(reference), reference_rows=len(reference_set.videos), categories=plan_categories,
                paired_videos=len(pairs), frames_per_video=config.frames_per_video, fvd_frames=config.fvd.frames)

    nets = load_networks(config)
    log(f"evaluate: networks on {nets.device}: {', '.join(nets.loaded)}")

    texts: dict[str, torch.Tensor] = {}
    truncated = 0
    if nets.text_encoder is not None:
        unique = sorted({v.text for v in generated} | {v.text for v in reference})
        for start in range(0, len(unique), config.batch_size):
            chunk = unique[start:start + config.batch_size]
            encoded = nets.text_encoder(chunk)
            truncated += sum(t > encoded.max_tokens for t in encoded.tokens)
            texts.update(zip(chunk, encoded.embeddings.cpu()))
        if truncated:
            warn("text_truncated", f"{truncated} of {len(unique)} prompts and captions are longer than the text "
                 f"encoder's {nets.text_encoder.max_tokens} tokens: their CLIP score sees only the first "
                 f"{nets.text_encoder.max_tokens}")

    settings = _settings_digest(config)
    cache_dir = config.out_dir / "features"
    collected = Collected()
    paired_reference = set(pairs.values())
    work = [("generated", v) for v in generated] + [("reference", v) for v in reference]
    last_emit, done_new, extract_started = 0.0, 0, time.monotonic()
    short: dict[str, int] = {"generated": 0, "reference": 0}
    for index, (role, video) in enumerate(work):
        keep_lpips = config.wants("lpips") and (role == "generated" or video.id in paired_reference)
        features = None
        cache_file = _cache_path(cache_dir, role, video, settings) if video.path.is_file() else None
        if cache_file is not None and cache_file.is_file():
            features = _load_features(cache_file, video)
        if features is None:
            try:
                frames = decode_frames(video.path, config.video.width, config.video.height, config.video.fps,
                                       max_frames=config.video.max_frames)
            except DataError as error:
                entry = {"set": role, "id": video.id, "path": str(video.path), "reason": error.problem}
                collected.skipped.append(entry)
                warn("item_skipped", f"{role} video {video.id} skipped: {error.problem}", split=role, id=video.id,
                     line=video.line, path=str(video.path))
                continue
            features = extract_features(video, frames, nets, config, texts.get(video.text), keep_lpips)
            if cache_file is not None:
                _save_features(cache_file, features)
            done_new += 1
        if config.wants("fvd") and features.frames < config.fvd.frames:
            short[role] += 1
        (collected.generated if role == "generated" else collected.reference).append(features)
        now = time.monotonic()
        if now - last_emit >= 2.0 or index + 1 == len(work):
            last_emit = now
            events.emit("evaluate_progress", phase=role, done=index + 1, total=len(work),
                        videos_per_second=done_new / max(now - extract_started, 1e-9))
    for role, count in short.items():
        if count:
            warn("fvd_clip_short", f"{count} {role} videos have fewer than {config.fvd.frames} frames at "
                 f"{config.video.fps} fps and are left out of FVD", split=role)

    groups = [compute_group(c, [g for g in collected.generated if g.video.category == c],
                            [r for r in collected.reference if r.video.category == c], pairs, config, nets, events,
                            warnings) for c in categories]
    overall = compute_group(None, collected.generated, collected.reference, pairs, config, nets, events, warnings)
    events.emit("evaluate_progress", phase="metrics", done=len(work), total=len(work),
                videos_per_second=done_new / max(time.monotonic() - extract_started, 1e-9))

    from .. import __version__

    metrics = {
        "schema_version": METRICS_SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "engine_version": __version__,
        "device": str(nets.device),
        "seconds": time.monotonic() - started,
        "inputs": {
            "generated_dir": str(config.inputs.generated_dir),
            "reference_manifest": str(config.inputs.reference_manifest),
            "generated_videos": len(generated), "reference_video_rows": len(reference_set.videos),
            "reference_videos_selected": len(reference), "reference_images_ignored": reference_set.images_ignored,
            "paired_videos": len(pairs), "skipped": collected.skipped,
        },
        "settings": {
            "metrics": list(config.metrics), "frames_per_video": config.frames_per_video,
            "video": dataclasses.asdict(config.video), "fvd_frames": config.fvd.frames,
            "fvd_min_samples": config.fvd.min_samples, "is_splits": config.inception.splits,
            "lpips_net": config.lpips.net, "lpips_size": config.lpips.size,
            "reference_per_category": config.inputs.reference_per_category, "seed": config.inputs.seed,
            "text_encoder": nets.text_encoder.kind if nets.text_encoder is not None else None,
            "weights": {"i3d": str(config.fvd.i3d_weights), "inception": str(config.inception.weights),
                        "lpips_linear": str(config.lpips.linear_weights),
                        "lpips_backbone": str(config.lpips.backbone_weights) if config.lpips.backbone_weights else None,
                        "clip_image": str(config.clip.image_model), "clip_text": str(config.clip.text_model)},
        },
        "overall": overall,
        "categories": groups,
        "warnings": warnings,
    }
    path = config.out_dir / "metrics.json"
    config.out_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("metrics.json.partial")
    partial.write_text(json.dumps(_finite(metrics), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)

    def headline(section: str, key: str = "generated") -> float | None:
        value = overall.get(section)
        if value is None:
            return None
        value = value.get(key) if key else value
        return value.get("mean") if isinstance(value, dict) else None

    summary = {
        "generated_videos": len(collected.generated), "reference_videos": len(collected.reference),
        "skipped": len(collected.skipped), "features_computed": done_new,
        "fvd": overall["fvd"]["value"] if "fvd" in overall else None,
        "inception_score": headline("inception_score"), "clip_score": headline("clip_score"),
        "temporal_consistency": headline("temporal_consistency"),
        "lpips_to_reference": headline("lpips", "to_reference"), "lpips_diversity": headline("lpips", "diversity"),
    }
    return {"metrics_json": str(path)}, summary


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
