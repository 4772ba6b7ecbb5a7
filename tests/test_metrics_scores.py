"""Normalized scores: ground truth 100, trivial baseline 0, failures counted as worst."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from physground.errors import ValidationError
from physground.metrics.evaluate import applicable_metrics, evaluate_batch
from physground.metrics.scores import aggregate_scores, normalized_scores
from physground.rollout import Prediction
from physground.scenario import get_scenario
from physground.world_model import get_model


def table(rows: list[tuple[str, int, str, float, str]]) -> pd.DataFrame:
    """Rows of (model, rollout, metric, value, failure) at horizon 1 of one scenario."""
    return pd.DataFrame(
        [{"model": m, "scenario": "rigid/projectile", "split": "test_id", "rollout": r,
          "metric": k, "horizon": 1, "value": v, "failure": f} for m, r, k, v, f in rows]
    )


def test_known_scores_lower_is_better() -> None:
    results = table([
        ("copy-last", 0, "position_rmse", 1.0, ""), ("copy-last", 1, "position_rmse", 3.0, ""),
        ("reference", 0, "position_rmse", 0.0, ""), ("reference", 1, "position_rmse", 0.2, ""),
        ("m", 0, "position_rmse", 0.5, ""), ("m", 1, "position_rmse", 1.5, ""),
        ("truth", 0, "position_rmse", 0.0, ""), ("truth", 1, "position_rmse", 0.0, ""),
        ("bad", 0, "position_rmse", 5.0, ""), ("bad", 1, "position_rmse", 5.0, ""),
    ])
    scores = normalized_scores(results).set_index("model")["score"]
    # baseline mean 2.0, reference mean 0.1: m (mean 1.0) -> 100 * 1.0 / 1.9
    assert scores["m"] == pytest.approx(100 * 1.0 / 1.9)
    assert scores["copy-last"] == 0.0 and scores["reference"] == 100.0
    assert scores["truth"] == 100.0  # closer than the noise floor is capped at 100
    assert scores["bad"] == pytest.approx(100 * (2.0 - 5.0) / 1.9)  # negative kept


def test_higher_is_better_metric_direction() -> None:
    # psnr is higher-is-better: baseline 10 dB, reference 30 dB, model 25 dB -> 75
    results = table([("copy-last", 0, "psnr", 10.0, ""), ("reference", 0, "psnr", 30.0, ""),
                     ("m", 0, "psnr", 25.0, "")])
    scores = normalized_scores(results).set_index("model")
    assert scores.loc["m", "score"] == pytest.approx(75.0)
    assert scores.loc["m", "value"] == pytest.approx(25.0)


def test_failures_score_as_worst_and_are_counted() -> None:
    results = table([
        ("copy-last", 0, "position_rmse", 1.0, ""), ("copy-last", 1, "position_rmse", 1.0, ""),
        ("reference", 0, "position_rmse", 0.0, ""), ("reference", 1, "position_rmse", 0.0, ""),
        ("other", 0, "position_rmse", 4.0, ""), ("other", 1, "position_rmse", 0.0, ""),
        ("m", 0, "position_rmse", np.nan, "states['pos'] has NaN"),
        ("m", 1, "position_rmse", 0.0, ""),
    ])
    scores = normalized_scores(results).set_index("model")
    # the failed row takes the worst value on that rollout (4.0 by 'other')
    assert scores.loc["m", "value"] == pytest.approx(2.0)
    assert scores.loc["m", "failures"] == 1 and scores.loc["other", "failures"] == 0
    assert scores.loc["m", "score"] == pytest.approx(-100.0)


def test_undefined_rows_are_excluded_and_degenerate_scales_flagged() -> None:
    results = table([
        ("copy-last", 0, "energy_drift", 0.5, ""),
        ("copy-last", 1, "energy_drift", np.nan, "undefined: no bounce"),
        ("reference", 0, "energy_drift", 0.0, ""),
        ("reference", 1, "energy_drift", np.nan, "undefined: no bounce"),
        ("m", 0, "energy_drift", 0.25, ""),
        ("m", 1, "energy_drift", np.nan, "undefined: no bounce"),
        ("copy-last", 0, "position_rmse", 0.0, ""), ("reference", 0, "position_rmse", 0.0, ""),
        ("m", 0, "position_rmse", 0.0, ""),
    ])
    scores = normalized_scores(results).set_index(["model", "metric"])
    assert scores.loc[("m", "energy_drift"), "score"] == pytest.approx(50.0)
    assert scores.loc[("m", "energy_drift"), "undefined"] == 1
    assert np.isnan(scores.loc[("m", "position_rmse"), "score"])
    assert scores.loc[("m", "position_rmse"), "note"].startswith("degenerate")
    agg = aggregate_scores(normalized_scores(results)).set_index("model")
    assert agg.loc["m", "physics_score"] == pytest.approx(50.0)
    assert agg.loc["m", "degenerate"] == 1


def test_missing_anchor_model_is_an_error() -> None:
    results = table([("m", 0, "position_rmse", 1.0, "")])
    with pytest.raises(ValidationError, match="baseline model 'copy-last'"):
        normalized_scores(results)


def test_projectile_truth_scores_100_and_baseline_0() -> None:
    """End to end on rigid/projectile: evaluate, normalize, aggregate."""
    context, horizon, seeds = 10, 15, [0, 1, 2]
    scenario = get_scenario("rigid/projectile", render=False, num_frames=context + horizon)
    params = [scenario.sample_params("test_id", s) for s in seeds]
    truths = scenario.simulate(params, seeds, "test_id")
    # reference: the same physics with twice the substeps (another discretization)
    finer = get_scenario("rigid/projectile", render=False, num_frames=context + horizon,
                         substeps=2 * scenario.config.substeps)
    resims = finer.simulate(params, seeds, "test_id")
    metrics = applicable_metrics(scenario)
    predictions = {
        "copy-last": [get_model("copy-last").predict(t.context(context), horizon)
                      for t in truths],
        "reference": [Prediction.for_rollout(t, model="reference", context=context,
                                             horizon=horizon,
                                             states=r.target(context, horizon).states)
                      for t, r in zip(truths, resims, strict=True)],
        "truth": [Prediction.for_rollout(t, model="truth", context=context, horizon=horizon,
                                         states=t.target(context, horizon).states)
                  for t in truths],
    }
    frames = []
    for model, preds in predictions.items():
        rows = evaluate_batch(truths, preds, metrics)
        frames.append(rows.assign(model=model, rollout=rows["seed"]))
    scores = normalized_scores(pd.concat(frames, ignore_index=True))
    defined = scores[np.isfinite(scores["score"])]
    assert set(defined["metric"]) >= {"position_rmse", "position_ade"}
    by_model = defined.groupby("model")["score"]
    assert (by_model.get_group("truth") == 100.0).all()
    assert (by_model.get_group("copy-last") == 0.0).all()
    agg = aggregate_scores(scores).set_index("model")["physics_score"]
    assert agg["truth"] == 100.0 and agg["copy-last"] == 0.0 and agg["reference"] == 100.0


def test_missing_failure_values_mean_success_in_any_column_type() -> None:
    rows = [("copy-last", 0, "position_rmse", 1.0, None), ("reference", 0, "position_rmse", 0.0,
                                                           None),
            ("m", 0, "position_rmse", 0.5, None)]
    for results in (table(rows), table(rows).astype({"failure": "category"})):
        scores = normalized_scores(results).set_index("model")
        assert scores.loc["m", "score"] == pytest.approx(50.0)
        assert scores["failures"].sum() == 0
