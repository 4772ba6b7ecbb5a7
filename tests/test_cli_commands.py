"""Listing commands, --version, --json, run --dry-run and the --scenario/--model filters."""

from __future__ import annotations

import json
from importlib.metadata import version

import pandas as pd
from typer.testing import CliRunner

from physground.cli import app
from physground.metrics import METRICS

SUITE = """
name = "tiny"
models = ["copy-last", "constant-velocity"]
metrics = ["position_rmse"]
[defaults]
rollouts = 2
context = 4
horizon = 6
splits = ["test_id"]
[[scenario]]
name = "rigid/projectile"
config = { num_frames = 12, render = false }
[[scenario]]
name = "rigid/bounce"
config = { num_frames = 12, render = false }
"""


def invoke(*argv):
    result = CliRunner().invoke(app, list(argv))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_version():
    assert invoke("--version").strip() == f"physground {version('physground')}"


def test_listings_as_json_and_names():
    metrics = {r["name"]: r for r in json.loads(invoke("metrics", "--json"))}
    assert set(metrics) == set(METRICS.names())
    assert metrics["psnr"]["unit"] == "dB" and metrics["psnr"]["higher_is_better"]
    assert metrics["energy_drift"]["requires_laws"] == ["energy_conserved",
                                                        "energy_nonincreasing"]
    assert metrics["energy_drift"]["laws_mode"] == "any"
    assert "rigid/projectile" in metrics["position_rmse"]["scenarios"]
    assert invoke("metrics", "--tag", "pixels", "-q").split() == METRICS.names("pixels")
    models = {r["name"]: r for r in json.loads(invoke("models", "--json"))}
    assert models["state-gnn"]["trainable"] and not models["copy-last"]["trainable"]
    assert models["video-transformer"]["modalities"] == ["pixels"]
    assert invoke("models", "--tag", "baseline", "-q").split() == ["constant-velocity",
                                                                  "copy-last"]
    (projectile,) = [r for r in json.loads(invoke("scenarios", "--tag", "rigid", "--json"))
                     if r["name"] == "rigid/projectile"]
    speed = next(p for p in projectile["params"] if p["param"] == "launch_speed")
    assert speed["ood"] and speed["unit"] == "m/s"


def test_dry_run_filters_and_cache(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    common = ["--suite", str(suite), "--root", str(tmp_path)]
    plan = json.loads(invoke("run", *common, "--dry-run", "--json"))
    assert len(plan["datasets"]) == 2 and len(plan["evaluations"]) == 4
    assert not any(t["cached"] for t in plan["datasets"] + plan["evaluations"])
    assert not (tmp_path / "runs").exists()  # nothing ran
    out = invoke("run", *common, "--scenario", "rigid/projectile", "--model", "copy-last",
                 "--executor", "sequential", "-q")
    assert "results:" in out
    plan_after = json.loads(invoke("run", *common, "--dry-run", "--json"))
    assert plan_after["run_dir"] == plan["run_dir"]  # filtered runs share the run directory
    models = {"copy-last", "constant-velocity"}  # the suite's (score anchors left out)
    cached = {(e["model"], e["scenario"]) for e in plan_after["evaluations"]
              if e["cached"] and e["model"] in models}
    assert cached == {("copy-last", "rigid/projectile")}
    assert [d["cached"] for d in plan_after["datasets"]] == [True, False]
    results = pd.read_parquet(f"{plan['run_dir']}/results.parquet")
    assert set(results["scenario"]) == {"rigid/projectile"}
    assert set(results["model"]) & models == {"copy-last"}
    text = invoke("run", *common, "--dry-run", "--scenario", "rigid/projectile")
    assert "cached  copy-last on rigid/projectile test_id" in text
    assert "to run  constant-velocity on rigid/projectile test_id" in text
