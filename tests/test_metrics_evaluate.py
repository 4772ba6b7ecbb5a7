"""Evaluation contract: tidy rows, failures recorded (never dropped), registry applicability,
and the batched path agreeing with the single-rollout path."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from physground.errors import UnknownNameError
from physground.metrics import METRICS
from physground.metrics.evaluate import (
    NONFINITE,
    applicable_metrics,
    evaluate,
    evaluate_batch,
)
from physground.rollout import Prediction, Rollout

G = 9.81
DT = 0.05


def ballistic_rollout(seed: int = 0, frames: int = 30, bodies: int = 2) -> Rollout:
    """Analytic free flight x = x0 + v0 t + g t^2/2 of ``bodies`` spheres (no contact)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None] * DT
    g = np.array([0.0, 0.0, -G])
    x0 = rng.uniform(-1, 1, (bodies, 3)) + np.array([0, 0, 20.0])
    v0 = rng.uniform(-2, 2, (bodies, 3))
    pos, vel = x0 + v0 * t + 0.5 * g * t**2, v0 + g * t
    quat = np.tile([1.0, 0, 0, 0], (frames, bodies, 1))
    return Rollout(
        scenario="rigid/projectile", split="test_id", seed=seed, params={"gravity": G},
        dt=DT, states={"pos": pos, "vel": vel, "quat": quat, "angvel": np.zeros_like(pos)},
        static={"mass": np.array([1.0, 2.0])[:bodies], "radius": np.full(bodies, 0.1),
                "gravity": g, "inertia": np.full((bodies, 3), 0.004), "ground_height": 0.0},
    )


def shifted(truth: Rollout, context: int, horizon: int, offset: np.ndarray) -> Prediction:
    target = truth.target(context, horizon)
    states = dict(target.states)
    states["pos"] = states["pos"] + offset
    return Prediction.for_rollout(truth, model="m", context=context, horizon=horizon,
                                  states=states)


def test_rows_are_tidy_and_truth_scores_zero() -> None:
    truth = ballistic_rollout()
    pred = shifted(truth, 10, 5, np.zeros(3))
    rows = evaluate(truth, pred, ["position_rmse", "energy_drift"]).to_dict("records")
    assert len(rows) == 10
    assert {r["metric"] for r in rows} == {"position_rmse", "energy_drift"}
    assert sorted({r["horizon"] for r in rows}) == [1, 2, 3, 4, 5]
    assert all(r["value"] == pytest.approx(0.0, abs=1e-12) and r["failure"] == "" for r in rows)


def test_position_rmse_of_a_constant_offset() -> None:
    truth = ballistic_rollout()
    pred = shifted(truth, 10, 5, np.array([0.3, 0.0, 0.4]))
    metrics = ["position_rmse", "position_ade", "position_fde"]
    rows = evaluate(truth, pred, metrics).to_dict("records")
    assert all(r["value"] == pytest.approx(0.5) for r in rows)


def test_energy_drift_of_a_height_offset() -> None:
    # Raising every body by dz adds sum(m) g dz to E; the scale is E_true at frame C-1.
    truth = ballistic_rollout()
    dz = 0.2
    pred = shifted(truth, 10, 5, np.array([0.0, 0.0, dz]))
    rows = evaluate(truth, pred, ["energy_drift"]).to_dict("records")
    pos, vel, mass = truth.states["pos"][9], truth.states["vel"][9], truth.static["mass"]
    energy = 0.5 * (mass * (vel**2).sum(-1)).sum() + G * (mass * pos[:, 2]).sum()
    for row in rows:
        assert row["value"] == pytest.approx(3.0 * G * dz / abs(energy), rel=1e-9)


def test_energy_drift_from_positions_only_uses_finite_differences() -> None:
    truth = ballistic_rollout()
    no_vel = dataclasses.replace(truth, states={"pos": truth.states["pos"]})
    pred = Prediction.for_rollout(no_vel, model="m", context=10, horizon=5,
                                  states={"pos": no_vel.states["pos"][10:15] + [0, 0, 0.2]})
    values = [r["value"] for r in evaluate(no_vel, pred, ["energy_drift"]).to_dict("records")]
    with_vel = [r["value"] for r in evaluate(truth, shifted(truth, 10, 5, np.array([0, 0, 0.2])),
                                             ["energy_drift"]).to_dict("records")]
    # second-order differences are exact on parabolas; at step 1 the central difference
    # spans the jump from the last context frame, which is a real (implied) velocity.
    np.testing.assert_allclose(values[1:], with_vel[1:], rtol=1e-6)
    assert values[0] > with_vel[0]


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda s: {**s, "pos": np.where(np.arange(5)[:, None, None] == 3, np.nan, s["pos"])},
         "NaN or Inf (first at horizon step 3)"),
        (lambda s: {**s, "pos": s["pos"][:, :1]}, "has shape"),
        (lambda s: {**s, "pos": s["pos"].astype(np.int64)}, "dtype"),
        (lambda s: {k: v[:4] for k, v in s.items()}, "has shape [4, 2, 3], expected [5, 2, 3]"),
    ],
)
def test_bad_predictions_are_failures_not_dropped(mutate, reason) -> None:
    truth = ballistic_rollout()
    good = shifted(truth, 10, 5, np.zeros(3))
    bad = dataclasses.replace(good, states=mutate(dict(good.states)))
    rows = evaluate(truth, bad, ["position_rmse", "energy_drift"]).to_dict("records")
    assert len(rows) == 10
    assert all(math.isnan(r["value"]) and reason in r["failure"] for r in rows)


def test_model_failure_and_too_long_horizon_are_recorded() -> None:
    truth = ballistic_rollout(frames=30)
    failed = Prediction.for_rollout(truth, model="m", context=10, horizon=5,
                                    failure="model raised RuntimeError: boom")
    rows = evaluate(truth, failed, ["position_rmse"]).to_dict("records")
    assert [r["failure"] for r in rows] == ["model raised RuntimeError: boom"] * 5
    long = Prediction.for_rollout(truth, model="m", context=25, horizon=10,
                                  states={"pos": np.zeros((10, 2, 3))})
    rows = evaluate(truth, long, ["position_rmse"]).to_dict("records")
    assert len(rows) == 10 and "exceeds" in rows[0]["failure"]


def test_missing_state_without_frames_fails_with_reason() -> None:
    truth = ballistic_rollout()
    pred = Prediction.for_rollout(truth, model="m", context=10, horizon=5,
                                  states={"vel": truth.states["vel"][10:15]})
    rows = evaluate(truth, pred, ["position_rmse"]).to_dict("records")
    assert all("no states['pos'] and no frames" in r["failure"] for r in rows)


def test_overflowing_prediction_is_a_failure() -> None:
    truth = ballistic_rollout()
    pred = shifted(truth, 10, 5, np.zeros(3))
    pred = dataclasses.replace(pred, states={**pred.states,
                                             "vel": pred.states["vel"] * 1e200})
    rows = evaluate(truth, pred, ["energy_drift"]).to_dict("records")
    assert all(r["failure"] == NONFINITE for r in rows)


def test_batch_agrees_with_single_and_keeps_failures() -> None:
    truths = [ballistic_rollout(seed) for seed in range(5)]
    preds = [shifted(t, 10, 5, np.full(3, 0.1 * i)) for i, t in enumerate(truths)]
    preds[2] = dataclasses.replace(preds[2], states={**preds[2].states,
                                                     "pos": preds[2].states["pos"] * np.inf})
    table = evaluate_batch(truths, preds, ["position_rmse", "energy_drift"], chunk_size=2)
    assert len(table) == 5 * 2 * 5
    for i, (truth, pred) in enumerate(zip(truths, preds, strict=True)):
        single = evaluate(truth, pred, ["position_rmse", "energy_drift"]).to_dict("records")
        rows = table[table["rollout"] == i]
        np.testing.assert_allclose(rows["value"].to_numpy(), [r["value"] for r in single])
        assert list(rows["failure"].astype(str)) == [r["failure"] for r in single]
    assert table[table["rollout"] == 2]["failure"].astype(str).str.contains("NaN or Inf").all()


def test_registry_lists_applicable_metrics() -> None:
    from physground.scenario import get_scenario

    names = applicable_metrics(get_scenario("rigid/projectile", render=False))
    assert {"position_rmse", "energy_drift"} <= set(names)
    assert "position_rmse" in METRICS.names("accuracy")
    assert "energy_drift" in METRICS.names("plausibility")
    with pytest.raises(UnknownNameError, match="did you mean 'position_rmse'"):
        evaluate(ballistic_rollout(), shifted(ballistic_rollout(), 10, 5, np.zeros(3)),
                 ["position_rmsd"]).to_dict("records")


def test_every_state_metric_is_perfect_on_the_truth_itself() -> None:
    """d(x, x) is the perfect value of every state metric applicable to rigid scenarios
    (or the metric is undefined for this truth, e.g. no bounce in free flight)."""
    from physground.scenario import get_scenario

    truth = ballistic_rollout()
    pred = shifted(truth, 10, 5, np.zeros(3))
    names = [n for n in applicable_metrics(get_scenario("rigid/projectile", render=False))
             if METRICS.get(n).modality == "state"]
    for row in evaluate(truth, pred, names).to_dict("records"):
        assert row["failure"].startswith("undefined: ") or row["value"] == pytest.approx(
            0.0, abs=1e-9), row


def test_metric_table_says_where_each_metric_applies() -> None:
    from physground.metrics.evaluate import metric_table

    table = metric_table(["rigid/projectile", "fluid/smoke"]).set_index("metric")
    assert table.loc["restitution_error", "scenarios"] == "rigid/projectile"
    assert table.loc["divergence_norm", "scenarios"] == "fluid/smoke"
    assert table.loc["velocity_spectral_low", "scenarios"] == "fluid/smoke"
    assert table.loc["psnr", "scenarios"] == "rigid/projectile,fluid/smoke"
    assert table.loc["edge_strain", "scenarios"] == ""
    assert (table["description"] != "").all() and (table["unit"] != "").all()
    assert set(table.index) == set(METRICS.names())


def test_applicable_metrics_follow_model_modalities() -> None:
    from physground.scenario import get_scenario

    rigid = get_scenario("rigid/projectile", render=True)
    video = set(applicable_metrics(rigid, modalities=["pixels"]))
    assert {"psnr", "position_rmse", "restitution_error", "energy_drift"} <= video
    state = set(applicable_metrics(rigid, modalities=["state"]))
    assert "psnr" not in state and "position_rmse" in state
    cloth = get_scenario("cloth/hanging", render=True)
    cloth_video = set(applicable_metrics(cloth, modalities=["pixels"]))
    assert "psnr" in cloth_video and "position_rmse" not in cloth_video
    assert "edge_strain" not in cloth_video


def test_third_party_metric_with_only_a_per_rollout_function() -> None:
    """A metric registered with just ``fn`` is scored rollout by rollout, failures kept."""
    from physground.metrics.registry import Metric

    def max_height(truth: Rollout, pred: Prediction) -> np.ndarray:
        return np.asarray(pred.states["pos"])[..., 2].max(-1)

    name = "test_max_height"
    METRICS.register(name, Metric(name=name, fn=max_height, higher_is_better=False,
                                  requires_states=("pos",), unit="m",
                                  description="highest body per step (test metric)"))
    try:
        truths = [ballistic_rollout(seed) for seed in range(3)]
        preds = [shifted(t, 10, 5, np.zeros(3)) for t in truths]
        preds[1] = dataclasses.replace(preds[1], failure="model crashed")
        table = evaluate_batch(truths, preds, [name])
    finally:  # the registry has no public removal; keep other tests' registry clean
        METRICS._entries.pop(name, None)
    for i in (0, 2):
        got = table[table["rollout"] == i]["value"].to_numpy()
        np.testing.assert_allclose(got, truths[i].states["pos"][10:15, :, 2].max(-1))
    assert (table[table["rollout"] == 1]["failure"] == "model crashed").all()
