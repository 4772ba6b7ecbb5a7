"""Simulator-as-teacher losses for the Warp SPH dam break and the Warp smoke plume: zero on
the ground truth, and gradients through the Warp tape that match central differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_learned_fixtures import one_torch_thread  # noqa: F401

from physground.errors import ValidationError
from physground.learned import losses as L
from physground.learned.entities import entity_states, entity_static
from physground.learned.teacher import (
    TeacherWarpSmoke,
    TeacherWarpSPH,
    make_teacher,
    smoke_teacher_loss,
)
from physground.learned.training import TrainConfig, train
from physground.scenario import get_scenario

F64 = torch.float64


def _dam_breaks(**config):
    scenario = get_scenario("fluid/dam_break", num_frames=4, render=False, columns=5, rows=5,
                            **config)
    return scenario.simulate([scenario.sample_params("train", s) for s in (0, 1)], [0, 1],
                             "train")


@pytest.fixture(scope="module")
def sph_rollouts():
    """Two 4-frame dam breaks of 5 x 5 particles (different viscosity and gravity)."""
    return _dam_breaks()


@pytest.fixture(scope="module")
def smoke_rollouts():
    """Two 4-frame smoke plumes on a 12 x 12 grid (different buoyancy)."""
    scenario = get_scenario("fluid/smoke", num_frames=4, render=False, grid_size=12)
    return scenario.simulate([scenario.sample_params("train", s) for s in (0, 1)], [0, 1],
                             "train")


def _sph_state(rollouts, x: torch.Tensor, v: torch.Tensor, teacher) -> L.EntityRollout:
    return L.EntityRollout(x=x[:, 1:], v=v[:, 1:], x0=x[:, 0], v0=v[:, 0],
                           static=entity_static(rollouts), dt=rollouts[0].dt,
                           rows=torch.arange(len(rollouts)), teacher=teacher)


def _directional_check(loss, leaf: torch.Tensor, direction: torch.Tensor, h: float) -> tuple:
    """(autograd, central difference) derivative of ``loss`` at ``leaf`` along ``direction``."""
    x = leaf.detach().clone().requires_grad_(True)
    loss(x).backward()
    analytic = float((x.grad * direction).sum())
    with torch.no_grad():
        fd = float(loss(leaf + h * direction) - loss(leaf - h * direction)) / (2 * h)
    return analytic, fd


def _sph_truth(rollouts) -> tuple[torch.Tensor, torch.Tensor]:
    states = [entity_states(r, dtype=F64) for r in rollouts]
    return torch.stack([a for a, _ in states]), torch.stack([b for _, b in states])


def _sph_loss(rollouts, teacher, x: torch.Tensor, v: torch.Tensor):
    """The teacher loss as a function of the model's frame 1 (frame 2 is stepped from it
    through the tape), the other frames the truth."""
    def loss(x1: torch.Tensor) -> torch.Tensor:
        xs = torch.cat([x[:, :1], x1[:, None], x[:, 2:3]], dim=1)
        return L.entity_physics_loss("teacher", _sph_state(rollouts, xs, v[:, :3], teacher),
                                     laws=frozenset())
    return loss


def test_sph_teacher_zero_on_truth_and_descends(sph_rollouts):
    teacher = make_teacher(sph_rollouts)
    assert isinstance(teacher, TeacherWarpSPH) and teacher.differentiable
    x, v = _sph_truth(sph_rollouts)
    truth = L.entity_physics_loss("teacher", _sph_state(sph_rollouts, x, v, teacher),
                                  laws=frozenset())
    assert float(truth) < 1e-10
    spacing = float(sph_rollouts[0].static["spacing"])
    gen = torch.Generator().manual_seed(0)
    x1 = x[:, 1] + 0.02 * spacing * torch.randn(x[:, 1].shape, generator=gen, dtype=F64)
    loss = _sph_loss(sph_rollouts, teacher, x, v)
    leaf = x1.clone().requires_grad_(True)
    value = loss(leaf)
    assert float(value.detach()) > 1e-2  # a 2 %-of-spacing error is seen
    value.backward()
    # the stiff default liquid (c = 60 m/s, 240 substeps a frame) makes central differences
    # of a whole frame unreliable; its gradient still points downhill
    with torch.no_grad():
        step = 1e-3 * spacing * leaf.grad / leaf.grad.norm()
        assert float(loss(x1 - step)) < float(value) < float(loss(x1 + step))


def test_sph_teacher_gradient_matches_central_differences():
    """On a softer liquid (c = 12.5 m/s, 60 substeps: float32 differences above round-off)
    the gradient through the Warp tape of a whole frame matches central differences."""
    rollouts = _dam_breaks(sound_speed=12.5, substeps=60)
    teacher = make_teacher(rollouts)
    x, v = _sph_truth(rollouts)
    spacing = float(rollouts[0].static["spacing"])
    gen = torch.Generator().manual_seed(0)
    x1 = x[:, 1] + 0.02 * spacing * torch.randn(x[:, 1].shape, generator=gen, dtype=F64)
    loss = _sph_loss(rollouts, teacher, x, v)
    direction = torch.randn(x1.shape, generator=gen, dtype=F64)
    analytic, fd = _directional_check(loss, x1, direction, h=1e-3 * spacing)
    assert analytic == pytest.approx(fd, rel=5e-2), (analytic, fd)
    # a real part of it flows through the simulator step (not only |x1 - S(x0)|^2)
    leaf = x1.clone().requires_grad_(True)
    loss(leaf).backward()
    direct = x1 - teacher(x[:, 0], v[:, 0], torch.arange(2))[0]
    cos = float((leaf.grad * direct).sum() / (leaf.grad.norm() * direct.norm()))
    assert cos < 0.99, cos


def test_sph_teacher_trains_state_gnn(sph_rollouts):
    config = TrainConfig(steps=2, batch_size=2, unroll=2, progress=False, log_every=1,
                         model_config={"hidden": 16, "layers": 1},
                         loss_weights={"data": 1.0, "teacher": 0.1})
    model = train(config, sph_rollouts)
    assert all(np.isfinite(h["teacher"]) and h["teacher"] > 0 for h in model.history)


def _smoke(rollouts, key: str) -> torch.Tensor:
    return torch.tensor(np.stack([r.states[key] for r in rollouts]), dtype=F64)


def test_smoke_teacher_zero_on_truth_and_gradient_matches_central_differences(smoke_rollouts):
    teacher = make_teacher(smoke_rollouts)
    assert isinstance(teacher, TeacherWarpSmoke)
    rows = torch.arange(len(smoke_rollouts))
    rho, u, v = (_smoke(smoke_rollouts, k) for k in ("density", "face_u", "face_v"))
    assert float(smoke_teacher_loss(teacher, rho, u, v, rows)) < 1e-10
    gen = torch.Generator().manual_seed(1)
    bump = 0.02 * torch.randn(rho[:, 1].shape, generator=gen, dtype=F64)

    def loss(rho1: torch.Tensor) -> torch.Tensor:
        dens = torch.cat([rho[:, :1], rho1[:, None], rho[:, 2:]], dim=1)
        return smoke_teacher_loss(teacher, dens, u, v, rows)

    rho1 = rho[:, 1] + bump
    assert float(loss(rho1)) > 1e-4  # a 2 % density error is seen
    direction = torch.randn(rho1.shape, generator=gen, dtype=F64)
    analytic, fd = _directional_check(loss, rho1, direction, h=1e-3)
    # MacCormack's limiter clamps are kinks: a central difference straddles a few
    assert analytic == pytest.approx(fd, rel=5e-2), (analytic, fd)
    # one gradient step on the model's frame lowers the loss (the gradient points the right way)
    leaf = rho1.detach().clone().requires_grad_(True)
    value = loss(leaf)
    value.backward()
    with torch.no_grad():
        assert float(loss(leaf - 1e-3 * leaf.grad / leaf.grad.norm())) < float(value)
    # the cell-centred form runs and returns the model's shapes
    rho_c, vel_c = teacher.cell(rho[:, 0], _smoke(smoke_rollouts, "velocity")[:, 0], rows)
    assert rho_c.shape == rho[:, 0].shape and vel_c.shape[-1] == 2


def test_smoke_teacher_rejects_mismatched_inputs(smoke_rollouts):
    teacher = make_teacher(smoke_rollouts)
    rho, u, v = (_smoke(smoke_rollouts, k) for k in ("density", "face_u", "face_v"))
    with pytest.raises(ValidationError, match="u has shape"):
        smoke_teacher_loss(teacher, rho, u[:, :2], v, torch.arange(2))
    with pytest.raises(ValidationError, match=">= 2 frames"):
        smoke_teacher_loss(teacher, rho[:, :1], u[:, :1], v[:, :1], torch.arange(2))
