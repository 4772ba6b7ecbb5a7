"""Reproducible runs: the run hash and run.json hold the resolved metric list, the installed
plugins with their versions, and the version of the suite and of each scenario; a suite
that opts into the conditioned track gets it as a separate track, reported apart."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from physground.benchmarks.executors import run_sequential
from physground.benchmarks.runner import metrics_for, run_directory, run_provenance, run_suite
from physground.scenario import scenario_class
from physground.suite import parse_suite


def suite(**overrides):
    data = {
        "name": "prov", "models": ["copy-last", "reference"], "metrics": "auto",
        "defaults": {"rollouts": 2, "context": 4, "horizon": 3, "splits": ["test_ood"]},
        "scenario": [{"name": "rigid/projectile",
                      "config": {"num_frames": 8, "render": False}}],
    }
    data.update(overrides)
    return parse_suite(data, "prov.toml")


def test_provenance_resolves_auto_metrics_and_names_versions():
    s = suite()
    prov = run_provenance(s)
    entry = s.scenarios[0]
    scenario = prov["scenarios"]["rigid/projectile"]
    assert scenario["metrics"] == list(metrics_for(s, entry.name, entry))
    assert "position_rmse" in scenario["metrics"]
    assert scenario["version"] == scenario_class("rigid/projectile").version
    assert "gravity" in scenario["observation"]["latent_params"]
    assert prov["suite_version"] == "1" and prov["tracks"] == ["default"]
    assert isinstance(prov["plugins"], dict)


def test_plugins_suite_and_scenario_versions_change_the_run_hash(tmp_path, monkeypatch):
    import physground.provenance as provenance

    s = suite()
    base = run_directory(s, tmp_path, "cpu")
    assert run_directory(s, tmp_path, "cpu") == base  # deterministic
    assert run_directory(dataclasses.replace(s, version="2"), tmp_path, "cpu") != base
    monkeypatch.setattr(scenario_class("rigid/projectile"), "version", "999")
    assert run_directory(s, tmp_path, "cpu") != base
    monkeypatch.undo()
    monkeypatch.setattr(provenance, "plugin_versions", lambda: {
        "physground.metrics:extra": {"target": "x:y", "distribution": "x", "version": "1"}})
    assert run_directory(s, tmp_path, "cpu") != base


def test_installed_plugins_are_found_through_entry_points(tmp_path, monkeypatch):
    from physground.metrics import METRICS
    from physground.provenance import plugin_versions
    from physground.scenario import SCENARIOS
    from physground.world_model import MODELS

    for registry in (METRICS, MODELS, SCENARIOS):  # load first: the fake stays out of them
        registry.names()
    dist = tmp_path / "fakeplug-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[physground.metrics]\nfake_metric = fakeplug:m\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = plugin_versions()["physground.metrics:fake_metric"]
    assert found == {"target": "fakeplug:m", "distribution": "fakeplug", "version": "1.2.3"}


def test_suite_version_and_tracks_are_validated():
    assert suite(version="3").version == "3"
    assert suite(version=4).version == "4"
    with pytest.raises(ValueError, match="tracks"):
        suite(tracks=["default", "oracle"])
    with pytest.raises(ValueError, match="tracks"):
        suite(tracks=[])


def test_conditioned_track_is_scored_and_reported_apart(tmp_path):
    s = suite(tracks=["default", "conditioned"])
    run_dir = run_suite(s, root=tmp_path, executor=run_sequential, progress=False)
    results = pd.read_parquet(run_dir / "results.parquet")
    from physground.metrics.scores import SCORE_ANCHORS

    # the score anchors (truth, second take, shuffled) are recorded once, on the default
    # track, and shown on every track's report
    counts = results[~results["model"].isin(SCORE_ANCHORS)].groupby("track").size()
    assert set(counts.index) == {"default", "conditioned"}
    assert counts["default"] == counts["conditioned"]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["provenance"]["tracks"] == ["default", "conditioned"]
    assert record["provenance"]["scenarios"]["rigid/projectile"]["metrics"]
    default_md = (run_dir / "report" / "report.md").read_text()
    conditioned_md = (run_dir / "report" / "conditioned" / "report.md").read_text()
    assert "conditioned track" in conditioned_md and "conditioned track" not in default_md
    assert "report/conditioned/" in default_md  # the default report points to the other
    from physground.reports.content import load_run

    _, default_rows = load_run(run_dir)
    assert set(default_rows["track"]) == {"default"}
