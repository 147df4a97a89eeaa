import json
import unicodedata
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import demo_config, write_config, write_dataset
from wanlora_engine.config import load_config
from wanlora_engine.data import CachedDataset
from wanlora_engine.encoding import caption_token_counts, clean_caption, read_jsonl
from wanlora_engine.errors import DataError
from wanlora_engine.events import read_events
from wanlora_engine.loading import load_components
from wanlora_engine.media import decode_media, read_manifest
from wanlora_engine.stage import run_stage


def test_cache_holds_normalised_latents_and_trimmed_embeddings(cached):
    config = load_config(cached / "config.resolved.json")
    index = read_jsonl(cached / "cache" / "train" / "index.jsonl")
    assert len(index) == 8 and len(read_jsonl(cached / "cache" / "val" / "index.jsonl")) == 4
    shapes = {r["media_type"]: tuple(r["latent_shape"]) for r in index}
    # 64x48 -> 8x6 latents; 5 frames -> 1 + 4/4 = 2 latent frames; an image is one frame
    assert shapes == {"image": (16, 1, 6, 8), "video": (16, 2, 6, 8)}

    parts = load_components(cached / "model", "auto", "float32", {"vae", "text_encoder", "tokenizer"})
    rows = read_manifest(config.data.train_manifest, "weight", "category")
    row = next(r for r in rows if r.media_type == "video")
    entry = next(r for r in index if r["id"] == row.id)
    latents = load_file(str(cached / "cache" / "train" / f"latents-{entry['shard']:05d}.safetensors"))
    video = decode_media(row, 64, 48, 5, 16)
    assert video.shape == (3, 5, 48, 64) and float(video.min()) >= -1 and float(video.max()) <= 1
    with torch.no_grad():
        z = parts.vae.encode(video[None]).latent_dist.mean[0]
    mean = torch.tensor(parts.vae.config.latents_mean).view(16, 1, 1, 1)
    std = torch.tensor(parts.vae.config.latents_std).view(16, 1, 1, 1)
    expected = ((z - mean) / std).to(torch.bfloat16)
    assert latents[row.id].dtype == torch.bfloat16
    assert torch.equal(latents[row.id], expected)

    texts = load_file(str(cached / "cache" / "train" / f"text-{entry['shard']:05d}.safetensors"))
    ids = parts.tokenizer([row.caption], add_special_tokens=True).input_ids[0]
    assert entry["caption_tokens"] == len(ids)
    with torch.no_grad():
        full = parts.text_encoder(torch.tensor([ids[:32]])).last_hidden_state[0]
    assert texts[row.id].shape == (min(len(ids), 32), 32)
    assert torch.allclose(texts[row.id].float(), full.to(torch.bfloat16).float(), atol=1e-2)


def test_truncated_captions_are_counted(cached):
    events = read_events(cached / "runs" / "demo" / "cache-events.jsonl")
    summary = events[-1]["summary"]
    parts = load_components(cached / "model", "auto", "float32", {"tokenizer"})
    config = load_config(cached / "config.resolved.json")
    rows = read_manifest(config.data.train_manifest, "weight", "category")
    lengths = [len(parts.tokenizer(clean_caption(r.caption)).input_ids) for r in rows]
    assert summary["train"]["truncated_captions"] == sum(n > 32 for n in lengths) > 0
    assert summary["train"]["max_caption_tokens"] == max(lengths)
    assert events[-1]["status"] == "completed"
    empty = load_file(str(cached / "cache" / "empty_prompt.safetensors"))["embedding"]
    assert empty.shape == (1, 32)  # "" is just the end-of-sequence token


def test_nfd_captions_encode_like_nfc():
    nfc = "무형문화유산 공연"
    assert clean_caption(unicodedata.normalize("NFD", nfc)) == nfc
    assert clean_caption("a &amp;  b\n\tc ") == "a & b c"


def test_cache_resumes_after_a_kill_and_redoes_only_the_lost_shard(workspace, cached):
    cache = workspace / "cache"
    # A kill in the second train shard (4 items), after its latents file was renamed into place: its record,
    # its text file and the indexes (written at the end) are not there; a temporary file is left behind.
    (cache / "train" / "shards" / "00001.json").unlink()
    (cache / "train" / "text-00001.safetensors").unlink()
    (cache / "train" / "text-00001.safetensors.tmp").write_bytes(b"torn")
    for split in ("train", "val"):
        (cache / split / "index.jsonl").unlink()
        (cache / split / "skipped.jsonl").unlink()
    config = write_config(workspace, demo_config())
    assert run_stage("cache", config, resume=False, echo=False) == 0
    summary = read_events(workspace / "runs" / "demo" / "cache-events.jsonl")[-1]["summary"]
    assert summary["items_new"] == 4 and summary["train"]["items"] == 8 and summary["val"]["items"] == 4
    assert cache_files(workspace, roots=(workspace, cached)) == cache_files(cached, roots=(workspace, cached))
    # A second run finds nothing to do.
    assert run_stage("cache", config, resume=False, echo=False) == 0
    assert read_events(workspace / "runs" / "demo" / "cache-events.jsonl")[-1]["summary"]["items_new"] == 0


def cache_files(root: Path, cache: str = "cache", roots: tuple[Path, ...] = ()) -> dict[str, bytes]:
    """Every file of root/cache by its path there, with the workspace folders `roots` written as <root> (the
    records name the media files, cache.json the model); temporary files of a killed run excluded."""
    files = {}
    for path in sorted((root / cache).rglob("*")):
        if path.is_file() and not path.name.endswith(".tmp"):
            data = path.read_bytes()
            for folder in roots:
                data = data.replace(str(folder).encode(), b"<root>")
            files[str(path.relative_to(root / cache))] = data
    return files


def test_an_old_format_cache_is_read_for_training_and_refused_for_adding(workspace):
    cache = workspace / "cache"
    description = json.loads((cache / "cache.json").read_text())
    assert description["schema_version"] == 2 and description["settings"]["shard_items"] == 4
    (cache / "cache.json").write_text(json.dumps({**description, "schema_version": 1}))
    dataset = CachedDataset(cache, "train", text_length=32)
    assert len(dataset) == 8 and dataset.text(0).shape == (512, 32)
    config = write_config(workspace, demo_config())
    assert run_stage("cache", config, resume=False, echo=False) == 1
    error = [e for e in read_events(workspace / "runs" / "demo" / "cache-events.jsonl") if e["event"] == "error"][-1]
    assert error["problem"].startswith(f"cache {cache} has cache format 1; this engine adds to format 2 only")
    assert "training still reads" in error["remedy"] and str(cache) in error["remedy"]
    (cache / "cache.json").write_text(json.dumps({**description, "schema_version": 3}))
    with pytest.raises(DataError, match=r"has cache format 3; this engine reads formats 1, 2"):
        CachedDataset(cache, "train", text_length=32)


def test_embeddings_are_stored_at_their_token_count_and_padded_when_read(cached):
    index = read_jsonl(cached / "cache" / "train" / "index.jsonl")
    dataset = CachedDataset(cached / "cache", "train", text_length=32)
    for position, entry in enumerate(index):
        texts = load_file(str(cached / "cache" / "train" / f"text-{entry['shard']:05d}.safetensors"))
        stored = texts[entry["id"]]
        assert stored.shape == (min(entry["caption_tokens"], 32), 32) == (entry["text_tokens"], 32)
        padded = dataset.text(position)
        assert padded.shape == (512, 32)
        assert torch.equal(padded[:entry["text_tokens"]], stored)
        assert not padded[entry["text_tokens"]:].any()


def test_broken_clip_is_skipped_with_its_line_and_reason(tmp_path, cached):
    data = tmp_path / "data"
    write_dataset(data, images=1, videos=1, video_frames=9)
    (data / "media" / "clip0001.mp4").write_bytes(b"not a video")
    (tmp_path / "model").symlink_to(cached / "model")
    config = write_config(tmp_path, demo_config(data={"val_manifest": ""}))
    assert run_stage("cache", config, resume=False, echo=False) == 0
    skipped = read_jsonl(tmp_path / "cache" / "train" / "skipped.jsonl")
    assert [(s["id"], s["line"]) for s in skipped] == [("item0001", 3)]
    assert "ffmpeg could not decode" in skipped[0]["reason"]
    events = read_events(tmp_path / "runs" / "demo" / "cache-events.jsonl")
    warnings = [e for e in events if e["event"] == "warning"]
    assert warnings and warnings[0]["code"] == "item_skipped" and warnings[0]["line"] == 3
    assert events[-1]["summary"]["train"] == {"items": 1, "skipped": 1, "truncated_captions": 0,
                                             "max_caption_tokens": events[-1]["summary"]["train"]["max_caption_tokens"]}


def test_disk_space_is_checked_before_any_work(tmp_path, cached):
    (tmp_path / "model").symlink_to(cached / "model")
    (tmp_path / "data").symlink_to(cached / "data")
    # text_length 512, far above the demo captions' tokens: the estimate counts each caption's own tokens, as the
    # cache stores them, not 512 (which would refuse a disk the cache fits on).
    path = write_config(tmp_path, demo_config(cache={"free_disk_margin_gib": 2.0**32}, training={"text_length": 512}))
    assert run_stage("cache", path, resume=False, echo=False) == 1
    events = read_events(tmp_path / "runs" / "demo" / "cache-events.jsonl")
    plan = next(e for e in events if e["event"] == "cache_plan")
    config = load_config(path)
    tokenizer = load_components(config.model.checkpoint, config.model.layout, torch.float32, {"tokenizer"}).tokenizer
    rows = [r for m in (config.data.train_manifest, config.data.val_manifest) for r in read_manifest(m, None, None)]
    tokens = caption_token_counts(tokenizer, [r.caption for r in rows])
    assert len(rows) == 12 and max(tokens) < 512
    # images: latents 2*16*1*6*8 bytes, videos 2*16*2*6*8; embeddings 2 * tokens * 32; 1 KiB each
    latents = {"image": 2 * 16 * 1 * 6 * 8, "video": 2 * 16 * 2 * 6 * 8}
    expected = sum(latents[r.media_type] + 2 * n * 32 + 1024 for r, n in zip(rows, tokens))
    assert plan["estimated_bytes"] == expected
    assert expected < sum(latents[r.media_type] + 2 * 512 * 32 + 1024 for r in rows)
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "disk_space" and "GiB" in error["problem"]
    assert not list((tmp_path / "cache" / "train").glob("*.safetensors"))


def test_changed_settings_are_refused(workspace):
    config = write_config(workspace, demo_config(training={"frames": 9}))
    assert run_stage("cache", config, resume=False, echo=False) == 1
    error = [e for e in read_events(workspace / "runs" / "demo" / "cache-events.jsonl") if e["event"] == "error"][-1]
    assert "frames=5" in error["problem"] and "9" in error["problem"]
    assert "cache_dir" in error["remedy"]


def test_manifest_errors_name_the_line(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text('path,caption,weight\na.png,"ok",1\nb.png,"bad weight",x\n')
    with pytest.raises(Exception, match=r"m.csv:3: weight is 'x'"):
        read_manifest(manifest, "weight", None)
    manifest.write_text('path,caption\na.png,"quoted, comma\nand newline"\nb.png\n')
    with pytest.raises(Exception, match=r"m.csv:4: 1 fields"):
        read_manifest(manifest, None, None)
    with pytest.raises(Exception, match=r"no column 'weight' \(data.weight_column\)"):
        read_manifest(manifest, "weight", None)
    manifest.write_text('\ufeffpath,caption\r\na.png,"x ""y"""\r\n')
    rows = read_manifest(manifest, None, None)
    assert rows[0].caption == 'x "y"' and rows[0].path == tmp_path / "a.png" and rows[0].id == "1"


def test_captions_are_cleaned_as_wan22_cleans_prompts(tiny_diffusers):
    """Wan2.2's tokenizer wrapper (and WanPipeline) run ftfy.fix_text, html.unescape twice and collapse whitespace:
    mojibake is repaired, curly quotes straighten, full-width letters, digits and spaces become ASCII."""
    import html
    import re

    from transformers import AutoTokenizer

    # Curly quotes, "현장" saved as UTF-8 and read back as Windows-1252, full-width forms, entities, a ligature.
    raw = "“한옥” í˜„ìž¥\u3000ＡＢＣ１２  &amp;amp; ﬁre"
    expected = '"한옥" 현장 ABC12 & fire'
    assert clean_caption(raw) == expected
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_diffusers / "tokenizer"), local_files_only=True)
    assert tokenizer(clean_caption(raw)).input_ids == tokenizer(expected).input_ids
    # The cleaning before ftfy (NFC, entities, whitespace) kept the mojibake: other token ids.
    before = re.sub(r"\s+", " ", html.unescape(html.unescape(unicodedata.normalize("NFC", raw)))).strip()
    assert tokenizer(before).input_ids != tokenizer(expected).input_ids


def test_every_shard_goes_to_exactly_one_rank_whatever_the_processes():
    from wanlora_engine.cache import rank_share, split_shards
    from wanlora_engine.distributed import Layout
    from wanlora_engine.media import ManifestRow

    rows = [ManifestRow(line=i + 2, id=str(i + 1), path=Path(f"{i}.png"), media_type="image", caption="c",
                        category=None, weight=1.0) for i in range(11)]
    shards = split_shards("train", rows, 4) + split_shards("val", rows[:5], 4)
    # 11 rows in shards of 4: rows 1-4, 5-8, 9-11; val: 1-4, 5.
    assert [(s.split, s.number, [r.id for r in s.rows]) for s in shards] == [
        ("train", 0, ["1", "2", "3", "4"]), ("train", 1, ["5", "6", "7", "8"]), ("train", 2, ["9", "10", "11"]),
        ("val", 0, ["1", "2", "3", "4"]), ("val", 1, ["5"])]
    for world in range(1, 7):
        shares = [rank_share(shards, Layout(world_size=world, rank=r)) for r in range(world)]
        taken = [(s.split, s.number) for share in shares for s in share]
        assert sorted(taken) == sorted((s.split, s.number) for s in shards)  # each once, none lost
    assert [(s.split, s.number) for s in rank_share(shards, Layout(world_size=3, rank=1))] == [("train", 1),
                                                                                              ("val", 1)]
