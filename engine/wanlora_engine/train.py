"""Stage `train`: LoRA training of the Wan2.2 experts on the cache (rectified flow, see flow.py).

One optimizer step = train.grad_accum micro-batches of train.micro_batch samples. For each sample, in a
fixed order from one seeded generator: its sigma, its noise, and its CFG-dropout coin. Each sample trains
the expert its timestep belongs to (t = sigma * 1000 >= 875 -> high noise), with that expert's own LoRA.
With train.expert_grouping = 'step', the expert is drawn once per optimizer step (with the probability
the sigma sampler gives its range) and all the step's sigmas are drawn inside that range: the same
joint distribution of (expert, sigma), but only one expert is active per step, so the other can wait
in host memory (hardware.inactive_expert = 'offload').

Run folder (derived.run_dir):
    events.jsonl                       the events of this stage (also on stdout)
    checkpoints/step-NNNNNNNN/         LoRA weights, optimizer and random state (checkpoints.py)
    lora/{high,low}_noise.{diffusers,comfyui}.safetensors   the exported adapters
    tensorboard/                       when training.tensorboard is on (metric_logs.py)
    mlflow_run_id                      the MLflow run continued on resume, when training.mlflow_tracking_uri is set
Devices and the process layout are set up by devices.py, checkpoints written and read by checkpoints.py.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import distributed as dist_util
from . import faults
from .checkpoints import (
    ResumePoint,
    checkpoint_dirs,
    checkpoint_problem,
    checkpoint_to_resume,
    load_checkpoint,
    save_checkpoint,
    set_aside,
)
from .config import SCHEMA, ResolvedConfig
from .data import CachedDataset, EncodedOnTheFly, EpochSampler, class_balanced_weights, load_empty_prompt
from .devices import GPUMemoryPeaks, StreamRequest, check_world_size, host_peak_bytes, place_experts, resolve_device
from .errors import ConfigError, NonFiniteLossError
from .events import EventWriter, log
from .fast_model import enable_fast_blocks, fast_block_options, require_kernel
from .flow import SigmaSampler, expert_for_timestep, lr_multiplier, noisy_latents, sigma_range
from .gpu_memory import apply_gpu_memory_limit, card_limit_bytes
from .loading import DTYPES, load_components
from .lora import add_lora, export_diffusers, export_official, lora_files
from .metric_logs import MetricLoggers, open_loggers
from .streaming import move_model

# ---------------------------------------------------------------------------------------------------
# Small helpers

# The optimizer's state per trainable parameter (the schema's constants, written by the Swift EngineConstants).
OPTIMIZER_STATE_BYTES: dict[str, int] = SCHEMA["constants"]["optimizer_state_bytes"]
MAX_ROLLBACKS_IN_A_ROW = 3  # rollbacks to one checkpoint before a non-finite loss stops the run
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)  # SIGUSR1: Slurm's (and torchrun's) preemption notice


def velocity_losses(model: Any, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor,
                    device: torch.device, num_train_timesteps: int, bf16_autocast: bool,
                    weight_dtype: torch.dtype) -> torch.Tensor:
    """Per-sample rectified-flow loss: MSE between the expert's prediction at x_t and noise - x0.

    x0, noise: [B, 16, F, H, W]; sigma: [B]; text: [B, L, D]. Under bf16 autocast the inputs stay float32
    (autocast casts at each matmul); without it they take the weights' dtype. Returns float32 [B].
    """
    x_t, target = noisy_latents(x0, noise, sigma)
    dtype = torch.float32 if bf16_autocast else weight_dtype
    t = sigma.to(device, torch.float32) * num_train_timesteps
    context = torch.autocast("cuda", dtype=torch.bfloat16) if bf16_autocast else torch.autocast("cpu", enabled=False)
    with context:
        pred = model(hidden_states=x_t.to(device, dtype), timestep=t, encoder_hidden_states=text.to(device, dtype),
                     return_dict=False)[0]
    return (pred.float() - target.to(device)).pow(2).flatten(1).mean(dim=1)


@dataclass
class StepRecord:
    loss: float
    loss_high: float | None
    loss_low: float | None
    samples_high: int
    samples_low: int
    grad_norm: float
    seconds: float
    lr: float


@dataclass
class DrawnSample:
    """One sample of an optimizer step, as drawn: its item, sigma, noise and CFG-dropout coin."""

    index: int  # the item in the training set
    sigma: torch.Tensor  # float32 scalar in (0, 1)
    x0: torch.Tensor  # the item's latent, float32 [16, F, H, W]
    noise: torch.Tensor  # float32, x0's shape
    dropped: bool  # CFG dropout: trained on the empty prompt
    text: torch.Tensor  # the caption (or empty-prompt) embedding [512, text_dim]
    expert: str  # 'high' or 'low': the expert of its timestep


@dataclass
class StepLosses:
    """Sums and counts of a step's per-sample losses, overall and per expert (summed over ranks as one list)."""

    total: float = 0.0
    count: float = 0.0
    high: float = 0.0
    count_high: float = 0.0
    low: float = 0.0
    count_low: float = 0.0

    def add(self, expert: str, value: float) -> None:
        self.total += value
        self.count += 1
        if expert == "high":
            self.high += value
            self.count_high += 1
        else:
            self.low += value
            self.count_low += 1

    def values(self) -> list[float]:
        return [self.total, self.count, self.high, self.count_high, self.low, self.count_low]

    def mean(self, expert: str) -> float | None:
        """The mean loss of one expert's samples; None when the step had none."""
        total, count = (self.high, self.count_high) if expert == "high" else (self.low, self.count_low)
        return total / count if round(count) else None


@dataclass
class TrainState:
    step: int = 0  # optimizer updates done
    samples_seen: int = 0  # global data position
    focal_ema: float | None = None
    history: list[float] = field(default_factory=list)  # mean training loss per step (overfit summary)
    skipped_steps: int = 0  # steps without an update: a non-finite loss with train.on_nonfinite 'skip'
    rollbacks: int = 0  # non-finite losses answered by reloading a checkpoint ('rollback')
    lr_scale: float = 1.0  # the product of the rollbacks' train.rollback_lr_factor

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "samples_seen": self.samples_seen, "focal_ema": self.focal_ema,
                "history": self.history, "skipped_steps": self.skipped_steps, "rollbacks": self.rollbacks,
                "lr_scale": self.lr_scale}


# ---------------------------------------------------------------------------------------------------


class Trainer:
    """Holds the experts, their LoRA adapters, the optimizer and the data stream of one run."""

    def __init__(self, config: ResolvedConfig, events: EventWriter, groups: dist_util.Groups | None = None) -> None:
        self.config = config
        self.events = events
        self.run_dir = config.derived.run_dir
        if groups is None:  # one process (tests, `python -m wanlora_engine train` without torchrun)
            device = resolve_device(config.training.device, "training.device")
            groups = dist_util.Groups(dist_util.Layout(), device)
        self.groups = groups
        self.layout = groups.layout
        self.device = groups.device
        # Why 8-bit AdamW cannot run here (None: it can, or torch AdamW was asked for): decided once, before the
        # placement counts the optimizer's state and `_build_optimizer` makes it.
        self.optimizer_fallback = (self._adamw8bit_unusable() if config.training.optimizer == "adamw8bit"
                                   else None)
        apply_gpu_memory_limit(config, self.device, events, places_blocks=True)
        if config.training.blocks == "fast":
            require_kernel(config.training.attention, self.device, "training.attention")
        self.experts: list[str] = [e for e in ("high", "low") if e in config.derived.experts]
        self.boundary = config.model.boundary
        self.timesteps = config.model.num_train_timesteps
        self.state = TrainState()
        self._rollback_target: Path | None = None
        self._rollbacks_in_a_row = 0
        self.last_checkpoint_seconds: float | None = None  # how long the last save took (the stop grace)
        self.metric_logs = MetricLoggers([])  # TensorBoard / MLflow, opened by run_train (metric_logs.py)
        self.last_eval: dict[str, Any] | None = None

        check_world_size(self.layout)
        self.use_autocast = config.training.mixed_precision == "bf16" and self.device.type == "cuda"
        if config.training.mixed_precision == "bf16" and self.device.type != "cuda":
            events.warning("bf16_needs_gpu", "bf16 autocast needs a CUDA GPU; training in float32 on the CPU")
        dtype_name = config.torch_dtype if self.device.type == "cuda" else "float32"
        if self.device.type != "cuda" and config.torch_dtype != "float32":
            events.warning("float32_on_cpu", f"model.weights_dtype {config.model.weights_dtype} is for GPUs; "
                           "the CPU run keeps the expert weights in float32")
        self.weight_dtype = DTYPES[dtype_name]

        # Data: the cache, or the same items encoded when drawn (data.source = 'on_the_fly')
        cache_dir = config.data.cache_dir
        on_the_fly = config.data.source == "on_the_fly"
        self.overfit = config.training.overfit_samples > 0
        overfit_limit = config.training.overfit_samples if self.overfit else None
        self.train_set: Any
        self.eval_set: Any
        if on_the_fly:
            self.train_set = EncodedOnTheFly(config, config.data.train_manifest, limit=overfit_limit)
        else:
            self.train_set = CachedDataset(cache_dir, "train", config.training.text_length,
                                           limit=overfit_limit)
        if self.overfit:
            self.eval_set = self.train_set
            self.eval_split = "train_subset"
        elif on_the_fly and config.data.val_manifest is not None:
            self.eval_set = EncodedOnTheFly(config, config.data.val_manifest)
            self.eval_split = "val"
        elif not on_the_fly and config.data.val_manifest is not None and (cache_dir / "val" / "index.jsonl").is_file():
            self.eval_set = CachedDataset(cache_dir, "val", config.training.text_length)
            self.eval_split = "val"
        else:
            self.eval_set = None
            self.eval_split = "none"
            if config.training.eval_steps:
                events.warning("no_validation_split", "eval.every_steps is set but the cache has no val split "
                               "(data.val_manifest is null or was not cached): no validation loss this run")
        self.empty_prompt = (self.train_set.empty_prompt() if on_the_fly
                             else load_empty_prompt(cache_dir, config.training.text_length))
        self.sampler = EpochSampler(self.train_set.weights(), config.training.seed)
        if config.training.loss_weighting == "class_balanced":
            table = class_balanced_weights(self.train_set.categories(), config.training.class_balanced_beta)
            self.item_loss_weight = [table[c] for c in self.train_set.categories()]
        else:
            self.item_loss_weight = [1.0] * len(self.train_set)

        # Samples per optimizer step: every data-parallel group trains micro_batch x grad_accum of them.
        self.grad_accum = config.training.grad_accumulation
        self.samples_per_step = config.training.micro_batch * self.grad_accum * self.layout.data_parallel
        self.total_steps = self._total_steps()

        self.sigma_sampler = SigmaSampler(config.training.timestep_sampling, config.training.timestep_shift,
                                          config.training.timestep_logit_mean, config.training.timestep_logit_std)
        lo = min(sigma_range(e, self.boundary)[0] for e in self.experts)
        hi = max(sigma_range(e, self.boundary)[1] for e in self.experts)
        self.sigma_lo, self.sigma_hi = lo, hi
        self.generator = torch.Generator().manual_seed(config.training.seed)

        # Models
        components = load_components(config.model.checkpoint, config.model.layout, self.weight_dtype, set(self.experts),
                                     expert_files={"high": config.model.high_noise_file,
                                                   "low": config.model.low_noise_file})
        # The fast blocks run Ulysses too: enable_ulysses (in place_experts) hands them the sequence group.
        fast_blocks = config.training.blocks == "fast"
        self.fast_blocks = fast_blocks
        self.models: dict[str, Any] = {}
        self.params: dict[str, list[torch.nn.Parameter]] = {}
        for offset, expert in enumerate(self.experts):
            model = components.expert(expert)
            self.params[expert] = add_lora(model, config.lora, seed=config.training.seed + offset)
            if config.training.gradient_checkpointing:
                model.enable_gradient_checkpointing()
            if fast_blocks:
                enable_fast_blocks(model, fast_block_options(config), warn=events.warning, device=self.device)
            model.train()
            self.models[expert] = model
        self.active: str | None = None
        self.offload = (config.hardware.inactive_expert == "offload" and self.device.type == "cuda"
                        and len(self.experts) > 1)
        if self.offload and self.layout.fsdp:
            # A sharded expert already costs 1/world of its memory per GPU; FSDP keeps both experts sharded.
            self.offload = False
            events.warning("offload_replaced_by_sharding", "hardware.inactive_expert 'offload' is not used with FSDP: "
                           f"both experts stay sharded over the {self.layout.world_size} GPUs "
                           f"(1/{self.layout.world_size} of each expert per GPU)")
        self.stream_plans = place_experts(self.models, self.params, self.groups, self.offload, config.training.seed,
                                          self._stream_request())
        self.grouping = config.training.expert_grouping
        if self.layout.fsdp and self.layout.data_parallel > 1 and self.grouping == "sample" and len(self.experts) > 1:
            # Sharded experts gather their weights collectively: every rank must run the same expert.
            self.grouping = "step"
            events.warning("expert_grouping_forced", "FSDP over several data-parallel groups trains one expert per "
                           "optimizer step on all GPUs: using expert_grouping 'step' (same distribution of expert "
                           "and timestep)")
        if self.offload and self.grouping == "sample":
            # One optimizer update must find every gradient it applies on the GPU, so with an expert
            # waiting in host memory each step trains one expert.
            self.grouping = "step"
            events.warning("expert_grouping_forced", "hardware.inactive_expert 'offload' trains one expert per "
                           "optimizer step: using expert_grouping 'step' (same distribution of expert and timestep)")

        self.optimizer, self.optimizer_name = self._build_optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_multiplier(step, config.training.warmup_steps, self.total_steps,
                                       config.training.schedule),
        )

    # -----------------------------------------------------------------------------------------------

    def _total_steps(self) -> int:
        if self.config.training.max_steps > 0:
            return self.config.training.max_steps
        return max(1, -(-self.config.training.epochs * len(self.train_set) // self.samples_per_step))

    def _adamw8bit_unusable(self) -> str | None:
        """Why 8-bit AdamW cannot run here (None: it can)."""
        if self.device.type != "cuda":
            return "no CUDA GPU"
        try:
            import bitsandbytes as bnb  # noqa: F401
        except Exception as error:  # ImportError, or a broken CUDA setup inside bitsandbytes
            return f"bitsandbytes is not usable ({type(error).__name__}: {error})"
        return None

    def _optimizer_name(self) -> str:
        """The optimizer this run gets: training.optimizer, or torch AdamW where 8-bit AdamW cannot run."""
        return "adamw" if self.optimizer_fallback is not None else self.config.training.optimizer

    def _build_optimizer(self) -> tuple[torch.optim.Optimizer, str]:
        opt = self.config.training
        groups = [{"params": self.params[e], "name": e} for e in self.experts]
        kwargs = {"lr": opt.learning_rate, "betas": tuple(opt.adam_betas), "eps": opt.adam_eps,
                  "weight_decay": opt.weight_decay}
        name = self._optimizer_name()
        if name == "adamw8bit":
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(groups, **kwargs), "adamw8bit"
        reason = self.optimizer_fallback
        if reason is not None:
            self.events.warning("optimizer_fallback", f"AdamW 8-bit needs bitsandbytes and a CUDA GPU ({reason}); "
                                "using torch AdamW (32-bit state, 2x the optimizer memory)", reason=reason)
        return torch.optim.AdamW(groups, foreach=False, **kwargs), name

    def _stream_request(self) -> StreamRequest | None:
        """The GPU memory limit the experts' blocks are placed by: `hardware.gpu_memory_limit`, or with 0 the
        card's own memory (`gpu_memory.card_limit_bytes`) where the engine can stream: fast blocks with
        checkpointing, training from the cache, one expert on the GPU at a time, no FSDP (so a 24 or 48 GB card
        streams what does not fit instead of running out of memory, and an expert that fits is placed whole).
        None: no limit, every block on the GPU."""
        config = self.config
        limit = config.gpu_memory_limit_bytes
        sharded = self.layout.fsdp and self.layout.distributed
        # Both trained experts on the GPU together (no offload, or FSDP keeping both): a limit placed per expert
        # would be counted twice (the planner's Placement.canStream).
        experts_share_the_gpu = len(self.experts) > 1 and (config.hardware.inactive_expert != "offload"
                                                           or self.layout.fsdp)
        if limit is None:
            streamable = (self.fast_blocks and config.training.gradient_checkpointing
                          and config.data.source != "on_the_fly" and not experts_share_the_gpu and not sharded)
            limit = card_limit_bytes(self.device) if streamable else None
            if limit is None:
                return None
        elif not self.fast_blocks or not config.training.gradient_checkpointing:
            raise ConfigError(
                f"hardware.gpu_memory_limit = {config.hardware.gpu_memory_limit:g} GiB streams the expert's blocks "
                "inside wanlora's fast blocks with gradient checkpointing, but training.blocks = "
                f"'{config.training.blocks}' and training.gradient_checkpointing = "
                f"{str(config.training.gradient_checkpointing).lower()}",
                "set training.blocks = 'fast' and training.gradient_checkpointing = true, or "
                "hardware.gpu_memory_limit = 0")
        elif experts_share_the_gpu and not sharded:
            raise ConfigError(
                f"hardware.gpu_memory_limit = {config.hardware.gpu_memory_limit:g} GiB places one expert's blocks, "
                "but both experts are trained and stay on the GPU together (hardware.inactive_expert = "
                f"'{config.hardware.inactive_expert}'{', and FSDP keeps both' if self.layout.fsdp else ''}): each "
                "would be placed against the whole limit",
                "set hardware.inactive_expert = 'offload' (one expert on the GPU at a time), or train one expert "
                "(training.expert = 'high' or 'low')")
        # The working set is that of the largest sample the run trains: its latent tokens after patching.
        pt, ph, pw = next(iter(self.models.values())).config.patch_size
        tokens = max((f // pt) * (h // ph) * (w // pw) for _, f, h, w in (i.latent_shape for i in self.train_set.items))
        return StreamRequest(limit, tokens, int(self.empty_prompt.shape[-2]), config.fp8_host_weights,
                             OPTIMIZER_STATE_BYTES[self._optimizer_name()])

    def _activate(self, expert: str) -> Any:
        """The expert to run; with offloading, it (and its optimizer state) moves to the GPU, the other out
        (an expert whose blocks stream keeps them in host memory either way: `streaming.move_model`)."""
        if self.offload and self.active != expert:
            for other in self.experts:
                if other != expert:
                    move_model(self.models[other], torch.device("cpu"))
                    self._move_optimizer_state(other, torch.device("cpu"))
            move_model(self.models[expert], self.device)
            self._move_optimizer_state(expert, self.device)
        self.active = expert
        return self.models[expert]

    def _move_optimizer_state(self, expert: str, device: torch.device) -> None:
        for param in self.params[expert]:
            state = self.optimizer.state.get(param)
            if not state:
                continue
            for key, value in state.items():
                # torch AdamW keeps its 'step' counter as a CPU scalar: only real state tensors move
                if isinstance(value, torch.Tensor) and value.ndim > 0 and value.device != device:
                    state[key] = value.to(device)

    # -----------------------------------------------------------------------------------------------
    # One optimizer step

    def draw_step(self, indices: list[int]) -> list[DrawnSample]:
        """Sigma, noise and CFG-dropout for the step's samples (one generator, fixed order)."""
        if self.grouping == "step" and len(self.experts) > 1:
            p_high = self.sigma_sampler.probability(*sigma_range("high", self.boundary))
            p_high /= self.sigma_sampler.probability(self.sigma_lo, self.sigma_hi)
            expert = "high" if float(torch.rand(1, generator=self.generator, dtype=torch.float64)) < p_high else "low"
            lo, hi = sigma_range(expert, self.boundary)
        else:
            lo, hi = self.sigma_lo, self.sigma_hi
        sigmas = self.sigma_sampler.sample(len(indices), self.generator, lo, hi)
        latents, noises = [], []
        for index in indices:
            latent = self.train_set.latent(index).float()
            latents.append(latent)
            noises.append(torch.randn(latent.shape, generator=self.generator, dtype=torch.float32))
        drops = torch.rand(len(indices), generator=self.generator) < self.config.training.cfg_dropout
        samples = []
        for index, sigma, latent, noise, drop in zip(indices, sigmas, latents, noises, drops.tolist()):
            text = self.empty_prompt if drop else self.train_set.text(index)
            expert = expert_for_timestep(float(sigma) * self.timesteps, self.boundary, self.timesteps)
            samples.append(DrawnSample(index, sigma, latent, noise, drop, text, expert))
        return samples

    def loss_weights(self, indices: list[int], losses: torch.Tensor) -> torch.Tensor:
        """Per-sample loss weights of the items `indices` with `losses` (train.loss_weighting)."""
        mode = self.config.training.loss_weighting
        if mode == "class_balanced":
            return torch.tensor([self.item_loss_weight[i] for i in indices], dtype=torch.float32)
        if mode == "focal":
            reference = self.state.focal_ema if self.state.focal_ema is not None else float(losses.mean())
            ratio = losses.detach().cpu() / max(reference, 1e-12)
            return ratio.pow(self.config.training.focal_gamma).clamp(max=10.0)
        return torch.ones(len(indices))

    def _micro_groups(self, micro: list[DrawnSample]) -> list[tuple[str, list[DrawnSample]]]:
        """A micro-batch split into forward passes: one per (expert, latent shape), high noise first."""
        groups: dict[tuple[str, tuple[int, ...]], list[DrawnSample]] = {}
        for sample in micro:
            groups.setdefault((sample.expert, tuple(sample.x0.shape)), []).append(sample)
        return [(key[0], group) for key, group in sorted(groups.items(), key=lambda kv: (kv[0][0] != "high", kv[0][1]))]

    def train_step(self) -> StepRecord:
        started = time.monotonic()
        cfg = self.config.training
        layout = self.layout
        faults.maybe_kill(layout.rank, self.state.step + 1, "step_start")
        self.optimizer.zero_grad(set_to_none=True)
        indices = self.sampler.take(self.state.samples_seen, self.samples_per_step)
        samples = self.draw_step(indices)  # the whole step, drawn identically on every rank
        per_group = cfg.micro_batch * self.grad_accum
        def micro_batch_of(d: int, m: int) -> list[DrawnSample]:
            """Micro-batch m of data-parallel group d."""
            start = d * per_group + m * cfg.micro_batch
            return samples[start:start + cfg.micro_batch]

        per_sample_loss: list[tuple[str, float]] = []
        for m in range(self.grad_accum):
            passes = [(expert, group, 1.0) for expert, group in self._micro_groups(micro_batch_of(layout.dp_rank, m))]
            if layout.fsdp and layout.data_parallel > 1:
                # Sharded weights are gathered collectively: every rank runs as many forward passes as the
                # busiest one; the extra ones repeat a pass with loss weight 0 (their gradient is zero).
                most = max(len(self._micro_groups(micro_batch_of(d, m))) for d in range(layout.data_parallel))
                passes += [(passes[-1][0], passes[-1][1], 0.0)] * (most - len(passes))
            for expert, group, scale in passes:
                model = self._activate(expert)
                x0 = torch.stack([s.x0 for s in group])
                noise = torch.stack([s.noise for s in group])
                sigma = torch.stack([s.sigma for s in group])
                text = torch.stack([s.text for s in group])
                losses = velocity_losses(model, x0, noise, sigma, text, self.device, self.timesteps,
                                         self.use_autocast, self.weight_dtype)
                weights = self.loss_weights([s.index for s in group], losses).to(self.device) * scale
                # Backward even for a non-finite loss: every rank must run the same collectives; the
                # check below, on the losses of all ranks, stops before the update.
                (weights * losses).sum().div(self.samples_per_step).backward()
                if scale:
                    per_sample_loss.extend((expert, float(v)) for v in losses.detach().cpu())

        # Losses of the whole step: summed over all ranks (a Ulysses group counts each sample U times).
        local = StepLosses()
        for expert, value in per_sample_loss:
            local.add(expert, value)
        stats = StepLosses(*[v / layout.ulysses for v in dist_util.sum_values(local.values(), self.device)])
        if faults.nan_loss(self.state.step + 1):
            stats.total = stats.high = stats.low = float("nan")
        if not all(math.isfinite(v) for v in stats.values()):
            bad = [e for e, total in (("high", stats.high), ("low", stats.low)) if not math.isfinite(total)]
            raise NonFiniteLossError(
                f"the loss became {stats.total / max(stats.count, 1)} at step {self.state.step + 1} "
                f"({' and '.join(bad)}-noise expert)",
                "lower train.optimizer.lr or raise warmup_steps, and resume from the last checkpoint",
            )
        trained = sorted({s.expert for s in samples}, key=self.experts.index)
        dist_util.sum_gradients([p for e in trained for p in self.params[e]])
        grads = [p for e in self.experts for p in self.params[e] if p.grad is not None]
        if cfg.max_grad_norm > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(grads, cfg.max_grad_norm))
        else:
            grad_norm = float(torch.linalg.vector_norm(torch.stack([g.grad.detach().float().norm() for g in grads])))
        if not torch.isfinite(torch.tensor(grad_norm)):
            raise NonFiniteLossError(
                f"the gradient norm became {grad_norm} at step {self.state.step + 1}",
                "lower train.optimizer.lr or raise warmup_steps, and resume from the last checkpoint",
            )
        lr = self.scheduler.get_last_lr()[0]
        faults.maybe_kill(layout.rank, self.state.step + 1, "before_update")
        self.optimizer.step()
        self.scheduler.step()
        self.state.step += 1
        self.state.samples_seen += self.samples_per_step
        mean = stats.total / stats.count
        if cfg.loss_weighting == "focal":
            self.state.focal_ema = mean if self.state.focal_ema is None else 0.99 * self.state.focal_ema + 0.01 * mean
        self.state.history.append(mean)
        return StepRecord(mean, stats.mean("high"), stats.mean("low"), round(stats.count_high), round(stats.count_low),
                          grad_norm, time.monotonic() - started, lr)

    # -----------------------------------------------------------------------------------------------
    # Validation loss at fixed timesteps and noise

    @torch.no_grad()
    def evaluate(self) -> dict[str, Any] | None:
        if self.eval_set is None or self.config.training.eval_steps == 0 and not self.overfit:
            return None
        cfg = self.config.eval
        layout = self.layout
        count = min(cfg.val_loss_samples, len(self.eval_set))
        sums = {t: [0.0, 0] for t in cfg.val_loss_timesteps}  # t -> [sum of losses, items]
        for model in self.models.values():
            model.eval()
        try:
            # Item i is evaluated by data-parallel group i mod DP. With FSDP a group without an item in the
            # last round evaluates item 0 and drops it, so that all ranks gather the same weights.
            rounds = -(-count // layout.data_parallel)
            for round_index in range(rounds):
                index = round_index * layout.data_parallel + layout.dp_rank
                counted = index < count
                if not counted and not layout.fsdp:
                    continue
                index = index if counted else 0
                generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + index)
                x0 = self.eval_set.latent(index).float()[None]
                noise = torch.randn(x0.shape, generator=generator)
                text = self.eval_set.text(index)[None]
                for t in cfg.val_loss_timesteps:
                    expert = expert_for_timestep(t, self.boundary, self.timesteps)
                    if expert not in self.models:
                        continue
                    sigma = torch.tensor([t / self.timesteps], dtype=torch.float32)
                    losses = velocity_losses(self._activate(expert), x0, noise, sigma, text, self.device,
                                             self.timesteps, self.use_autocast, self.weight_dtype)
                    if counted:
                        sums[t][0] += float(losses[0])
                        sums[t][1] += 1
        finally:
            for model in self.models.values():
                model.train()
        flat = dist_util.sum_values([v for t in cfg.val_loss_timesteps for v in sums[t]], self.device)
        totals = {t: (flat[2 * i] / layout.ulysses, round(flat[2 * i + 1] / layout.ulysses))
                  for i, t in enumerate(cfg.val_loss_timesteps)}
        losses = {str(t): (total / n if n else None) for t, (total, n) in totals.items()}

        def mean_of(expert: str | None) -> float | None:
            values = [losses[str(t)] for t in cfg.val_loss_timesteps if losses[str(t)] is not None
                      and (expert is None or expert_for_timestep(t, self.boundary, self.timesteps) == expert)]
            return sum(values) / len(values) if values else None

        record = {"step": self.state.step, "split": self.eval_split, "samples": count, "val_loss": mean_of(None),
                  "val_loss_high": mean_of("high"), "val_loss_low": mean_of("low"), "losses_by_timestep": losses}
        self.events.emit("eval", **record)
        self.last_eval = record
        self.metric_logs.log_event("eval", record)
        return record

    # -----------------------------------------------------------------------------------------------
    # Checkpoints (checkpoints.py)

    def save_checkpoint(self) -> Path:
        """Every rank calls this; rank 0 writes (LoRA weights and optimizer state are the same on all)."""
        state = self.state.to_json() | {"optimizer_name": self.optimizer_name, "experts": self.experts,
                                        "total_steps": self.total_steps, "samples_per_step": self.samples_per_step,
                                        "layout": self.layout.describe()}
        started = time.monotonic()
        folder = save_checkpoint(self.run_dir, self.state.step, self.config.training.keep_checkpoints, self.models,
                                 self.optimizer, self.scheduler, self.generator, self.layout, self.device, state,
                                 self.events)
        self.last_checkpoint_seconds = time.monotonic() - started
        return folder

    def load_checkpoint(self, folder: Path) -> None:
        state = load_checkpoint(folder, self.models, self.optimizer, self.scheduler, self.generator, self.layout,
                                self.device, self.config.training.seed)
        self.state = TrainState(step=int(state["step"]), samples_seen=int(state["samples_seen"]),
                                focal_ema=state.get("focal_ema"), history=list(state.get("history", [])),
                                skipped_steps=int(state.get("skipped_steps", 0)),
                                rollbacks=int(state.get("rollbacks", 0)),
                                lr_scale=float(state.get("lr_scale", 1.0)))
        self._keep_batch_of(state, folder)

    # -----------------------------------------------------------------------------------------------
    # A non-finite loss or gradient norm (train.on_nonfinite)

    def skip_step(self, error: NonFiniteLossError) -> None:
        """'skip': the step counts (data, schedule) but updates nothing."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.state.step += 1
        self.state.samples_seen += self.samples_per_step
        self.state.skipped_steps += 1
        self.events.emit("nonfinite_skipped", step=self.state.step, problem=error.problem,
                         skipped_steps=self.state.skipped_steps)

    def rollback(self, error: NonFiniteLossError) -> Path:
        """'rollback': reload the newest whole checkpoint and scale the learning rate by rollback_lr_factor
        (cumulative over the run's rollbacks). Raises `error` when there is no checkpoint to go back to, or after
        MAX_ROLLBACKS_IN_A_ROW rollbacks to the same checkpoint."""
        failed_step = self.state.step + 1
        whole = [f for f in reversed(checkpoint_dirs(self.run_dir)) if checkpoint_problem(f) is None]
        if not whole:
            error.remedy = "no checkpoint was written yet to roll back to: " + error.remedy
            raise error
        folder = whole[0]
        same = self._rollback_target == folder
        self._rollbacks_in_a_row = self._rollbacks_in_a_row + 1 if same else 1
        self._rollback_target = folder
        if self._rollbacks_in_a_row > MAX_ROLLBACKS_IN_A_ROW:
            error.remedy = (f"{MAX_ROLLBACKS_IN_A_ROW} rollbacks to {folder.name} did not help: " + error.remedy)
            raise error
        scale = self.state.lr_scale * self.config.training.rollback_lr_factor
        rollbacks = self.state.rollbacks + 1
        self.optimizer.zero_grad(set_to_none=True)
        self.load_checkpoint(folder)
        # the scheduler's base learning rates come back as saved; scale them from the checkpoint's scale
        ratio = scale / self.state.lr_scale
        self.scheduler.base_lrs = [lr * ratio for lr in self.scheduler.base_lrs]
        step = self.scheduler.last_epoch
        for group, base, factor in zip(self.optimizer.param_groups, self.scheduler.base_lrs,
                                       self.scheduler.lr_lambdas):
            group["lr"] = base * factor(step)
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        self.state.lr_scale = scale
        self.state.rollbacks = rollbacks
        self.events.emit("nonfinite_rollback", step=failed_step, problem=error.problem, checkpoint=str(folder),
                         resumed_at_step=self.state.step, lr_scale=scale, rollbacks=self.state.rollbacks)
        return folder

    def _keep_batch_of(self, state: dict[str, Any], folder: Path) -> None:
        """Resumed on another number of GPUs: keep the run's samples per step by changing grad_accum."""
        saved = int(state.get("samples_per_step", self.samples_per_step))
        if saved == self.samples_per_step:
            return
        per_micro_batch = self.config.training.micro_batch * self.layout.data_parallel
        if saved % per_micro_batch == 0:
            self.grad_accum = saved // per_micro_batch
            self.samples_per_step = saved
            self.total_steps = self._total_steps()
            self.events.warning(
                "grad_accum_adjusted", f"checkpoint {folder.name} was trained with {saved} samples per step; on "
                f"{self.layout.data_parallel} data-parallel group(s) of micro-batch {self.config.training.micro_batch} "
                f"that takes grad_accum {self.grad_accum} (the config says {self.config.training.grad_accumulation})",
                samples_per_step=saved, grad_accum=self.grad_accum)
        else:
            self.events.warning(
                "batch_changed", f"checkpoint {folder.name} was trained with {saved} samples per step; this layout "
                f"({self.layout.data_parallel} data-parallel group(s) x micro-batch "
                f"{self.config.training.micro_batch}) "
                f"cannot make that, so the run continues with {self.samples_per_step} samples per step",
                samples_per_step=self.samples_per_step, previous_samples_per_step=saved)

    # -----------------------------------------------------------------------------------------------

    def export(self) -> dict[str, str]:
        outputs: dict[str, str] = {}
        for expert in self.experts:
            files = lora_files(self.run_dir, expert)
            if not self.layout.is_main:  # the files are rank 0's to write
                outputs[f"{expert}_noise_diffusers"] = str(files["diffusers"])
                outputs[f"{expert}_noise_comfyui"] = str(files["official"])
                continue
            export_diffusers(self.models[expert], self.config.lora, files["diffusers"], expert)
            export_official(self.models[expert], self.config.lora, files["official"], expert)
            outputs[f"{expert}_noise_diffusers"] = str(files["diffusers"])
            outputs[f"{expert}_noise_comfyui"] = str(files["official"])
        return outputs


# ---------------------------------------------------------------------------------------------------


def run_train(config: ResolvedConfig, events: EventWriter, resume: bool | ResumePoint,
              groups: dist_util.Groups | None = None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Train; returns (status, outputs, summary) for the run_finished event. Raises EngineError on failure.

    `resume`: --resume, or the checkpoint already chosen (stage.py); `groups`: the started process layout
    under torchrun (distributed.start); None for one process.
    """
    run_dir = config.derived.run_dir
    point = resume if isinstance(resume, ResumePoint) else checkpoint_to_resume(run_dir, resume)
    trainer = Trainer(config, events, groups)
    if point.folder is not None:
        trainer.load_checkpoint(point.folder)
        log(f"resumed from {point.folder}")
    if point.skipped:
        dist_util.barrier()  # every rank has read its checkpoint before rank 0 moves the broken ones
        if trainer.layout.is_main:
            set_aside(point.skipped, events)
    counts = {e: sum(p.numel() for p in trainer.params[e]) for e in trainer.experts}
    events.emit("train_plan", experts=trainer.experts, trainable_parameters=counts,
                train_samples=len(trainer.train_set), val_samples=len(trainer.eval_set) if trainer.eval_set else 0,
                total_steps=trainer.total_steps, samples_per_step=trainer.samples_per_step,
                epochs=trainer.total_steps * trainer.samples_per_step / len(trainer.train_set),
                optimizer=trainer.optimizer_name, mixed_precision="bf16" if trainer.use_autocast else "no",
                gradient_checkpointing=config.training.gradient_checkpointing,
                sigma_sampling={"sampling": config.training.timestep_sampling, "shift": config.training.timestep_shift,
                                "p_high": trainer.sigma_sampler.probability(*sigma_range("high", trainer.boundary))},
                overfit_samples=config.training.overfit_samples or None,
                blocks={"implementation": "fast" if trainer.fast_blocks else "diffusers",
                        "attention": config.training.attention, "keep_attention": config.training.keep_attention,
                        "activation_offload": config.training.activation_offload,
                        "compile": config.training.compile, "ffn_chunk_tokens": config.training.ffn_chunk_tokens,
                        "keep_linear_blocks": config.training.keep_linear_blocks},
                weight_streaming={e: plan.to_json() | {"host_weights": "fp8" if config.fp8_host_weights else "bf16"}
                                  for e, plan in trainer.stream_plans.items()} or None,
                **trainer.layout.describe())
    trainer.metric_logs = open_loggers(config, trainer.layout.is_main)

    stop = StopRequest(trainer, config.training.stop_grace_seconds)
    previous = {s: signal.signal(s, stop.handle) for s in STOP_SIGNALS}
    started = time.monotonic()
    last_saved = trainer.state.step if point.folder is not None else -1
    eval_start = None
    window: list[StepRecord] = []
    memory = GPUMemoryPeaks(trainer.device)
    status = "completed"
    try:
        if trainer.overfit and trainer.state.step == 0:
            eval_start = trainer.evaluate()
        while trainer.state.step < trainer.total_steps:
            try:
                window.append(trainer.train_step())
            except NonFiniteLossError as error:
                if config.training.on_nonfinite == "skip":
                    trainer.skip_step(error)
                elif config.training.on_nonfinite == "rollback":
                    try:
                        trainer.rollback(error)
                    except NonFiniteLossError:
                        _report_non_finite(error, trainer, events)
                        raise
                    last_saved = trainer.state.step
                    window = []
                    continue
                else:
                    _report_non_finite(error, trainer, events)
                    raise
            step = trainer.state.step
            # A signal may reach one rank only, or reach the ranks on either side of this exchange: every decision
            # below reads the agreed value, never the rank's own flag, so all ranks stop after the same step.
            stopping = dist_util.any_rank(stop.received, trainer.device)
            faults.maybe_kill(trainer.layout.rank, step, "after_stop_vote")
            if window and (step % config.training.logging_steps == 0 or step == trainer.total_steps or stopping):
                _emit_step(trainer, window, memory, events)
                window = []
            if config.training.eval_steps and step % config.training.eval_steps == 0 and not trainer.overfit:
                trainer.evaluate()
            if stopping:
                status = "interrupted"
                break
            if config.training.save_steps and step % config.training.save_steps == 0:
                trainer.save_checkpoint()
                last_saved = step
        if status == "interrupted":
            stop.agree_on_the_signal()
            saved = stop.save_if_in_time(last_saved)
            last = checkpoint_dirs(run_dir)
            events.emit("stopped", reason=stop.reason, signal=stop.signal_name, step=trainer.state.step,
                        saved=saved, checkpoint=str(last[-1]) if last else None,
                        seconds_since_signal=stop.seconds_since_signal(), grace_seconds=stop.grace)
        elif trainer.state.step != last_saved:
            trainer.save_checkpoint()
        eval_end = None
        if status == "completed" and (trainer.overfit or config.training.eval_steps):
            already = trainer.last_eval is not None and trainer.last_eval["step"] == trainer.state.step
            eval_end = trainer.last_eval if already else trainer.evaluate()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        trainer.metric_logs.close(status if sys.exc_info()[0] is None else "failed")
    outputs = trainer.export() if status == "completed" else {}
    allocated, peak = memory.run()
    summary: dict[str, Any] = {
        "steps_done": trainer.state.step, "total_steps": trainer.total_steps,
        "samples_seen": trainer.state.samples_seen, "seconds": time.monotonic() - started,
        "gpu_memory_peak_bytes": peak, "host_memory_peak_bytes": host_peak_bytes(),
        "final_val_loss": eval_end["val_loss"] if eval_end else None,
    }
    if trainer.overfit:
        history = trainer.state.history
        k = max(1, len(history) // 10)
        start_loss = eval_start["val_loss"] if eval_start else None
        end_loss = eval_end["val_loss"] if eval_end else None
        summary["overfit"] = {
            "samples": len(trainer.train_set),
            "eval_loss_start": start_loss, "eval_loss_end": end_loss,
            "train_loss_first": sum(history[:k]) / k if history else None,
            "train_loss_last": sum(history[-k:]) / k if history else None,
            "loss_fell": bool(start_loss is not None and end_loss is not None and end_loss < start_loss),
            "gpu_memory_peak_bytes": peak, "host_memory_peak_bytes": host_peak_bytes(),
        }
    if trainer.state.skipped_steps or trainer.state.rollbacks:
        summary["nonfinite"] = {"skipped_steps": trainer.state.skipped_steps, "rollbacks": trainer.state.rollbacks,
                                "lr_scale": trainer.state.lr_scale}
    last = checkpoint_dirs(run_dir)
    return status, outputs | ({"checkpoint": str(last[-1])} if last else {}), summary


def _report_non_finite(error: NonFiniteLossError, trainer: Trainer, events: EventWriter) -> None:
    last = checkpoint_dirs(trainer.run_dir)
    events.emit("error", code=error.code, problem=error.problem, remedy=error.remedy, step=trainer.state.step + 1,
                last_checkpoint=str(last[-1]) if last else None)


def _emit_step(trainer: Trainer, window: list[StepRecord], memory: GPUMemoryPeaks, events: EventWriter) -> None:
    """The `step` event of the steps in `window` (the last logging.every_steps steps)."""
    record = window[-1]
    step = trainer.state.step
    seconds = sum(r.seconds for r in window) / len(window)
    allocated, window_peak, peak = memory.window()
    peaks = dist_util.gather_objects(peak)
    window_peaks = dist_util.gather_objects(window_peak)
    samples_high = sum(r.samples_high for r in window)
    samples_low = sum(r.samples_low for r in window)
    loss_high = [r.loss_high * r.samples_high for r in window if r.loss_high is not None]
    loss_low = [r.loss_low * r.samples_low for r in window if r.loss_low is not None]
    fields = events.emit(
        "step", step=step, total_steps=trainer.total_steps,
        epoch=trainer.state.samples_seen / len(trainer.train_set),
        loss=sum(r.loss for r in window) / len(window),
        loss_high=sum(loss_high) / samples_high if samples_high else None,
        loss_low=sum(loss_low) / samples_low if samples_low else None,
        samples_high=samples_high, samples_low=samples_low, lr=record.lr, grad_norm=record.grad_norm,
        seconds_per_step=seconds, samples_per_second=trainer.samples_per_step / max(seconds, 1e-9),
        gpu_memory_allocated_bytes=allocated, gpu_memory_peak_bytes=peak,
        host_memory_peak_bytes=host_peak_bytes(),
        eta_seconds=seconds * (trainer.total_steps - step),
        gpu_memory_peak_bytes_by_rank=peaks,
        gpu_memory_window_peak_bytes=window_peak, gpu_memory_window_peak_bytes_by_rank=window_peaks,
    )
    trainer.metric_logs.log_event("step", fields)


class StopRequest:
    """A stop signal (Ctrl-C, SIGTERM, SIGUSR1) while training: the run stops after the current step and saves a
    checkpoint when that fits in train.stop_grace_seconds from the signal (else the last checkpoint stays).

    One Ctrl-C can arrive several times within milliseconds: from the terminal to every process of its group,
    and forwarded again by torchrun and by wanlora. Signals within 2 s count as one; a later SIGINT or SIGTERM
    stops at once (wanlora escalates SIGINT → SIGTERM; a scheduler's SIGTERM after its notice means the time is
    up). SIGUSR1 is a notice only and never stops at once.
    """

    def __init__(self, trainer: Trainer, grace: int) -> None:
        self.trainer = trainer
        self.grace = grace
        self.at: float | None = None  # this rank's first signal (monotonic)
        self.first_at: float | None = None  # the first signal of any rank, on this rank's clock (agreed at the stop)
        self.signal_name: str | None = None

    @property
    def received(self) -> bool:
        """This rank's own flag (set by the handler at any moment); the loop acts on all ranks' agreed value."""
        return self.at is not None

    @property
    def reason(self) -> str:
        return "interrupted" if self.signal_name == "SIGINT" else "preempted"

    def handle(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if self.at is None:
            self.at = now
            self.signal_name = signal.Signals(signum).name
            log(f"signal {self.signal_name}: finishing this step, then saving a checkpoint "
                f"(within {self.grace} s of the signal, else the last one stays)")
        elif now - self.at > 2.0 and signum != signal.SIGUSR1:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def agree_on_the_signal(self) -> None:
        """Every rank: the signal and its time are the first that any rank got, so rank 0 (which writes the events
        and decides the grace) knows them also when the signal did not reach it."""
        seen = dist_util.gather_objects((self.signal_name, self.seconds_since_signal()))
        self.signal_name = self.signal_name or next((name for name, _ in seen if name), None)
        elapsed = [seconds for _, seconds in seen if seconds is not None]
        if elapsed:
            self.first_at = time.monotonic() - max(elapsed)

    def seconds_since_signal(self) -> float | None:
        at = self.first_at if self.first_at is not None else self.at
        return None if at is None else time.monotonic() - at

    def save_if_in_time(self, last_saved: int) -> bool:
        """Every rank: save the stopped step's checkpoint unless it is saved already or would not be done within
        the grace (rank 0 decides, from the time since the first signal of any rank and its last checkpoint's
        duration)."""
        trainer = self.trainer
        if trainer.state.step == last_saved:
            return False
        in_time = True
        since = self.seconds_since_signal()
        if trainer.layout.is_main and since is not None:
            estimate = trainer.last_checkpoint_seconds or 0.0
            in_time = since + estimate <= self.grace
        if not dist_util.gather_objects(in_time)[0]:
            last = checkpoint_dirs(trainer.run_dir)
            log(f"no checkpoint of step {trainer.state.step}: it would not be written within the {self.grace} s "
                f"grace; {last[-1].name if last else 'no checkpoint'} stays")
            return False
        trainer.save_checkpoint()
        return True


__all__ = ["Trainer", "run_train"]
