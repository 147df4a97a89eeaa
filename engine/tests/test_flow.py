import math

import pytest
import torch

from wanlora_engine.flow import (
    SigmaSampler,
    expert_for_timestep,
    lr_multiplier,
    noisy_latents,
    shift_sigma,
    sigma_range,
    unshift_sigma,
)


def test_shift_hand_values_and_inverse():
    # shift 5, u = 0.5: 5 * 0.5 / (1 + 4 * 0.5) = 2.5 / 3
    assert shift_sigma(0.5, 5.0) == pytest.approx(2.5 / 3)
    # shift 12, u = 0.25: 3 / (1 + 11 / 4) = 0.8
    assert shift_sigma(0.25, 12.0) == pytest.approx(0.8)
    assert shift_sigma(0.0, 12.0) == 0.0 and shift_sigma(1.0, 12.0) == 1.0
    for u in (0.01, 0.3, 0.77, 0.99):
        assert unshift_sigma(shift_sigma(u, 7.0), 7.0) == pytest.approx(u)


def test_routing_matches_the_boundary_exactly():
    assert expert_for_timestep(875.0, 0.875) == "high"
    assert expert_for_timestep(874.999, 0.875) == "low"
    assert expert_for_timestep(999.0, 0.875) == "high"
    assert expert_for_timestep(0.0, 0.875) == "low"
    assert sigma_range("high", 0.875) == (0.875, 1.0)
    assert sigma_range("low", 0.875) == (0.0, 0.875)


@pytest.mark.parametrize("sampling,shift", [("uniform", 1.0), ("uniform", 5.0), ("logit_normal", 3.0)])
def test_sampler_share_of_high_noise_matches_its_cdf(sampling, shift):
    sampler = SigmaSampler(sampling, shift)
    sigmas = sampler.sample(200_000, torch.Generator().manual_seed(0))
    share = float((sigmas * 1000 >= 875).double().mean())
    expected = sampler.probability(0.875, 1.0)
    assert share == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / 200_000))
    if sampling == "uniform":
        # closed form: P(sigma >= b) = 1 - u_b, u_b = b / (s - (s - 1) b)
        assert expected == pytest.approx(1 - 0.875 / (shift - (shift - 1) * 0.875))


def test_restricted_draws_stay_in_range_and_keep_the_conditional_distribution():
    sampler = SigmaSampler("uniform", 5.0)
    generator = torch.Generator().manual_seed(1)
    high = sampler.sample(50_000, generator, 0.875, 1.0)
    low = sampler.sample(50_000, generator, 0.0, 0.875)
    assert float(high.min()) >= 0.875 and float(high.max()) <= 1.0
    assert float(low.max()) < 0.875
    # conditional median of the low range: sigma with cdf = cdf(0.875) / 2
    target = sampler.cdf(0.875) / 2
    median = float(low.median())
    assert sampler.cdf(median) == pytest.approx(target, abs=0.01)


def test_sampler_is_deterministic_per_generator_state():
    sampler = SigmaSampler("logit_normal", 3.0, 0.0, 1.0)
    a = sampler.sample(16, torch.Generator().manual_seed(7))
    b = sampler.sample(16, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_lr_schedule_hand_values():
    # 100 warm-up updates, 1100 in all: update 0 -> 1/100, update 99 -> 1, then cosine over 1000 updates
    assert lr_multiplier(0, 100, 1100, "cosine") == pytest.approx(0.01)
    assert lr_multiplier(99, 100, 1100, "cosine") == pytest.approx(1.0)
    assert lr_multiplier(100, 100, 1100, "cosine") == pytest.approx(1.0)
    assert lr_multiplier(600, 100, 1100, "cosine") == pytest.approx(0.5)
    assert lr_multiplier(1100, 100, 1100, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_multiplier(350, 100, 1100, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_multiplier(5000, 0, 1100, "constant") == 1.0


def test_noisy_latents_are_the_rectified_flow_interpolation():
    x0 = torch.full((2, 16, 1, 2, 2), 2.0)
    noise = torch.full((2, 16, 1, 2, 2), -1.0)
    x_t, target = noisy_latents(x0, noise, torch.tensor([0.25, 1.0]))
    assert torch.allclose(x_t[0], torch.full_like(x_t[0], 0.75 * 2 - 0.25))
    assert torch.allclose(x_t[1], noise[1])
    assert torch.allclose(target, torch.full_like(target, -3.0))
