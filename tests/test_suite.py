"""Suite files: the shipped suites validate and cover what they promise; every mistake in
a suite file is reported with the file and the key at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from physground.errors import UnknownNameError, ValidationError
from physground.scenario import SCENARIOS
from physground.suite import builtin_suites, load_suite, parse_suite


def minimal(**extra):
    data = {"name": "x", "scenario": [{"name": "rigid/projectile"}]}
    data.update(extra)
    return data


def test_shipped_suites():
    assert {"quick", "standard", "full"} <= set(builtin_suites())
    for name in builtin_suites():
        suite = load_suite(name)
        assert suite.name == name and suite.scenarios


def test_quick_covers_rigid_cloth_and_fluid_with_baselines_and_reference():
    quick = load_suite("quick")
    families = {e.name.split("/")[0] for e in quick.scenarios}
    assert {"rigid", "cloth", "fluid"} <= families
    assert {"copy-last", "constant-velocity", "reference"} <= set(quick.models)
    assert all(e.rollouts <= 8 for e in quick.scenarios)


def test_standard_and_full_cover_every_scenario():
    every = set(SCENARIOS.names())
    for name in ("standard", "full"):
        assert {e.name for e in load_suite(name).scenarios} == every
    assert set(load_suite("full").scenarios[0].splits) == {"train", "test_id", "test_ood"}


def test_tag_selection_expands_and_explicit_entries_win():
    suite = parse_suite({
        "name": "x", "defaults": {"horizon": 10},
        "scenario": [{"name": "tag:cloth", "config": {"num_frames": 20}},
                     {"name": "cloth/flag", "rollouts": 3}],
    })
    names = [e.name for e in suite.scenarios]
    assert sorted(names) == SCENARIOS.names("cloth")
    flag = next(e for e in suite.scenarios if e.name == "cloth/flag")
    assert flag.rollouts == 3 and flag.config == {}
    assert all(e.config == {"num_frames": 20} for e in suite.scenarios if e is not flag)


def test_an_optional_tag_is_skipped_only_when_nothing_carries_it():
    """The suites list optional extras' families (tag:granular) with optional = true."""
    entries = [{"name": "tag:no-such-family", "optional": True},
               {"name": "rigid/projectile"}]
    suite = parse_suite({"name": "x", "scenario": entries})
    assert [e.name for e in suite.scenarios] == ["rigid/projectile"]
    with pytest.raises(ValidationError, match="no-such-family"):
        parse_suite({"name": "x", "scenario": [{"name": "tag:no-such-family"}]})
    with pytest.raises(ValidationError, match="optional"):
        parse_suite({"name": "x", "scenario": [{"name": "tag:rigid", "optional": "yes"}]})
    granular = set(SCENARIOS.names("granular"))
    for name in ("standard", "full"):
        assert granular <= {e.name for e in load_suite(name).scenarios}


@pytest.mark.parametrize(("data", "fragments"), [
    (minimal(modles=["copy-last"]), ["unknown key 'modles'", "did you mean 'models'"]),
    ({"scenario": [{"name": "rigid/projectile"}]}, ["my-suite.toml:name: missing key"]),
    (minimal(defaults={"rollout": 2}), ["defaults: unknown key 'rollout'",
                                        "did you mean 'rollouts'"]),
    ({"name": "x", "scenario": [{"name": "rigid/projectile", "config": {"num_frame": 9}}]},
     ["scenario[0].config", "unknown key 'num_frame'", "did you mean 'num_frames'"]),
    ({"name": "x", "scenario": [{"name": "rigid/projectile", "splits": ["test"]}]},
     ["scenario[0].splits[0]: expected one of 'train', 'test_id' or 'test_ood', got 'test'"]),
    ({"name": "x", "scenario": [{"name": "rigid/projectile", "train_rollouts": 0}]},
     ["scenario[0].train_rollouts: expected >= 1, got 0"]),
    ({"name": "x", "scenario": [{"name": "tag:clth"}]}, ["scenario[0].name",
                                                         "no scenario carries tag 'clth'"]),
    ({"name": "x", "scenario": [{"name": "rigid/projectile"}, {"name": "rigid/projectile"}]},
     ["scenario 'rigid/projectile' is listed twice"]),
    (minimal(metrics=["position_rmes"]), ["unknown metric 'position_rmes'",
                                          "did you mean 'position_rmse'"]),
    (minimal(metrics="all"), ["metrics: expected 'auto' or a list of metric names, got 'all'"]),
    (minimal(models=["copy-last"], compare=[["copy-last"]]),
     ["compare[0]", "expected two different models"]),
    (minimal(models=["copy-last"], compare=[["copy-last", "reference"]]),
     ["compare[0]: 'reference' is not a model of this suite"]),
    (minimal(training=[{"model": "state-gnn", "step": 3}]),
     ["training[0]", "unknown key 'step'", "did you mean 'steps'"]),
    (minimal(training=[{"model": "state-gnn", "steps": "many"}]),
     ["training[0].steps: expected an integer, got 'many'"]),
    (minimal(seed=1.5), ["my-suite.toml:seed: expected an integer, got 1.5"]),
    ({"name": "x", "scenario": []}, ["no [[scenario]] tables"]),
    # values checked by type and range, not only keys
    ({"name": "x", "scenario": [{"name": "rigid/projectile", "config": {"num_frames": "30"}}]},
     ["scenario[0].config:num_frames: expected an integer, got '30'"]),
    ({"name": "x", "scenario": [{"name": "rigid/projectile", "config": {"dt": float("nan")}}]},
     ["scenario[0].config:dt: expected a finite number, got nan"]),
    ({"name": "x", "scenario": [{"name": "rigid/projectile", "config": {"num_frames": 1}}]},
     ["scenario[0].config: num_frames = 1, expected >= 2"]),
    ({"name": "x", "scenario": [{"name": "rigid/projectile", "rollouts": -3}]},
     ["scenario[0].rollouts: expected >= 1, got -3"]),
    ({"name": "x", "scenario": [{"name": "rigid/projectile", "horizon": True}]},
     ["scenario[0].horizon: expected an integer, got True"]),
    (minimal(seed=-1), ["seed: expected >= 0, got -1"]),
    (minimal(training=[{"model": "state-gnn", "steps": 0}]),
     ["training[0].steps: expected >= 1, got 0"]),
    (minimal(training=[{"model": "state-gnn", "options": {"batch_size": "8"}}]),
     ["training[0].options:batch_size: expected an integer, got '8'"]),
    (minimal(training=[{"model": "state-gnn", "options": {"device": "cuda"}}]),
     ["training[0].options: unknown key 'device'"]),
    (minimal(training=[{"model": "video-transformer",
                        "options": {"model_config": {"dimm": 8}}}]),
     ["training[0].options.model_config: unknown key 'dimm'", "did you mean 'dim'"]),
    (minimal(scenario={"name": "rigid/projectile"}), ["scenario: expected a list"]),
])
def test_mistakes_name_the_file_and_key(data, fragments):
    with pytest.raises(ValidationError) as err:
        parse_suite(data, "my-suite.toml")
    message = str(err.value)
    assert message.startswith("my-suite.toml"), message
    for fragment in fragments:
        assert fragment in message, message


def test_unknown_suite_and_missing_file(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'quick'"):
        load_suite("quik")
    with pytest.raises(Exception, match="not found"):
        load_suite(tmp_path / "absent.toml")


def test_training_entries_per_scenario_win_over_per_model():
    from physground.benchmarks.runner import RunProgress, train_stage

    suite = parse_suite(minimal(
        models=["state-gnn"],
        scenario=[{"name": "rigid/projectile"}, {"name": "rigid/bounce"}],
        training=[{"model": "state-gnn", "scenario": "rigid/projectile", "steps": 7},
                  {"model": "state-gnn", "steps": 3, "options": {"lr": 0.01}}]))
    seen = {}

    def record(tasks):
        for task in tasks:
            seen[task.scenario] = (task.steps, task.options)
        return iter(())

    with pytest.raises(FileNotFoundError):  # nothing was trained: no checkpoint record
        train_stage(suite, {(0, "train"): "a", (1, "train"): "b"}, Path("/nonexistent"),
                    "cpu", RunProgress(record, progress=False), None)
    assert seen == {"rigid/projectile": (7, {}), "rigid/bounce": (3, {"lr": 0.01})}
    with pytest.raises(ValidationError, match=r"training\[0\].scenario: unknown scenario"):
        parse_suite(minimal(training=[{"model": "state-gnn", "scenario": "rigid/bouce"}]))


def test_config_hash_ignores_description_and_report_pairs():
    base = parse_suite(minimal(models=["copy-last", "reference"]))
    same = parse_suite(minimal(models=["copy-last", "reference"], description="other",
                               compare=[["reference", "copy-last"]]))
    other = parse_suite(minimal(models=["copy-last", "reference"], seed=1))
    assert base.config_hash() == same.config_hash() != other.config_hash()
