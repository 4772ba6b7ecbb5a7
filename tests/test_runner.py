"""The suite runner: cached ground truth, resumable evaluation, one row per
(model, scenario, split, rollout, metric, horizon), the same table from every executor."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from physground.benchmarks.executors import run_local, run_sequential
from physground.benchmarks.runner import plan_tasks, run_suite
from physground.benchmarks.tasks import RESULT_COLUMNS
from physground.suite import parse_suite

KEYS = ["model", "scenario", "split", "rollout", "metric", "horizon"]


def tiny_suite(**overrides):
    data = {
        "name": "tiny",
        "models": ["copy-last", "constant-velocity", "reference"],
        "metrics": ["position_rmse", "energy_drift"],
        "defaults": {"rollouts": 2, "context": 4, "horizon": 5,
                     "splits": ["test_id", "test_ood"]},
        "scenario": [{"name": "rigid/projectile",
                      "config": {"num_frames": 10, "render": False}}],
    }
    data.update(overrides)
    return parse_suite(data, "tiny.toml")


class Counting:
    """An executor that runs tasks in this process, counts them, and can be interrupted
    after ``stop_after`` evaluation tasks (as Ctrl-C would)."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.evaluated: list[str] = []
        self.other = 0

    def __call__(self, tasks):
        for task, result in run_sequential(tasks):
            if isinstance(result, pd.DataFrame):
                if self.stop_after is not None and len(self.evaluated) >= self.stop_after:
                    raise KeyboardInterrupt
                self.evaluated.append(task.key())
            else:
                self.other += 1
            yield task, result


def read(run_dir):
    return pd.read_parquet(run_dir / "results.parquet")


def test_results_are_tidy_and_complete(tmp_path):
    suite = tiny_suite()
    run_dir = run_suite(suite, root=tmp_path, executor=run_sequential, progress=False,
                        report=False)
    results = read(run_dir)
    assert list(results.columns) == RESULT_COLUMNS
    # (3 models + 3 score anchors) x 2 splits x 2 rollouts x 2 metrics x 5 horizon steps
    assert len(results) == 6 * 2 * 2 * 2 * 5
    assert {"truth", "second-take", "shuffled"} <= set(results["model"])
    assert not results.duplicated(KEYS).any()
    assert set(results["horizon"]) == set(range(1, 6))
    csv = pd.read_csv(run_dir / "results.csv", keep_default_na=False)
    assert len(csv) == len(results)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["suite"]["name"] == "tiny" and record["rows"] == len(results)
    assert "versions" in record["environment"]
    from physground.benchmarks.runner import read_results_settings

    settings = read_results_settings(run_dir / "results.parquet")
    assert settings["suite"]["name"] == "tiny" and settings["device"] == "cpu"
    assert settings["environment"]["versions"]["physground"]
    # the reference re-simulates the truth: its position error is tiny next to copy-last's
    rmse = results[results["metric"] == "position_rmse"].groupby("model")["value"].mean()
    assert rmse["reference"] < 1e-2 * rmse["copy-last"]
    assert (results["failure"] == "").all()


def test_interrupted_run_resumes_without_redoing_or_duplicating(tmp_path):
    suite = tiny_suite()
    first = Counting(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, root=tmp_path / "a", executor=first, progress=False, report=False)
    assert len(first.evaluated) == 2
    second = Counting()
    run_dir = run_suite(suite, root=tmp_path / "a", executor=second, progress=False,
                        report=False)
    total = (3 + 3) * 2  # (models + score anchors) x splits
    assert len(second.evaluated) == total - 2
    assert not set(first.evaluated) & set(second.evaluated)  # nothing redone
    assert second.other == 0  # datasets reused, not regenerated
    resumed = read(run_dir)
    assert not resumed.duplicated(KEYS).any()
    # identical to an uninterrupted run elsewhere: no lost or duplicated rows
    fresh = read(run_suite(suite, root=tmp_path / "b", executor=run_sequential,
                           progress=False, report=False))
    pd.testing.assert_frame_equal(resumed, fresh)
    third = Counting()
    run_suite(suite, root=tmp_path / "a", executor=third, progress=False, report=False)
    assert third.evaluated == [] and third.other == 0


def test_process_pool_gives_the_sequential_table(tmp_path):
    suite = tiny_suite(models=["copy-last", "constant-velocity"])
    sequential = read(run_suite(suite, root=tmp_path / "s", executor=run_sequential,
                                progress=False, report=False))
    shutil.copytree(tmp_path / "s" / "data", tmp_path / "p" / "data")  # evaluation only
    pooled = read(run_suite(suite, root=tmp_path / "p",
                            executor=lambda tasks: run_local(tasks, workers=2),
                            progress=False, report=False))
    pd.testing.assert_frame_equal(sequential, pooled)


def test_tasks_are_keyed_by_content_not_location(tmp_path):
    suite = tiny_suite()
    run_a = run_suite(suite, root=tmp_path / "a", executor=run_sequential, progress=False,
                      report=False)
    keys_a = sorted(p.name for p in (run_a / "tasks").glob("*.parquet"))
    run_b = run_suite(suite, root=tmp_path / "b", executor=run_sequential, progress=False,
                      report=False)
    keys_b = sorted(p.name for p in (run_b / "tasks").glob("*.parquet"))
    assert keys_a == keys_b and len(keys_a) == 12  # (3 models + 3 anchors) x 2 splits
    # another horizon is another task
    other = tiny_suite(defaults={"rollouts": 2, "context": 4, "horizon": 4,
                                 "splits": ["test_id", "test_ood"]})
    run_c = run_suite(other, root=tmp_path / "a", executor=run_sequential, progress=False,
                      report=False)
    assert run_c != run_a
    assert set(p.name for p in (run_c / "tasks").glob("*.parquet")).isdisjoint(keys_a)


def test_model_errors_are_scored_as_failures(tmp_path, monkeypatch):
    from physground.learned.baselines import BaselineConstantVelocity

    def broken(self, context, horizon):
        raise FloatingPointError("overflow in extrapolation")

    monkeypatch.setattr(BaselineConstantVelocity, "predict", broken)
    suite = tiny_suite(models=["copy-last", "constant-velocity"])
    results = read(run_suite(suite, root=tmp_path, executor=run_sequential, progress=False,
                             report=False))
    failed = results[results["model"] == "constant-velocity"]
    assert len(failed) == 2 * 2 * 2 * 5  # every row kept
    assert failed["value"].isna().all()
    assert failed["failure"].str.contains("overflow in extrapolation").all()
    assert (results[results["model"] == "copy-last"]["failure"] == "").all()


def test_plan_has_one_task_per_scenario_split_model(tmp_path):
    from physground.benchmarks.runner import RunProgress, generate_stage, run_directory

    suite = tiny_suite(models=["copy-last"])
    runner = RunProgress(run_sequential, progress=False)
    datasets = generate_stage(suite, tmp_path / "data", runner)
    tasks = plan_tasks(suite, datasets, {}, run_directory(suite, tmp_path, "cpu"), "cpu")
    assert [(t.model, t.scenario, t.split) for t in tasks] == [
        (model, "rigid/projectile", split) for split in ("test_id", "test_ood")
        for model in ("copy-last", "truth", "second-take", "shuffled")]
    assert all(set(t.metrics) == {"position_rmse", "energy_drift"} for t in tasks)


def test_cli_run_prints_the_report_path(tmp_path):
    import subprocess
    import sys

    suite_file = tmp_path / "tiny.toml"
    suite_file.write_text(
        'name = "tiny"\nmodels = ["copy-last", "reference"]\nmetrics = ["position_rmse"]\n'
        '[defaults]\nrollouts = 2\ncontext = 3\nhorizon = 3\n[[scenario]]\n'
        'name = "rigid/projectile"\nconfig = { num_frames = 6, image_size = 16 }\n')
    result = subprocess.run(
        [sys.executable, "-m", "physground.cli", "run", "--suite", str(suite_file),
         "--root", str(tmp_path / "runs"), "--executor", "sequential", "--quiet"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = result.stdout.strip().splitlines()[-1]
    assert report.startswith("report: ") and report.endswith("index.html")
    from pathlib import Path

    html = Path(report[len("report: "):]).read_text()
    assert "rigid/projectile" in html and "Leaderboard" in html


def test_learned_models_are_trained_once_and_reused(tmp_path):
    suite = tiny_suite(
        models=["copy-last", "state-gnn"],
        defaults={"rollouts": 2, "train_rollouts": 2, "context": 4, "horizon": 5,
                  "splits": ["test_id"]},
        training=[{"model": "state-gnn", "steps": 3, "options": {"batch_size": 2}}],
    )
    first = Counting()
    run_dir = run_suite(suite, root=tmp_path, executor=first, progress=False, report=False)
    assert first.other == 3  # generate test_id and train, then one training
    checkpoints = list((run_dir / "checkpoints" / "state-gnn").iterdir())
    assert [c.name for c in checkpoints] == ["rigid__projectile"]
    results = read(run_dir)
    learned = results[results["model"] == "state-gnn"]
    assert len(learned) == 2 * 2 * 5 and (learned["failure"] == "").all()
    again = Counting()
    run_suite(suite, root=tmp_path, executor=again, progress=False, report=False)
    assert again.other == 0 and again.evaluated == []


def test_models_are_scored_on_the_metrics_of_their_modalities():
    from physground.benchmarks.runner import metrics_for_modalities
    from physground.metrics import METRICS

    names = METRICS.names()
    state_only = metrics_for_modalities(names, {"state"})
    pixels_only = metrics_for_modalities(names, {"pixels"})
    assert "position_rmse" in state_only and "position_rmse" in pixels_only
    assert all(METRICS.get(m).modality == "state" for m in state_only)
    assert all(METRICS.get(m).modality == "pixels" or METRICS.get(m).derivable_from_pixels
               for m in pixels_only)
    assert set(metrics_for_modalities(names, {"state", "pixels"})) == set(names)
    # cloth nodes have no object masks: a frames-only model is not planned (and failed) on
    # cloth positions or energy, so its exact frames can score 100
    cloth = metrics_for_modalities(names, {"pixels"}, "cloth/hanging")
    assert "position_rmse" not in cloth and "energy_drift" not in cloth and "psnr" in cloth
    assert "position_rmse" in metrics_for_modalities(names, {"pixels"}, "rigid/projectile")


def test_a_model_that_cannot_train_is_scored_as_failed(tmp_path, monkeypatch):
    from physground.errors import ValidationError
    from physground.learned import training

    def refuse(config, *datasets, **kwargs):
        raise ValidationError("rollouts have 2 and 3 bodies; state-gnn needs one count")

    monkeypatch.setattr(training, "train", refuse)
    suite = tiny_suite(
        models=["copy-last", "state-gnn"],
        defaults={"rollouts": 2, "train_rollouts": 2, "context": 4, "horizon": 5,
                  "splits": ["test_id"]},
        training=[{"model": "state-gnn", "steps": 3}],
    )
    run_dir = run_suite(suite, root=tmp_path, executor=run_sequential, progress=False,
                        report=False)
    results = read(run_dir)
    learned = results[results["model"] == "state-gnn"]
    assert len(learned) == 2 * 2 * 5 and learned["value"].isna().all()
    assert learned["failure"].str.contains("training state-gnn on rigid/projectile failed: "
                                           "rollouts have 2 and 3 bodies").all()
    assert (results[results["model"] == "copy-last"]["failure"] == "").all()
    again = Counting()  # a failed training is tried again on the next run
    run_suite(suite, root=tmp_path, executor=again, progress=False, report=False)
    assert again.other == 1 and again.evaluated == []
