"""Known-answer tests of the Warp cloth simulator (mass-spring, symplectic Euler)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physground.errors import ValidationError
from physground.scenario import SCENARIOS, get_scenario
from physground.simulators.warp.cloth import (
    ClothEnvParams,
    ClothTorchStep,
    SimulatorWarpCloth,
    cloth_substep_numpy,
    cloth_topology,
    edge_strain,
)

HANG = dict(stiffness=500.0, mass=0.3, damping=0.05)


def test_topology_counts_and_rest_lengths() -> None:
    topo = cloth_topology(5, 1.0)
    assert topo.num_nodes == 25
    assert len(topo.faces) == 2 * 4 * 4
    # unique triangle edges: 2*5*4 grid edges + 16 diagonals
    assert len(topo.edges) == 40 + 16
    assert len(topo.springs) == 40 + 32  # stretch + shear; bending is not a spring
    assert len(topo.quads) == 16
    np.testing.assert_allclose(sorted(set(np.round(topo.edge_rest, 6))), [0.25, 0.353553])


@pytest.mark.parametrize("name", ["cloth/hanging", "cloth/drape", "cloth/flag"])
def test_scenarios_roll_out_with_frames_and_masks(name: str) -> None:
    scenario = get_scenario(name, num_frames=6, image_size=16, resolution=6)
    params = [scenario.sample_params(split, 0) for split in ("train", "test_ood")]
    rollouts = scenario.simulate(params, [0, 1], "train")
    for r in rollouts:
        assert r.states["x"].shape == (6, 36, 3) and r.states["v"].shape == (6, 36, 3)
        assert r.frames.shape == (6, 16, 16, 3) and r.frames.dtype == np.uint8
        assert r.masks.shape == (6, 16, 16) and (r.masks == 1).any()
        assert np.isfinite(r.states["x"]).all() and scenario.check(r) is None
        assert r.static["edges"].shape[1] == 2 and r.static["faces"].shape[1] == 3
    assert {"cloth", "warp", "benchmark"} <= SCENARIOS.tags(name)


def test_hanging_cloth_strain_bounded_energy_decays_and_comes_to_rest() -> None:
    scenario = get_scenario("cloth/hanging", num_frames=150, render=False, resolution=8)
    rollouts = scenario.simulate(
        [{**HANG, "pin_layout": 0.0}, {**HANG, "pin_layout": 1.0}], [0, 1], "train"
    )
    for r in rollouts:
        strain = np.abs(edge_strain(r.states["x"], r.static))
        # Swinging load on a sheet of membrane stiffness k: corner edges stay below 8 %.
        assert strain.max() < 0.08
        ke = 0.5 * np.einsum("n,tnc->t", r.static["mass"], r.states["v"] ** 2)
        assert ke.max() > 0.1  # it did swing
        assert ke[-20:].max() < 4e-3 * ke.max()  # and came (nearly) to rest
        energy = np.asarray(r.meta["energy"])
        assert np.diff(energy).max() < 1e-4  # dissipative: never grows between frames
        pinned = r.static["pinned"]
        np.testing.assert_array_equal(r.states["x"][-1, pinned], r.states["x"][0, pinned])


def test_drape_never_penetrates_sphere_or_ground() -> None:
    scenario = get_scenario("cloth/drape", num_frames=45, render=False, resolution=10)
    params = dict(HANG, friction=0.4, sphere_radius=0.3)
    r = scenario.simulate([params], [3], "train")[0]
    x, centre, radius = r.states["x"], r.static["sphere_center"], r.static["sphere_radius"]
    dist = np.linalg.norm(x - centre, axis=-1)
    assert dist.min() >= radius + r.static["thickness"] - 1e-4
    assert x[..., 2].min() >= r.static["thickness"] - 1e-5
    # the sheet really reached the sphere (some node within 2 mm of its contact offset)
    assert dist[-1].min() < radius + r.static["thickness"] + 2e-3


def test_same_seed_same_bytes_on_cpu() -> None:
    scenario = get_scenario("cloth/flag", num_frames=5, image_size=16, resolution=6)
    params = [scenario.sample_params("train", s) for s in (4, 5)]
    a = scenario.simulate(params, [4, 5], "train")
    b = scenario.simulate(params, [4, 5], "train")
    for ra, rb in zip(a, b, strict=True):
        assert ra.states["x"].tobytes() == rb.states["x"].tobytes()
        assert ra.frames.tobytes() == rb.frames.tobytes()


def _env_numpy(batch: int, nodes: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    free = np.ones((batch, nodes))
    free[:, :2] = 0.0
    return dict(
        stiffness=rng.uniform(300, 800, batch), damping=rng.uniform(0.02, 0.08, batch),
        mass=rng.uniform(0.2, 0.4, batch), wind=rng.normal(0, 3, (batch, 3)),
        friction=np.full(batch, 0.4), sphere_center=np.tile([0.0, 0.0, 0.3], (batch, 1)),
        sphere_radius=np.full(batch, 0.35), free=free,
    )


def test_warp_substep_matches_numpy_formulation() -> None:
    rng = np.random.default_rng(0)
    topo = cloth_topology(6, 1.0)
    batch, nodes = 3, topo.num_nodes
    x = np.concatenate([(topo.uv - 0.5), np.full((nodes, 1), 0.6)], axis=1)
    x = np.broadcast_to(x, (batch, nodes, 3)) + rng.normal(0, 0.01, (batch, nodes, 3))
    v = rng.normal(0, 0.5, (batch, nodes, 3))
    env = _env_numpy(batch, nodes, rng)
    dt = 1 / 2400
    sim = SimulatorWarpCloth(topo, dt=dt)
    wenv = ClothEnvParams.from_numpy("cpu", **env)
    xw, vw = x.copy(), v.copy()
    import warp as wp

    xa, va = wp.array(xw, dtype=wp.vec3), wp.array(vw, dtype=wp.vec3)
    xb, vb = wp.empty_like(xa), wp.empty_like(va)
    for _ in range(20):
        f = wp.zeros_like(xa)
        sim.substep(xa, va, f, wenv, xb, vb)
        xa, va, xb, vb = xb, vb, xa, va
        x, v = cloth_substep_numpy(x, v, topo, dt=dt, **env)
    # some nodes touch the sphere: contact handling is compared too
    assert (np.linalg.norm(x - [0, 0, 0.3], axis=-1) <= 0.36 + 1e-6).any()
    np.testing.assert_allclose(xa.numpy(), x, atol=2e-5)
    np.testing.assert_allclose(va.numpy(), v, atol=2e-3)


def test_torch_step_gradients_match_central_differences() -> None:
    scenario = get_scenario("cloth/flag", num_frames=2, render=False, resolution=5)
    r = scenario.simulate([scenario.sample_params("train", 0)], [0], "train")[0]
    step = ClothTorchStep(r.static, dt=r.dt / 8, substeps=10)  # 10 substeps of 1/2400 s
    gen = torch.Generator().manual_seed(0)
    f64 = dict(dtype=torch.float64)
    x = torch.tensor(r.states["x"][1:2], **f64)
    v = 0.5 * torch.randn(x.shape, generator=gen, **f64)
    args = [x, v, torch.tensor([r.params["stiffness"]], **f64),
            torch.tensor([r.params["damping"]], **f64),
            torch.tensor([r.params["mass"]], **f64), torch.tensor(r.static["wind"][None], **f64)]
    wx, wv = torch.randn(x.shape, generator=gen, **f64), torch.randn(x.shape, generator=gen, **f64)
    x_ref, v_ref = step(*args)

    def loss(*a: torch.Tensor) -> torch.Tensor:
        x1, v1 = step(*a)
        return ((x1 - x_ref) * wx).sum() + 0.02 * ((v1 - v_ref) * wv).sum()

    leaves = [a.clone().requires_grad_(True) for a in args]
    loss(*leaves).backward()
    eps = [1e-3, 1e-2, 20.0, 0.02, 0.02, 0.2]
    for i, (leaf, h) in enumerate(zip(leaves, eps, strict=True)):
        direction = torch.randn(leaf.shape, generator=gen, **f64)
        plus = [a + h * direction if j == i else a for j, a in enumerate(args)]
        minus = [a - h * direction if j == i else a for j, a in enumerate(args)]
        fd = (loss(*plus) - loss(*minus)).item() / (2 * h)
        analytic = (leaf.grad * direction).sum().item()

        assert analytic == pytest.approx(fd, rel=0.05, abs=2e-4), f"argument {i}"


def test_bad_input_is_rejected_with_clear_errors() -> None:
    scenario = get_scenario("cloth/hanging", num_frames=3, render=False, resolution=4)
    with pytest.raises(ValidationError, match="stiffness"):
        scenario.simulate([{**HANG, "stiffness": -1.0, "pin_layout": 0.0}], [0], "train")
    with pytest.raises(ValidationError, match="pin_layout"):
        scenario.simulate([{**HANG, "pin_layout": 0.5}], [0], "train")
    with pytest.raises(ValidationError, match="seeds"):
        scenario.simulate([{**HANG, "pin_layout": 0.0}], [0, 1], "train")
    with pytest.raises(ValidationError, match="device"):
        get_scenario("cloth/hanging", device="tpu")
    r = scenario.simulate([{**HANG, "pin_layout": 0.0}], [0], "train")[0]
    step = ClothTorchStep.from_rollout(r)
    x = torch.zeros(1, 16, 3)
    with pytest.raises(ValidationError, match="wind"):
        step(x, x, torch.ones(1), torch.ones(1), torch.ones(1), torch.ones(3))


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    params = [{**HANG, "pin_layout": 0.0}]
    cpu = get_scenario("cloth/hanging", num_frames=10, image_size=16).simulate(
        params, [0], "train")[0]
    gpu = get_scenario("cloth/hanging", num_frames=10, image_size=16, device="cuda").simulate(
        params, [0], "train")[0]
    np.testing.assert_allclose(gpu.states["x"], cpu.states["x"], atol=1e-4)
    assert (gpu.masks == cpu.masks).mean() > 0.98



def test_free_fall_centre_of_mass_follows_the_discrete_ballistic_law() -> None:
    """Spring forces are internal (equal and opposite): without drag, pins or contact the
    centre of mass moves exactly as symplectic Euler integrates gravity,
    x_n = x_0 + n h v_0 + g h^2 n (n + 1) / 2, however much the sheet deforms."""
    rng = np.random.default_rng(1)
    topo = cloth_topology(6, 1.0)
    nodes = topo.num_nodes
    x0 = np.concatenate([topo.uv - 0.5, np.full((nodes, 1), 5.0)], axis=1)
    x0 = (x0 + rng.normal(0, 0.02, x0.shape))[None]
    v0 = rng.normal(0, 0.5, (1, nodes, 3))
    env = dict(_env_numpy(1, nodes, rng), free=np.ones((1, nodes)),
               sphere_radius=np.zeros(1))
    h, substeps = 1 / 2400, 40
    sim = SimulatorWarpCloth(topo, dt=h, air_drag=0.0)
    xs, vs = sim.rollout(x0, v0, ClothEnvParams.from_numpy("cpu", **env), 4, substeps)
    n = np.arange(4)[:, None] * substeps
    expected = x0.mean(axis=1) + n * h * v0.mean(axis=1) + np.array(
        [0, 0, -9.81]) * h * h * n * (n + 1) / 2
    np.testing.assert_allclose(xs[0].mean(axis=1), expected, atol=2e-5)
    strain = np.abs(edge_strain(xs[0].astype(np.float64), {"edges": topo.edges,
                                                           "rest_length": topo.edge_rest}))
    assert strain.max() > 0.01  # the springs were working


def test_row_sweep_kernel_equals_the_separate_kernels_bit_for_bit() -> None:
    """The CPU fast path (one row-sweep kernel per substep) gives every node its force terms
    in the order of the separate spring, drag, curvature and integrate kernels: pins, the
    sphere, the ground, drag and bending all active, two environments."""
    import warp as wp

    rng = np.random.default_rng(3)
    topo = cloth_topology(7, 1.0)
    batch, nodes = 2, topo.num_nodes
    x0 = np.concatenate([topo.uv - 0.5, np.full((nodes, 1), 0.62)], axis=1)
    x0 = np.broadcast_to(x0, (batch, nodes, 3)) + rng.normal(0, 0.02, (batch, nodes, 3))
    v0 = rng.normal(0, 0.5, (batch, nodes, 3))
    env = ClothEnvParams.from_numpy("cpu", **_env_numpy(batch, nodes, rng))
    fused = SimulatorWarpCloth(topo, dt=1 / 2400, bending=3e-3, ground=0.3)
    separate = SimulatorWarpCloth(topo, dt=1 / 2400, bending=3e-3, ground=0.3)
    separate.rows_kernel = False
    assert fused.rows_kernel
    out = []
    for sim in (fused, separate):
        x, v = (wp.array(a.astype(np.float32), dtype=wp.vec3) for a in (x0, v0))
        x_next, v_next, f = wp.empty_like(x), wp.empty_like(v), wp.zeros_like(x)
        for _ in range(30):
            sim.substep(x, v, f, env, x_next, v_next, clear_forces=True)
            x, v, x_next, v_next = x_next, v_next, x, v
        out.append((x.numpy(), v.numpy()))
    assert (np.linalg.norm(out[0][0] - [0, 0, 0.3], axis=-1) <= 0.36 + 1e-6).any()  # contact
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_reused_frame_graph_gives_the_same_rollout_as_a_fresh_simulator() -> None:
    """The frame graph is captured once per simulator and replayed by later rollouts: a
    second rollout from another state equals that rollout on a new simulator."""
    rng = np.random.default_rng(4)
    topo = cloth_topology(6, 1.0)
    nodes = topo.num_nodes
    env = ClothEnvParams.from_numpy("cpu", **_env_numpy(1, nodes, rng))
    starts = [np.concatenate([topo.uv - 0.5, np.full((nodes, 1), 0.8)], axis=1)[None]
              + rng.normal(0, 0.01, (1, nodes, 3)) for _ in range(2)]
    v0 = np.zeros((1, nodes, 3))
    sim = SimulatorWarpCloth(topo, dt=1 / 2400, bending=3e-3)
    sim.rollout(starts[0], v0, env, 3, 7)
    graph = sim._frame_cache.graph
    again = sim.rollout(starts[1], v0, env, 3, 7)
    assert sim._frame_cache.graph is graph
    fresh = SimulatorWarpCloth(topo, dt=1 / 2400, bending=3e-3).rollout(starts[1], v0, env, 3, 7)
    for a, b in zip(again, fresh, strict=True):
        np.testing.assert_array_equal(a, b)
    # An env given a new array is captured anew, not replayed with the old array.
    import warp as wp

    env.wind = wp.array(np.array([[0.0, 9.0, 0.0]]), dtype=wp.vec3)
    windy = sim.rollout(starts[1], v0, env, 3, 7)
    fresh = SimulatorWarpCloth(topo, dt=1 / 2400, bending=3e-3).rollout(starts[1], v0, env, 3, 7)
    assert not np.array_equal(windy[0], again[0])
    np.testing.assert_array_equal(windy[0], fresh[0])
