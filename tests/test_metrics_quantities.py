"""Known answers and autograd gradients of the shared physical quantities."""

from __future__ import annotations

import math

import pytest
import torch

from physground.errors import ValidationError
from physground.metrics import quantities as q
from physground.metrics.pixels import soft_object_masks

torch.manual_seed(0)


def _f64(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


def test_energy_of_ballistic_flight_is_constant() -> None:
    # x(t) = x0 + v0 t + g t^2 / 2, v = v0 + g t: E = m |v|^2 / 2 - m g.x is constant.
    g = torch.tensor([0.0, 0.0, -9.81], dtype=torch.float64)
    t = torch.linspace(0, 1, 31, dtype=torch.float64)[:, None, None]
    x0 = torch.tensor([[0.0, 0.0, 0.5], [1.0, 2.0, 3.0]], dtype=torch.float64)
    v0 = torch.tensor([[3.0, 0.0, 4.0], [-1.0, 0.5, 0.0]], dtype=torch.float64)
    mass = torch.tensor([1.0, 2.5], dtype=torch.float64)
    pos, vel = x0 + v0 * t + 0.5 * g * t**2, v0 + g * t
    energy = q.total_energy(pos, vel, mass, g)
    expected = 0.5 * (mass * (v0**2).sum(-1)).sum() + 9.81 * (mass * x0[:, 2]).sum()
    torch.testing.assert_close(energy, expected.expand(31), rtol=1e-12, atol=1e-10)
    # potential energy is m g z for gravity (0, 0, -g)
    assert q.potential_energy(x0[:1], mass[:1], g).item() == pytest.approx(9.81 * 0.5)


def test_momentum_and_center_of_mass() -> None:
    vel = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    mass = torch.tensor([2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(q.linear_momentum(vel, mass),
                               torch.tensor([2.0, 6.0, 0.0], dtype=torch.float64))
    com = q.center_of_mass(vel, mass)
    torch.testing.assert_close(com, torch.tensor([0.4, 1.2, 0.0], dtype=torch.float64))


def test_rotational_energy_is_frame_independent_for_a_sphere() -> None:
    angvel = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    inertia = torch.tensor([[0.4, 0.4, 0.4]], dtype=torch.float64)
    quat = torch.nn.functional.normalize(_f64(1, 4), dim=-1)
    assert q.rotational_energy(angvel, quat, inertia).item() == pytest.approx(0.5 * 0.4 * 14)


def test_rotational_energy_uses_body_frame() -> None:
    # Body rotated 90 deg about z: world x-spin is body -y spin, so I_yy applies.
    quat = torch.tensor([[math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]],
                        dtype=torch.float64)
    angvel = torch.tensor([[2.0, 0.0, 0.0]], dtype=torch.float64)
    inertia = torch.tensor([[1.0, 3.0, 5.0]], dtype=torch.float64)
    assert q.rotational_energy(angvel, quat, inertia).item() == pytest.approx(0.5 * 3.0 * 4.0)


def test_finite_difference_velocity_is_exact_for_quadratics() -> None:
    dt = 0.1
    t = torch.arange(6, dtype=torch.float64) * dt
    pos = (2.0 + 3.0 * t - 4.9 * t**2)[:, None]
    vel = q.finite_difference_velocity(pos, dt)
    torch.testing.assert_close(vel, (3.0 - 9.8 * t)[:, None], rtol=0, atol=1e-12)
    acc = q.finite_difference_acceleration(pos, dt)
    torch.testing.assert_close(acc, torch.full((4, 1), -9.8, dtype=torch.float64))
    with pytest.raises(ValidationError, match="frames"):
        q.finite_difference_velocity(pos[:1], dt)


def test_penetration_known_depths() -> None:
    pos = torch.tensor([[0.0, 0.0, 0.1], [0.25, 0.0, 0.1], [5.0, 0.0, 1.0]], dtype=torch.float64)
    radius = torch.tensor([0.15, 0.15, 0.15], dtype=torch.float64)
    torch.testing.assert_close(q.ground_penetration(pos, radius),
                               torch.tensor([0.05, 0.05, 0.0], dtype=torch.float64))
    pair = q.pairwise_penetration(pos, radius)
    assert pair[0, 1].item() == pytest.approx(0.05, abs=1e-9)
    assert pair[1, 0].item() == pytest.approx(0.05, abs=1e-9)
    assert pair[0, 2].item() == 0.0 and pair[0, 0].item() == 0.0


def test_edge_strain_of_uniformly_stretched_cloth() -> None:
    # 3x3 grid with spacing 0.1 m, stretched by 2% in x and 0% in y.
    i, j = torch.meshgrid(torch.arange(3), torch.arange(3), indexing="ij")
    rest = torch.stack([i.flatten() * 0.1, j.flatten() * 0.1, torch.zeros(9)], -1).double()
    edges = torch.tensor([[a, a + 3] for a in range(6)] + [[a, a + 1] for a in range(9)
                                                            if a % 3 != 2])
    rest_len = (rest[edges[:, 0]] - rest[edges[:, 1]]).norm(dim=-1)
    stretched = rest * torch.tensor([1.02, 1.0, 1.0], dtype=torch.float64)
    strain = q.edge_strain(stretched, edges, rest_len)
    expected = torch.where(edges[:, 1] - edges[:, 0] == 3, 0.02, 0.0).double()
    torch.testing.assert_close(strain, expected, atol=1e-9, rtol=0)


def test_divergence_of_constructed_fields() -> None:
    h, w, dx = 16, 20, 0.05
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64) * dx,
                          torch.arange(w, dtype=torch.float64) * dx, indexing="ij")
    # u = (2x + y^2, -3y + x): div = 2 - 3 = -1 everywhere (second order is exact here)
    field = torch.stack([2 * x + y**2, -3 * y + x], -1)
    torch.testing.assert_close(q.divergence_2d(field, dx), torch.full((h, w), -1.0).double())
    # a rotation u = (-y, x) is divergence free
    rot = torch.stack([-y, x], -1)
    assert q.divergence_2d(rot, dx).abs().max().item() < 1e-12


def test_sph_kernel_normalized_and_uniform_density() -> None:
    h = 0.1
    r = torch.linspace(0, 2 * h, 20001, dtype=torch.float64)
    for dim, shell in ((2, 2 * math.pi * r), (3, 4 * math.pi * r**2)):
        integral = torch.trapezoid(q.sph_kernel_cubic(r, h, dim) * shell, r)
        assert integral.item() == pytest.approx(1.0, rel=1e-6)
        integral = torch.trapezoid(q.sph_kernel_wendland(r, 2 * h, dim) * shell, r)
        assert integral.item() == pytest.approx(1.0, rel=1e-6)
    # a cubic lattice with spacing s and mass rho0 s^3 has density close to rho0 inside
    s, rho0 = 0.05, 1000.0
    g = torch.arange(-6, 7, dtype=torch.float64) * s
    lattice = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    rho = q.sph_density(lattice, rho0 * s**3, 1.3 * s)
    centre = lattice.norm(dim=-1).argmin()
    assert rho[centre].item() == pytest.approx(rho0, rel=0.02)


def test_spring_energy_of_a_stretched_spring() -> None:
    x = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.5]], dtype=torch.float64)
    energy = q.spring_energy(x, torch.tensor([[0, 1]]), torch.tensor([1.0]).double(),
                             torch.tensor([200.0]).double())
    assert energy.item() == pytest.approx(0.5 * 200.0 * 0.25)


def test_soft_mask_moments_of_a_rectangle() -> None:
    weights = torch.zeros(10, 12, dtype=torch.float64)
    weights[2:5, 3:9] = 1.0  # rows 2..4, columns 3..8
    area, centroid = q.soft_mask_moments(weights)
    assert area.item() == 18.0
    torch.testing.assert_close(centroid, torch.tensor([6.0, 3.5], dtype=torch.float64))


@pytest.mark.parametrize(
    "fn, make",
    [
        (q.kinetic_energy, lambda: (_f64(2, 3, 3), _f64(3).abs() + 0.5)),
        (q.potential_energy, lambda: (_f64(2, 3, 3), _f64(3).abs() + 0.5, _f64(3))),
        (lambda p, v, m, g: q.total_energy(p, v, m, g),
         lambda: (_f64(2, 3, 3), _f64(2, 3, 3), _f64(3).abs() + 0.5, _f64(3))),
        (q.rotational_energy,
         lambda: (_f64(2, 3), _f64(2, 4), _f64(2, 3).abs() + 0.1)),
        (q.linear_momentum, lambda: (_f64(4, 3, 3), _f64(3).abs())),
        (q.center_of_mass, lambda: (_f64(4, 3, 3), _f64(3).abs() + 0.5)),
        (lambda x: q.finite_difference_velocity(x, 0.1), lambda: (_f64(5, 2, 3),)),
        (lambda x: q.finite_difference_acceleration(x, 0.1), lambda: (_f64(5, 2, 3),)),
        (lambda x: q.ground_penetration(x, 0.5), lambda: (_f64(3, 4, 3),)),
        (lambda x: q.pairwise_penetration(x, 0.8), lambda: (_f64(2, 4, 3),)),
        (lambda x, r: q.edge_strain(x, torch.tensor([[0, 1], [1, 2], [0, 2]]), r),
         lambda: (_f64(2, 3, 3), _f64(3).abs() + 0.5)),
        (lambda u: q.divergence_2d(u, 0.1), lambda: (_f64(2, 5, 6, 2),)),
        (lambda x: q.sph_density(x, 0.3, 0.7), lambda: (_f64(6, 3) * 0.5,)),
        (lambda w: q.soft_mask_moments(w), lambda: (torch.rand(2, 5, 6, dtype=torch.float64),)),
        (q.quat_rotate_inverse, lambda: (_f64(3, 4), _f64(3, 3))),
        (lambda x, quat, h: q.box_ground_clearance(x, quat, h, 0.1),
         lambda: (_f64(2, 3, 3), _f64(2, 3, 4), _f64(3, 3).abs() + 0.1)),
        (lambda x, k: q.spring_energy(x, torch.tensor([[0, 1], [1, 2]]),
                                      torch.tensor([0.5, 0.7], dtype=torch.float64), k),
         lambda: (_f64(2, 3, 3), _f64(2).abs() + 1.0)),
        (lambda x: q.sph_density(x, 0.3, 1.4, kernel="wendland"), lambda: (_f64(6, 2) * 0.5,)),
        (lambda f: soft_object_masks(f, torch.tensor([[0.9, 0.1, 0.1]], dtype=torch.float64),
                                     torch.tensor([[0.5, 0.5, 0.5]], dtype=torch.float64), 0.1),
         lambda: (torch.rand(2, 4, 5, 3, dtype=torch.float64),)),
    ],
)
def test_gradcheck_float64(fn, make) -> None:
    inputs = tuple(x.requires_grad_() for x in make())
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", ["rigid/projectile", "rigid/collision", "rigid/pendulum"])
def test_total_energy_matches_mujoco_energy_sensors(name: str) -> None:
    """Two formulations agree: K + K_rot + U from states equals MuJoCo's own energy."""
    import numpy as np

    from physground.scenario import get_scenario

    scenario = get_scenario(name, render=False, num_frames=20)
    rollout = scenario.simulate([scenario.sample_params("test_id", 0)], [0], "test_id")[0]
    s = {k: torch.as_tensor(v) for k, v in rollout.states.items()}
    static = {k: torch.as_tensor(np.asarray(v)) for k, v in rollout.static.items()}
    energy = q.total_energy(s["pos"], s["vel"], static["mass"], static["gravity"],
                            angvel=s["angvel"], quat=s["quat"], inertia=static["inertia"])
    np.testing.assert_allclose(energy.numpy(), rollout.meta["energy"], rtol=1e-9, atol=1e-9)


def test_box_ground_clearance_known_answers() -> None:
    """A unit cube (h = 0.5) resting on a face touches the plane with its centre at h;
    rotated 45 deg about x it rests on an edge, centre at h sqrt(2); about the (1,1,1)
    diagonal so that a corner points down, at half the diagonal h sqrt(3)."""
    h = torch.full((3,), 0.5, dtype=torch.float64)
    c, s = math.cos(math.pi / 8), math.sin(math.pi / 8)
    flat = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    edge = torch.tensor([c, s, 0.0, 0.0], dtype=torch.float64)
    # rotation taking (1,1,1)/sqrt(3) onto +z: axis (1,-1,0)/sqrt(2), angle acos(1/sqrt(3))
    a = math.acos(1.0 / math.sqrt(3.0))
    k = math.sin(a / 2) / math.sqrt(2.0)
    corner = torch.tensor([math.cos(a / 2), k, -k, 0.0], dtype=torch.float64)
    pos = torch.tensor([[0.3, -0.2, 0.5], [0.0, 0.0, 0.5 * math.sqrt(2.0)],
                        [1.0, 2.0, 0.5 * math.sqrt(3.0)]], dtype=torch.float64)
    quat = torch.stack([flat, edge, corner])
    torch.testing.assert_close(q.box_ground_clearance(pos, quat, h),
                               torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-12)
    # the edge-standing cube at the flat cube's height sinks by h (sqrt(2) - 1)
    sunk = q.box_ground_clearance(pos[:1], edge.unsqueeze(0), h)
    torch.testing.assert_close(sunk, torch.tensor([-0.5 * (math.sqrt(2.0) - 1.0)],
                                                  dtype=torch.float64))
    # ground height, a scaled (unnormalized) quaternion and an explicit up vector
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    lifted = q.box_ground_clearance(pos[:1] + 1.0, 3.0 * flat.unsqueeze(0), h, 0.25, up)
    torch.testing.assert_close(lifted, torch.tensor([0.75], dtype=torch.float64))
    # a box lying sideways (half extents 0.1, 0.2, 0.3 rotated 90 deg about x): y is up
    r = math.sqrt(0.5)
    side = torch.tensor([[r, r, 0.0, 0.0]], dtype=torch.float64)
    hs = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    torch.testing.assert_close(q.box_ground_clearance(torch.tensor([[0.0, 0.0, 0.2]],
                                                                   dtype=torch.float64),
                                                      side, hs),
                               torch.zeros(1, dtype=torch.float64), rtol=0, atol=1e-12)


def test_runout_front_is_the_leading_particle_and_its_soft_bound():
    pos = torch.tensor([[[0.1, 0.0, 0.0], [0.35, 0.0, 0.1], [0.2, 1.0, 0.0]]],
                       dtype=torch.float64)  # [T=1, N=3, 3]
    assert q.runout_front(pos, origin=0.1).item() == pytest.approx(0.25)
    soft = q.runout_front(pos, origin=0.1, temperature=1e-3).item()
    assert 0.25 - 1e-12 <= soft <= 0.25 + 1e-3 * math.log(3)
    pos.requires_grad_(True)
    q.runout_front(pos, temperature=0.05).sum().backward()
    assert pos.grad[0, 1, 0] > pos.grad[0, 2, 0] > 0  # the leader weighs most
    with pytest.raises(ValidationError, match="temperature"):
        q.runout_front(pos, temperature=0.0)
