"""Cloth fidelity: mirror symmetry under drag, membrane stiffness, stable flat hanging sheet,
wind recorded exactly as simulated, and the fast validation studies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from physground.benchmarks.validation.study_cloth import (
    cloth_energy_balance,
    cloth_static_sag,
    hanging_sheet,
    lattice_equilibrium,
    lattice_modes,
    simulate_sheet,
)
from physground.scenario import get_scenario
from physground.simulators.warp.cloth import ClothEnvParams, SimulatorWarpCloth


def test_symmetric_sheet_in_wind_stays_mirror_symmetric_for_one_second() -> None:
    topo, x0, pinned = hanging_sheet(12)
    x0[:, 2] -= 1.5  # centred on the origin: float32 round-off ~3e-8 m per operation
    xs, _ = simulate_sheet(topo, x0, pinned, stiffness=500.0, mass=0.3, damping=0.05,
                           seconds=1.0, air_drag=1.0, wind=(0.0, 2.0, 0.0))
    n = topo.resolution
    grid = xs.reshape(len(xs), n, n, 3)
    mirrored = grid[:, :, ::-1].copy()
    mirrored[..., 0] *= -1.0  # reflect x -> -x
    assert np.abs(grid[..., 1]).max() > 0.05  # the wind really billowed the sheet
    assert np.abs(grid - mirrored).max() < 1e-6


def test_stiffness_is_the_membrane_stiffness() -> None:
    """A strip pulled by a total force F on its free edge strains by F / (k W) mid-sheet."""
    topo, x0, pinned = hanging_sheet(13)
    n, k, force = topo.resolution, 400.0, 4.0
    load = np.zeros_like(x0)
    bottom = np.isclose(topo.uv[:, 1], 0.0)
    load[bottom, 2] = -force / (n - 1)
    load[bottom & (np.isclose(topo.uv[:, 0], 0.0) | np.isclose(topo.uv[:, 0], 1.0)), 2] /= 2
    x = lattice_equilibrium(topo, k, 1e-9, pinned, x0, 0.0, load=load)
    centre = np.arange(n) * n + n // 2
    lo, hi = n // 3, 2 * n // 3
    strain = (x[centre[hi], 2] - x[centre[lo], 2]) / ((hi - lo) * topo.spacing) - 1.0
    assert strain == pytest.approx(force / (k * topo.size), rel=0.01)


@pytest.mark.parametrize(("stiffness", "mass"), [(300.0, 0.4), (1500.0, 0.7)])
def test_flat_hanging_sheet_has_no_unstable_modes(stiffness: float, mass: float) -> None:
    topo, x0, pinned = hanging_sheet(12)
    x_eq = lattice_equilibrium(topo, stiffness, mass, pinned, x0, 3e-3)
    omega2 = lattice_modes(topo, stiffness, mass, pinned, x_eq, 3e-3)
    assert omega2.min() > 0.0


def test_round_off_does_not_grow_in_a_hanging_sheet() -> None:
    topo, x0, pinned = hanging_sheet(12)
    x_eq = lattice_equilibrium(topo, 500.0, 0.3, pinned, x0, 3e-3)
    x_start = x_eq + np.where(pinned[:, None], 0.0, [0.0, 1e-7, 0.0])
    xs, _ = simulate_sheet(topo, x_start, pinned, stiffness=500.0, mass=0.3, damping=0.05,
                           seconds=1.6)
    assert np.abs(xs[..., 1]).max() < 1e-5


def test_flag_records_exactly_the_wind_it_simulates() -> None:
    scenario = get_scenario("cloth/flag", num_frames=4, render=False, resolution=6)
    params = [scenario.sample_params("train", s) for s in (0, 1)]
    rollouts = scenario.simulate(params, [0, 1], "train")
    for r in rollouts:
        yaw, speed = r.params["wind_yaw"], r.params["wind_speed"]
        np.testing.assert_array_equal(r.static["wind"], speed * np.array(
            [np.cos(yaw), np.sin(yaw), 0.0]))
        # Re-simulating with the recorded wind gives the stored trajectory bit for bit.
        s = r.static
        env = ClothEnvParams.from_numpy(
            "cpu", stiffness=np.array([r.params["stiffness"]]),
            damping=np.array([r.params["damping"]]), mass=np.array([r.params["mass"]]),
            wind=s["wind"][None], friction=np.array([s["friction"]]),
            sphere_center=s["sphere_center"][None], sphere_radius=np.array([s["sphere_radius"]]),
            free=(~s["pinned"])[None].astype(np.float32))
        sim = SimulatorWarpCloth(scenario.topology(), dt=r.dt / r.meta["substeps"],
                                 air_drag=float(s["air_drag"]), bending=float(
                                     s["bending_rigidity"]), thickness=float(s["thickness"]))
        xs, _ = sim.rollout(r.states["x"][:1].astype(np.float32),
                            r.states["v"][:1].astype(np.float32), env, 4, r.meta["substeps"])
        np.testing.assert_array_equal(xs[0], r.states["x"].astype(np.float32))


@pytest.mark.parametrize("study", [cloth_static_sag, cloth_energy_balance])
def test_quick_cloth_studies_pass(study, tmp_path: Path) -> None:
    result = study(True, tmp_path)
    assert result.passed, result.summary
    assert all(p.exists() for p in result.figures)


def test_graph_replayed_rollout_equals_launch_by_launch() -> None:
    import warp as wp

    topo, x0, pinned = hanging_sheet(6)
    env = ClothEnvParams.from_numpy(
        "cpu", stiffness=np.array([400.0]), damping=np.array([0.05]), mass=np.array([0.3]),
        wind=np.array([[1.0, 2.0, 0.0]]), friction=np.zeros(1),
        sphere_center=np.array([[0.0, 0.0, -10.0]]), sphere_radius=np.zeros(1),
        free=(~pinned)[None].astype(np.float32))
    sim = SimulatorWarpCloth(topo, dt=1 / 300, bending=3e-3)
    xs, _ = sim.rollout(x0[None].astype(np.float32), np.zeros((1, 36, 3), np.float32), env, 4, 5)
    x = wp.array(x0[None].astype(np.float32), dtype=wp.vec3)
    v = wp.zeros_like(x)
    for frame in range(1, 4):
        for _ in range(5):
            x_next, v_next, f = wp.empty_like(x), wp.empty_like(v), wp.zeros_like(x)
            sim.substep(x, v, f, env, x_next, v_next)
            x, v = x_next, v_next
        np.testing.assert_array_equal(xs[0, frame], x.numpy()[0])


@pytest.mark.slow
@pytest.mark.parametrize("study", [cloth_static_sag, cloth_energy_balance])
def test_full_cloth_studies_pass(study, tmp_path: Path) -> None:
    assert study(False, tmp_path).passed
