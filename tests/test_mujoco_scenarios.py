"""Every registered MuJoCo rigid scenario: contract, determinism, splits, parameter errors."""

import math
import subprocess
import sys

import numpy as np
import pytest

from physground.errors import UnknownNameError, ValidationError
from physground.scenario import LAWS, SCENARIOS, get_scenario

RIGID = SCENARIOS.names("mujoco")
EXPECTED = {
    "rigid/projectile", "rigid/projectile_drag", "rigid/projectile_occluded", "rigid/bounce",
    "rigid/collision",
    "rigid/collision_inelastic", "rigid/pendulum", "rigid/pendulum_damped",
    "rigid/double_pendulum", "rigid/double_pendulum_damped", "rigid/incline", "rigid/stack",
    "rigid/dominoes",
}


def test_every_scenario_of_the_issue_is_registered():
    assert set(RIGID) >= EXPECTED


@pytest.mark.parametrize("name", RIGID)
def test_rollout_contract_and_determinism(name):
    scenario = get_scenario(name, render=False, num_frames=5)
    assert all(law in LAWS for law in scenario.laws)
    params = [scenario.sample_params(split, 3) for split in ("train", "test_ood")]
    a = scenario.generate(params, [3, 3], "train")
    b = scenario.generate(params[:1], [3], "train")
    np.testing.assert_array_equal(a[0].states["pos"], b[0].states["pos"])
    for rollout in a:
        n = len(rollout.static["mass"])
        assert n == len(scenario.bodies(rollout.params)) >= 1
        for key, width in (("pos", 3), ("quat", 4), ("vel", 3), ("angvel", 3)):
            arr = rollout.states[key]
            assert arr.shape == (5, n, width) and arr.dtype == np.float64
            assert np.isfinite(arr).all()
        np.testing.assert_allclose(np.linalg.norm(rollout.states["quat"], axis=-1), 1.0,
                                   atol=1e-9)
        assert rollout.static["inertia"].shape == (n, 3)
        assert rollout.static["radius"].shape == (n,) and (rollout.static["radius"] > 0).all()
        assert rollout.static["gravity"].shape == (3,)
        assert np.ndim(rollout.static["ground_height"]) == 0
        assert len(rollout.meta["energy"]) == 5
        assert scenario.check(rollout) is None
        # frame 0 is the initial state itself
        qpos, _ = scenario.initial_state(scenario.build_model(rollout.params), rollout.params,
                                         rollout.seed)
        assert rollout.dt == pytest.approx(scenario.config.dt)
        assert qpos.ndim == 1


@pytest.mark.parametrize("name", RIGID)
def test_ood_parameters_are_outside_training_ranges(name):
    space = SCENARIOS.get(name).param_space
    moved = space.ood_params()
    assert len(moved) >= 2, f"{name}: OOD should move several parameters (combinatorial)"
    for param in moved:
        lo, hi = space.splits["train"][param].bounds
        olo, ohi = space.splits["test_ood"][param].bounds
        assert ohi < lo or olo > hi, param
    scenario = get_scenario(name)
    for seed in range(25):
        ood = scenario.sample_params("test_ood", seed)
        assert not space.in_training_range(ood)
        for param in moved:  # every moved parameter at once, not just one of them
            lo, hi = space.splits["train"][param].bounds
            assert not lo <= ood[param] <= hi
        assert space.in_training_range(scenario.sample_params("test_id", seed))


def test_cli_lists_rigid_scenarios_with_their_ranges():
    out = subprocess.run([sys.executable, "-m", "physground.cli", "scenarios", "--tag",
                          "mujoco"], capture_output=True, text=True, timeout=120, check=True)
    for name in EXPECTED:
        assert name in out.stdout
    assert "[2.5, 3.5]" in out.stdout  # bounce drop_height OOD
    assert "{5, 6}" in out.stdout  # collision num_spheres OOD


@pytest.mark.parametrize(
    ("name", "param", "value", "fragment"),
    [
        ("rigid/bounce", "mass", -1.0, "'mass' = -1"),
        ("rigid/bounce", "restitution", 1.5, "'restitution' = 1.5"),
        ("rigid/collision_inelastic", "restitution", -0.1, "'restitution' = -0.1"),
        ("rigid/collision", "num_spheres", 3.5, "not a whole number"),
        ("rigid/collision", "num_spheres", 7, "'num_spheres' = 7"),
        ("rigid/pendulum", "length", 0.0, "'length' = 0"),
        ("rigid/pendulum_damped", "damping", -0.2, "'damping' = -0.2"),
        ("rigid/incline", "friction", -0.3, "'friction' = -0.3"),
        ("rigid/stack", "mass", 0.0, "'mass' = 0"),
        ("rigid/dominoes", "spacing_ratio", 0.1, "'spacing_ratio' = 0.1"),
        ("rigid/projectile_drag", "drag", -1.0, "'drag' = -1"),
        ("rigid/projectile", "gravity", math.nan, "'gravity' = nan"),
    ],
)
def test_invalid_physical_parameters_are_rejected(name, param, value, fragment):
    scenario = get_scenario(name, render=False, num_frames=3)
    params = {**scenario.sample_params("train", 0), param: value}
    with pytest.raises(ValidationError) as err:
        scenario.generate([params], [0], "train")
    assert fragment in str(err.value) and name in str(err.value)
    with pytest.raises(ValidationError):  # also when simulate is called directly
        scenario.simulate([params], [0], "train")


def test_unknown_parameter_and_bad_config_are_rejected():
    scenario = get_scenario("rigid/bounce", render=False, num_frames=3)
    with pytest.raises(UnknownNameError, match="did you mean 'restitution'"):
        scenario.generate([{**scenario.sample_params("train", 0), "restitutio": 0.5}], [0],
                          "train")
    with pytest.raises(ValidationError, match="integrator"):
        get_scenario("rigid/bounce", integrator="leapfrog")
    with pytest.raises(ValidationError, match="substeps"):
        get_scenario("rigid/bounce", substeps=0)


@pytest.mark.parametrize("name", RIGID)
def test_reference_resimulation_is_the_same_physics(name):
    """The reference discretization (implicitfast, 64 substeps) tracks the ground truth
    over the first frames: same physics, different integrator."""
    factory = SCENARIOS.get(name)
    truth = get_scenario(name, render=False, num_frames=4)
    ref = get_scenario(name, render=False, num_frames=4, **factory.reference_overrides)
    params = truth.sample_params("test_id", 1)
    (a,), (b,) = truth.generate([params], [1], "test_id"), ref.generate([params], [1], "test_id")
    assert ref.config.integrator != truth.config.integrator
    assert np.abs(a.states["pos"] - b.states["pos"]).max() < 2e-2
