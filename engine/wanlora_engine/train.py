"""Stage `train`: LoRA training of the Wan2.2 experts on the cache (rectified flow, see flow.py).

One optimizer step = training.grad_accumulation micro-batches of training.micro_batch samples. For each sample, in a
fixed order from one seeded generator: its sigma, its noise, and its CFG-dropout coin. Each sample trains
the expert its timestep belongs to (t = sigma * 1000 >= 875 -> high noise), with that expert's own LoRA.
With train.expert_grouping = 'step', the expert is drawn once per optimizer step (with the probability
the sigma sampler gives its range) and all the step's sigmas are drawn inside that range: the same
joint distribution of (expert, sigma), but only one expert is active per step, so the other can wait
in host memory (hardware.inactive_expert = 'offload').

Run folder (derived.run_dir):
    events.jsonl                       the events of this stage (also on stdout)
    checkpoints/step-NNNNNNNN/         lora-high.safetensors, lora-low.safetensors (float32),
                                       optimizer.pt, rng.pt, trainer_state.json (written last)
    lora/{high,low}_noise.{diffusers,comfyui}.safetensors   the exported adapters
    tensorboard/                       when logging.tensorboard is on
A checkpoint folder is written under a temporary name and renamed into place, so a folder named
step-N is always complete; the last checkpoint.keep_last are kept.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from . import distributed as dist_util
from .config import ResolvedConfig
from .data import CachedDataset, EncodedOnTheFly, EpochSampler, class_balanced_weights, load_empty_prompt
from .errors import ConfigError, EngineError, NonFiniteLossError
from .events import EventWriter, log
from .fast_model import enable_fast_blocks, fast_block_options
from .flow import SigmaSampler, expert_for_timestep, lr_multiplier, noisy_latents, sigma_range
from .gpu_memory import apply_gpu_memory_limit
from .loading import DTYPES, load_components
from .lora import add_lora, export_diffusers, export_official, lora_files, lora_parameters

CHECKPOINT_PREFIX = "step-"


# ---------------------------------------------------------------------------------------------------
# Small helpers


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA GPU is visible", "set train.device to 'auto' or 'cpu'")
    return torch.device(name)


def host_peak_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class GPUMemoryPeaks:
    """Peak GPU memory of the whole run and of the steps since the last step event.

    PyTorch keeps one peak counter per device: it is read and reset at each step event, and the run's peak
    is the largest of those windows. So a run that mixes clip lengths shows each length's own peak.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.run_peak = 0

    def window(self) -> tuple[int | None, int | None, int | None]:
        """(allocated now, peak of the window, peak of the run); None on CPU. Starts a new window."""
        if self.device.type != "cuda":
            return None, None, None
        window = int(torch.cuda.max_memory_allocated(self.device))
        self.run_peak = max(self.run_peak, window)
        torch.cuda.reset_peak_memory_stats(self.device)
        return int(torch.cuda.memory_allocated(self.device)), window, self.run_peak

    def run(self) -> tuple[int | None, int | None]:
        """(allocated now, peak of the run); None on CPU."""
        if self.device.type != "cuda":
            return None, None
        return (int(torch.cuda.memory_allocated(self.device)),
                max(self.run_peak, int(torch.cuda.max_memory_allocated(self.device))))


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and (p / "trainer_state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


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
class TrainState:
    step: int = 0  # optimizer updates done
    samples_seen: int = 0  # global data position
    focal_ema: float | None = None
    history: list[float] = field(default_factory=list)  # mean training loss per step (overfit summary)

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "samples_seen": self.samples_seen, "focal_ema": self.focal_ema,
                "history": self.history}


# ---------------------------------------------------------------------------------------------------


class Trainer:
    """Holds the experts, their LoRA adapters, the optimizer and the data stream of one run."""

    def __init__(self, config: ResolvedConfig, events: EventWriter, groups: dist_util.Groups | None = None) -> None:
        self.config = config
        self.events = events
        self.run_dir = config.derived.run_dir
        if groups is None:  # one process (tests, `python -m wanlora_engine train` without torchrun)
            groups = dist_util.Groups(dist_util.Layout(), resolve_device(config.training.device))
        self.groups = groups
        self.layout = groups.layout
        self.device = groups.device
        apply_gpu_memory_limit(config, self.device, events)
        self.experts: list[str] = [e for e in ("high", "low") if e in config.derived.experts]
        self.boundary = config.model.boundary
        self.timesteps = config.model.num_train_timesteps
        self.state = TrainState()
        self.stop_requested = False
        self.tb_writer: Any = None
        self.last_eval: dict[str, Any] | None = None

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world != self.layout.world_size:
            raise ConfigError(
                f"the engine was started with WORLD_SIZE={world} but was given a {self.layout.world_size}-process layout",
                "start it through `python -m wanlora_engine train` (under torchrun for several processes)",
            )
        self.use_autocast = config.training.mixed_precision == "bf16" and self.device.type == "cuda"
        if config.training.mixed_precision == "bf16" and self.device.type != "cuda":
            events.warning("bf16_needs_gpu", "bf16 autocast needs a CUDA GPU; training in float32 on the CPU")
        dtype_name = config.torch_dtype if self.device.type == "cuda" else "float32"
        if self.device.type != "cuda" and config.torch_dtype != "float32":
            events.warning("float32_on_cpu", f"model.weights_dtype {config.model.weights_dtype} is for GPUs; the CPU run keeps "
                           "the expert weights in float32")
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
        components = load_components(config.model.checkpoint, config.model.layout, self.weight_dtype, set(self.experts))
        # The fast blocks run Ulysses too: enable_ulysses (in _place_models) hands them the sequence group.
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
        self.offload = config.hardware.inactive_expert == "offload" and self.device.type == "cuda" and len(self.experts) > 1
        if self.offload and self.layout.fsdp:
            # A sharded expert already costs 1/world of its memory per GPU; FSDP keeps both experts sharded.
            self.offload = False
            events.warning("offload_replaced_by_sharding", "hardware.inactive_expert 'offload' is not used with FSDP: "
                           f"both experts stay sharded over the {self.layout.world_size} GPUs "
                           f"(1/{self.layout.world_size} of each expert per GPU)")
        self._place_models()
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
            events.warning("expert_grouping_forced", "hardware.inactive_expert 'offload' trains one expert per optimizer "
                           "step: using expert_grouping 'step' (same distribution of expert and timestep)")

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

    def _place_models(self) -> None:
        """Each expert on its device: whole (one GPU, or replicated), sharded (FSDP), sequence-parallel (Ulysses)."""
        layout = self.layout
        for expert in self.experts:
            model = self.models[expert]
            if layout.ulysses > 1:
                heads = model.config.num_attention_heads
                if heads % layout.ulysses:
                    raise ConfigError(f"--ulysses {layout.ulysses} does not divide the model's {heads} attention heads",
                                      f"use a Ulysses degree that divides {heads} (and the GPU count)")
                from .ulysses import enable_ulysses

                enable_ulysses(model, self.groups.sequence, layout.ulysses, layout.sp_rank)
            if layout.fsdp and layout.distributed:
                dist_util.shard_expert(model, self.groups, self.params[expert])
            else:
                model.to("cpu" if self.offload else self.device)
            dist_util.broadcast_parameters(self.params[expert])
        if layout.distributed:
            # LoRA dropout draws from the global RNG: give each rank its own stream (after the seeded init).
            torch.manual_seed(self.config.training.seed * 1_000_003 + 7919 * layout.rank + 1)

    def _build_optimizer(self) -> tuple[torch.optim.Optimizer, str]:
        opt = self.config.training
        groups = [{"params": self.params[e], "name": e} for e in self.experts]
        kwargs = {"lr": opt.learning_rate, "betas": tuple(opt.adam_betas), "eps": opt.adam_eps,
                  "weight_decay": opt.weight_decay}
        if opt.optimizer == "adamw8bit":
            reason = None
            if self.device.type != "cuda":
                reason = "no CUDA GPU"
            else:
                try:
                    import bitsandbytes as bnb  # noqa: F401
                except Exception as error:  # ImportError, or a broken CUDA setup inside bitsandbytes
                    reason = f"bitsandbytes is not usable ({type(error).__name__}: {error})"
            if reason is None:
                import bitsandbytes as bnb

                return bnb.optim.AdamW8bit(groups, **kwargs), "adamw8bit"
            self.events.warning("optimizer_fallback", f"AdamW 8-bit needs bitsandbytes and a CUDA GPU ({reason}); "
                                "using torch AdamW (32-bit state, 2x the optimizer memory)", reason=reason)
        return torch.optim.AdamW(groups, foreach=False, **kwargs), "adamw"

    def _activate(self, expert: str) -> Any:
        """The expert to run; with offloading, it (and its optimizer state) moves to the GPU, the other out."""
        if self.offload and self.active != expert:
            for other in self.experts:
                if other != expert:
                    self.models[other].to("cpu")
                    self._move_optimizer_state(other, torch.device("cpu"))
            self.models[expert].to(self.device)
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

    def draw_step(self, indices: list[int]) -> list[dict[str, Any]]:
        """Sigma, noise and CFG-dropout for the step's samples (one generator, fixed order)."""
        if self.grouping == "step" and len(self.experts) > 1:
            p_high = self.sigma_sampler.probability(*sigma_range("high", self.boundary))
            p_high /= self.sigma_sampler.probability(self.sigma_lo, self.sigma_hi)
            expert = "high" if float(torch.rand(1, generator=self.generator, dtype=torch.float64)) < p_high else "low"
            lo, hi = sigma_range(expert, self.boundary)
        else:
            lo, hi = self.sigma_lo, self.sigma_hi
        sigmas = self.sigma_sampler.sample(len(indices), self.generator, lo, hi)
        samples = []
        for index, sigma in zip(indices, sigmas):
            latent = self.train_set.latent(index).float()
            noise = torch.randn(latent.shape, generator=self.generator, dtype=torch.float32)
            samples.append({"index": index, "sigma": sigma, "x0": latent, "noise": noise})
        drops = torch.rand(len(indices), generator=self.generator) < self.config.training.cfg_dropout
        for sample, drop in zip(samples, drops.tolist()):
            sample["dropped"] = drop
            sample["text"] = self.empty_prompt if drop else self.train_set.text(sample["index"])
            t = float(sample["sigma"]) * self.timesteps
            sample["expert"] = expert_for_timestep(t, self.boundary, self.timesteps)
        return samples

    def loss_weights(self, samples: list[dict[str, Any]], losses: torch.Tensor) -> torch.Tensor:
        mode = self.config.training.loss_weighting
        if mode == "class_balanced":
            return torch.tensor([self.item_loss_weight[s["index"]] for s in samples], dtype=torch.float32)
        if mode == "focal":
            reference = self.state.focal_ema if self.state.focal_ema is not None else float(losses.mean())
            ratio = losses.detach().cpu() / max(reference, 1e-12)
            return ratio.pow(self.config.training.focal_gamma).clamp(max=10.0)
        return torch.ones(len(samples))

    def _micro_groups(self, micro: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
        """A micro-batch split into forward passes: one per (expert, latent shape), high noise first."""
        groups: dict[tuple[str, tuple[int, ...]], list[dict[str, Any]]] = {}
        for sample in micro:
            groups.setdefault((sample["expert"], tuple(sample["x0"].shape)), []).append(sample)
        return [(key[0], group) for key, group in sorted(groups.items(), key=lambda kv: (kv[0][0] != "high", kv[0][1]))]

    def train_step(self) -> StepRecord:
        started = time.monotonic()
        cfg = self.config.training
        layout = self.layout
        self.optimizer.zero_grad(set_to_none=True)
        indices = self.sampler.take(self.state.samples_seen, self.samples_per_step)
        samples = self.draw_step(indices)  # the whole step, drawn identically on every rank
        per_group = cfg.micro_batch * self.grad_accum
        micro_batch_of = lambda d, m: samples[d * per_group + m * cfg.micro_batch:d * per_group + (m + 1) * cfg.micro_batch]  # noqa: E731
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
                x0 = torch.stack([s["x0"] for s in group])
                noise = torch.stack([s["noise"] for s in group])
                sigma = torch.stack([s["sigma"] for s in group])
                text = torch.stack([s["text"] for s in group])
                losses = velocity_losses(model, x0, noise, sigma, text, self.device, self.timesteps,
                                         self.use_autocast, self.weight_dtype)
                weights = self.loss_weights(group, losses).to(self.device) * scale
                # Backward even for a non-finite loss: every rank must run the same collectives; the
                # check below, on the losses of all ranks, stops before the update.
                (weights * losses).sum().div(self.samples_per_step).backward()
                if scale:
                    per_sample_loss.extend((expert, float(v)) for v in losses.detach().cpu())

        # Losses of the whole step: summed over all ranks (a Ulysses group counts each sample U times).
        stats = [0.0] * 6  # sum, count; sum_high, count_high; sum_low, count_low
        for expert, value in per_sample_loss:
            k = 2 if expert == "high" else 4
            stats[0] += value
            stats[1] += 1
            stats[k] += value
            stats[k + 1] += 1
        stats = [v / layout.ulysses for v in dist_util.sum_values(stats, self.device)]
        if not all(math.isfinite(v) for v in stats):
            bad = [e for e, k in (("high", 2), ("low", 4)) if not math.isfinite(stats[k])]
            raise NonFiniteLossError(
                f"the loss became {stats[0] / max(stats[1], 1)} at step {self.state.step + 1} "
                f"({' and '.join(bad)}-noise expert)",
                "lower train.optimizer.lr or raise warmup_steps, and resume from the last checkpoint",
            )
        trained = sorted({s["expert"] for s in samples}, key=self.experts.index)
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
        self.optimizer.step()
        self.scheduler.step()
        self.state.step += 1
        self.state.samples_seen += self.samples_per_step
        mean = stats[0] / stats[1]
        if cfg.loss_weighting == "focal":
            self.state.focal_ema = mean if self.state.focal_ema is None else 0.99 * self.state.focal_ema + 0.01 * mean
        self.state.history.append(mean)
        n_high, n_low = round(stats[3]), round(stats[5])
        loss_high = stats[2] / stats[3] if n_high else None
        loss_low = stats[4] / stats[5] if n_low else None
        return StepRecord(mean, loss_high, loss_low, n_high, n_low, grad_norm, time.monotonic() - started, lr)

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
        self._tensorboard({"eval/loss": record["val_loss"]})
        return record

    # -----------------------------------------------------------------------------------------------
    # Checkpoints

    def save_checkpoint(self) -> Path:
        """Every rank calls this; rank 0 writes (LoRA weights and optimizer state are the same on all)."""
        folder = self.run_dir / "checkpoints"
        name = f"{CHECKPOINT_PREFIX}{self.state.step:08d}"
        final = folder / name
        rank_rng = dist_util.gather_objects(self._rank_rng_state())  # collective: before rank 0 goes its way
        if not self.layout.is_main:
            dist_util.barrier()  # wait until rank 0 has written it
            return final
        try:
            return self._write_checkpoint(folder, final, rank_rng)
        finally:
            dist_util.barrier()

    def _rank_rng_state(self) -> dict[str, torch.Tensor]:
        state = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _write_checkpoint(self, folder: Path, final: Path, rank_rng: list[dict[str, torch.Tensor]]) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        name = final.name
        tmp = folder / f".tmp-{name}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        for expert in self.experts:
            tensors = {k: v.detach().to("cpu").contiguous() for k, v in lora_parameters(self.models[expert]).items()}
            save_file(tensors, str(tmp / f"lora-{expert}.safetensors"))
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
                   tmp / "optimizer.pt")
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state(), "ranks": rank_rng}
        if torch.cuda.is_available() and not self.layout.distributed:
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / "rng.pt")
        state = self.state.to_json() | {"optimizer_name": self.optimizer_name, "experts": self.experts,
                                        "total_steps": self.total_steps, "samples_per_step": self.samples_per_step,
                                        "layout": self.layout.describe()}
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1))
        for path in tmp.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        removed = []
        for old in checkpoint_dirs(self.run_dir)[: -self.config.training.keep_checkpoints]:
            shutil.rmtree(old)
            removed.append(str(old))
        size = sum(p.stat().st_size for p in final.iterdir())
        self.events.emit("checkpoint", step=self.state.step, path=str(final), bytes=size, removed=removed)
        return final

    def load_checkpoint(self, folder: Path) -> None:
        state = json.loads((folder / "trainer_state.json").read_text())
        if sorted(state["experts"]) != sorted(self.experts):
            raise ConfigError(
                f"checkpoint {folder} trained the experts {state['experts']}, the config asks {self.experts}",
                "set training.expert as in the run being resumed, or start a new run folder",
            )
        for expert in self.experts:
            saved = load_file(str(folder / f"lora-{expert}.safetensors"))
            params = lora_parameters(self.models[expert])
            if set(saved) != set(params):
                raise ConfigError(f"checkpoint {folder} has other LoRA modules than the config's lora.targets",
                                  "resume with the lora settings of the original run")
            with torch.no_grad():
                for name, param in params.items():
                    if saved[name].shape != param.shape:
                        raise ConfigError(f"checkpoint {folder}: {name} has shape {tuple(saved[name].shape)}, "
                                          f"the config's lora.rank gives {tuple(param.shape)}",
                                          "resume with the lora settings of the original run")
                    param.copy_(saved[name])
        blob = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=False)
        self.optimizer.load_state_dict(blob["optimizer"])  # state lands on each parameter's device
        self.scheduler.load_state_dict(blob["scheduler"])
        rng = torch.load(folder / "rng.pt", map_location="cpu", weights_only=False)
        self.generator.set_state(rng["generator"])  # the data/sigma/noise stream: the same on every rank
        ranks = rng.get("ranks", [])
        if len(ranks) == self.layout.world_size and self.layout.distributed:
            mine = ranks[self.layout.rank]  # same layout: each rank continues its own dropout stream
            torch.set_rng_state(mine["torch"])
            if "cuda" in mine and self.device.type == "cuda":
                torch.cuda.set_rng_state(mine["cuda"], self.device)
        elif not self.layout.distributed:
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
            elif ranks and "cuda" in ranks[0] and self.device.type == "cuda":
                torch.cuda.set_rng_state(ranks[0]["cuda"], self.device)
        else:  # another number of processes: fresh dropout streams, seeded by step and rank
            torch.manual_seed(self.config.training.seed * 1_000_003 + 7919 * self.layout.rank + int(state["step"]) + 1)
        self.state = TrainState(step=int(state["step"]), samples_seen=int(state["samples_seen"]),
                                focal_ema=state.get("focal_ema"), history=list(state.get("history", [])))
        self._keep_batch_of(state, folder)

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
                f"({self.layout.data_parallel} data-parallel group(s) x micro-batch {self.config.training.micro_batch}) "
                f"cannot make that, so the run continues with {self.samples_per_step} samples per step",
                samples_per_step=self.samples_per_step, previous_samples_per_step=saved)

    # -----------------------------------------------------------------------------------------------

    def _tensorboard(self, scalars: dict[str, float | None]) -> None:
        if self.tb_writer is None:
            return
        for key, value in scalars.items():
            if value is not None:
                self.tb_writer.add_scalar(key, value, self.state.step)

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


def run_train(config: ResolvedConfig, events: EventWriter, resume: bool,
              groups: dist_util.Groups | None = None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Train; returns (status, outputs, summary) for the run_finished event. Raises EngineError on failure.

    `groups`: the started process layout under torchrun (distributed.start); None for one process.
    """
    run_dir = config.derived.run_dir
    existing = checkpoint_dirs(run_dir)
    if existing and not resume:
        raise ConfigError(
            f"run folder {run_dir} already has checkpoints (latest {existing[-1].name})",
            "pass --resume to continue that run, or choose a new run folder",
        )
    if resume and not existing:
        raise ConfigError(f"--resume: run folder {run_dir} has no checkpoint to resume from",
                          "start without --resume, or set run.name to the run to continue")
    trainer = Trainer(config, events, groups)
    if resume:
        trainer.load_checkpoint(existing[-1])
        log(f"resumed from {existing[-1]}")
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
                        "compile": config.training.compile},
                **trainer.layout.describe())
    if config.training.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            trainer.tb_writer = SummaryWriter(str(run_dir / "tensorboard"))
        except Exception as error:  # tensorboard not installed
            events.warning("tensorboard_unavailable", f"TensorBoard logging is off: {error}. "
                           "pip install tensorboard into the engine's environment to get it")

    first_signal: list[float] = []

    def request_stop(signum: int, frame: Any) -> None:
        # One Ctrl-C can arrive several times within milliseconds: from the terminal to every process of
        # its group, and forwarded again by torchrun and by wanlora. Signals within 2 s count as one; a
        # later one stops at once, whichever of SIGINT/SIGTERM it is (wanlora escalates SIGINT → SIGTERM).
        now = time.monotonic()
        if first_signal and now - first_signal[0] > 2.0:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if not first_signal:
            first_signal.append(now)
            trainer.stop_requested = True
            log(f"signal {signal.Signals(signum).name}: finishing this step, then saving a checkpoint")

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    last_saved = trainer.state.step if resume else -1
    eval_start = None
    window: list[StepRecord] = []
    memory = GPUMemoryPeaks(trainer.device)
    status = "completed"
    try:
        if trainer.overfit and trainer.state.step == 0:
            eval_start = trainer.evaluate()
        while trainer.state.step < trainer.total_steps:
            try:
                record = trainer.train_step()
            except NonFiniteLossError as error:
                last = checkpoint_dirs(run_dir)
                events.emit("error", code=error.code, problem=error.problem, remedy=error.remedy,
                            step=trainer.state.step + 1, last_checkpoint=str(last[-1]) if last else None)
                raise
            window.append(record)
            step = trainer.state.step
            # A signal may reach one rank only: all ranks stop after the same step.
            trainer.stop_requested = dist_util.any_rank(trainer.stop_requested, trainer.device)
            if step % config.training.logging_steps == 0 or step == trainer.total_steps or trainer.stop_requested:
                seconds = sum(r.seconds for r in window) / len(window)
                allocated, window_peak, peak = memory.window()
                peaks = dist_util.gather_objects(peak)
                window_peaks = dist_util.gather_objects(window_peak)
                samples_high = sum(r.samples_high for r in window)
                samples_low = sum(r.samples_low for r in window)
                loss_high = [r.loss_high * r.samples_high for r in window if r.loss_high is not None]
                loss_low = [r.loss_low * r.samples_low for r in window if r.loss_low is not None]
                events.emit(
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
                trainer._tensorboard({"train/loss": window[-1].loss, "train/lr": record.lr,
                                      "train/grad_norm": record.grad_norm})
                window = []
            if config.training.eval_steps and step % config.training.eval_steps == 0 and not trainer.overfit:
                trainer.evaluate()
            if config.training.save_steps and step % config.training.save_steps == 0:
                trainer.save_checkpoint()
                last_saved = step
            if trainer.stop_requested:
                status = "interrupted"
                break
        if trainer.state.step != last_saved:
            trainer.save_checkpoint()
        eval_end = None
        if status == "completed" and (trainer.overfit or config.training.eval_steps):
            already = trainer.last_eval is not None and trainer.last_eval["step"] == trainer.state.step
            eval_end = trainer.last_eval if already else trainer.evaluate()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if trainer.tb_writer is not None:
            trainer.tb_writer.close()
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
    return status, outputs | {"checkpoint": str(checkpoint_dirs(run_dir)[-1])}, summary


__all__ = ["Trainer", "run_train", "checkpoint_dirs", "EngineError"]
