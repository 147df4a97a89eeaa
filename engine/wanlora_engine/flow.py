"""Rectified-flow pieces of training: the noise-level (sigma) sampler, expert routing, the lr schedule.

Pure functions of their arguments (and of an explicit torch.Generator), so the tests check them exactly.

Forward process: x_t = (1 - sigma) * x0 + sigma * noise, with the model predicting the velocity
noise - x0 at timestep t = sigma * num_train_timesteps (1000). Wan2.2 routes t >= boundary * 1000
(875) to the high-noise expert and the rest to the low-noise expert.

Sigma sampler: draw u from a base distribution on (0, 1) -- 'uniform', or 'logit_normal'
(u = sigmoid(m + s * z), z ~ N(0, 1)) -- then apply the timestep shift used by Wan and SD3,
    sigma = shift * u / (1 + (shift - 1) * u),
which moves mass toward high noise for shift > 1. Restricting sigma to an expert's range [lo, hi)
is exact, not rejection: sigma = S(F^-1(v)) with v uniform on [F(S^-1(lo)), F(S^-1(hi))), where S is
the shift and F the base CDF, so the restricted draw has the conditional distribution of the full one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def shift_sigma(u: torch.Tensor | float, shift: float) -> torch.Tensor | float:
    return shift * u / (1 + (shift - 1) * u)


def unshift_sigma(sigma: torch.Tensor | float, shift: float) -> torch.Tensor | float:
    return sigma / (shift - (shift - 1) * sigma)


@dataclass(frozen=True)
class SigmaSampler:
    sampling: str  # 'uniform' | 'logit_normal'
    shift: float
    logit_mean: float = 0.0
    logit_std: float = 1.0

    def _base_cdf(self, u: float) -> float:
        if self.sampling == "uniform":
            return u
        if u <= 0.0:
            return 0.0
        if u >= 1.0:
            return 1.0
        z = (math.log(u / (1 - u)) - self.logit_mean) / self.logit_std
        return 0.5 * (1 + math.erf(z / math.sqrt(2)))

    def _base_icdf(self, v: torch.Tensor) -> torch.Tensor:
        if self.sampling == "uniform":
            return v
        return torch.sigmoid(self.logit_mean + self.logit_std * torch.special.ndtri(v))

    def cdf(self, sigma: float) -> float:
        """P(sampled sigma < `sigma`)."""
        return self._base_cdf(float(unshift_sigma(min(max(sigma, 0.0), 1.0), self.shift)))

    def probability(self, lo: float, hi: float) -> float:
        return self.cdf(hi) - self.cdf(lo)

    def sample(self, n: int, generator: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        """n sigmas in [lo, hi) (float32), drawn with `generator`."""
        v_lo, v_hi = self.cdf(lo), self.cdf(hi)
        v = v_lo + (v_hi - v_lo) * torch.rand(n, generator=generator, dtype=torch.float64)
        sigma = shift_sigma(self._base_icdf(v), self.shift)
        return sigma.clamp(lo, hi).to(torch.float32)


def expert_for_timestep(t: float, boundary: float, num_train_timesteps: int = 1000) -> str:
    """Wan2.2's switch: t >= boundary * num_train_timesteps runs the high-noise expert."""
    return "high" if t >= boundary * num_train_timesteps else "low"


def sigma_range(expert: str, boundary: float) -> tuple[float, float]:
    """The sigmas an expert serves: high [boundary, 1], low [0, boundary)."""
    return (boundary, 1.0) if expert == "high" else (0.0, boundary)


def lr_multiplier(step: int, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """Factor on the base lr for optimizer update number `step` (0-based).

    Linear warm-up over the first `warmup_steps` updates ((step + 1) / warmup_steps, so the first update
    already moves), then cosine from 1 down to 0 at update `total_steps` (or constant).
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def noisy_latents(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x_t and the velocity target for a batch: sigma [B] broadcast over [B, C, F, H, W]."""
    s = sigma.view(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return (1 - s) * x0 + s * noise, noise - x0
