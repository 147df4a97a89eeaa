"""Schedules, expert switching and the two solvers, against hand values and diffusers' own schedulers."""

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from wanlora_engine.solvers import (
    EulerFlowSolver,
    UniPCFlowSolver,
    flow_schedule,
    guided_velocity,
    make_solver,
    shift_sigma,
    steps_table,
)


def diffusers_scheduler(kind: str, shift: float):
    if kind == "diffusers_euler":
        return FlowMatchEulerDiscreteScheduler(shift=shift)
    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift)


def test_wan_schedule_by_hand_at_shift_12_and_40_steps():
    schedule = flow_schedule("wan", 40, 12.0)
    assert schedule.steps == 40 and schedule.sigmas.shape == (41,) and float(schedule.sigmas[-1]) == 0.0
    # u_i = 0.999 (1 - i/40); sigma = 12 u / (1 + 11 u); t = floor(1000 sigma)
    u0 = 0.999
    assert float(schedule.sigmas[0]) == pytest.approx(12 * u0 / (1 + 11 * u0), abs=1e-7)  # 0.99990902
    u25 = 0.999 * 15 / 40  # 0.374625 -> sigma 0.877877 -> t 877
    assert float(schedule.sigmas[25]) == pytest.approx(12 * u25 / (1 + 11 * u25), abs=1e-6)
    assert [float(t) for t in schedule.timesteps[[0, 25, 26, 39]]] == [999.0, 877.0, 865.0, 235.0]
    assert all(float(t).is_integer() for t in schedule.timesteps)


def test_steps_per_expert_for_shift_12_and_40_steps():
    """The switch to the low-noise expert: the first step with t < 875."""
    wan = flow_schedule("wan", 40, 12.0).steps_per_expert(0.875)
    assert wan == {"high": list(range(0, 26)), "low": list(range(26, 40))}  # t_25 = 877, t_26 = 865
    unipc = flow_schedule("diffusers_unipc", 40, 12.0).steps_per_expert(0.875)
    assert unipc == {"high": list(range(0, 26)), "low": list(range(26, 40))}  # t_25 = 878, t_26 = 866
    euler = flow_schedule("diffusers_euler", 40, 12.0)
    assert euler.steps_per_expert(0.875) == {"high": list(range(0, 25)), "low": list(range(25, 40))}
    assert float(euler.timesteps[24]) == pytest.approx(885.508, abs=1e-3)  # high
    assert float(euler.timesteps[25]) == pytest.approx(874.1325, abs=1e-3)  # low: just below 875
    rows = steps_table(flow_schedule("wan", 40, 12.0), 0.875)
    assert rows[25] == {"step": 26, "timestep": 877.0, "sigma": pytest.approx(0.8778773), "expert": "high"}
    assert rows[26]["expert"] == "low" and rows[26]["step"] == 27


def test_a_timestep_exactly_at_the_boundary_is_high_noise():
    schedule = flow_schedule("wan", 4, 1.0)  # u = 0.999, 0.74925, 0.4995, 0.24975 -> t = 999, 749, 499, 249
    assert [float(t) for t in schedule.timesteps] == [999.0, 749.0, 499.0, 249.0]
    assert schedule.experts(0.749) == ["high", "high", "low", "low"]
    assert schedule.experts(0.7491) == ["high", "low", "low", "low"]


@pytest.mark.parametrize("kind", ["diffusers_euler", "diffusers_unipc"])
@pytest.mark.parametrize("steps,shift", [(40, 12.0), (7, 5.0), (1, 3.0), (50, 1.0)])
def test_schedules_equal_diffusers_schedulers(kind, steps, shift):
    scheduler = diffusers_scheduler(kind, shift)
    scheduler.set_timesteps(steps)
    ours = flow_schedule(kind, steps, shift)
    assert torch.equal(ours.sigmas, scheduler.sigmas.float())
    assert torch.equal(ours.timesteps, scheduler.timesteps.float())


def test_shift_moves_steps_toward_high_noise():
    assert shift_sigma(0.5, 12.0) == pytest.approx(12 / 13)
    high = [len(flow_schedule("wan", 40, s).steps_per_expert(0.875)["high"]) for s in (1.0, 5.0, 12.0)]
    assert high == sorted(high) and high[0] < high[-1]


@pytest.mark.parametrize("kind,name", [("diffusers_euler", "euler"), ("diffusers_unipc", "unipc")])
def test_solvers_follow_diffusers_step_by_step(kind, name):
    """A nonlinear velocity field: every intermediate sample equals the diffusers scheduler's."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(8, 8, generator=generator) * 0.3
    start = torch.randn(2, 8, generator=generator)

    def velocity(x, t):
        return torch.tanh(x @ weight) * (1 + t / 1000)

    scheduler = diffusers_scheduler(kind, 12.0)
    scheduler.set_timesteps(12)
    scheduler.set_begin_index(0)
    schedule = flow_schedule(kind, 12, 12.0)
    solver = make_solver(name, schedule.sigmas)
    theirs, ours = start.clone(), start.clone()
    for index, t in enumerate(scheduler.timesteps):
        theirs = scheduler.step(velocity(theirs, float(t)), t, theirs, return_dict=False)[0]
        ours = solver.step(index, velocity(ours, float(schedule.timesteps[index])), ours)
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=0), index


@pytest.mark.parametrize("solver_class", [EulerFlowSolver, UniPCFlowSolver])
@pytest.mark.parametrize("kind", ["wan", "diffusers_euler"])
def test_constant_velocity_is_integrated_exactly(solver_class, kind):
    """For v = c everywhere, x(sigma) = x_0 + (sigma - sigma_0) c: both solvers land on x_0 - sigma_0 c."""
    schedule = flow_schedule(kind, 9, 12.0)
    solver = solver_class(schedule.sigmas)
    x = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float32)
    c = torch.tensor([[1.5, 0.25, -0.75]], dtype=torch.float32)
    start = x.clone()
    for index in range(schedule.steps):
        x = solver.step(index, c, x)
    assert torch.allclose(x, start - schedule.sigmas[0] * c, atol=2e-6)


def test_unipc_uses_second_order_after_the_first_step():
    """With a velocity that changes between steps, UniPC departs from Euler after step 1, not at step 1."""
    schedule = flow_schedule("wan", 6, 5.0)
    euler, unipc = EulerFlowSolver(schedule.sigmas), UniPCFlowSolver(schedule.sigmas)
    a = b = torch.ones(1, 4)
    velocities = [torch.full((1, 4), float(v)) for v in (1.0, 3.0, -2.0, 0.5, 1.0, 2.0)]
    a1, b1 = euler.step(0, velocities[0], a), unipc.step(0, velocities[0], b)
    assert torch.allclose(a1, b1, atol=1e-6)  # first step: order 1 from a data prediction = Euler
    a2, b2 = euler.step(1, velocities[1], a1), unipc.step(1, velocities[1], b1)
    assert not torch.allclose(a2, b2, atol=1e-3)


def test_guidance_combines_the_two_predictions():
    cond, uncond = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0])
    assert torch.equal(guided_velocity(cond, uncond, 4.0), torch.tensor([5.0, -7.0]))  # 1 + 4 (2 - 1), 1 + 4 (-2)
    assert torch.equal(guided_velocity(cond, None, 3.0), cond)
    with pytest.raises(ValueError, match="unknown schedule"):
        flow_schedule("karras", 10, 1.0)
    with pytest.raises(ValueError, match="unknown solver"):
        make_solver("dpm++", torch.zeros(3))


@pytest.mark.parametrize("name", ["euler", "unipc"])
def test_solvers_stay_on_the_device_of_the_sigmas(name):
    """A GPU stand-in: the meta device refuses to stack with CPU tensors, as CUDA does."""
    schedule = flow_schedule("wan", 6, 12.0)
    solver = make_solver(name, schedule.sigmas.to("meta"))
    x = torch.zeros(1, 4, device="meta")
    for index in range(schedule.steps):
        x = solver.step(index, torch.zeros(1, 4, device="meta"), x)
    assert x.device.type == "meta" and x.dtype == torch.float32
