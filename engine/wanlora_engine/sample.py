"""Stage `sample`: text-to-video with both Wan2.2 experts and their LoRAs, the Wan2.2 way.

For each prompt of the job (sample-job.json, see sample_job.py):
1. UMT5 encodes the prompt and the negative prompt (cleaned as the training captions were, cut at
   text_length tokens, zero-padded to text_length), all prompts first, so the text encoder leaves the GPU
   before the experts arrive;
2. the initial noise comes from a CPU generator seeded with the prompt's seed (the same noise on any device);
3. N steps of the chosen solver (Euler or UniPC) walk the schedule of solvers.py; a step at timestep
   t >= boundary * T runs the high-noise expert with guidance_high, the others the low-noise expert with
   guidance_low; each expert's LoRA was merged into it with its own scale before sampling;
4. the latents are un-normalised (x * latents_std + latents_mean) and decoded by the VAE (float32, tiled when
   the memory plan says so) into frames in [0, 1], then written as an H.264 MP4, a JPEG poster and a JSON
   sidecar of every setting.

Memory on one GPU: the job lists the planner's candidates (inactive expert on the GPU or waiting in host
memory, VAE tiling off or on) with their peaks; the first that fits the card is used, and a clear
`does_not_fit` error quotes the planner's items when none does. A finished video whose sidecar records the
same settings is kept, so a stopped run continues where it stopped.

Speed (issue 20): the experts run the engine's fast blocks (fast_model.py) for inference: no autograd state
(torch.inference_mode), fused norm/modulation/RoPE, the attention kernel measured fastest (cuDNN on Hopper),
and classifier-free guidance's two passes in one batch of two when the memory plan has room for a second
sample's activations. Each LoRA is merged into its expert's weights (lora_merge.merge_lora) for the run.

Several GPUs (`wanlora sample --gpus N [--ulysses U] [--fsdp]`, torchrun; distributed.py's layout): the videos
still to make are dealt round-robin to the N/U data-parallel groups; the U ranks of a group share each video's
tokens (Ulysses, ulysses.py); --fsdp shards both experts over all ranks (every group then runs the same number
of videos: a group with none left runs its round on a stand-in prompt and writes nothing). The first rank of a
group decodes and writes its videos; rank 0 reports every video. The noise comes from the prompt's seed and
nothing else, so a prompt and seed give the same video in every layout.
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import distributed
from .devices import resolve_device
from .encoding import clean_caption, decode_latents, latent_shape
from .errors import ConfigError, EngineError
from .events import EventWriter, log
from .fast_model import FastBlockOptions, FastBlocks, enable_fast_blocks, require_kernel
from .loading import DTYPES, load_components
from .lora_merge import LoraFile, file_sha256, merge_lora, read_lora
from .sample_job import MemoryCandidate, PromptItem, SampleJob, job_to_json
from .solvers import FlowSchedule, flow_schedule, guided_velocity, make_solver, steps_table
from .video_out import frames_to_uint8, write_json, write_mp4, write_poster

SIDECAR_SCHEMA_VERSION = 1
GIB = float(1 << 30)


class DoesNotFitError(EngineError):
    """No memory plan fits the GPU."""

    code = "does_not_fit"


class OutputConflictError(EngineError):
    """The output folder holds videos made with other settings."""

    code = "output_conflict"


# ---------------------------------------------------------------------------------------------------
# Pure helpers (unit-tested)


def gib(value: int | float) -> str:
    return f"{value / GIB:.1f} GiB"


def describe_candidate(candidate: MemoryCandidate) -> str:
    """'expert weights 26.6 GiB (denoise) + ...': the planner's items of one candidate, largest first."""
    items = sorted(candidate.items, key=lambda item: -item.bytes)
    return ", ".join(f"{item.name} {gib(item.bytes)} ({item.phase})" for item in items)


def placement_label(candidate: MemoryCandidate) -> str:
    where = "both experts on the GPU" if candidate.inactive_expert == "gpu" else "inactive expert in host memory"
    return f"{where}, VAE tiling {'on' if candidate.vae_tiling else 'off'}"


def choose_memory(job: SampleJob, usable_bytes: int | None, device_name: str) -> MemoryCandidate:
    """The first candidate whose planned peak fits `usable_bytes` (None: not a GPU, the first candidate)."""
    candidates = job.memory.candidates
    if usable_bytes is None:
        return candidates[0]
    for candidate in candidates:
        if candidate.peak_bytes <= usable_bytes:
            return candidate
    best = min(candidates, key=lambda c: c.peak_bytes)
    video = job.video
    alternatives = [a for a in job.memory.alternatives if a.peak_bytes <= usable_bytes]
    if alternatives:
        remedy = "sample smaller videos: " + "; ".join(
            f"{a.label} needs {gib(a.peak_bytes)}" for a in sorted(alternatives, key=lambda a: -a.peak_bytes))
    else:
        remedy = "use a GPU with more memory (wanlora plan --list-gpus shows the catalog)"
    raise DoesNotFitError(
        f"sampling {video.frames} frames at {video.width}x{video.height} needs {gib(best.peak_bytes)} on the GPU even "
        f"with the least memory ({placement_label(best)}); {device_name} has {gib(usable_bytes)} usable. "
        f"Planner ({job.memory.plan_gpu or 'catalog'}): {describe_candidate(best)}",
        remedy,
    )


def settings_digest(item: PromptItem, job: SampleJob, loras: dict[str, dict[str, Any] | None], vae_tiling: bool,
                    dtype: str) -> str:
    """Everything that decides a video's pixels, hashed: a sidecar with the same digest is that video."""
    s, v, m = job.sampler, job.video, job.model
    key = {
        "prompt": item.prompt, "seed": item.seed, "negative_prompt": s.negative_prompt, "solver": s.solver,
        "schedule": s.schedule, "steps": s.steps, "shift": s.shift, "guidance_high": s.guidance_high,
        "guidance_low": s.guidance_low, "text_length": s.text_length, "boundary": m.boundary,
        "num_train_timesteps": m.num_train_timesteps, "width": v.width, "height": v.height, "frames": v.frames,
        "fps": v.fps, "crf": v.crf, "model": str(m.path.resolve() if isinstance(m.path, Path) else m.path),
        "dtype": dtype, "vae_tiling": vae_tiling,
        "loras": {k: (None if x is None else {"sha256": x["sha256"], "scale": x["scale"]}) for k, x in loras.items()},
    }
    # Only when set, so that the digests of videos made before these keys existed stay the same.
    for name, file in (("high_noise_file", m.high_noise_file), ("low_noise_file", m.low_noise_file)):
        if file is not None:
            key[name] = str(file.resolve())
    return hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _optional_str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def output_paths(folder: Path, item: PromptItem) -> dict[str, Path]:
    return {"video": folder / f"{item.id}.mp4", "poster": folder / f"{item.id}.jpg",
            "sidecar": folder / f"{item.id}.json"}


def existing_digest(paths: dict[str, Path]) -> str | None:
    """The settings digest of a finished video, else None.

    Finished: the sidecar (written last) is readable and the MP4 has the byte count the sidecar recorded, so a
    video cut short by a stopped run (or a sidecar without its video) is made again.
    """
    if not (paths["video"].is_file() and paths["sidecar"].is_file()):
        return None
    try:
        sidecar = json.loads(paths["sidecar"].read_text(encoding="utf-8"))
        recorded = sidecar.get("video", {}).get("bytes")
        if recorded is not None and paths["video"].stat().st_size != recorded:
            return None
        return sidecar.get("settings_digest")
    except (json.JSONDecodeError, OSError, AttributeError):
        return None


# ---------------------------------------------------------------------------------------------------
# Model pieces


@torch.no_grad()
def encode_prompt(tokenizer: Any, text_encoder: Any, text: str, length: int, device: torch.device
                  ) -> tuple[torch.Tensor, int, bool]:
    """UMT5 last hidden state of one prompt, cut at `length` tokens and zero-padded to `length`: [1, length, D].

    Returns the embedding (on the CPU), the prompt's full token count (EOS included) and whether it was cut.
    """
    cleaned = clean_caption(text)
    full = len(tokenizer(cleaned, add_special_tokens=True).input_ids)
    batch = tokenizer([cleaned], padding="max_length", max_length=length, truncation=True, add_special_tokens=True,
                      return_attention_mask=True, return_tensors="pt")
    mask = batch.attention_mask
    hidden = text_encoder(batch.input_ids.to(device), attention_mask=mask.to(device)).last_hidden_state
    tokens = int(mask.sum())
    embedding = torch.zeros(1, length, hidden.shape[-1], dtype=hidden.dtype)
    embedding[0, :tokens] = hidden[0, :tokens].cpu()
    return embedding, full, full > length


def initial_noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal float32 latents from a CPU generator: a seed gives the same noise on every machine."""
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)


class ExpertPool:
    """The two experts; with `offload` only the active one is on the GPU and the other waits in host memory."""

    def __init__(self, experts: dict[str, Any], device: torch.device, offload: bool) -> None:
        self.experts = experts
        self.device = device
        self.offload = offload and device.type == "cuda"
        self.active: str | None = None
        self.swaps = 0
        self.swap_seconds = 0.0
        for model in experts.values():
            model.to("cpu" if self.offload else device)

    def activate(self, name: str) -> Any:
        if self.offload and self.active != name:
            started = time.monotonic()
            for other, model in self.experts.items():
                if other != name:
                    model.to("cpu")
            self.experts[name].to(self.device)
            torch.cuda.synchronize(self.device)
            self.swaps += 1
            self.swap_seconds += time.monotonic() - started
        self.active = name
        return self.experts[name]

    def park(self) -> None:
        """Before decoding: with offload, every expert goes to host memory so the VAE has the GPU."""
        if self.offload and self.active is not None:
            self.experts[self.active].to("cpu")
            self.active = None
            torch.cuda.empty_cache()


@dataclass
class StepInfo:
    index: int  # 0-based
    timestep: float
    sigma: float
    expert: str
    guidance: float
    seconds: float


def inference_blocks(model: Any, device: torch.device, attention: str = "auto") -> FastBlocks:
    """The fast blocks for sampling: frozen weights, no checkpointing or kept activations (nothing is
    differentiated), the fused elementwise functions compiled on CUDA, the attention kernel `attention`
    (sample.attention; `auto`: fast_model's rule, cuDNN on Hopper, SPEC §8 measured it fastest of torch's kernels).
    The output is diffusers' block's (test_sample.py checks the sampler against WanPipeline)."""
    model.requires_grad_(False)
    model.eval()
    options = FastBlockOptions(attention=attention, keep_attention=False, checkpoint=False, offload="none",
                               compile=device.type == "cuda")
    return enable_fast_blocks(model, options, device=device)


def cfg_batch_fits(candidate: MemoryCandidate, usable_bytes: int | None) -> bool:
    """Whether classifier-free guidance's two passes can run as one batch of two: the planned denoising
    memory plus a second sample's activations (the planner's activation items) fits `usable_bytes`
    (None: not a GPU, always)."""
    if usable_bytes is None:
        return True
    denoise_items = [item for item in candidate.items if item.phase == "denoise"]
    extra = sum(item.bytes for item in denoise_items if "activations" in item.name)
    return sum(item.bytes for item in denoise_items) + extra <= usable_bytes


def denoise(pool: ExpertPool, schedule: FlowSchedule, solver_name: str, boundary: float, guidance: dict[str, float],
            prompt: torch.Tensor, negative: torch.Tensor, noise: torch.Tensor, dtype: torch.dtype,
            on_step: Callable[[StepInfo], None] | None = None, cfg_batch: bool = False,
            inference_mode: bool = True) -> torch.Tensor:
    """Run the schedule from `noise` ([1, C, F, H, W] float32) and return the final latents (float32, on device).

    Each step: the expert of its timestep predicts the velocity for the prompt and (when its guidance is not 1)
    the negative prompt, the two are combined by classifier-free guidance in the expert's dtype, and the solver
    moves the float32 latents to the next sigma. `cfg_batch`: the two predictions come from one forward of a
    batch of two (prompt first), which computes every sample as the two forwards do. `inference_mode` False runs
    under no_grad instead (FSDP's gathered weights must not become inference tensors).
    """
    device = pool.device
    with torch.inference_mode() if inference_mode else torch.no_grad():
        latents = noise.to(device)
        prompt = prompt.to(device, dtype)
        negative = negative.to(device, dtype)
        both = torch.cat([prompt, negative]) if cfg_batch else None
        solver = make_solver(solver_name, schedule.sigmas.to(device))
        experts = schedule.experts(boundary)
        for index in range(schedule.steps):
            started = time.monotonic()
            expert = experts[index]
            model = pool.activate(expert)
            scale = guidance[expert]
            model_input = latents.to(dtype)
            uncond = None
            if scale != 1.0 and both is not None:
                timestep = schedule.timesteps[index].to(device).expand(2)
                out = model(hidden_states=torch.cat([model_input, model_input]), timestep=timestep,
                            encoder_hidden_states=both, return_dict=False)[0]
                cond, uncond = out[:1], out[1:]
            else:
                timestep = schedule.timesteps[index].to(device).expand(1)
                cond = model(hidden_states=model_input, timestep=timestep, encoder_hidden_states=prompt,
                             return_dict=False)[0]
                if scale != 1.0:
                    uncond = model(hidden_states=model_input, timestep=timestep, encoder_hidden_states=negative,
                                   return_dict=False)[0]
            velocity = guided_velocity(cond, uncond, scale)
            latents = solver.step(index, velocity, latents)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if on_step is not None:
                on_step(StepInfo(index, float(schedule.timesteps[index]), float(schedule.sigmas[index]), expert,
                                 scale, time.monotonic() - started))
        return latents


# ---------------------------------------------------------------------------------------------------
# The stage


def _free_memory() -> None:
    """Collect what the caller just dropped and give cached GPU blocks back."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# torch >= 2.5 names it at the top level; older releases only under torch.cuda.
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def _versions() -> dict[str, str]:
    import diffusers

    from . import __version__

    return {"engine": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__}


def sample_device(job: SampleJob) -> torch.device:
    return resolve_device(job.device, "the sample job's device",
                          "run on a machine with a GPU, or pass --device cpu (slow: for tiny models)")


def videos_of_group(todo: list[Any], layout: distributed.Layout) -> list[Any | None]:
    """The videos data-parallel group `layout.dp_rank` makes, one per round, round-robin over the groups;
    None for a round in which the group has none left (the last round when the groups do not divide them)."""
    groups = layout.data_parallel
    rounds = -(-len(todo) // groups)
    return [todo[r * groups + layout.dp_rank] if r * groups + layout.dp_rank < len(todo) else None
            for r in range(rounds)]


def run_sample(job: SampleJob, events: EventWriter, groups: distributed.Groups | None = None
               ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Generate every video of the job; returns (status, outputs, summary) for `run_finished`.

    `groups`: the started layout under torchrun (every rank calls this); None for one process.
    """
    started = time.monotonic()
    if groups is None:
        groups = distributed.Groups(distributed.Layout(), sample_device(job))
    layout, device = groups.layout, groups.device
    require_kernel(job.sampler.attention, device, "sample.attention")  # before a weight is loaded
    dtype_name = job.model.dtype if device.type == "cuda" else "float32"
    if device.type != "cuda" and job.model.dtype != "float32":
        events.warning("float32_on_cpu", f"model.dtype {job.model.dtype} is for GPUs; the CPU run keeps the "
                       "experts and the text encoder in float32")
    dtype = DTYPES[dtype_name]
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"

    # Memory: the first of the planner's candidates that fits the real card.
    usable = None
    total = None
    if device.type == "cuda":
        total = int(torch.cuda.get_device_properties(device).total_memory)
        usable = total - job.memory.reserved_bytes
        torch.cuda.reset_peak_memory_stats(device)
    # With FSDP each GPU holds 1/world of the experts: the one-GPU candidates overstate it, and the
    # planner checked the sharded layout before the launch (`wanlora plan`).
    sharded = layout.fsdp and layout.distributed
    memory = job.memory.candidates[0] if sharded else choose_memory(job, usable, device_name)
    if memory is not job.memory.candidates[0]:
        first = job.memory.candidates[0]
        events.warning("memory_fallback", f"the preferred placement ({placement_label(first)}) needs "
                       f"{gib(first.peak_bytes)}, {device_name} has {gib(usable or 0)} usable: using "
                       f"{placement_label(memory)} ({gib(memory.peak_bytes)})")

    schedule = flow_schedule(job.sampler.schedule, job.sampler.steps, job.sampler.shift, job.model.num_train_timesteps)
    table = steps_table(schedule, job.model.boundary)
    per_expert = schedule.steps_per_expert(job.model.boundary)

    loras: dict[str, dict[str, Any] | None] = {}
    for expert in ("high", "low"):
        slot = getattr(job.loras, expert)
        if slot is None:
            loras[expert] = None
            continue
        if not slot.path.is_file():
            raise EngineError(f"LoRA file {slot.path} (--lora-{expert}) does not exist",
                              "pass a file that `wanlora train` wrote, e.g. runs/NAME/lora/"
                              f"{'high' if expert == 'high' else 'low'}_noise.comfyui.safetensors", code="lora_invalid")
        loras[expert] = {"path": str(slot.path), "scale": slot.scale, "sha256": file_sha256(slot.path)}

    out_dir = job.output.dir / "videos"
    out_dir.mkdir(parents=True, exist_ok=True)
    todo: list[tuple[int, PromptItem, str]] = []
    existing: list[tuple[int, PromptItem]] = []
    # Every rank reads the folder before any rank writes into it.
    distributed.barrier()
    for index, item in enumerate(job.prompts):
        digest = settings_digest(item, job, loras, memory.vae_tiling, dtype_name)
        found = existing_digest(output_paths(out_dir, item))
        if found == digest:
            existing.append((index, item))
        elif found is not None and not job.output.overwrite:
            raise OutputConflictError(
                f"{out_dir / (item.id + '.json')} records a video made with other settings than this job's "
                f"prompt {item.id}",
                "write into a new --out folder, or pass --overwrite to replace the videos whose settings changed",
            )
        else:
            todo.append((index, item, digest))
    distributed.barrier()
    mine = videos_of_group(todo, layout)
    cfg_batch = cfg_batch_fits(memory, usable)

    events.emit(
        "sample_plan", videos=len(job.prompts), videos_existing=len(existing), steps=schedule.steps,
        steps_high=len(per_expert["high"]), steps_low=len(per_expert["low"]), schedule=table,
        solver=job.sampler.solver, schedule_kind=job.sampler.schedule, shift=job.sampler.shift,
        guidance_high=job.sampler.guidance_high, guidance_low=job.sampler.guidance_low, boundary=job.model.boundary,
        width=job.video.width, height=job.video.height, frames=job.video.frames, fps=job.video.fps, loras=loras,
        inactive_expert=memory.inactive_expert, vae_tiling=memory.vae_tiling,
        text_encoder_device=job.memory.text_encoder_device, planned_peak_bytes=memory.peak_bytes,
        device_total_bytes=total, plan_gpu=job.memory.plan_gpu, output_dir=str(job.output.dir),
        cfg_batch=cfg_batch, **layout.describe(),
    )
    for index, item in existing:
        paths = output_paths(out_dir, item)
        events.emit("sample_video", video=index + 1, videos=len(job.prompts), id=item.id, category=item.category,
                    path=str(paths["video"]), sidecar=str(paths["sidecar"]), poster=str(paths["poster"]),
                    seconds=0.0, seed=item.seed, existing=True)

    summary: dict[str, Any] = {"videos": len(job.prompts), "videos_new": 0, "videos_existing": len(existing),
                               "steps_high": len(per_expert["high"]), "steps_low": len(per_expert["low"])}
    outputs: dict[str, Any] = {"dir": str(job.output.dir),
                               "videos": [str(output_paths(out_dir, item)["video"]) for item in job.prompts]}
    if not todo:
        summary.update(seconds=time.monotonic() - started, seconds_per_video=None, gpu_memory_peak_bytes=None,
                       expert_swaps=0, swap_seconds=0.0)
        return "completed", outputs, summary

    # 1. Text: every prompt of this run and the negative prompt, then the encoder is released.
    text_device = device if (device.type == "cuda" and job.memory.text_encoder_device == "gpu") else torch.device("cpu")
    phase_started = time.monotonic()
    text_parts = load_components(job.model.path, job.model.layout, dtype, {"text_encoder", "tokenizer"})
    tokenizer, text_encoder = text_parts.tokenizer, text_parts.text_encoder.to(text_device)
    length = job.sampler.text_length
    negative, negative_tokens, negative_cut = encode_prompt(tokenizer, text_encoder, job.sampler.negative_prompt,
                                                            length, text_device)
    if negative_cut:
        events.warning("prompt_truncated", f"the negative prompt has {negative_tokens} tokens; only the first "
                       f"{length} are used", id=None, tokens=negative_tokens, text_length=length)
    embeddings: dict[str, tuple[torch.Tensor, int, bool]] = {}
    stand_in = todo[0][1]  # what a group without a video runs under FSDP (its collectives must match)
    encode = [entry[1] for entry in mine if entry is not None]
    if sharded and None in mine and stand_in not in encode:
        encode.append(stand_in)
    for done, item in enumerate(encode, start=1):
        embeddings[item.id] = encode_prompt(tokenizer, text_encoder, item.prompt, length, text_device)
        _, tokens, cut = embeddings[item.id]
        if cut:
            events.warning("prompt_truncated", f"prompt {item.id} has {tokens} tokens; only the first {length} are "
                           "used (the model reads at most that many)", id=item.id, tokens=tokens, text_length=length)
        elapsed = max(time.monotonic() - phase_started, 1e-9)
        events.emit("progress", stage="sample", phase="encode_prompts", done=done, total=len(encode),
                    items_per_second=done / elapsed)
    encode_seconds = (time.monotonic() - phase_started) / max(len(encode), 1)
    tokenizer = text_encoder = text_parts = None
    _free_memory()

    # 2. Experts (with their LoRAs merged) and the VAE.
    phase_started = time.monotonic()
    parts = load_components(job.model.path, job.model.layout, dtype, {"high", "low"},
                            expert_files={"high": job.model.high_noise_file, "low": job.model.low_noise_file})
    experts = {"high": parts.high, "low": parts.low}
    lora_info: dict[str, dict[str, Any] | None] = {}
    for expert in ("high", "low"):
        slot = getattr(job.loras, expert)
        if slot is None:
            lora_info[expert] = None
            continue
        lora: LoraFile = read_lora(slot.path, experts[expert])
        if lora.expert is not None and lora.expert != expert:
            events.warning("lora_expert_mismatch", f"{slot.path.name} says it was trained for the {lora.expert}-noise "
                           f"expert but is applied to the {expert}-noise expert", expert=expert, path=str(slot.path))
        merged = merge_lora(experts[expert], lora, slot.scale, compute_device=device)
        lora_info[expert] = {**lora.describe(), "scale": slot.scale, "modules_merged": merged}
        del lora
    for model in experts.values():
        inference_blocks(model, device, job.sampler.attention)
        heads = model.config.num_attention_heads
        if heads % layout.ulysses:
            raise UlyssesDegreeError(f"--ulysses {layout.ulysses} does not divide the model's {heads} attention heads",
                                     f"use a Ulysses degree that divides {heads} and the GPU count")
        if layout.ulysses > 1:
            from .ulysses import enable_ulysses

            enable_ulysses(model, groups.sequence, layout.ulysses, layout.sp_rank)
        if sharded:
            distributed.shard_expert(model, groups, [], reshard_after_forward=True)
    vae = load_components(job.model.path, job.model.layout, torch.float32, {"vae"}).vae.to(device)
    if memory.vae_tiling:
        vae.enable_tiling()
    pool = ExpertPool(experts, device, offload=memory.inactive_expert == "cpu" and not sharded)
    load_seconds = time.monotonic() - phase_started
    events.emit("progress", stage="sample", phase="load_models", done=1, total=1,
                items_per_second=1.0 / max(load_seconds, 1e-9))

    # 3. The videos.
    guidance = {"high": job.sampler.guidance_high, "low": job.sampler.guidance_low}
    video_seconds: list[float] = []
    writes = layout.sp_rank == 0  # the first rank of a Ulysses group decodes and writes its videos
    for entry in mine:
        record: dict[str, Any] | None = None
        if entry is None and not sharded:
            _report_round(events, record, job, summary)
            continue
        index, item, digest = entry if entry is not None else (-1, stand_in, "")
        video_started = time.monotonic()
        step_seconds: list[float] = []

        def on_step(info: StepInfo, index: int = index, item: PromptItem = item,
                    step_seconds: list[float] = step_seconds) -> None:
            step_seconds.append(info.seconds)
            mean = sum(step_seconds) / len(step_seconds)
            events.emit("sample_step", video=index + 1, videos=len(job.prompts), id=item.id, step=info.index + 1,
                        steps=schedule.steps, timestep=info.timestep, sigma=info.sigma, expert=info.expert,
                        guidance=info.guidance, seconds=info.seconds, seconds_per_step=mean,
                        eta_seconds=mean * (schedule.steps - info.index - 1))

        prompt_embedding, tokens, cut = embeddings[item.id]
        noise = initial_noise(item.seed, (1, *latent_shape(job.video.frames, job.video.height, job.video.width, vae)))
        try:
            latents = denoise(pool, schedule, job.sampler.solver, job.model.boundary, guidance, prompt_embedding,
                              negative, noise, dtype, on_step if entry is not None else None, cfg_batch=cfg_batch,
                              inference_mode=not sharded)
            denoise_seconds = time.monotonic() - video_started
            if entry is None or not writes:
                _report_round(events, record, job, summary)
                continue
            pool.park()
            decode_started = time.monotonic()
            frames = decode_latents(vae, latents, device)
        except _OUT_OF_MEMORY as error:
            peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
            raise DoesNotFitError(
                f"the GPU ran out of memory while sampling {item.id} ({error}); peak {gib(peak)} allocated, "
                f"the planner expected {gib(memory.peak_bytes)} ({placement_label(memory)}): "
                f"{describe_candidate(memory)}",
                "free the GPU of other processes, or force a smaller placement: --inactive-expert cpu --vae-tiling on, "
                "or smaller videos (--resolution 832x480, --frames 49)",
            ) from None
        decode_seconds = time.monotonic() - decode_started
        write_started = time.monotonic()
        paths = output_paths(out_dir, item)
        pixels = frames_to_uint8(frames)
        video_bytes = write_mp4(pixels, paths["video"], job.video.fps, job.video.crf)
        write_poster(pixels[len(pixels) // 2], paths["poster"])
        write_seconds = time.monotonic() - write_started
        seconds = time.monotonic() - video_started
        video_seconds.append(seconds)
        sidecar = {
            "schema_version": SIDECAR_SCHEMA_VERSION,
            "settings_digest": digest,
            "id": item.id, "index": index + 1, "prompt": item.prompt, "category": item.category, "seed": item.seed,
            "negative_prompt": job.sampler.negative_prompt,
            "prompt_tokens": tokens, "prompt_truncated": cut, "text_length": job.sampler.text_length,
            "video": {"file": paths["video"].name, "poster": paths["poster"].name, "bytes": video_bytes,
                      "codec": "h264", "crf": job.video.crf, "width": int(pixels.shape[2]),
                      "height": int(pixels.shape[1]), "frames": int(pixels.shape[0]), "fps": job.video.fps,
                      "duration_seconds": pixels.shape[0] / job.video.fps},
            "sampler": {"solver": job.sampler.solver, "schedule": job.sampler.schedule, "steps": schedule.steps,
                        "shift": job.sampler.shift, "guidance_high": job.sampler.guidance_high,
                        "guidance_low": job.sampler.guidance_low, "boundary": job.model.boundary,
                        "num_train_timesteps": job.model.num_train_timesteps,
                        "steps_high": len(per_expert["high"]), "steps_low": len(per_expert["low"]),
                        "table": table},
            "model": {"path": str(job.model.path), "layout": parts.layout, "dtype": dtype_name,
                      "high_noise_file": _optional_str(job.model.high_noise_file),
                      "low_noise_file": _optional_str(job.model.low_noise_file)},
            "loras": lora_info,
            "memory": {"inactive_expert": memory.inactive_expert, "vae_tiling": memory.vae_tiling,
                       "text_encoder_device": job.memory.text_encoder_device,
                       "planned_peak_bytes": memory.peak_bytes,
                       "gpu_memory_peak_bytes": (int(torch.cuda.max_memory_allocated(device))
                                                 if device.type == "cuda" else None)},
            "device": {"device": device.type, "device_name": device_name},
            "timing": {"encode_seconds": encode_seconds, "denoise_seconds": denoise_seconds,
                       "seconds_per_step": denoise_seconds / schedule.steps, "decode_seconds": decode_seconds,
                       "write_seconds": write_seconds, "seconds": seconds},
            "versions": _versions(),
            "job": str(job.source_path) if job.source_path else None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json(sidecar, paths["sidecar"])
        record = dict(video=index + 1, videos=len(job.prompts), id=item.id, category=item.category,
                      path=str(paths["video"]), sidecar=str(paths["sidecar"]), poster=str(paths["poster"]),
                      seconds=seconds, seed=item.seed, existing=False)
        _report_round(events, record, job, summary)

    summary.update(
        seconds=time.monotonic() - started,
        seconds_per_video=sum(video_seconds) / len(video_seconds) if video_seconds else None,
        load_seconds=load_seconds,
        gpu_memory_peak_bytes=int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None,
        expert_swaps=pool.swaps, swap_seconds=pool.swap_seconds,
    )
    return "completed", outputs, summary


def _report_round(events: EventWriter, record: dict[str, Any] | None, job: SampleJob, summary: dict[str, Any]) -> None:
    """End of a round: every rank hands in the video it wrote (None: none), rank 0 reports them all in job order.

    A collective under torchrun: every rank calls it once per round."""
    records = [r for r in distributed.gather_objects(record) if r is not None]
    for found in sorted(records, key=lambda r: r["video"]):
        summary["videos_new"] += 1
        events.emit("sample_video", **found)
        log(f"video {found['video']}/{len(job.prompts)} ({found['id']}) written in {found['seconds']:.1f} s: "
            f"{found['path']}")


class UlyssesDegreeError(ConfigError):
    """--ulysses does not divide the model's heads; every rank finds it at once (rank 0 reports)."""

    all_ranks = True


def write_job(job: SampleJob, path: Path) -> None:
    """Writes a job back as JSON (tests and tools that build jobs in Python)."""
    write_json(job_to_json(job), path)
