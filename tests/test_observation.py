"""The observation contract: for every registered scenario a model is shown the context
frames and states, the camera, dt and the declared given statics, and nothing else: no
params, no meta, no array longer than the context, no latent static. The export for outside
models holds exactly the same; a model that reads a latent parameter fails."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest

from physground.benchmarks.external import export_context
from physground.benchmarks.tasks import predict_safely
from physground.errors import ValidationError
from physground.observation import (
    LatentAccessError,
    Observation,
    ObservationSpec,
    load_observation,
    observation_arrays,
    observation_spec,
    observe,
    save_observation,
)
from physground.rollout import Prediction
from physground.scenario import SCENARIOS, get_scenario, scenario_class
from physground.suite import parse_suite

CONTEXT = 3
FRAMES = 7
SMALL = {"image_size": 16}
# Scenario-specific config overrides that keep generation fast.
FAST = {"cloth/hanging": {"resolution": 6}, "cloth/drape": {"resolution": 6},
        "cloth/flag": {"resolution": 6}}
# Newton MPM: 4 cm voxels (64-100 particles) and 4 substeps per frame.
FAST.update({name: {"voxel_size": 0.04, "substeps": 4} for name in (
    "granular/obstacle", "fluid/viscous_dam_break", "softbody/drop")})


def small(name: str, **config):
    return get_scenario(name, **{**SMALL, **FAST.get(name, {}), **config})


def assert_is_observation(obs: Observation, spec: ObservationSpec, context: int) -> None:
    """The checks of the contract on one observation."""
    assert isinstance(obs, Observation)
    assert obs.context == context
    arrays = obs.time_arrays()
    assert arrays, "an observation without states or frames"
    for name, array in arrays.items():
        assert np.shape(array)[0] == context, f"{name} has {np.shape(array)[0]} frames"
    for field in ("params", "meta", "seed", "split"):
        with pytest.raises(LatentAccessError):
            getattr(obs, field)
    visible = spec.visible_static(obs.track)
    assert set(obs.static) <= visible, set(obs.static) - visible
    if obs.track == "default":
        assert set(obs.static) <= spec.given_static
        assert not obs.conditioning
    else:
        assert set(obs.conditioning) <= spec.latent_params


@pytest.fixture(scope="module", params=sorted(SCENARIOS.names()))
def generated(request):
    """(name, scenario, ood params, rollout of FRAMES rendered frames)."""
    name = request.param
    scenario = small(name, num_frames=FRAMES)
    params = scenario.sample_params("test_ood", 0)
    (rollout,) = scenario.generate([params], [0], "test_ood")
    return name, params, rollout


def test_every_static_is_declared_once(generated):
    name, _, rollout = generated
    spec = observation_spec(name)
    groups = [spec.given_static, spec.latent_static, spec.withheld_static]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not groups[a] & groups[b], (name, groups[a] & groups[b])
    undeclared = set(rollout.static) - set().union(*groups)
    assert not undeclared, f"{name} emits undeclared statics {sorted(undeclared)}"


def test_every_ood_shifted_parameter_is_latent_unless_declared_given(generated):
    name, _, _ = generated
    cls = scenario_class(name)
    for param in cls.param_space.ood_params():
        assert param in cls.latent_parameters() or param in cls.given_params
    assert "gravity" not in cls.given_params and "gravity" not in cls.given_static


def test_observation_holds_only_the_context_and_given_statics(generated):
    name, params, rollout = generated
    spec = observation_spec(name)
    obs = rollout.context(CONTEXT)
    assert_is_observation(obs, spec, CONTEXT)
    for key, value in rollout.states.items():
        np.testing.assert_array_equal(obs.states[key], np.asarray(value)[:CONTEXT])
    if rollout.frames is not None:
        np.testing.assert_array_equal(obs.frames, rollout.frames[:CONTEXT])
    for key in set(rollout.static) - spec.given_static:
        why = "is latent" if key in spec.latent_static else "is withheld from every model"
        with pytest.raises(LatentAccessError, match=f"'{key}' of {name} {why}"):
            obs.static[key]
        assert obs.static.get(key) is None and key not in obs.static
    # read-only copies: a model cannot change the ground truth it is scored against
    with pytest.raises(ValueError):
        next(iter(obs.states.values()))[0] = 0
    # the conditioned track adds exactly the latent parameters and statics
    conditioned = rollout.context(CONTEXT, track="conditioned")
    assert_is_observation(conditioned, spec, CONTEXT)
    assert conditioned.conditioning == {k: params[k] for k in spec.latent_params}
    assert set(conditioned.static) == set(rollout.static) & (spec.given_static |
                                                             spec.latent_static)


def test_given_statics_carry_no_latent_parameter_and_no_time_series(generated):
    """Re-simulating with each latent parameter changed (and with another length) leaves
    every given static unchanged: they cannot leak a latent value or the future."""
    name, params, rollout = generated
    spec = observation_spec(name)
    scenario = small(name, num_frames=3, render=False)
    given = {k: v for k, v in rollout.static.items() if k in spec.given_static}
    (shorter,) = scenario.generate([params], [0], "test_ood")
    cls = scenario_class(name)
    for param in sorted(spec.latent_params):
        values = {scenario.sample_params(split, seed)[param]
                  for split in ("train", "test_id") for seed in range(3)} - {params[param]}
        if not values:
            continue  # the parameter takes one value in every split
        changed = {**params, param: sorted(values)[0]}
        cls.param_space.validate(changed)
        (other,) = scenario.generate([changed], [0], "test_ood")
        for key, value in given.items():
            np.testing.assert_array_equal(
                other.static[key], value,
                err_msg=f"{name}: given static '{key}' depends on latent '{param}'")
    for key, value in given.items():
        np.testing.assert_array_equal(shorter.static[key], value,
                                      err_msg=f"{name}: static '{key}' depends on T")


def test_saved_observation_round_trips_and_passes_the_same_check(generated, tmp_path):
    name, _, rollout = generated
    obs = rollout.context(CONTEXT)
    save_observation(tmp_path / "context.npz", obs)
    back = load_observation(tmp_path / "context.npz")
    assert_is_observation(back, observation_spec(name), CONTEXT)
    a, b = observation_arrays(obs), observation_arrays(back)
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


# ------------------------------------------------------------------ export for outsiders


def test_export_context_writes_exactly_the_observation(tmp_path):
    suite = parse_suite({
        "name": "obs", "models": ["copy-last"], "metrics": ["position_rmse"],
        "defaults": {"rollouts": 2, "context": CONTEXT, "horizon": 3,
                     "splits": ["test_ood"]},
        "scenario": [{"name": "rigid/projectile",
                      "config": {"num_frames": 8, "image_size": 16}},
                     {"name": "cloth/hanging",
                      "config": {"num_frames": 8, "image_size": 16, "resolution": 6}}],
    }, "obs.toml")
    index = json.loads(export_context(suite, tmp_path, tmp_path / "ctx",
                                      progress=False).read_text())
    files = sorted((tmp_path / "ctx").rglob("context.npz"))
    assert len(files) == len(index["rollouts"]) == 4
    for path in files:
        obs = load_observation(path)
        assert_is_observation(obs, observation_spec(obs.scenario), CONTEXT)
        with np.load(path) as data:
            keys = set(data.files)
        assert not {k for k in keys if "gravity" in k or "param" in k or "meta" in k}
        assert "frames" in keys and "masks" in keys
    for item in index["rollouts"]:
        assert "params" not in item and "gravity" not in json.dumps(item)


# ------------------------------------------------------------------ models that cheat


class _CheatingModel:
    """Reads gravity the way the old state model did, from the statics."""

    name: ClassVar[str] = "cheat"
    modalities: ClassVar[frozenset[str]] = frozenset({"state"})
    reads: ClassVar[str] = "static"

    def predict(self, observation: Observation, horizon: int) -> Prediction:
        if self.reads == "static":
            g = float(observation.static["gravity"][-1])
        else:
            g = -float(observation.params["gravity"])
        pos = np.asarray(observation.states["pos"])
        t = np.arange(1, horizon + 1).reshape(-1, 1) * observation.dt
        fall = np.zeros((horizon, 1, 3))
        fall[..., 2] = 0.5 * g * t * t
        return Prediction.for_observation(observation, model=self.name, horizon=horizon,
                                          states={"pos": pos[-1] + fall})


@pytest.fixture(scope="module")
def projectile_ood():
    scenario = small("rigid/projectile", num_frames=10, render=False)
    params = scenario.sample_params("test_ood", 1)
    return scenario.generate([params], [1], "test_ood")[0]


@pytest.mark.parametrize("reads", ["static", "params"])
def test_a_model_reading_a_latent_parameter_fails(projectile_ood, reads):
    model = _CheatingModel()
    model.reads = reads
    with pytest.raises(LatentAccessError):
        model.predict(projectile_ood.context(4), 3)
    failed = predict_safely(model, "cheat", projectile_ood, 4, 3)
    assert failed.failure is not None
    assert ("is latent" if reads == "static" else "not observed") in failed.failure
    assert failed.seed == projectile_ood.seed and not failed.states


def test_the_conditioned_track_gives_the_latent_parameters(projectile_ood):
    model = _CheatingModel()
    model.reads = "static"
    pred = predict_safely(model, "cheat", projectile_ood, 4, 3, track="conditioned")
    assert pred.failure is None and pred.seed == projectile_ood.seed
    assert pred.params == projectile_ood.params  # bound to the truth by the benchmark


def test_reference_is_a_privileged_anchor_not_a_world_model(projectile_ood):
    from physground.world_model import MODELS, Anchor, WorldModel

    reference = MODELS.get("reference")()
    assert isinstance(reference, Anchor) and not hasattr(reference, "predict")
    for name in ("copy-last", "constant-velocity", "state-gnn", "video-transformer",
                 "hybrid-cloth"):
        cls = MODELS.get(name)
        assert not hasattr(cls, "anchor") and hasattr(cls, "predict"), name
    assert isinstance(MODELS.get("copy-last")(), WorldModel)
    pred = predict_safely(reference, "reference", projectile_ood, 4, 3)
    assert pred.failure is None
    np.testing.assert_allclose(pred.states["pos"], projectile_ood.states["pos"][4:7],
                               atol=1e-3)


def test_a_prediction_for_another_horizon_is_refused(projectile_ood):
    class Short:
        name = "short"
        modalities = frozenset({"state"})

        def predict(self, observation, horizon):
            return Prediction.for_observation(
                observation, model=self.name, horizon=horizon - 1,
                states={"pos": np.repeat(observation.states["pos"][-1:], horizon - 1, 0)})

    pred = predict_safely(Short(), "short", projectile_ood, 4, 3)
    assert "horizon" in pred.failure


def test_observe_refuses_unregistered_scenarios_and_bad_tracks(projectile_ood):
    import dataclasses

    with pytest.raises(ValidationError, match="track"):
        observe(projectile_ood, 4, track="oracle")
    with pytest.raises(KeyError, match="no registered scenario"):
        observe(dataclasses.replace(projectile_ood, scenario="rigid/unknown"), 4)
    with pytest.raises(ValidationError, match="context"):
        projectile_ood.context(projectile_ood.num_frames)


def test_broken_observation_files_are_named(projectile_ood, tmp_path):
    obs = projectile_ood.context(4)
    good = tmp_path / "good.npz"
    save_observation(good, obs)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ValidationError, match="cut.npz"):
        load_observation(cut)
    arrays = observation_arrays(obs)
    for name, change in (("dt", lambda a: a.pop("dt")),
                         ("context", lambda a: a.update(context=np.int64(5))),
                         ("format", lambda a: a.update(format=np.array("pickle")))):
        broken = dict(arrays)
        change(broken)
        path = tmp_path / f"no_{name}.npz"
        np.savez(path, **broken)
        with pytest.raises(ValidationError, match=f"no_{name}.npz"):
            load_observation(path)
