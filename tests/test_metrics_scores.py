"""Bounded scores: known values of the transform, the floor, failures, the aggregate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import physground.metrics  # noqa: F401  (registers the metrics)
from physground.errors import ValidationError
from physground.metrics.scores import (
    aggregate_scores,
    bounded_score,
    normalized_scores,
    rollout_scores,
    scenario_scores,
)


def rows(model: str, metric: str, per_rollout: list[list[float]], *,
         scenario: str = "rigid/collision", split: str = "test_id", failure: str = "",
         sample: int | None = None) -> pd.DataFrame:
    """Tidy rows: one list of per-step values per rollout."""
    out = []
    for r, values in enumerate(per_rollout):
        for h, v in enumerate(values, start=1):
            row = {"model": model, "scenario": scenario, "split": split, "rollout": r,
                   "metric": metric, "horizon": h, "value": v, "failure": failure}
            if sample is not None:
                row["sample"] = sample
            out.append(row)
    return pd.DataFrame(out)


def anchored(metric: str, take: float, shuffled: float, n: int = 4, h: int = 3,
             **kw: object) -> list[pd.DataFrame]:
    """truth (0 error), second take and shuffled rows of a lower-is-better metric."""
    return [rows("truth", metric, [[0.0] * h] * n, **kw),
            rows("second-take", metric, [[take] * h] * n, **kw),
            rows("shuffled", metric, [[shuffled] * h] * n, **kw)]


def test_bounded_score_known_values() -> None:
    e = np.array([0.005, 0.01, 0.1, 1.0, 2.0, np.inf, 0.1, np.nan])
    f = np.array([0.01] * 6 + [1.0, 0.01])
    u = np.ones(8)
    got = bounded_score(e, f, u)
    np.testing.assert_allclose(got[:6], [100.0, 100.0, 50.0, 0.0, 0.0, 0.0])
    assert np.isnan(got[6]) and np.isnan(got[7])  # floor reaches u; no value


def test_the_round_off_spans_of_the_old_scores_are_bounded() -> None:
    """The spans that gave -736,866 (collision momentum_drift: copy-last 3.06e-16 against
    reference 3.02e-16) and -2.9e16 (a toy scenario: a 1e-18 span and an error of 0.29)."""
    collision = pd.concat([
        rows("truth", "momentum_drift", [[0.0] * 3] * 4),
        rows("second-take", "momentum_drift", [[3.02e-16] * 3] * 4),
        rows("reference", "momentum_drift", [[3.02e-16] * 3] * 4),
        rows("copy-last", "momentum_drift", [[3.06e-16] * 3] * 4),
        rows("constant-velocity", "momentum_drift", [[2.98e-14] * 3] * 4),
        rows("shuffled", "momentum_drift", [[0.4] * 3] * 4),
    ])
    toy = pd.concat([
        rows("truth", "energy_drift", [[0.0] * 3] * 4, scenario="rigid/projectile"),
        rows("second-take", "energy_drift", [[1e-18] * 3] * 4, scenario="rigid/projectile"),
        rows("copy-last", "energy_drift", [[2e-18] * 3] * 4, scenario="rigid/projectile"),
        rows("model", "energy_drift", [[0.29] * 3] * 4, scenario="rigid/projectile"),
        rows("model", "momentum_drift", [[2.98e-14] * 3] * 4),
        rows("shuffled", "energy_drift", [[0.6] * 3] * 4, scenario="rigid/projectile"),
    ])
    table = normalized_scores(pd.concat([collision, toy], ignore_index=True))
    assert table["score"].between(0.0, 100.0).all()
    score = table.set_index(["model", "scenario", "metric"])["score"]
    # below the 1e-3 resolution floor of momentum_drift: at the floor, not -736,866
    assert score[("constant-velocity", "rigid/collision", "momentum_drift")] == 100.0
    # 0.29 between floor 1e-3 and u = 0.6 on the log scale
    expected = 100 * np.log(0.6 / 0.29) / np.log(0.6 / 1e-3)
    assert score[("model", "rigid/projectile", "energy_drift")] == pytest.approx(expected)


def test_scores_fall_monotonically_with_the_error() -> None:
    errors = [0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 5.0]
    parts = anchored("position_rmse", take=1e-3, shuffled=1.0)
    parts += [rows(f"m{i}", "position_rmse", [[e] * 3] * 4) for i, e in enumerate(errors)]
    score = normalized_scores(pd.concat(parts)).set_index("model")["score"]
    values = [score[f"m{i}"] for i in range(len(errors))]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert values[0] == values[2] == 100.0 and values[-2] == values[-1] == 0.0
    assert score["truth"] == 100.0 and score["second-take"] == 100.0


def test_failures_score_zero_and_are_counted() -> None:
    parts = anchored("position_rmse", take=1e-3, shuffled=1.0)
    parts.append(rows("m", "position_rmse", [[1e-3] * 3] * 2))
    parts.append(rows("m", "position_rmse", [[np.nan] * 3] * 2, failure="model raised x")
                 .assign(rollout=lambda d: d["rollout"] + 2))
    table = normalized_scores(pd.concat(parts)).set_index("model")
    assert table.loc["m", "score"] == pytest.approx(50.0)  # two at 100, two failed at 0
    assert table.loc["m", "failures"] == 2  # failed rollouts


def test_undefined_rows_are_left_out() -> None:
    parts = anchored("restitution_error", take=0.01, shuffled=0.5)
    parts.append(rows("m", "restitution_error", [[0.01] * 3] * 4))
    undefined = rows("truth", "restitution_error", [[np.nan] * 3],
                     failure="undefined: no bounce").assign(rollout=4)
    model_undefined = rows("m", "restitution_error", [[np.nan] * 3],
                           failure="undefined: no bounce").assign(rollout=4)
    table = normalized_scores(pd.concat([*parts, undefined, model_undefined]))
    m = table.set_index("model").loc["m"]
    assert m["score"] == 100.0 and m["undefined"] == 1 and m["failures"] == 0


def test_missing_anchor_is_an_error() -> None:
    with pytest.raises(ValidationError, match="anchors"):
        normalized_scores(rows("m", "position_rmse", [[1.0]]))


def test_decibel_metrics_are_scored_in_the_error_they_are_a_log_of() -> None:
    # PSNR 30 dB = MSE 1e-3; floor (4/255)^2; uninformative 20 dB = MSE 1e-2
    parts = [rows("truth", "psnr", [[100.0] * 2] * 3),
             rows("second-take", "psnr", [[60.0] * 2] * 3),
             rows("shuffled", "psnr", [[20.0] * 2] * 3),
             rows("m", "psnr", [[30.0] * 2] * 3)]
    score = normalized_scores(pd.concat(parts)).set_index("model")["score"]
    floor = (4 / 255) ** 2
    expected = 100 * np.log(1e-2 / (1e-3 - 1e-10)) / np.log(1e-2 / (floor - 1e-10))
    assert score["m"] == pytest.approx(expected, rel=1e-6)


def test_fde_takes_the_last_step_and_rmse_the_mean() -> None:
    parts = [rows("truth", m, [[0.0, 0.0, 0.0]]) for m in ("position_fde", "position_rmse")]
    parts += [rows("m", m, [[1.0, 2.0, 6.0]]) for m in ("position_fde", "position_rmse")]
    per = rollout_scores(pd.concat(parts + [
        rows("shuffled", m, [[9.0] * 3]) for m in ("position_fde", "position_rmse")]))
    err = per[per["model"] == "m"].set_index("metric")["error"]
    assert err["position_fde"] == 6.0 and err["position_rmse"] == 3.0


def test_a_frozen_prediction_is_not_rewarded_by_conservation() -> None:
    """Copy-last conserves energy exactly: perfect on energy_drift, uninformative on
    positions; the aggregate must not credit its conservation."""
    parts = anchored("position_rmse", take=1e-3, shuffled=0.5)
    parts += anchored("energy_drift", take=1e-3, shuffled=0.5)
    parts += [rows("frozen", "position_rmse", [[0.8] * 3] * 4),
              rows("frozen", "energy_drift", [[0.0] * 3] * 4),
              rows("good", "position_rmse", [[1e-3] * 3] * 4),
              rows("good", "energy_drift", [[1e-3] * 3] * 4)]
    table = normalized_scores(pd.concat(parts))
    per = scenario_scores(table).set_index("model")
    assert per.loc["frozen", "accuracy"] == 0.0
    assert per.loc["frozen", "conservation"] == 0.0  # 100 on its own, capped by accuracy
    assert per.loc["frozen", "scenario_score"] == 0.0
    agg = aggregate_scores(table).set_index("model")
    assert agg.loc["good", "physics_score"] == 100.0
    assert agg["physics_score"].between(0, 100).all()


def test_families_weigh_equally_whatever_their_metric_count() -> None:
    parts = []
    for metric in ("position_rmse", "position_ade", "position_fde"):
        parts += anchored(metric, take=1e-3, shuffled=1.0)
        parts.append(rows("m", metric, [[1e-3] * 3] * 4))  # 100 on three accuracy metrics
    parts += anchored("energy_drift", take=1e-3, shuffled=1.0)
    parts.append(rows("m", "energy_drift", [[10.0] * 3] * 4))  # 0 on one conservation
    per = scenario_scores(normalized_scores(pd.concat(parts))).set_index("model")
    assert per.loc["m", "scenario_score"] == pytest.approx(50.0)


def test_samples_of_a_stochastic_model_give_mean_and_std() -> None:
    parts = [p.assign(sample=0) for p in anchored("position_rmse", take=1e-2, shuffled=1.0)]
    parts += [rows("m", "position_rmse", [[1e-2] * 3] * 4, sample=0),  # 100
              rows("m", "position_rmse", [[1e-1] * 3] * 4, sample=1)]  # 50
    m = normalized_scores(pd.concat(parts)).set_index("model").loc["m"]
    assert m["score"] == pytest.approx(75.0)
    assert m["score_std"] == pytest.approx(np.std([100.0, 50.0], ddof=1))
    assert m["samples"] == 2


def delivered(model: str, errors: dict[str, float], n: int = 4, h: int = 3) -> pd.DataFrame:
    """``position_rmse`` rows of anchors delivered as ``model``'s files were (one value for
    every rollout and step); a list of values gives samples (the reference deliveries)."""
    out = []
    for anchor, value in errors.items():
        values = value if isinstance(value, list) else [value]
        for sample, v in enumerate(values):
            out.append(rows(f"{anchor}|{model}", "position_rmse", [[v] * h] * n,
                            sample=sample if isinstance(value, list) else None))
    return pd.concat(out, ignore_index=True)


def test_delivered_anchors_set_a_video_models_floor_and_uninformative_level() -> None:
    """Native anchors: second take 0.01, copy-last 0.5; the video model errs 0.1. Its
    delivered anchors (truth 0.1, second take 0.12, copy-last 0.6, shuffled 1.0) give the
    floor max(0.01, min(max(0.1, 0.12), cap)) and the 0 at 0.6; the cap is the largest
    error of the truth through the reference deliveries."""
    native = pd.concat([
        *anchored("position_rmse", take=0.01, shuffled=1.0),
        rows("copy-last", "position_rmse", [[0.5] * 3] * 4),
        rows("video", "position_rmse", [[0.1] * 3] * 4),
        rows("other", "position_rmse", [[0.1] * 3] * 4),
    ], ignore_index=True)
    anchors = {"truth": 0.1, "second-take": 0.12, "copy-last": 0.6, "shuffled": 1.0}

    def score_of(model: str, cap: list[float]) -> pd.Series:
        table = normalized_scores(pd.concat([native, delivered("video", {
            **anchors, "reference-delivery": cap})], ignore_index=True))
        assert not table["model"].str.contains("|", regex=False).any()
        return table.set_index("model").loc[model]

    wide = score_of("video", [0.08, 0.15])
    assert wide["floor"] == pytest.approx(0.12) and wide["uninformative"] == pytest.approx(0.6)
    assert wide["score"] == 100.0 and wide["delivered"]
    narrow = score_of("video", [0.03, 0.05])  # a delivery beyond the tolerated ones
    assert narrow["floor"] == pytest.approx(0.05)
    assert narrow["score"] == pytest.approx(100.0 * (1.0 - np.log(2.0) / np.log(12.0)))
    other = score_of("other", [0.08, 0.15])  # no delivered anchors: the native levels
    assert not other["delivered"] and other["floor"] == pytest.approx(0.01)
    assert other["score"] == pytest.approx(100.0 * (1.0 - np.log(10.0) / np.log(50.0)))
