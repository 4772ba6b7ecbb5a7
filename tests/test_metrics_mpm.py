"""Known answers of the quantities and metrics of the MPM materials (mass in a container,
penetration into box colliders, volume of a solid's tetrahedral lattice), on constructed
particle states; no simulator needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physground.metrics import METRICS
from physground.metrics import quantities as q
from physground.metrics.evaluate import evaluate
from physground.rollout import Prediction, Rollout
from physground.simulators.newton.mpm import box_lattice, lattice_tets

DT = 1.0 / 30.0


def test_lattice_tets_tile_the_lattice_and_follow_an_affine_map():
    """Undeformed: the tetrahedra fill the hull of the lattice points, (n-1) cells per axis;
    under x -> A x + b the volume scales by det A (the mesh is exact for affine motion)."""
    x, cell, counts = box_lattice((0.0, 0.0, 0.0), (0.05, 0.03, 0.04), 0.01)
    tets = lattice_tets(counts)
    assert counts == (5, 3, 4) and tets.shape == (6 * 4 * 2 * 3, 4)
    pts = torch.as_tensor(x)
    per_tet = q.tet_volume(pts[None].expand(len(tets), -1, -1), torch.as_tensor(tets)[:, None])
    assert bool((per_tet > 0).all())  # every tetrahedron positively oriented
    rest = q.tet_volume(pts, torch.as_tensor(tets))
    assert float(rest) == pytest.approx(4 * 2 * 3 * np.prod(cell), rel=1e-12)
    a = torch.tensor([[1.1, 0.2, 0.0], [0.0, 0.9, 0.1], [0.05, 0.0, 0.8]], dtype=torch.float64)
    moved = pts @ a.T + torch.tensor([0.3, -0.1, 0.2], dtype=torch.float64)
    assert float(q.tet_volume(moved, torch.as_tensor(tets))) == pytest.approx(
        float(rest * torch.linalg.det(a)), rel=1e-12
    )


def test_box_penetration_is_the_distance_to_the_nearest_face():
    boxes = torch.tensor([[0.0, 0.0, 0.0, 1.0, 2.0, 3.0]], dtype=torch.float64)
    pos = torch.tensor(
        [[0.9, 0.0, 0.0], [0.0, -1.5, 0.0], [0.0, 0.0, 0.0], [1.2, 0.0, 0.0]], dtype=torch.float64
    )
    depth = q.box_penetration(pos, boxes)
    np.testing.assert_allclose(depth[:, 0].numpy(), [0.1, 0.5, 1.0, 0.0], atol=1e-12)
    # a sphere of radius 0.3 just outside the face at x = 1 touches it 0.1 deep
    assert float(q.box_penetration(pos[3:], boxes, radius=0.3)) == pytest.approx(0.1)


def test_mass_in_box_counts_the_particles_inside_and_softens_for_losses():
    pos = torch.tensor([[0.5, 0.5], [1.5, 0.5], [0.2, -0.1]], dtype=torch.float64)
    mass = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    lo, hi = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    assert float(q.mass_in_box(pos, mass, lo, hi)) == pytest.approx(1.0)
    soft = q.mass_in_box(pos, mass, lo, hi, softness=1e-3)
    assert float(soft) == pytest.approx(1.0, abs=1e-12)  # 0.5 m deep inside
    on_face = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    assert float(q.mass_in_box(on_face, 1.0, lo, hi, softness=1e-2)) == pytest.approx(0.5)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    x, _, counts = box_lattice((0.0, 0.0, 0.0), (0.03, 0.02, 0.02), 0.01)
    pts = torch.tensor(x + rng.normal(0, 1e-3, x.shape), requires_grad=True)
    tets = torch.as_tensor(lattice_tets(counts))
    assert torch.autograd.gradcheck(lambda p: q.tet_volume(p, tets), (pts,))
    boxes = torch.tensor([[0.01, 0.01, 0.01, 0.012, 0.013, 0.011]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: q.box_penetration(p, boxes).sum(), (pts,))
    lo = torch.tensor([0.0, 0.0, 0.005], dtype=torch.float64)
    hi = torch.tensor([0.02, 0.02, 0.02], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: q.mass_in_box(p, 0.3, lo, hi, softness=2e-3), (pts,))


def block_rollout(frames: int = 6) -> Rollout:
    """A lattice block at rest on the ground (z from 0.005) inside a unit container, with
    its tetrahedra and one box collider beside it."""
    x, _, counts = box_lattice((0.2, 0.0, 0.0), (0.26, 0.04, 0.06), 0.01)
    xs = np.repeat(x[None], frames, 0)
    return Rollout(
        scenario="softbody/drop",
        split="test_id",
        seed=0,
        params={},
        dt=DT,
        states={"x": xs, "v": np.zeros_like(xs)},
        static={
            "particle_mass": np.float64(0.5),
            "tets": lattice_tets(counts),
            "domain": np.array([[0.0, 0.0, 0.0], [1.0, 0.04, 1.0]]),
            "colliders": np.array([[0.5, 0.02, 0.05, 0.05, 0.02, 0.05]]),
            "gravity": np.array([0.0, 0.0, -9.81]),
        },
    )


def predict(truth: Rollout, context: int, x: np.ndarray) -> Prediction:
    return Prediction.for_rollout(
        truth, model="m", context=context, horizon=len(x), states={"x": x, "v": np.zeros_like(x)}
    )


def values(truth: Rollout, pred: Prediction, metric: str) -> np.ndarray:
    rows = evaluate(truth, pred, [metric]).to_dict("records")
    assert all(r["failure"] == "" for r in rows), rows[0]["failure"]
    return np.array([r["value"] for r in rows])


@pytest.mark.parametrize("metric", ["mass_drift", "collider_penetration", "volume_error"])
def test_metric_of_the_truth_itself_is_zero(metric):
    truth = block_rollout()
    pred = predict(truth, 2, truth.states["x"][2:])
    np.testing.assert_allclose(values(truth, pred, metric), 0.0, atol=1e-15)


def test_mass_drift_is_the_fraction_leaked_out_of_the_container():
    truth = block_rollout()
    x = truth.states["x"][2:].copy()
    n = x.shape[1]
    x[1:, : n // 4, 2] -= 0.5  # a quarter falls through the ground from step 2 on
    np.testing.assert_allclose(
        values(truth, predict(truth, 2, x), "mass_drift"), [0.0] + [(n // 4) / n] * 3, rtol=1e-12
    )


def test_collider_penetration_measures_the_deepest_point():
    truth = block_rollout()
    x = truth.states["x"][2:].copy()
    x[1, 0] = [0.52, 0.03, 0.03]  # inside the box, 0.01 m from its nearest face (y)
    x[2, 1, 2] = -0.007  # 0.007 m below the ground
    got = values(truth, predict(truth, 2, x), "collider_penetration")
    np.testing.assert_allclose(got, [0.0, 0.01, 0.007, 0.0], atol=1e-12)


def test_volume_error_of_a_uniform_compression():
    """Squashing the block to 80 % of its height (width kept) leaves 80 % of its volume."""
    truth = block_rollout()
    x = truth.states["x"][2:].copy()
    x[..., 2] *= 0.8
    np.testing.assert_allclose(values(truth, predict(truth, 2, x), "volume_error"), 0.2, rtol=1e-12)


def test_new_metrics_apply_only_where_their_law_is_declared():
    class Fake:
        def __init__(self, laws: set[str]) -> None:
            self.laws, self.state_names = frozenset(laws), ("x", "v")

    sph = Fake({"incompressible", "mass_conserved", "non_penetration"})
    sand = Fake({"mass_conserved", "non_penetration", "energy_nonincreasing"})
    mpm_fluid = Fake({"mass_conserved", "mass_in_domain", "collider_non_penetration"})
    solid = mpm_fluid.laws | {"solid_volume"}
    for name, where in {
        "mass_drift": (False, False, True, True),
        "collider_penetration": (False, False, True, True),
        "volume_error": (False, False, False, True),
        "density_deviation": (True, False, False, False),
    }.items():
        metric = METRICS.get(name)
        got = tuple(metric.applies_to(s) for s in (sph, sand, mpm_fluid, Fake(solid)))
        assert got == where, name
