"""A third-party package (tests/fixtures/physground_toy, installed here with pip) adds a
physical law, a physics loss, a metric and a scenario through entry points; a suite using
all four runs end to end, and the tags in its entry points select them."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from physground.cli import app
from physground.laws import LAWS
from physground.learned.losses import LOSSES, entity_physics_loss
from physground.metrics import METRICS
from physground.scenario import SCENARIOS
from physground.world_model import MODELS

FIXTURE = Path(__file__).parent / "fixtures" / "physground_toy"
REGISTRIES = (SCENARIOS, METRICS, LAWS, LOSSES, MODELS)


@pytest.fixture(scope="module")
def toy_plugin(tmp_path_factory):
    """pip-install the plugin into a temporary site directory on sys.path (and PYTHONPATH,
    for worker processes); the registries are restored afterwards."""
    source = tmp_path_factory.mktemp("src") / "physground_toy"
    shutil.copytree(FIXTURE, source)  # setuptools builds in-tree
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(site), str(source)],
                   check=True, capture_output=True, timeout=300)
    for registry in REGISTRIES:
        registry.names()  # built-in providers loaded before the snapshot
    saved = {id(r): dict(r._entries) for r in REGISTRIES}  # noqa: SLF001
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    for registry in REGISTRIES:
        registry.refresh()
    yield site
    sys.path.remove(str(site))
    for registry in REGISTRIES:
        registry._entries = saved[id(registry)]  # noqa: SLF001


def test_entry_points_register_with_their_tags(toy_plugin):
    assert "toy/glide" in SCENARIOS.names("toy")
    assert SCENARIOS.tags("toy/glide") == {"toy", "rigid", "benchmark"}
    assert METRICS.tags("speed_change") == {"toy", "state", "plausibility"}
    assert LAWS.get("uniform_motion").description.startswith("no net force")
    assert "uniform_speed" in LOSSES.names("toy")
    result = CliRunner().invoke(app, ["metrics", "--tag", "toy", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["name"] == "speed_change" and row["scenarios"] == ["toy/glide"]
    assert row["requires_laws"] == ["uniform_motion"] and row["laws_mode"] == "all"


def test_plugin_law_loss_and_metric_know_the_physics(toy_plugin):
    """Closed form: the scenario is exact uniform motion, so the plugin's metric and loss
    vanish on the truth and grow on a decelerating prediction."""
    import torch

    from physground.learned.entities import entity_static
    from physground.learned.losses import EntityRollout
    from physground.metrics.evaluate import evaluate
    from physground.rollout import Prediction
    from physground.scenario import get_scenario

    scenario = get_scenario("toy/glide", num_frames=12)
    truth = scenario.generate([scenario.sample_params("test_id", 0)], [0], "test_id")[0]
    x = truth.states["pos"]
    np.testing.assert_allclose(x[7] - x[3], 4 * scenario.config.dt * truth.states["vel"][0],
                               atol=1e-12)

    def predict(pos):
        return Prediction(scenario=truth.scenario, split=truth.split, seed=truth.seed,
                          params=truth.params, dt=truth.dt, states={"pos": pos},
                          model="test", context=4, horizon=len(pos))

    exact = evaluate(truth, predict(x[4:]), ["speed_change"])
    assert exact["value"].abs().max() < 1e-9
    slow = x[3] + (x[4:] - x[3]) * 0.5  # half the speed
    assert np.allclose(evaluate(truth, predict(slow), ["speed_change"])["value"], 0.5,
                       atol=1e-6)

    static = entity_static([truth])
    v = torch.as_tensor(truth.states["vel"])[None]
    xt = torch.as_tensor(x)[None]
    state = EntityRollout(x=xt[:, 4:], v=v[:, 4:], x0=xt[:, 3], v0=v[:, 3], static=static,
                          dt=truth.dt)
    laws = frozenset(scenario.laws)
    assert float(entity_physics_loss("uniform_speed", state, laws=laws)) < 1e-20
    slowed = EntityRollout(x=xt[:, 4:], v=v[:, 4:] * 0.5, x0=xt[:, 3], v0=v[:, 3],
                           static=static, dt=truth.dt)
    assert float(entity_physics_loss("uniform_speed", slowed, laws=laws)) == \
        pytest.approx(0.25)
    with pytest.raises(Exception, match="uniform_motion"):  # the law gates the loss
        entity_physics_loss("uniform_speed", state, laws=frozenset({"ballistic"}))


def test_suite_with_plugin_scenario_metric_law_and_loss_runs_end_to_end(toy_plugin,
                                                                        tmp_path,
                                                                        monkeypatch):
    from physground.benchmarks.runner import run_suite
    from physground.suite import load_suite

    monkeypatch.setenv("PYTHONPATH", str(toy_plugin))
    suite = load_suite(FIXTURE / "toy.toml")
    run_dir = run_suite(suite, root=tmp_path, executor_name="sequential",
                        executor=_sequential(), progress=False, report=False)
    results = pd.read_parquet(run_dir / "results.parquet")
    models = {"copy-last", "constant-velocity", "state-gnn"}
    assert models <= set(results["model"])  # besides the score anchors
    results = results[results["model"].isin(models)]
    assert set(results["metric"]) == {"position_rmse", "speed_change"}
    assert (results["failure"].fillna("") == "").all(), results["failure"].unique()
    by_model = results[results.metric == "speed_change"].groupby("model")["value"].max()
    # uniform motion is its own extrapolation (up to the float32 storage of datasets)
    assert by_model["constant-velocity"] < 1e-5
    rmse = results[results.metric == "position_rmse"].groupby("model")["value"].max()
    assert rmse["constant-velocity"] < 1e-5 < 0.01 < rmse["copy-last"]
    record = json.loads(next((run_dir / "tasks").glob("train-*.json")).read_text())
    assert record["task"]["options"]["loss_weights"]["uniform_speed"] == 0.5
    log = (Path(record["checkpoint"]) / "log.jsonl").read_text().splitlines()
    assert "uniform_speed" in json.loads(log[-1])


def _sequential():
    from physground.benchmarks.executors import get_executor

    return get_executor("sequential", workers=None, address=None)


def test_unknown_names_from_plugins_get_did_you_mean(toy_plugin):
    result = CliRunner().invoke(app, ["scenarios", "--tag", "toyy"])
    assert result.exit_code == 2 and "did you mean 'toy'" in result.output


def _readme_blocks(language: str, section: str) -> list[str]:
    import re

    text = (Path(__file__).parents[1] / "README.md").read_text()
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", body, flags=re.S)


def test_readme_extending_section_is_the_tested_plugin():
    """The README's worked example is the fixture this module installs and runs."""
    import tomllib

    entry_points, suite = (tomllib.loads(b) for b in _readme_blocks("toml",
                                                                    "Extending physground"))
    project = tomllib.loads((FIXTURE / "pyproject.toml").read_text())["project"]
    assert entry_points["project"]["entry-points"] == project["entry-points"]
    shipped = tomllib.loads((FIXTURE / "toy.toml").read_text())
    for key in ("name", "models", "metrics", "scenario", "training"):
        assert suite[key] == shipped[key], key


def test_readme_python_example_runs_and_returns_a_dataframe():
    (code,) = _readme_blocks("python", "Python")
    namespace: dict = {}
    exec(compile(code.replace("print(", "(lambda *a: None)("), "README.md", "exec"),
         namespace)
    table = namespace["table"]
    assert isinstance(table, pd.DataFrame)
    assert set(table["metric"]) == {"position_rmse", "energy_drift"}
    assert list(table.columns) == ["metric", "horizon", "value", "failure"]
