"""Contract tests over every registered Warp scenario, storage round trip, and the
torch steps reproducing stored ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from physground.rollout import SPLITS
from physground.scenario import SCENARIOS, get_scenario
from physground.storage import check_rollout, read_shard, storage_array, write_shard

TINY = {
    "cloth/hanging": dict(resolution=5),
    "cloth/drape": dict(resolution=5),
    "cloth/flag": dict(resolution=5),
    "fluid/smoke": dict(grid_size=12, pressure_iterations=20),
    "fluid/dam_break": dict(columns=4, rows=5),
}
STATE_RANK = {"x": 3, "v": 3, "density": 3, "velocity": 4, "face_u": 3, "face_v": 3}


def test_all_warp_scenarios_are_registered_with_tags() -> None:
    names = set(SCENARIOS.names(tag="warp"))
    assert names == set(TINY)
    for name in names:
        family = name.split("/")[0]
        assert {family, "warp", "benchmark"} <= SCENARIOS.tags(name)


@pytest.mark.parametrize("name", sorted(TINY))
def test_scenario_contract_and_storage_round_trip(name: str, tmp_path: Path) -> None:
    scenario = get_scenario(name, num_frames=3, image_size=16, **TINY[name])
    assert scenario.simulator == "warp"
    assert scenario.param_space.ood_params()
    params = [scenario.sample_params(split, 1) for split in SPLITS]
    rollouts = scenario.simulate(params, [1, 2, 3], "test_id")
    for rollout, p in zip(rollouts, params, strict=True):
        assert set(rollout.states) == set(scenario.state_names)
        for key, value in rollout.states.items():
            assert value.ndim == STATE_RANK[key] and value.shape[0] == 3
            assert value.dtype == np.float64
        assert rollout.params == pytest.approx(p)
        assert rollout.frames.shape == (3, 16, 16, 3) and rollout.masks.shape == (3, 16, 16)
        assert rollout.camera is not None and rollout.camera.width == 16
        assert check_rollout(rollout) is None and scenario.check(rollout) is None
        assert rollout.meta["simulator"] == "warp" and rollout.meta["substeps"] >= 1
    write_shard(tmp_path / "shard.h5", rollouts)
    back = read_shard(tmp_path / "shard.h5")
    for a, b in zip(rollouts, back, strict=True):  # stored exactly, floats as float32
        for key in a.states:
            np.testing.assert_array_equal(storage_array(a.states[key]), b.states[key])
            assert b.states[key].dtype == np.float32
        for key in a.static:
            np.testing.assert_array_equal(storage_array(a.static[key]), np.asarray(b.static[key]))
        np.testing.assert_array_equal(a.frames, b.frames)
    # The reference discretisation runs and gives nearby physics.
    reference = get_scenario(name, num_frames=3, render=False,
                             **{**TINY[name], **scenario.reference_overrides})
    ref = reference.simulate(params[:1], [1], "test_id")[0]
    for key in ref.states:
        scale = np.abs(rollouts[0].states[key]).max() + 1e-9
        assert np.abs(ref.states[key] - rollouts[0].states[key]).max() < 0.2 * scale


def test_cloth_torch_step_continues_a_stored_rollout_exactly(tmp_path: Path) -> None:
    from physground.simulators.warp.cloth import ClothTorchStep

    scenario = get_scenario("cloth/drape", num_frames=4, render=False, resolution=6)
    params = [scenario.sample_params("train", s) for s in (0, 1)]
    rollouts = scenario.simulate(params, [0, 1], "train")
    write_shard(tmp_path / "cloth.h5", rollouts)
    r0, r1 = read_shard(tmp_path / "cloth.h5")
    for r in (r0, r1):  # read back from disk: the stepper is rebuilt from static + meta
        step = ClothTorchStep.from_rollout(r)
        p = r.params
        x1, v1 = step(torch.tensor(r.states["x"][2:3]), torch.tensor(r.states["v"][2:3]),
                      torch.tensor([p["stiffness"]]), torch.tensor([p["damping"]]),
                      torch.tensor([p["mass"]]), torch.tensor(r.static["wind"][None]))
        np.testing.assert_allclose(x1[0].numpy(), r.states["x"][3], atol=1e-6)
        np.testing.assert_allclose(v1[0].numpy(), r.states["v"][3], atol=1e-4)


def test_sph_torch_step_continues_a_stored_rollout() -> None:
    from physground.simulators.warp.sph import SPHTorchStep

    scenario = get_scenario("fluid/dam_break", num_frames=3, render=False, columns=5, rows=5)
    r = scenario.simulate([scenario.sample_params("train", 0)], [0], "train")[0]
    step = SPHTorchStep.from_rollout(r)
    p = r.params
    x1, v1 = step(torch.tensor(r.states["x"][1:2]), torch.tensor(r.states["v"][1:2]),
                  torch.tensor([p["viscosity"]]), torch.tensor([p["gravity"]]),
                  torch.tensor([p["box_width"]]))
    np.testing.assert_allclose(x1[0].numpy(), r.states["x"][2], atol=1e-6)
    np.testing.assert_allclose(v1[0].numpy(), r.states["v"][2], atol=1e-4)


def test_speed_benchmark_runs_at_tiny_size(capsys: pytest.CaptureFixture[str]) -> None:
    from physground.benchmarks.speed import bench_warp

    bench_warp.main(["--frames", "2", "--repeat", "1", "--sweeps", "2", "--cloth-sizes", "4"])
    out = capsys.readouterr().out
    assert "cloth   4^2" in out and "node ratio" in out and "smoke  32^2" in out


def test_cloth_torch_step_with_one_scene_per_batch_element() -> None:
    from physground.simulators.warp.cloth import ClothTorchStep

    scenario = get_scenario("cloth/hanging", num_frames=3, render=False, resolution=5)
    params = [dict(stiffness=500.0, mass=0.3, damping=0.05, pin_layout=float(k))
              for k in (0, 1, 2)]
    rollouts = scenario.simulate(params, [0, 1, 2], "train")
    step = ClothTorchStep.from_rollouts(rollouts)
    x, v = (torch.tensor(np.stack([r.states[k][1] for r in rollouts])) for k in ("x", "v"))
    x1, _ = step(x, v, torch.full((3,), 500.0), torch.full((3,), 0.05),
                 torch.full((3,), 0.3), torch.zeros(3, 3))
    for b, r in enumerate(rollouts):
        np.testing.assert_allclose(x1[b].numpy(), r.states["x"][2], atol=1e-6)



def _grads(step: object, args: list[torch.Tensor], dtype: torch.dtype, n_grad: int) -> list:
    leaves = [a.detach().to(dtype).clone().requires_grad_(i < n_grad) for i, a in enumerate(args)]
    outputs = step(*leaves)  # type: ignore[operator]
    sum(o.sum() * (k + 1) for k, o in enumerate(outputs)).backward()
    return [leaf.grad.double() for leaf in leaves[:n_grad]]


def test_torch_steps_give_float32_inputs_the_float64_gradients() -> None:
    """Gradients are copied out of Warp before its buffers are reused (float32 tensors
    would otherwise alias them), for all three torch steps."""
    from physground.simulators.warp.cloth import ClothTorchStep
    from physground.simulators.warp.smoke import SmokeTorchStep
    from physground.simulators.warp.sph import SPHTorchStep

    cloth = get_scenario("cloth/flag", num_frames=2, render=False, resolution=4)
    rc = cloth.simulate([cloth.sample_params("train", 0)], [0], "train")[0]
    p = rc.params
    cloth_args = [torch.tensor(rc.states["x"][1:]), torch.tensor(rc.states["v"][1:]),
                  torch.tensor([p["stiffness"]]), torch.tensor([p["damping"]]),
                  torch.tensor([p["mass"]]), torch.tensor(rc.static["wind"][None])]
    sph = get_scenario("fluid/dam_break", num_frames=2, render=False, columns=3, rows=3)
    rs = sph.simulate([sph.sample_params("train", 0)], [0], "train")[0]
    sph_args = [torch.tensor(rs.states["x"][1:]), torch.tensor(rs.states["v"][1:]),
                torch.tensor([0.1]), torch.tensor([9.81]), torch.tensor([0.9])]
    n = 6
    rho = torch.rand(1, n, n, generator=torch.Generator().manual_seed(0))
    smoke_args = [rho, torch.zeros(1, n, n, 2), torch.tensor([2.0])]
    cases = [
        (ClothTorchStep(rc.static, dt=rc.dt / 8, substeps=10), cloth_args, 6),
        (SPHTorchStep(rs.static, dt=rs.dt / 20, substeps=3), sph_args, 4),
        (SmokeTorchStep({"grid_size": n, "grid_spacing": 1 / n}, dt=0.02, substeps=1,
                        pressure_iterations=10), smoke_args, 3),
    ]
    for step, args, n_grad in cases:
        g32 = _grads(step, args, torch.float32, n_grad)
        g64 = _grads(step, args, torch.float64, n_grad)
        for a, b in zip(g32, g64, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert any(g.abs().sum() > 0 for g in g32)


def test_cloth_torch_step_broadcasts_one_scene_over_the_batch() -> None:
    from physground.simulators.warp.cloth import ClothTorchStep

    scenario = get_scenario("cloth/hanging", num_frames=3, render=False, resolution=5)
    params = dict(stiffness=500.0, mass=0.3, damping=0.05, pin_layout=0.0)
    rollouts = scenario.simulate([params] * 3, [0, 1, 2], "train")
    step = ClothTorchStep.from_rollout(rollouts[0])  # same pins for all three seeds
    x, v = (torch.tensor(np.stack([r.states[k][1] for r in rollouts])) for k in ("x", "v"))
    x1, _ = step(x, v, torch.full((3,), 500.0), torch.full((3,), 0.05), torch.full((3,), 0.3),
                 torch.zeros(3, 3))
    for b, r in enumerate(rollouts):
        np.testing.assert_allclose(x1[b].numpy(), r.states["x"][2], atol=1e-6)
