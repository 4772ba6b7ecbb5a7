"""The Physics-IQ score: metrics normalised by the second take, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from physground.metrics.physics_iq_score import PIQ_METRICS, physics_iq_scores

# per-clip values (the metric at the last step) of two clips: st, s, ws, mse
TAKE = {"piq_spatiotemporal_iou": [0.5, 0.7], "piq_spatial_iou": [0.8, 0.6],
        "piq_weighted_spatial_iou": [0.4, 0.6], "piq_mse": [0.01, 0.03]}
MODEL = {"piq_spatiotemporal_iou": [0.3, 0.3], "piq_spatial_iou": [0.35, 0.35],
         "piq_weighted_spatial_iou": [0.25, 0.25], "piq_mse": [0.05, 0.07]}
TRUTH = {"piq_spatiotemporal_iou": [1.0, 1.0], "piq_spatial_iou": [1.0, 1.0],
         "piq_weighted_spatial_iou": [1.0, 1.0], "piq_mse": [0.0, 0.0]}


def _rows(model, values, failed=(), scenario="rigid/projectile"):
    rows = []
    for metric, per_clip in values.items():
        for rollout, last in enumerate(per_clip):
            for horizon in (1, 2):  # running metrics: the clip's value is the last step's
                bad = rollout in failed
                rows.append({"model": model, "track": "default", "scenario": scenario,
                             "split": "test_id", "rollout": rollout, "metric": metric,
                             "horizon": horizon,
                             "value": np.nan if bad else (last if horizon == 2 else 0.123),
                             "failure": "NaN or Inf in the prediction" if bad else ""})
    return rows


def _table(*parts):
    return pd.DataFrame([r for part in parts for r in part])


def test_hand_computed_score():
    table = _table(_rows("truth", TRUTH), _rows("second-take", TAKE), _rows("m", MODEL))
    scores = physics_iq_scores(table).set_index(["model", "scope"])
    # ((0.3/0.6) + (0.35/0.7) + (0.25/0.5)) / 3 - (0.06 - 0.02) = 0.46
    assert scores.loc[("m", "all"), "physics_iq_score"] == pytest.approx(46.0, abs=1e-5)
    assert scores.loc[("m", "rigid/projectile"), "physics_iq_score"] == pytest.approx(
        46.0, abs=1e-5)
    assert scores.loc[("m", "all"), "piq_mse_take"] == pytest.approx(0.02)
    assert scores.loc[("m", "all"), "clips"] == 2
    # the second take is the physical variance itself: (1 + 1 + 1) / 3 - 0 = 1
    assert scores.loc[("second-take", "all"), "physics_iq_score"] == pytest.approx(100.0)
    assert scores.loc[("truth", "all"), "physics_iq_score"] == 100.0  # clipped


def test_failed_clip_counts_as_the_worst_value():
    table = _table(_rows("truth", TRUTH), _rows("second-take", TAKE),
                   _rows("m", MODEL, failed=(1,)))
    row = physics_iq_scores(table).set_index(["model", "scope"]).loc[("m", "all")]
    # IoUs of the failed clip 0, its MSE 1: (0.15/0.6 + 0.175/0.7 + 0.125/0.5)/3
    # - ((0.05 + 1)/2 - 0.02) = 0.25 - 0.505 < 0 -> 0
    assert row["piq_spatiotemporal_iou_mean"] == pytest.approx(0.15)
    assert row["piq_mse_mean"] == pytest.approx(0.525)
    assert row["physics_iq_score"] == 0.0


def test_scenarios_are_scored_apart_and_together():
    better = {k: v if k == "piq_mse" else [x * 2 for x in v] for k, v in MODEL.items()}
    other = "rigid/collision"
    table = _table(_rows("truth", TRUTH), _rows("second-take", TAKE), _rows("m", MODEL),
                   _rows("truth", TRUTH, scenario=other),
                   _rows("second-take", TAKE, scenario=other),
                   _rows("m", better, scenario=other))
    scores = physics_iq_scores(table).set_index(["model", "scope"])["physics_iq_score"]
    # collision: (0.6/0.6 + 0.7/0.7 + 0.5/0.5)/3 - 0.04 = 0.96
    assert scores[("m", other)] == pytest.approx(96.0, abs=1e-5)
    # all four clips: means 0.45, 0.525, 0.375 over 0.6, 0.7, 0.5 -> 0.75 - 0.04 = 0.71
    assert scores[("m", "all")] == pytest.approx(71.0, abs=1e-5)


def test_needs_the_four_metrics_and_the_second_take():
    table = _table(_rows("truth", TRUTH), _rows("m", MODEL))
    assert physics_iq_scores(table).empty
    three = _table(_rows("second-take", TAKE), _rows("m", MODEL))
    three = three[three["metric"] != PIQ_METRICS[0]]
    assert physics_iq_scores(three).empty


def test_run_report_shows_the_physics_iq_score(tmp_path):
    """A small physics-iq run: the report has the section, physics_iq.csv agrees with the
    formula on the run's own means, and the second take scores 100 against itself."""
    from physground.benchmarks.executors import run_sequential
    from physground.benchmarks.runner import run_suite
    from physground.metrics.physics_iq_score import physics_iq_score
    from physground.suite import parse_suite

    suite = parse_suite({
        "name": "piq", "models": ["copy-last"], "metrics": list(PIQ_METRICS),
        "pixel_metrics": "physics-iq",
        "defaults": {"rollouts": 2, "context": 3, "horizon": 6, "splits": ["test_id"]},
        "scenario": [{"name": "rigid/projectile",
                      "config": {"num_frames": 9, "image_size": 32}}]}, "piq.toml")
    run_dir = run_suite(suite, root=tmp_path, executor=run_sequential, progress=False,
                        report=True)
    text = (run_dir / "report" / "report.md").read_text()
    assert "## Physics-IQ score" in text
    scores = pd.read_csv(run_dir / "report" / "physics_iq.csv")
    overall = scores[scores["scope"] == "all"].set_index("model")
    assert overall.loc["second-take", "physics_iq_score"] == pytest.approx(100.0, abs=1e-4)
    assert overall.loc["truth", "physics_iq_score"] == 100.0
    row = overall.loc["copy-last"]
    means = {k: row[f"{k}_mean"] for k in PIQ_METRICS}
    takes = {k: row[f"{k}_take"] for k in PIQ_METRICS}
    assert row["physics_iq_score"] == pytest.approx(physics_iq_score(means, takes))
    assert row["physics_iq_score"] < 100.0
