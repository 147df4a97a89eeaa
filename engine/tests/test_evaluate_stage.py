"""The evaluate stage end to end on CPU: real H.264 clips, random-weight networks of the real architectures."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import CAPTIONS, have_ffmpeg, write_video
from wanlora_engine.evaluate.random_weights import write_random_weights
from wanlora_engine.events import EVENT_FIELDS, read_events
from wanlora_engine.stage import run_stage

ENGINE_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def eval_weights(tmp_path_factory):
    return write_random_weights(tmp_path_factory.mktemp("eval-weights"), seed=0)


@pytest.fixture(scope="session")
def eval_inputs(tmp_path_factory):
    """Reference: 2 clips of 축제, 1 of 자연/풍경, 1 image (ignored), 1 clip of an ungenerated category.
    Generated: 2 of 축제 (one paired by its prompt, one by reference_id), 1 of 자연/풍경 (7 frames: too short
    for FVD)."""
    if not have_ffmpeg():
        pytest.fail("ffmpeg is needed: apt-get install ffmpeg (make deps-media)")
    root = tmp_path_factory.mktemp("eval-inputs")
    (root / "ref").mkdir()
    rows = []
    for n, (category, frames) in enumerate([("축제", 9), ("축제", 9), ("자연/풍경", 9), ("공간/건축", 9)]):
        write_video(root / "ref" / f"r{n}.mp4", seed=n, frames=frames)
        rows.append({"id": f"r{n}", "path": f"ref/r{n}.mp4", "media_type": "video", "caption": CAPTIONS[n],
                     "category": category})
    rows.append({"id": "img", "path": "ref/none.png", "media_type": "image", "caption": "x", "category": "축제"})
    with open(root / "val.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    generated = root / "generated"
    generated.mkdir()
    for n, (category, frames, prompt, reference_id) in enumerate([
        ("축제", 9, "  " + CAPTIONS[0] + " ", None),  # pairs with r0 by its (normalised) prompt
        ("축제", 9, "다른 프롬프트", "r1"),  # pairs with r1 by the sidecar
        ("자연/풍경", 7, CAPTIONS[5], None),
    ]):
        write_video(generated / f"g{n}.mp4", seed=n + 1, frames=frames)
        sidecar = {"schema_version": 1, "id": f"g{n}", "prompt": prompt, "category": category, "seed": 42 + n}
        if reference_id:
            sidecar["reference_id"] = reference_id
        (generated / f"g{n}.json").write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")
    return root


def evaluate_config(root, weights, out, metrics=("fvd", "is", "lpips", "clip", "temporal"), **changes):
    config = {
        "schema_version": 1, "kind": "evaluate", "out_dir": str(out), "device": "cpu", "metrics": list(metrics),
        "frames_per_video": 2, "batch_size": 8,
        "inputs": {"generated_dir": str(root / "generated"), "reference_manifest": str(root / "val.csv"),
                   "category_column": "category", "reference_per_category": 0, "seed": 42},
        "video": {"width": 64, "height": 48, "fps": 16, "max_frames": 81},
        "fvd": {"i3d_weights": str(weights["i3d"]), "frames": 9, "min_samples": 256},
        "inception": {"weights": str(weights["inception"]), "splits": 10},
        "lpips": {"net": "alex", "linear_weights": str(weights["lpips_linear"]),
                  "backbone_weights": str(weights["lpips_backbone"]), "size": 32, "max_pairs": 16},
        "clip": {"image_model": str(weights["clip_image"]), "text_model": str(weights["clip_text"])},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            config[section][name] = value
        else:
            config[section] = value
    path = Path(out).parent / f"{Path(out).name}.evaluate.json"
    path.write_text(json.dumps(config, ensure_ascii=False))
    return path


def test_evaluate_end_to_end_with_random_networks(tmp_path, eval_inputs, eval_weights):
    out = tmp_path / "eval"
    assert run_stage("evaluate", evaluate_config(eval_inputs, eval_weights, out), echo=False) == 0
    events = read_events(out / "evaluate-events.jsonl")
    for event in events:
        assert set(EVENT_FIELDS[event["event"]]) <= set(event), event
    assert events[0]["event"] == "run_started" and events[0]["stage"] == "evaluate"
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "completed"
    plan = next(e for e in events if e["event"] == "evaluate_plan")
    assert plan["generated_videos"] == 3 and plan["reference_videos"] == 3 and plan["reference_rows"] == 4
    assert plan["categories"] == {"축제": {"generated": 2, "reference": 2},
                                  "자연/풍경": {"generated": 1, "reference": 1}}
    assert plan["paired_videos"] == 2
    warnings = {e["code"] for e in events if e["event"] == "warning"}
    assert {"fvd_few_samples", "fvd_unavailable", "fvd_clip_short", "reference_images_ignored"} <= warnings

    metrics = json.loads((out / "metrics.json").read_text())
    assert events[-1]["outputs"]["metrics_json"] == str(out / "metrics.json")
    overall, categories = metrics["overall"], {c["category"]: c for c in metrics["categories"]}
    assert list(categories) == ["자연/풍경", "축제"]
    festival = categories["축제"]
    assert festival["generated_videos"] == 2 and festival["reference_videos"] == 2
    assert festival["fvd"]["value"] >= 0 and festival["fvd"]["generated"] == 2 and festival["fvd"]["stable"] is False
    assert "below 256" in festival["fvd"]["note"]
    assert categories["자연/풍경"]["fvd"]["value"] is None  # one 7-frame clip: no FVD
    assert overall["fvd"]["generated"] == 2 and overall["fvd"]["reference"] == 3
    # IS over the 2 sampled frames of each video; 1 ≤ IS ≤ number of frames
    assert overall["inception_score"]["generated"]["frames"] == 6
    # random networks, but calibrated so that outputs depend on the input: IS above 1, FVD above 0
    assert 1.0 < overall["inception_score"]["generated"]["mean"] <= 6.0
    assert overall["fvd"]["value"] > 1e-3 and festival["fvd"]["value"] > 1e-3
    assert 0.0 <= overall["clip_score"]["generated"]["mean"] <= 100.0
    assert overall["clip_score"]["generated"]["videos"] == 3 and overall["clip_score"]["reference"]["videos"] == 3
    assert -1.0 <= overall["temporal_consistency"]["generated"]["mean"] <= 1.0
    assert overall["lpips"]["to_reference"]["pairs"] == 2  # g0↔r0 by prompt, g1↔r1 by reference_id
    assert overall["lpips"]["diversity"]["pairs"] == 1  # only 축제 has two generated videos
    assert overall["lpips"]["to_reference"]["mean"] > 0
    assert metrics["inputs"]["reference_images_ignored"] == 1 and metrics["inputs"]["skipped"] == []
    summary = events[-1]["summary"]
    assert summary["fvd"] == overall["fvd"]["value"] and summary["features_computed"] == 6

    # a second run reuses every video's features (resume), and gives the same numbers
    assert run_stage("evaluate", evaluate_config(eval_inputs, eval_weights, out), echo=False) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert read_events(out / "evaluate-events.jsonl")[-1]["summary"]["features_computed"] == 0
    assert again["overall"]["fvd"] == overall["fvd"] and again["categories"] == metrics["categories"]


def test_missing_weights_fail_before_any_decoding_naming_the_file(tmp_path, eval_inputs, eval_weights):
    weights = dict(eval_weights, i3d=tmp_path / "nowhere" / "i3d_pretrained_400.pt")
    out = tmp_path / "eval"
    assert run_stage("evaluate", evaluate_config(eval_inputs, weights, out), echo=False) == 1
    events = read_events(out / "evaluate-events.jsonl")
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "model_load_failed"
    assert str(tmp_path / "nowhere" / "i3d_pretrained_400.pt") in error["problem"]
    assert "fvd.i3d_weights" in error["remedy"] and "i3d_pretrained_400.pt" in error["remedy"]
    assert not any(e["event"] == "evaluate_progress" for e in events)
    assert events[-1]["status"] == "failed"


def test_cheap_metrics_only_and_an_undecodable_video(tmp_path, eval_inputs, eval_weights):
    root = tmp_path / "inputs"
    shutil.copytree(eval_inputs, root)
    (root / "generated" / "g2.mp4").write_bytes(b"not a video")
    out = tmp_path / "eval"
    config = evaluate_config(root, eval_weights, out, metrics=["clip", "temporal"])
    assert run_stage("evaluate", config, echo=False) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "fvd" not in metrics["overall"] and "inception_score" not in metrics["overall"]
    (skipped,) = metrics["inputs"]["skipped"]
    assert skipped["id"] == "g2" and skipped["set"] == "generated" and "ffmpeg could not decode" in skipped["reason"]
    assert metrics["overall"]["clip_score"]["generated"]["videos"] == 2


def test_cli_rejects_a_config_with_an_unknown_key(tmp_path, eval_inputs, eval_weights):
    path = evaluate_config(eval_inputs, eval_weights, tmp_path / "eval", metrics=["clip"])
    config = json.loads(path.read_text())
    config["fvd"]["frame"] = 16
    path.write_text(json.dumps(config))
    result = subprocess.run([sys.executable, "-m", "wanlora_engine", "evaluate", "--config", str(path)],
                            capture_output=True, text=True,
                            env={"PYTHONPATH": str(ENGINE_DIR), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    (event,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert event["code"] == "config_invalid" and "fvd.frame" in event["problem"]
