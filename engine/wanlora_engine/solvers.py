"""Sampling math of rectified flow: the timestep schedules, expert routing, guidance and the two solvers.

Pure functions and small stateful solvers with no model inside, so the tests check them exactly against
diffusers' schedulers and by hand.

Notation. A video latent x at noise level sigma is x = (1 - sigma) * x0 + sigma * noise; the experts predict
the velocity v = noise - x0 at the timestep t = sigma * T (T = 1000 training timesteps). Sampling walks sigma
from about 1 down to 0 over N steps. Both Wan2.2 and diffusers shift a base schedule u (evenly spaced) with
    sigma = S(u) = shift * u / (1 + (shift - 1) * u),
which spends more of the steps at high noise for shift > 1 (Wan2.2 T2V A14B: shift 12, 40 steps).

The base schedules differ in small ways between the implementations, and each changes which step is the
first of the low-noise expert, so each is available by name (all end with sigma_N = 0):

- "wan": Wan2.2's own sampler (generate.py / FlowUniPCMultistepScheduler.set_timesteps):
  u_i = (1 - 1/T) * (1 - i/N) for i < N; the expert sees the integer timestep floor(sigma_i * T).
- "diffusers_unipc": diffusers' UniPCMultistepScheduler with use_flow_sigmas (the scheduler of the Wan-AI
  diffusers release): u_i = 1 - (1 - 1/T) * i/N, sigma_0 nudged below 1 by 1e-6; integer timesteps.
- "diffusers_euler": diffusers' FlowMatchEulerDiscreteScheduler(shift): u evenly spaced over N points from 1
  down to S(1/T) (the scheduler's shifted training minimum, shifted again), float timesteps sigma * T.

Wan2.2 routes timestep t >= boundary * T (875) to the high-noise expert, the rest to the low-noise one, and
guides each with its own classifier-free guidance scale (4.0 high, 3.0 low).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SCHEDULES = ("wan", "diffusers_unipc", "diffusers_euler")
SOLVERS = ("euler", "unipc")


def shift_sigma(u: np.ndarray | float, shift: float) -> np.ndarray | float:
    """S(u) = shift * u / (1 + (shift - 1) * u): the timestep shift of Wan and SD3."""
    return shift * u / (1 + (shift - 1) * u)


@dataclass(frozen=True)
class FlowSchedule:
    """N sampling steps: sigmas[0..N] (float32, sigmas[N] = 0) and the expert timesteps t_0..t_{N-1}."""

    kind: str
    shift: float
    sigmas: torch.Tensor  # [N + 1] float32
    timesteps: torch.Tensor  # [N] float32 (whole numbers for the integer schedules)
    num_train_timesteps: int

    @property
    def steps(self) -> int:
        return int(self.timesteps.numel())

    def experts(self, boundary: float) -> list[str]:
        """The expert of each step: 'high' where t >= boundary * T."""
        return [expert_for_timestep(float(t), boundary, self.num_train_timesteps) for t in self.timesteps]

    def steps_per_expert(self, boundary: float) -> dict[str, list[int]]:
        """0-based step indices of each expert, e.g. {'high': [0, ..., 25], 'low': [26, ..., 39]}."""
        out: dict[str, list[int]] = {"high": [], "low": []}
        for index, expert in enumerate(self.experts(boundary)):
            out[expert].append(index)
        return out


def flow_schedule(kind: str, steps: int, shift: float, num_train_timesteps: int = 1000) -> FlowSchedule:
    """The sigmas and timesteps of `steps` sampling steps (see the module docstring for the kinds)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, not {steps}")
    if shift <= 0:
        raise ValueError(f"shift must be > 0, not {shift}")
    T = num_train_timesteps
    if kind == "wan":
        # sigma_max is the float32 value of 1 - 1/T, as Wan2.2's scheduler stores it.
        u = np.linspace(float(np.float32(1.0 - 1.0 / T)), 0.0, steps + 1)[:-1]
        sigmas64 = shift_sigma(u, shift)
        timesteps = np.trunc(sigmas64 * T)  # Wan2.2 casts sigma * T to int64
    elif kind == "diffusers_unipc":
        u = np.linspace(1.0, 1.0 / T, steps + 1)[:-1]
        sigmas64 = shift_sigma(u, shift)
        if abs(sigmas64[0] - 1.0) < 1e-6:  # keeps log(sigma / (1 - sigma)) finite at the first step
            sigmas64[0] -= 1e-6
        timesteps = np.trunc(sigmas64 * T)
    elif kind == "diffusers_euler":
        # The scheduler's training sigmas are shifted once at construction (float32); their minimum S(1/T)
        # bounds the inference grid, which is shifted again.
        sigma_min = float(shift_sigma(np.float32(1.0) / np.float32(T), np.float32(shift)))
        u = np.linspace(T * 1.0, sigma_min * T, steps) / T
        sigmas64 = shift_sigma(u, shift)
        timesteps = None  # sigma * T in float32, below
    else:
        raise ValueError(f"unknown schedule {kind!r}; use one of {', '.join(SCHEDULES)}")
    sigmas = torch.from_numpy(np.asarray(sigmas64, dtype=np.float64)).to(torch.float32)
    if timesteps is None:
        t = sigmas * T
    else:
        t = torch.from_numpy(np.asarray(timesteps, dtype=np.float64)).to(torch.float32)
    return FlowSchedule(kind=kind, shift=float(shift), sigmas=torch.cat([sigmas, torch.zeros(1)]), timesteps=t,
                        num_train_timesteps=T)


def expert_for_timestep(t: float, boundary: float, num_train_timesteps: int = 1000) -> str:
    """Wan2.2's switch: t >= boundary * T runs the high-noise expert."""
    return "high" if t >= boundary * num_train_timesteps else "low"


def guided_velocity(cond: torch.Tensor, uncond: torch.Tensor | None, scale: float) -> torch.Tensor:
    """Classifier-free guidance: uncond + scale * (cond - uncond); the conditional alone without uncond."""
    if uncond is None:
        return cond
    return uncond + scale * (cond - uncond)


class EulerFlowSolver:
    """First-order step along the predicted velocity: x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * v_i."""

    name = "euler"

    def __init__(self, sigmas: torch.Tensor) -> None:
        self.sigmas = sigmas

    def step(self, index: int, velocity: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        dt = self.sigmas[index + 1] - self.sigmas[index]
        return sample.float() + dt * velocity.float()


class UniPCFlowSolver:
    """UniPC (Zhao et al. 2023) for flow matching, as Wan2.2 and diffusers run it: multistep predictor of order
    2 with the B(h) = e^h - 1 variant ("bh2") on data (x0) predictions, plus the UniC corrector at every step,
    first order at the first step (nothing to extrapolate from) and at the last (lower_order_final).

    In log-SNR lambda = log((1 - sigma) / sigma), with h = lambda_{i+1} - lambda_i and x0 predictions m:
        predictor  x_{i+1} = (sigma_{i+1}/sigma_i) x_i - (1 - sigma_{i+1}) (e^{-h} - 1) (m_i + D/2)
                   with D = (m_{i-1} - m_i) / r, r = (lambda_{i-1} - lambda_i) / h   (order 2; D = 0 at order 1)
        corrector  the same step from x_{i-1}, redone once m_i is known:
                   x_i <- (sigma_i/sigma_{i-1}) x_{i-1} - (1 - sigma_i) (e^{-h} - 1) m_{i-1}
                          - (1 - sigma_i) (e^{-h} - 1) (rho_1 D' + rho_2 (m_i - m_{i-1}))
                   where rho solves the order conditions R rho = b (rho = 1/2 at order 1).
    """

    name = "unipc"
    order = 2

    def __init__(self, sigmas: torch.Tensor) -> None:
        self.sigmas = sigmas
        self.steps = sigmas.numel() - 1
        self._x0: list[torch.Tensor] = []  # the latest data predictions, oldest first (at most `order`)
        self._previous_sample: torch.Tensor | None = None
        self._previous_order = 0

    def _lambda(self, index: int) -> torch.Tensor:
        sigma = self.sigmas[index]
        return torch.log(1 - sigma) - torch.log(sigma)

    @staticmethod
    def _phi_terms(h: torch.Tensor, order: int) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """e^{-h} - 1, B(h) = e^{-h} - 1 and the right-hand sides b_k of the order conditions."""
        hh = -h
        h_phi_1 = torch.expm1(hh)
        b_h = torch.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        factorial = 1
        rhs = []
        for k in range(1, order + 1):
            rhs.append(h_phi_k * factorial / b_h)
            factorial *= k + 1
            h_phi_k = h_phi_k / hh - 1 / factorial
        return h_phi_1, b_h, rhs

    def _correct(self, index: int, x0_now: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        order = self._previous_order
        x_prev = self._previous_sample
        m_prev = self._x0[-1]
        sigma_t, sigma_s = self.sigmas[index], self.sigmas[index - 1]
        lam_t, lam_s = self._lambda(index), self._lambda(index - 1)
        h = lam_t - lam_s
        h_phi_1, b_h, rhs = self._phi_terms(h, order)
        alpha_t = 1 - sigma_t
        base = sigma_t / sigma_s * x_prev - alpha_t * h_phi_1 * m_prev
        correction = 0
        if order == 1:
            rho_last = 0.5
        else:
            r = (self._lambda(index - 2) - lam_s) / h
            derivative = (self._x0[-2] - m_prev) / r
            # R rho = b with R = [[1, 1], [r, 1]] (powers 0 and 1 of (r, 1)), solved in closed form on the
            # sigmas' device: rho_0 = (b_1 - b_2) / (1 - r), rho_1 = b_1 - rho_0.
            rho_0 = (rhs[0] - rhs[1]) / (1 - r)
            correction = rho_0 * derivative
            rho_last = rhs[0] - rho_0
        return base - alpha_t * b_h * (correction + rho_last * (x0_now - m_prev))

    def step(self, index: int, velocity: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        sample = sample.float()
        x0 = sample - self.sigmas[index] * velocity.float()  # flow prediction -> data prediction
        if index > 0 and self._previous_sample is not None:
            sample = self._correct(index, x0, sample)
        self._x0 = (self._x0 + [x0])[-self.order:]
        order = min(self.order, self.steps - index, index + 1)
        self._previous_sample = sample
        self._previous_order = order

        sigma_t, sigma_s = self.sigmas[index + 1], self.sigmas[index]
        h = self._lambda(index + 1) - self._lambda(index)
        h_phi_1, b_h, _ = self._phi_terms(h, order)
        alpha_t = 1 - sigma_t
        out = sigma_t / sigma_s * sample - alpha_t * h_phi_1 * x0
        if order == 2:
            r = (self._lambda(index - 1) - self._lambda(index)) / h
            derivative = (self._x0[-2] - x0) / r
            out = out - alpha_t * b_h * 0.5 * derivative
        return out


def make_solver(name: str, sigmas: torch.Tensor) -> EulerFlowSolver | UniPCFlowSolver:
    if name == "euler":
        return EulerFlowSolver(sigmas)
    if name == "unipc":
        return UniPCFlowSolver(sigmas)
    raise ValueError(f"unknown solver {name!r}; use one of {', '.join(SOLVERS)}")


def steps_table(schedule: FlowSchedule, boundary: float) -> list[dict[str, object]]:
    """One row per step (1-based): timestep, sigma, expert. For events and the sidecar."""
    experts = schedule.experts(boundary)
    return [{"step": i + 1, "timestep": float(schedule.timesteps[i]), "sigma": float(schedule.sigmas[i]),
             "expert": experts[i]} for i in range(schedule.steps)]
