"""The sample stage on the tiny model: equal to diffusers' WanPipeline, LoRAs with scales, files, events, resume."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from helpers import FIXTURES, hub_cache_with
from wanlora_engine.encoding import decode_latents, latent_shape
from wanlora_engine.errors import ConfigError
from wanlora_engine.events import EVENT_FIELDS, read_events
from wanlora_engine.loading import load_components
from wanlora_engine.lora_merge import LoraError, merge_lora, read_lora
from wanlora_engine.sample import (
    DoesNotFitError,
    ExpertPool,
    choose_memory,
    denoise,
    encode_prompt,
    inference_blocks,
    initial_noise,
)
from wanlora_engine.sample_job import parse_sample_job
from wanlora_engine.solvers import flow_schedule
from wanlora_engine.stage import run_stage

ENGINE_DIR = Path(__file__).resolve().parents[1]
PROMPT = "축제에서 사람들이 등불을 들고 밤거리를 걷고 있다."
NEGATIVE = "흐릿한 화면, 정지된 화면, 최악의 품질"
GIB = 1 << 30


def job_dict(out: Path, model: Path, prompts: list[dict], **sections) -> dict:
    """A small CPU sample job; `sections` replace keys inside a section: sampler={"steps": 3}."""
    job = {
        "schema_version": 2, "kind": "sample", "device": "cpu",
        "model": {"path": str(model), "layout": "auto", "dtype": "bfloat16", "boundary": 0.875,
                  "num_train_timesteps": 1000, "high_noise_file": None, "low_noise_file": None},
        "sampler": {"solver": "euler", "schedule": "wan", "steps": 4, "shift": 12.0, "guidance_high": 4.0,
                    "guidance_low": 3.0, "negative_prompt": NEGATIVE, "text_length": 512,
                    "attention": "auto"},
        "video": {"width": 64, "height": 48, "frames": 5, "fps": 16, "crf": 18},
        "loras": {"high": None, "low": None},
        "memory": {"text_encoder_device": "gpu", "plan_gpu": "H100", "reserved_bytes": GIB,
                   "candidates": [{"inactive_expert": "gpu", "vae_tiling": False, "peak_bytes": 1000,
                                   "items": [{"name": "expert weights", "phase": "denoise", "bytes": 1000,
                                              "basis": "tiny"}]}],
                   "alternatives": []},
        "output": {"dir": str(out), "overwrite": False},
        "prompts": prompts,
    }
    for section, values in sections.items():
        if isinstance(job[section], dict) and isinstance(values, dict):
            job[section].update(values)
        else:
            job[section] = values
    return job


def write_job(folder: Path, job: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sample-job.json"
    path.write_text(json.dumps(job, ensure_ascii=False, indent=2))
    return path


@pytest.fixture(scope="session")
def lora_files(tmp_path_factory, tiny_diffusers):
    """Random LoRAs (rank 4, alpha 8) on both tiny experts, exported in both namings."""
    from wanlora_engine.config import LoraConfig
    from wanlora_engine.lora import add_lora, export_diffusers, export_official, lora_parameters

    folder = tmp_path_factory.mktemp("loras")
    config = LoraConfig(rank=4, alpha=8.0, dropout=0.0, targets=["to_q", "to_k", "to_v", "to_out.0"])
    parts = load_components(tiny_diffusers, "auto", torch.float32, {"high", "low"})
    generator = torch.Generator().manual_seed(3)
    files = {}
    for expert in ("high", "low"):
        model = parts.expert(expert)
        add_lora(model, config, seed=1)
        for param in lora_parameters(model).values():  # B starts at zero: give both factors values
            param.data = torch.randn(param.shape, generator=generator) * 0.2
        files[expert] = {
            "diffusers": export_diffusers(model, config, folder / f"{expert}.diffusers.safetensors", expert),
            "comfyui": export_official(model, config, folder / f"{expert}.comfyui.safetensors", expert),
        }
    return files


class OurSampler:
    """The engine's pieces on a tiny model, loaded once: encode, denoise, decode (float32, CPU).

    As `wanlora sample` runs them: the fast inference blocks and guidance's two passes in one batch
    (`fast=False`: diffusers' blocks, two forwards a step)."""

    def __init__(self, model: Path, loras: dict | None = None, fast: bool = True) -> None:
        self.parts = load_components(model, "auto", torch.float32, {"high", "low", "vae", "text_encoder", "tokenizer"})
        for expert, (path, scale) in (loras or {}).items():
            merge_lora(self.parts.expert(expert), read_lora(path, self.parts.expert(expert)), scale)
        self.fast = fast
        if fast:
            for expert in ("high", "low"):
                inference_blocks(self.parts.expert(expert), torch.device("cpu"))
        self.pool = ExpertPool({"high": self.parts.high, "low": self.parts.low}, torch.device("cpu"), offload=False)

    def latents(self, prompt: str, negative: str, size: tuple[int, int, int], steps: int, seed: int, solver: str,
                schedule: str) -> torch.Tensor:
        width, height, frames = size
        cpu = torch.device("cpu")
        p, _, _ = encode_prompt(self.parts.tokenizer, self.parts.text_encoder, prompt, 512, cpu)
        n, _, _ = encode_prompt(self.parts.tokenizer, self.parts.text_encoder, negative, 512, cpu)
        noise = initial_noise(seed, (1, *latent_shape(frames, height, width, self.parts.vae)))
        return denoise(self.pool, flow_schedule(schedule, steps, 12.0), solver, 0.875, {"high": 4.0, "low": 3.0},
                       p, n, noise, torch.float32, cfg_batch=self.fast)

    def frames(self, latents: torch.Tensor) -> torch.Tensor:
        return decode_latents(self.parts.vae, latents, torch.device("cpu"))


def our_latents(model: Path, prompt: str, negative: str, size: tuple[int, int, int], steps: int, seed: int,
                solver: str, schedule: str, loras: dict | None = None) -> torch.Tensor:
    return OurSampler(model, loras).latents(prompt, negative, size, steps, seed, solver, schedule)


def pipeline(model: Path, solver: str):
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler, WanPipeline

    pipe = WanPipeline.from_pretrained(str(model), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = (FlowMatchEulerDiscreteScheduler(shift=12.0) if solver == "euler" else
                      UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=12.0))
    return pipe


def run_pipeline(pipe, prompt, negative, size, steps, seed, output_type):
    width, height, frames = size
    return pipe(prompt=prompt, negative_prompt=negative, height=height, width=width, num_frames=frames,
                num_inference_steps=steps, guidance_scale=4.0, guidance_scale_2=3.0, max_sequence_length=512,
                generator=torch.Generator().manual_seed(seed), output_type=output_type).frames


# ---------------------------------------------------------------------------------------------------
# Equivalence with diffusers


@pytest.mark.parametrize("solver,schedule", [("euler", "diffusers_euler"), ("unipc", "diffusers_unipc")])
def test_sampler_equals_diffusers_wan_pipeline(tiny_diffusers, solver, schedule):
    """Same tiny model, scheduler settings and seed, no LoRA: the same latents and the same frames."""
    size, steps, seed = (64, 48, 9), 10, 7
    # both experts take part: with shift 12 the first 6 (Euler) / 7 (UniPC) of 10 steps are high-noise
    split = flow_schedule(schedule, steps, 12.0).steps_per_expert(0.875)
    assert split["high"] and split["low"]
    pipe = pipeline(tiny_diffusers, solver)
    reference = run_pipeline(pipe, PROMPT, NEGATIVE, size, steps, seed, "latent")
    sampler = OurSampler(tiny_diffusers)
    ours = sampler.latents(PROMPT, NEGATIVE, size, steps, seed, solver, schedule)
    assert ours.shape == reference.shape == (1, 16, 3, 6, 8)
    assert torch.allclose(ours, reference, atol=1e-5, rtol=0), (ours - reference).abs().max()
    frames = sampler.frames(ours)
    reference_frames = torch.from_numpy(run_pipeline(pipe, PROMPT, NEGATIVE, size, steps, seed, "np")[0])
    assert frames.shape == reference_frames.shape == (9, 48, 64, 3)
    assert torch.allclose(frames, reference_frames, atol=1e-5, rtol=0)
    # and the comparison can fail: another seed gives other latents
    other = sampler.latents(PROMPT, NEGATIVE, size, steps, seed + 1, solver, schedule)
    assert (other - reference).abs().max() > 0.1


def test_fast_blocks_and_batched_guidance_equal_diffusers_blocks(tiny_diffusers):
    """The sampling speed-ups change no value: fast blocks + one batch of two against diffusers' blocks and two
    forwards a step, and the fast blocks with two forwards, all float32 on the CPU."""
    size, steps, seed = (64, 48, 9), 6, 11
    fast = OurSampler(tiny_diffusers)
    plain = OurSampler(tiny_diffusers, fast=False)
    batched = fast.latents(PROMPT, NEGATIVE, size, steps, seed, "unipc", "wan")
    reference = plain.latents(PROMPT, NEGATIVE, size, steps, seed, "unipc", "wan")
    fast.fast = False  # the fast blocks, two forwards a step
    separate = fast.latents(PROMPT, NEGATIVE, size, steps, seed, "unipc", "wan")
    assert torch.allclose(batched, reference, atol=1e-5, rtol=0), (batched - reference).abs().max()
    assert torch.allclose(separate, batched, atol=1e-5, rtol=0), (separate - batched).abs().max()  # float sums
    assert fast.parts.high.blocks[0].forward.__func__ is not plain.parts.high.blocks[0].forward.__func__
    assert (batched - reference).abs().max() < 1e-5 < batched.abs().max()


def test_lora_at_scale_zero_equals_the_base_model(tiny_diffusers, lora_files):
    size = (64, 48, 5)
    base = our_latents(tiny_diffusers, PROMPT, "", size, 6, 3, "euler", "wan")
    zero = our_latents(tiny_diffusers, PROMPT, "", size, 6, 3, "euler", "wan",
                       loras={"high": (lora_files["high"]["comfyui"], 0.0),
                              "low": (lora_files["low"]["diffusers"], 0.0)})
    assert torch.equal(zero, base)
    one = our_latents(tiny_diffusers, PROMPT, "", size, 6, 3, "euler", "wan",
                      loras={"high": (lora_files["high"]["comfyui"], 1.0)})
    assert (one - base).abs().max() > 1e-2  # the LoRA does change the video


def test_lora_scales_equal_diffusers_load_lora_weights(tiny_diffusers, lora_files):
    """Each expert's LoRA with its own scale: WanPipeline.load_lora_weights (+ transformer_2) and set_adapters."""
    size, steps, seed = (64, 48, 5), 6, 11
    pipe = pipeline(tiny_diffusers, "euler")
    pipe.load_lora_weights(str(lora_files["high"]["diffusers"]), adapter_name="high")
    pipe.load_lora_weights(str(lora_files["low"]["diffusers"]), adapter_name="low", load_into_transformer_2=True)
    pipe.set_adapters(["high", "low"], [0.5, 1.25])
    reference = run_pipeline(pipe, PROMPT, NEGATIVE, size, steps, seed, "latent")
    for naming in ("diffusers", "comfyui"):
        ours = our_latents(tiny_diffusers, PROMPT, NEGATIVE, size, steps, seed, "euler", "diffusers_euler",
                           loras={"high": (lora_files["high"][naming], 0.5), "low": (lora_files["low"][naming], 1.25)})
        assert torch.allclose(ours, reference, atol=1e-5, rtol=0), (naming, (ours - reference).abs().max())


def test_both_namings_merge_to_the_same_weights(tiny_diffusers, lora_files):
    merged = []
    for naming in ("diffusers", "comfyui"):
        model = load_components(tiny_diffusers, "auto", torch.float32, {"high"}).high
        lora = read_lora(lora_files["high"][naming], model)
        assert lora.naming == ("official" if naming == "comfyui" else "diffusers")
        assert len(lora.modules) == 16 and lora.ranks == [4] and lora.expert == "high"  # 2 blocks x 8 layers
        merge_lora(model, lora, 1.0)
        merged.append(model.blocks[1].attn2.to_v.weight.detach().clone())
    assert torch.allclose(merged[0], merged[1], atol=1e-6)


def test_diffusers_comfyui_and_kohya_namings_merge_to_the_same_exact_weights(tmp_path, tiny_diffusers):
    """One LoRA (rank 2, alpha 4: factor 2) on self-attention q, cross-attention o and the first FFN linear, written
    in the three namings users share; merged at scale 0.5 each adds exactly B @ A."""
    a = torch.zeros(2, 16)
    a[0, 0], a[1, 3] = 1.0, 0.5
    b = torch.zeros(16, 2)
    b[0, 0], b[5, 1], b[7, 0] = 0.25, 2.0, -1.0
    a_ffn, b_ffn = torch.zeros(2, 16), torch.zeros(32, 2)
    a_ffn[1, 2], b_ffn[9, 1] = 4.0, 0.125
    layers = {  # diffusers name: (official name, A, B)
        "blocks.0.attn1.to_q": ("blocks.0.self_attn.q", a, b),
        "blocks.1.attn2.to_out.0": ("blocks.1.cross_attn.o", a, b),
        "blocks.0.ffn.net.0.proj": ("blocks.0.ffn.0", a_ffn, b_ffn),
    }
    alpha = torch.tensor(4.0)
    files = {
        "diffusers": {k: v for name, (_, a_, b_) in layers.items()
                      for k, v in ((f"transformer.{name}.lora_A.weight", a_),
                                   (f"transformer.{name}.lora_B.weight", b_ * 2))},
        "official": {k: v for official, a_, b_ in layers.values()
                     for k, v in ((f"diffusion_model.{official}.lora_A.weight", a_),
                                  (f"diffusion_model.{official}.lora_B.weight", b_),
                                  (f"diffusion_model.{official}.alpha", alpha))},
        "kohya": {k: v for official, a_, b_ in layers.values()
                  for k, v in ((f"lora_unet_{official.replace('.', '_')}.lora_down.weight", a_),
                               (f"lora_unet_{official.replace('.', '_')}.lora_up.weight", b_),
                               (f"lora_unet_{official.replace('.', '_')}.alpha", alpha))},
    }
    base = load_components(tiny_diffusers, "auto", torch.float32, {"high"}).high.state_dict()
    deltas = {}
    for naming, tensors in files.items():
        model = load_components(tiny_diffusers, "auto", torch.float32, {"high"}).high
        tensors = {k: v.clone() for k, v in tensors.items()}  # safetensors refuses shared storage
        lora = read_lora(_bad_lora(tmp_path / f"{naming}.safetensors", tensors), model)
        assert lora.naming == naming and sorted(lora.modules) == sorted(layers) and lora.ranks == [2]
        assert merge_lora(model, lora, 0.5) == 3
        merged = model.state_dict()
        deltas[naming] = {name: merged[f"{name}.weight"] - base[f"{name}.weight"] for name in layers}
        unchanged = [k for k in base if not any(k == f"{name}.weight" for name in layers)]
        assert all(torch.equal(merged[k], base[k]) for k in unchanged)
    for naming in ("official", "kohya"):
        for name in layers:
            assert torch.equal(deltas[naming][name], deltas["diffusers"][name]), (naming, name)
    # By hand: 0.5 * (4 / 2) * B @ A. q row 0: 0.25 * A[0] -> column 0 gets 0.25; row 5: 2 * A[1] -> column 3 gets 1.
    q = deltas["kohya"]["blocks.0.attn1.to_q"]
    assert q.nonzero().tolist() == [[0, 0], [5, 3], [7, 0]]
    assert torch.allclose(q[[0, 5, 7], [0, 3, 0]], torch.tensor([0.25, 1.0, -1.0]), rtol=0, atol=1e-6)
    ffn = deltas["kohya"]["blocks.0.ffn.net.0.proj"]
    assert ffn.nonzero().tolist() == [[9, 2]] and abs(float(ffn[9, 2]) - 0.5) < 1e-6


def _bad_lora(path: Path, tensors: dict) -> Path:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def test_lora_errors_name_the_file_and_the_key(tmp_path, tiny_diffusers):
    model = load_components(tiny_diffusers, "auto", torch.float32, {"high"}).high
    a, b = torch.zeros(4, 16), torch.zeros(16, 4)
    with pytest.raises(LoraError, match="does not exist"):
        read_lora(tmp_path / "missing.safetensors", model)
    junk = _bad_lora(tmp_path / "junk.safetensors", {"lora_te_text_model_q.lora_down.weight": a})
    with pytest.raises(LoraError, match="lora_te_text_model_q.*kohya/musubi-tuner"):
        read_lora(junk, model)
    kohya = _bad_lora(tmp_path / "kohya.safetensors", {"lora_unet_blocks_0_q.lora_down.weight": a,
                                                        "lora_unet_blocks_0_q.lora_up.weight": b})
    with pytest.raises(LoraError, match="'lora_unet_blocks_0_q', which this model does not have"):
        read_lora(kohya, model)
    absent = _bad_lora(tmp_path / "absent.safetensors", {"transformer.blocks.7.attn1.to_q.lora_A.weight": a,
                                                          "transformer.blocks.7.attn1.to_q.lora_B.weight": b})
    with pytest.raises(LoraError, match=r"'blocks.7.attn1.to_q'.*2 blocks of width 16"):
        read_lora(absent, model)
    wide = _bad_lora(tmp_path / "wide.safetensors",
                     {"diffusion_model.blocks.0.self_attn.q.lora_A.weight": torch.zeros(4, 5120),
                      "diffusion_model.blocks.0.self_attn.q.lora_B.weight": torch.zeros(5120, 4)})
    with pytest.raises(LoraError, match=r"A \(4, 5120\).*\(16, 16\)"):
        read_lora(wide, model)
    half = _bad_lora(tmp_path / "half.safetensors", {"transformer.blocks.0.attn1.to_q.lora_A.weight": a})
    with pytest.raises(LoraError, match="lacks lora_B"):
        read_lora(half, model)
    (tmp_path / "text.safetensors").write_text("not a safetensors file")
    with pytest.raises(LoraError, match="not a readable safetensors"):
        read_lora(tmp_path / "text.safetensors", model)


# ---------------------------------------------------------------------------------------------------
# Memory plan


def _job_with_candidates(tmp_path, candidates, alternatives=()):
    raw = job_dict(tmp_path, tmp_path, [{"id": "0001", "prompt": "x", "category": None, "seed": 1}],
                   video={"width": 1280, "height": 720, "frames": 81})
    raw["memory"]["candidates"] = candidates
    raw["memory"]["alternatives"] = list(alternatives)
    return parse_sample_job(raw, tmp_path)


def _candidate(where, tiling, items):
    return {"inactive_expert": where, "vae_tiling": tiling, "peak_bytes": max(b for _, _, b in items),
            "items": [{"name": n, "phase": p, "bytes": b, "basis": "planner"} for n, p, b in items]}


def test_memory_takes_the_first_candidate_that_fits_and_explains_a_miss(tmp_path):
    resident = _candidate("gpu", False, [("expert weights", "denoise", 60 * GIB)])
    offload = _candidate("cpu", False, [("expert weights", "denoise", 30 * GIB), ("VAE decode", "decode", 9 * GIB)])
    tiled = _candidate("cpu", True, [("expert weights", "denoise", 30 * GIB), ("VAE decode", "decode", 2 * GIB)])
    job = _job_with_candidates(tmp_path, [resident, offload, tiled],
                               [{"label": "832x480, 81 frames", "peak_bytes": 20 * GIB},
                                {"label": "832x480, 49 frames", "peak_bytes": 18 * GIB}])
    assert choose_memory(job, 79 * GIB, "H100").inactive_expert == "gpu"
    assert choose_memory(job, 40 * GIB, "A100 40GB").inactive_expert == "cpu"
    assert choose_memory(job, None, "cpu") is job.memory.candidates[0]
    with pytest.raises(DoesNotFitError) as caught:
        choose_memory(job, 23 * GIB, "NVIDIA A10G")
    error = caught.value
    assert error.code == "does_not_fit"
    assert "needs 30.0 GiB" in error.problem and "NVIDIA A10G has 23.0 GiB usable" in error.problem
    assert "expert weights 30.0 GiB (denoise)" in error.problem and "Planner (H100)" in error.problem
    assert "832x480, 81 frames needs 20.0 GiB; 832x480, 49 frames needs 18.0 GiB" in error.remedy
    with pytest.raises(DoesNotFitError, match="more memory"):
        choose_memory(job, 10 * GIB, "tiny GPU")


# ---------------------------------------------------------------------------------------------------
# The stage end to end


PROMPTS = [
    {"id": "0001", "prompt": "전통 한옥 마을의 지붕과 담장이 보인다.", "category": "공간/건축", "seed": 42},
    {"id": "0002", "prompt": PROMPT, "category": "축제", "seed": 43},
]


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                          "stream=codec_name,width,height,nb_read_frames,r_frame_rate,pix_fmt", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["streams"][0]


def test_stage_writes_videos_sidecars_and_events_and_resumes(tmp_path, tiny_official, lora_files):
    out = tmp_path / "samples"
    job = job_dict(out, tiny_official, copy.deepcopy(PROMPTS),
                   loras={"high": {"path": str(lora_files["high"]["comfyui"]), "scale": 0.8}, "low": None})
    path = write_job(out, job)
    assert run_stage("sample", path, echo=False) == 0
    events = read_events(out / "sample-events.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished" and events[-1]["status"] == "completed"
    plan = next(e for e in events if e["event"] == "sample_plan")
    assert (plan["steps_high"], plan["steps_low"]) == (3, 1)  # wan schedule, shift 12, 4 steps
    assert plan["loras"]["high"]["scale"] == 0.8 and plan["loras"]["low"] is None
    steps = [e for e in events if e["event"] == "sample_step"]
    assert [(e["video"], e["step"], e["expert"], e["guidance"]) for e in steps[:4]] == [
        (1, 1, "high", 4.0), (1, 2, "high", 4.0), (1, 3, "high", 4.0), (1, 4, "low", 3.0)]
    assert len(steps) == 8
    for event in events:
        assert set(EVENT_FIELDS[event["event"]]) <= set(event), event["event"]
    assert any(e["event"] == "warning" and e["code"] == "float32_on_cpu" for e in events)

    for item in PROMPTS:
        video = out / "videos" / f"{item['id']}.mp4"
        probe = ffprobe(video)
        assert probe["codec_name"] == "h264" and probe["pix_fmt"] == "yuv420p"
        assert (probe["width"], probe["height"], int(probe["nb_read_frames"])) == (64, 48, 5)
        assert probe["r_frame_rate"] == "16/1"
        assert (out / "videos" / f"{item['id']}.jpg").stat().st_size > 0
        sidecar = json.loads((out / "videos" / f"{item['id']}.json").read_text())
        assert sidecar["prompt"] == item["prompt"] and sidecar["category"] == item["category"]
        assert sidecar["seed"] == item["seed"] and sidecar["negative_prompt"] == NEGATIVE
        assert sidecar["sampler"]["steps_high"] == 3 and sidecar["sampler"]["guidance_low"] == 3.0
        assert sidecar["loras"]["high"]["scale"] == 0.8 and sidecar["loras"]["high"]["modules_merged"] == 16
        assert sidecar["loras"]["low"] is None and sidecar["model"]["layout"] == "official"
        assert sidecar["video"]["frames"] == 5 and sidecar["video"]["duration_seconds"] == 5 / 16
    finished = events[-1]
    assert finished["summary"]["videos_new"] == 2 and len(finished["outputs"]["videos"]) == 2

    # Again with the same job: both videos are kept, nothing is sampled.
    before = (out / "videos" / "0001.mp4").stat().st_mtime_ns
    assert run_stage("sample", path, echo=False) == 0
    again = read_events(out / "sample-events.jsonl")[len(events):]
    assert not [e for e in again if e["event"] == "sample_step"]
    assert [e["existing"] for e in again if e["event"] == "sample_video"] == [True, True]
    assert (out / "videos" / "0001.mp4").stat().st_mtime_ns == before

    # Another seed for one prompt: refused without --overwrite, redone with it (only that one).
    job["prompts"][1]["seed"] = 99
    write_job(out, job)
    assert run_stage("sample", path, echo=False) == 1
    conflict = [e for e in read_events(out / "sample-events.jsonl") if e["event"] == "error"][-1]
    assert conflict["code"] == "output_conflict" and "0002" in conflict["problem"]
    assert "--overwrite" in conflict["remedy"]
    job["output"]["overwrite"] = True
    write_job(out, job)
    count = len(read_events(out / "sample-events.jsonl"))
    assert run_stage("sample", path, echo=False) == 0
    last = read_events(out / "sample-events.jsonl")[count:]
    assert {e["id"] for e in last if e["event"] == "sample_step"} == {"0002"}
    assert json.loads((out / "videos" / "0002.json").read_text())["seed"] == 99


def test_a_job_names_the_model_by_its_repo_id_in_the_hub_cache(tmp_path, monkeypatch, tiny_diffusers):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    hub_cache_with(tmp_path / "hub", "Wan-AI/Wan2.2-T2V-A14B-Diffusers", tiny_diffusers)
    out = tmp_path / "s"
    job = job_dict(out, tiny_diffusers, [{"id": "x1", "prompt": PROMPT, "category": None, "seed": 1}],
                   sampler={"steps": 2}, video={"width": 32, "height": 32, "frames": 1})
    job["model"]["path"] = "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
    assert parse_sample_job(job, tmp_path).model.path == "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
    assert run_stage("sample", write_job(out, job), echo=False) == 0
    model = json.loads((out / "videos" / "x1.json").read_text())["model"]
    assert model == {"path": "Wan-AI/Wan2.2-T2V-A14B-Diffusers", "layout": "diffusers", "dtype": "float32",
                     "high_noise_file": None, "low_noise_file": None}


def test_long_prompts_are_cut_with_a_warning(tmp_path, tiny_diffusers):
    out = tmp_path / "s"
    prompts = [{"id": "long", "prompt": " ".join(["한옥 마을의 풍경"] * 20), "category": None, "seed": 1}]
    job = job_dict(out, tiny_diffusers, prompts, sampler={"steps": 2, "text_length": 16})
    assert run_stage("sample", write_job(out, job), echo=False) == 0
    warnings = [e for e in read_events(out / "sample-events.jsonl") if e["event"] == "warning"
                and e["code"] == "prompt_truncated"]
    # the negative prompt (id null) is longer than 16 tokens too
    assert [w["id"] for w in warnings] == [None, "long"] and warnings[1]["tokens"] > 16
    assert json.loads((out / "videos" / "long.json").read_text())["prompt_truncated"] is True


@pytest.mark.parametrize("change,key", [
    (lambda j: j["sampler"].pop("shift"), "sampler.shift"),
    (lambda j: j["video"].update(frames=8), "video.frames"),
    (lambda j: j["sampler"].update(solver="dpm++"), "sampler.solver"),
    (lambda j: j["sampler"].update(guidance_low=0.5), "sampler.guidance_low"),
    (lambda j: j["sampler"].update(attention="flash3"), "sampler.attention"),
    (lambda j: j["sampler"].pop("attention"), "sampler.attention"),
    (lambda j: j["prompts"][1].update(id="0001"), "prompts[1].id"),
    (lambda j: j["prompts"][0].update(id="../x"), "prompts[0].id"),
    (lambda j: j["memory"].update(candidates=[]), "memory.candidates"),
    (lambda j: j.update(extra=1), "extra"),
])
def test_bad_jobs_name_the_key(tmp_path, change, key):
    job = job_dict(tmp_path / "o", tmp_path, copy.deepcopy(PROMPTS))
    change(job)
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")) as caught:
        parse_sample_job(job, tmp_path)
    assert "sample job" in caught.value.problem and "config.resolved.json" not in caught.value.remedy


def test_cli_bad_job_exits_2_with_an_error_event(tmp_path):
    job = job_dict(tmp_path / "o", tmp_path, copy.deepcopy(PROMPTS))
    job["sampler"].pop("shift")
    env = dict(os.environ, PYTHONPATH=str(ENGINE_DIR))
    command = [sys.executable, "-m", "wanlora_engine", "sample", "--config", str(write_job(tmp_path, job))]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    (event,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert event["event"] == "error" and event["code"] == "config_invalid" and "sampler.shift" in event["problem"]


def test_sigterm_keeps_finished_videos_and_exits_130(tmp_path, tiny_diffusers):
    out = tmp_path / "s"
    prompts = [{"id": f"{i:04d}", "prompt": f"{PROMPT} {i}", "category": None, "seed": i} for i in range(1, 30)]
    path = write_job(out, job_dict(out, tiny_diffusers, prompts, sampler={"steps": 2},
                                   video={"width": 32, "height": 32, "frames": 1}))
    env = dict(os.environ, PYTHONPATH=str(ENGINE_DIR))
    process = subprocess.Popen([sys.executable, "-m", "wanlora_engine", "sample", "--config", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    for line in process.stdout:
        if json.loads(line)["event"] == "sample_video":
            process.send_signal(signal.SIGTERM)
            break
    rest = process.stdout.read()
    assert process.wait(timeout=120) == 130
    finished = json.loads(rest.strip().splitlines()[-1])
    assert finished["event"] == "run_finished" and finished["status"] == "interrupted"
    done = sorted(p.name for p in (out / "videos").glob("*.mp4"))
    assert done and len(done) < len(prompts)
    assert not list((out / "videos").glob("*.tmp*"))


def test_a_kernel_the_gpu_cannot_run_is_refused_before_a_weight_is_loaded(tmp_path, monkeypatch):
    """sample.attention = 'fa3' on a GPU without FlashAttention-3: a config error naming the key and the fix, raised
    right after the device is known (the model path does not even exist)."""
    import wanlora_engine.fast_model as fast_model
    import wanlora_engine.sample as sample

    reasons = {"fa3": "FlashAttention-3 is not installed (bench/build_fa3.sh builds it for the Wan shapes)"}
    monkeypatch.setattr(fast_model, "kernel_available", lambda backend, device: reasons.get(backend))
    monkeypatch.setattr(sample, "sample_device", lambda job: torch.device("cuda", 0))
    job = parse_sample_job(job_dict(tmp_path / "o", tmp_path / "no-model", copy.deepcopy(PROMPTS),
                                    sampler={"attention": "fa3"}), tmp_path)
    with pytest.raises(ConfigError) as caught:
        sample.run_sample(job, None)
    assert caught.value.problem == ("sample.attention = 'fa3' cannot run here: FlashAttention-3 is not installed "
                                    "(bench/build_fa3.sh builds it for the Wan shapes)")
    assert "sample.attention = 'auto'" in caught.value.remedy
    # on the CPU every kernel runs as torch's CPU math: nothing to refuse
    fast_model.require_kernel("fa3", torch.device("cpu"), "sample.attention")


def test_events_fixture_has_every_sample_event():
    events = [json.loads(line) for line in (FIXTURES / "events.sample.jsonl").read_text().splitlines()]
    for name in ("sample_plan", "sample_step", "sample_video"):
        (example,) = [e for e in events if e["event"] == name][:1]
        assert set(EVENT_FIELDS[name]) <= set(example)
    assert any(e["event"] == "run_finished" and e["stage"] == "sample" for e in events)


def test_swift_written_contract_job_parses_with_every_value():
    """engine/tests/fixtures/sample-job.contract.json is what Swift's SampleJobBuilder writes (SampleJobTests)."""
    raw = json.loads((FIXTURES / "sample-job.contract.json").read_text())
    job = parse_sample_job(raw, FIXTURES)
    sampler = job.sampler
    assert (sampler.solver, sampler.schedule, sampler.steps, sampler.shift) == ("euler", "wan", 40, 12.0)
    assert (job.sampler.guidance_high, job.sampler.guidance_low, job.model.boundary) == (4.0, 3.0, 0.875)
    assert job.sampler.negative_prompt.startswith("色调艳丽") and job.sampler.text_length == 512
    assert job.sampler.attention == "auto"
    assert (job.video.width, job.video.height, job.video.frames, job.video.fps) == (1280, 720, 81, 16)
    assert job.loras.high.scale == 0.8 and job.loras.low is None
    assert [(p.id, p.category, p.seed) for p in job.prompts] == [("0001", None, 42), ("0002", "축제", 7)]
    assert [(c.inactive_expert, c.vae_tiling) for c in job.memory.candidates] == [
        ("gpu", False), ("gpu", True), ("cpu", False), ("cpu", True)]
    offload = job.memory.candidates[2]
    assert offload.peak_bytes == 35_404_312_652
    assert offload.peak_bytes == max(sum(i.bytes for i in offload.items if i.phase == phase)
                                     for phase in ("encode", "denoise", "decode"))
    # An 80 GB H100 (79.6 GiB, 1 GiB reserved) keeps both experts; a 40 GB A100 swaps; 24 GB fits nothing.
    assert choose_memory(job, 81_559 * 2**20 - GIB, "H100").inactive_expert == "gpu"
    assert choose_memory(job, 40_536 * 2**20 - GIB, "A100 40GB") is offload
    with pytest.raises(DoesNotFitError, match="needs 33.0 GiB"):
        choose_memory(job, 23 * GIB, "RTX 4090")


def test_a_real_sidecar_has_the_fields_of_the_fixture(tmp_path, tiny_diffusers):
    """engine/tests/fixtures/sample-sidecar.json is what Swift's gallery decodes (SampleGalleryTests)."""
    out = tmp_path / "s"
    job = job_dict(out, tiny_diffusers, [{"id": "x1", "prompt": PROMPT, "category": None, "seed": 1}],
                   sampler={"steps": 2}, video={"width": 32, "height": 32, "frames": 1})
    assert run_stage("sample", write_job(out, job), echo=False) == 0
    real = json.loads((out / "videos" / "x1.json").read_text())
    fixture = json.loads((FIXTURES / "sample-sidecar.json").read_text())
    assert set(real) == set(fixture)
    for key, value in fixture.items():
        if isinstance(value, dict) and key != "loras":
            assert set(real[key]) == set(value), key


@pytest.mark.parametrize("solver", ["euler", "unipc"])
def test_denoise_keeps_every_tensor_on_the_experts_device(tiny_diffusers, solver):
    """The sampling loop on the meta device (a GPU stand-in: mixing in a CPU tensor fails there as on CUDA)."""
    parts = load_components(tiny_diffusers, "auto", torch.float32, {"high", "low"})
    meta = torch.device("meta")
    pool = ExpertPool({"high": parts.high, "low": parts.low}, meta, offload=False)
    text = torch.zeros(1, 512, 32)
    out = denoise(pool, flow_schedule("wan", 4, 12.0), solver, 0.875, {"high": 4.0, "low": 3.0}, text, text,
                  initial_noise(0, (1, 16, 2, 6, 8)), torch.float32)
    assert out.device == meta and out.shape == (1, 16, 2, 6, 8)
