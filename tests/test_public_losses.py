"""`physground.losses`: zero on exact physics, growing with the violation, gradcheck."""

from __future__ import annotations

import itertools

import pytest
import torch

from physground import losses as PL
from physground.errors import ValidationError

G = torch.tensor([0.0, 0.0, -9.81], dtype=torch.float64)


def _ballistic(b: int = 2, t: int = 12, dt: float = 0.02) -> tuple[torch.Tensor, ...]:
    """Analytic free flight x = x0 + v0 t + g t^2 / 2 of 2 bodies, [B, T, 2, 3]."""
    time = (torch.arange(t, dtype=torch.float64) * dt)[None, :, None, None]
    x0 = torch.tensor([[0.0, 0.0, 5.0], [1.0, -1.0, 8.0]], dtype=torch.float64)
    v0 = torch.tensor([[2.0, 0.5, 3.0], [-1.0, 1.0, 0.0]], dtype=torch.float64)
    x0, v0 = x0.expand(b, 2, 3), v0 * torch.arange(1, b + 1, dtype=torch.float64)[:, None, None]
    pos = x0[:, None] + v0[:, None] * time + 0.5 * G * time ** 2
    vel = v0[:, None] + G * time
    return pos, vel, torch.tensor([1.0, 2.5], dtype=torch.float64), dt


def test_exact_free_flight_has_zero_ballistic_energy_and_penetration_loss() -> None:
    pos, vel, mass, dt = _ballistic()
    assert float(PL.ballistic_residual(pos, dt, G)) < 1e-12
    assert float(PL.energy_drift(pos, vel, mass, G)) < 1e-20
    assert float(PL.ground_penetration_loss(pos, 0.1)) == 0.0
    assert (PL.ground_signed_distance(pos, 0.1) > 0).all()


def test_losses_grow_with_the_violation() -> None:
    pos, vel, mass, dt = _ballistic()
    wrong = [0.0, 0.5, 1.0, 2.0]
    t2 = ((torch.arange(pos.shape[1]) * dt) ** 2)[None, :, None, None]
    sideways = 0.5 * G.abs().flip(0) * t2  # a spurious 9.81 m/s^2 push along x per unit k
    ballistic = [float(PL.ballistic_residual(pos + k * sideways, dt, G)) for k in wrong]
    energy = [float(PL.energy_drift(pos, vel * (1 + 0.1 * k), mass, G)) for k in wrong]
    sink = [float(PL.ground_penetration_loss(pos - torch.tensor([0, 0, shift]), 0.1))
            for shift in (0.0, 5.0, 5.2, 5.5)]  # body 0 starts at 5 m, its lowest point
    for series in (ballistic, energy, sink):
        assert series[0] < 1e-12 and all(a < b for a, b in itertools.pairwise(series[1:]))
        assert series[1] > 0
    # a wrong gravity reads as a relative residual (|dg| / |g|)^2
    assert float(PL.ballistic_residual(pos, dt, 1.5 * G)) == pytest.approx(0.25 / 2.25)


def test_momentum_and_strain_and_free_mask() -> None:
    v = torch.tensor([[1.0, 0.0], [-0.5, 0.0]], dtype=torch.float64)
    vel = v.expand(1, 5, 2, 2).clone()
    mass = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert float(PL.momentum_drift(vel, mass)) == 0.0
    kicked = vel.clone()
    kicked[:, 2:, 0, 0] += 0.3
    assert float(PL.momentum_drift(kicked, mass)) == pytest.approx(0.3 ** 2 * 3 / 4 / 2 ** 2)
    square = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=torch.float64)
    edges = torch.tensor([[0, 1], [1, 2], [2, 3], [3, 0]])
    rest = torch.ones(4, dtype=torch.float64)
    pos = square.expand(2, 3, 4, 3)
    assert float(PL.edge_strain_loss(pos, edges, rest)) == 0.0
    assert float(PL.edge_strain_loss(pos * 1.1, edges, rest)) == pytest.approx(0.01)
    assert float(PL.edge_strain_loss(pos * 1.1, edges, rest, tol=0.2)) == 0.0
    p, _, _, dt = _ballistic()
    free = torch.ones(p.shape[0], p.shape[1] - 2, 2, dtype=torch.bool)
    bumped = p.clone()
    bumped[:, 5, 0, 2] += 0.01  # a contact kick on body 0 around frame 5, masked out
    free[:, 3:6, 0] = False
    assert float(PL.ballistic_residual(bumped, dt, G, free)) < 1e-12
    assert float(PL.ballistic_residual(bumped, dt, G)) > 1.0
    with pytest.raises(ValidationError, match=r"free has shape"):
        PL.ballistic_residual(p, dt, G, free[:, 1:])
    with pytest.raises(ValidationError, match=r"pos has shape \[12, 2, 3\]"):
        PL.ballistic_residual(p[0], dt, G)


def test_divergence_and_mask_losses() -> None:
    h = w = 16
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    rotation = torch.stack([-(yy - 8), xx - 8], dim=-1)[None]  # div = 0
    source = torch.stack([xx - 8, yy - 8], dim=-1)[None]  # div = 2 / dx
    assert float(PL.divergence_loss(rotation, 0.1)) < 1e-20
    assert float(PL.divergence_loss(source, 0.1)) > 0.01
    # a soft disc whose centre falls at g_px = 200 px/s^2 (rows increase downwards)
    dt, g = 0.05, 200.0
    t = torch.arange(6, dtype=torch.float64) * dt
    cy = 10.0 + 0.5 * g * t ** 2
    big = torch.meshgrid(torch.arange(40.0, dtype=torch.float64),
                         torch.arange(40.0, dtype=torch.float64), indexing="ij")
    masks = torch.sigmoid(3.0 * (4.0 - torch.sqrt((big[1][None] - 20) ** 2
                                                  + (big[0][None] - cy[:, None, None]) ** 2)))
    masks = masks[None]  # [1, 6, 40, 40], pixel-sampled: ~1e-4 error
    g_px = torch.tensor([[0.0, g]], dtype=torch.float64)
    assert float(PL.mask_centroid_gravity_loss(masks, g_px, dt)) < 1e-3
    assert float(PL.mask_centroid_gravity_loss(masks, 2 * g_px, dt)) == pytest.approx(0.25,
                                                                                     rel=1e-2)
    assert float(PL.mask_area_loss(masks)) < 1e-6
    shrinking = masks * torch.linspace(1.0, 0.5, 6, dtype=torch.float64)[None, :, None, None]
    assert float(PL.mask_area_loss(shrinking)) > 0.01


def test_gradcheck_float64() -> None:
    pos, vel, mass, dt = _ballistic(b=1, t=5)
    pos = (pos + 0.01 * torch.randn_like(pos)).requires_grad_()
    vel = (vel + 0.01 * torch.randn_like(vel)).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: PL.ballistic_residual(x, dt, G), (pos,))
    assert torch.autograd.gradcheck(lambda x, v: PL.energy_drift(x, v, mass, G), (pos, vel))
    assert torch.autograd.gradcheck(lambda v: PL.momentum_drift(v, mass), (vel,))
    low = (pos.detach() - torch.tensor([0, 0, 5.05], dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: PL.ground_penetration_loss(x, 0.1), (low,))
    masks = torch.rand(1, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m: PL.mask_area_loss(m), (masks,))


def _unit_cube_tets() -> tuple[torch.Tensor, torch.Tensor]:
    """The unit cube's 8 corners [8, 3] and a positively oriented 6-tetrahedron split."""
    corners = torch.tensor(list(itertools.product((0.0, 1.0), repeat=3)), dtype=torch.float64)
    tets = torch.tensor([[0, 1, 3, 7], [0, 3, 2, 7], [0, 2, 6, 7],
                         [0, 6, 4, 7], [0, 4, 5, 7], [0, 5, 1, 7]])
    from physground.metrics import quantities as Q

    signs = torch.sign(Q.tet_volume(corners[tets].reshape(-1, 4, 3),
                                    torch.arange(4)[None]))
    return corners, torch.where(signs[:, None] > 0, tets, tets[:, [0, 2, 1, 3]])


def test_material_losses_closed_forms() -> None:
    """Volume: a cube scaled by s in z has V = s, so the loss is (s - 1)^2 and 0 under a
    rigid shift; mass in domain: one of 4 equal particles leaving the box gives
    ((3/4 - 1))^2 over the frame it is out; collider: a point 5 mm deep in a box with a
    1 cm scale costs (0.5)^2."""
    corners, tets = _unit_cube_tets()
    stretch = torch.stack([corners, corners * torch.tensor([1.0, 1.0, 0.8],
                                                           dtype=torch.float64)])[None]
    assert float(PL.volume_loss(stretch, tets)) == pytest.approx(0.5 * 0.2 ** 2, rel=1e-12)
    shifted = torch.stack([corners, corners + 3.0])[None]
    assert float(PL.volume_loss(shifted, tets)) == pytest.approx(0.0, abs=1e-24)

    inside = torch.tensor([[0.2, 0.5], [0.4, 0.5], [0.6, 0.5], [0.8, 0.5]],
                          dtype=torch.float64)
    leaked = inside.clone()
    leaked[0, 1] = -0.5  # through the floor of the box [0, 1]^2
    pos = torch.stack([inside, leaked])[None]
    lo, hi = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    loss = PL.mass_in_domain_loss(pos, 1.0, lo, hi, softness=1e-4)
    assert float(loss) == pytest.approx(0.5 * 0.25 ** 2, rel=1e-9)
    assert float(PL.mass_in_domain_loss(torch.stack([inside, inside])[None], 1.0, lo, hi,
                                        softness=1e-4)) == pytest.approx(0.0, abs=1e-20)

    box = torch.tensor([[0.0, 0.0, 0.0, 0.5, 0.5, 0.5]], dtype=torch.float64)
    deep = torch.tensor([[[[0.0, 0.0, 0.495]], [[0.0, 0.0, 0.7]]]], dtype=torch.float64)
    assert float(PL.collider_penetration_loss(deep, box)) == pytest.approx(
        0.5 * 0.5 ** 2, rel=1e-9)
    with pytest.raises(ValidationError, match="pos"):
        PL.volume_loss(corners, tets)


def test_material_losses_gradcheck_float64() -> None:
    corners, tets = _unit_cube_tets()
    pos = (torch.stack([corners, corners]) + 0.05 * torch.randn(2, 8, 3, dtype=torch.float64)
           )[None].requires_grad_()
    assert torch.autograd.gradcheck(lambda x: PL.volume_loss(x, tets), (pos,))
    lo, hi = torch.full((3,), 0.1, dtype=torch.float64), torch.full((3,), 0.9,
                                                                    dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: PL.mass_in_domain_loss(x, 1.0, lo, hi, softness=0.05), (pos,))
    box = torch.tensor([[0.5, 0.5, 0.5, 0.45, 0.45, 0.45]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: PL.collider_penetration_loss(x, box), (pos,))
