"""Known-answer tests of the plausibility metrics on analytic trajectories and constructed
cloth, SPH and smoke states."""

from __future__ import annotations

import math

import numpy as np
import pytest

from physground.metrics import METRICS
from physground.metrics.evaluate import evaluate
from physground.rollout import Prediction, Rollout

G = 9.81
DT = 1.0 / 30.0
RADIUS = 0.15


def bouncing(restitution: float, frames: int = 40, h0: float = 1.0, vx: float = 1.0,
             vz0: float = 0.0, gravity: float = G, phase: float = 0.37) -> np.ndarray:
    """Exact positions [T,1,3] of a sphere bouncing with instantaneous restitution.

    The centre starts at height ``h0`` above the contact level z = RADIUS; every impact
    reverses and scales the vertical speed. ``phase`` offsets the sampling times so that
    impacts fall between frames.
    """
    out = np.empty((frames, 1, 3))
    for k in range(frames):
        t = (k + phase) * DT
        z, vz, clock = h0, vz0, 0.0
        while True:  # walk flight segments until time t
            # time to hit z = 0 (relative height) from (z, vz): z + vz s - g s^2/2 = 0
            s_hit = (vz + math.sqrt(vz * vz + 2 * gravity * z)) / gravity
            if s_hit < 1e-9:  # came to rest (infinitely many bounces in finite time)
                z = 0.0
                break
            if clock + s_hit > t:
                s = t - clock
                z = z + vz * s - 0.5 * gravity * s * s
                break
            clock += s_hit
            vz = restitution * (gravity * s_hit - vz)  # rebound speed
            z = 0.0
        out[k, 0] = [vx * t, 0.0, z + RADIUS]
    return out


def rigid(pos: np.ndarray, gravity: float = G, seed: int = 0,
          radius: float = RADIUS) -> Rollout:
    bodies = pos.shape[1]
    return Rollout(
        scenario="rigid/projectile", split="test_id", seed=seed, params={}, dt=DT,
        states={"pos": pos}, static={
            "mass": np.ones(bodies), "radius": np.full(bodies, radius),
            "gravity": np.array([0.0, 0.0, -gravity]), "ground_height": np.float64(0.0)},
    )


def predict(truth: Rollout, context: int, states: dict[str, np.ndarray]) -> Prediction:
    horizon = next(iter(states.values())).shape[0]
    return Prediction.for_rollout(truth, model="m", context=context, horizon=horizon,
                                  states=states)


def values(truth: Rollout, pred: Prediction, metric: str) -> np.ndarray:
    rows = evaluate(truth, pred, [metric]).to_dict("records")
    assert all(r["failure"] == "" for r in rows), rows[0]["failure"]
    return np.array([r["value"] for r in rows])


def test_restitution_error_recovers_analytic_bounces() -> None:
    truth = rigid(bouncing(0.8))
    pred = predict(truth, 5, {"pos": bouncing(0.5)[5:]})
    np.testing.assert_allclose(values(truth, pred, "restitution_error"), 0.3, atol=1e-9)
    same = predict(truth, 5, {"pos": truth.states["pos"][5:]})
    np.testing.assert_allclose(values(truth, same, "restitution_error"), 0.0, atol=1e-12)
    # a prediction that never bounces (copy of the last context frame) has e = 0
    frozen = predict(truth, 5, {"pos": np.repeat(truth.states["pos"][4:5], 35, 0)})
    np.testing.assert_allclose(values(truth, frozen, "restitution_error"), 0.8, atol=1e-9)


def test_rigid_metrics_are_zero_on_the_truth_itself() -> None:
    truth = rigid(np.concatenate([bouncing(0.7), bouncing(0.6, h0=1.5, vx=-1.0)], axis=1))
    pred = predict(truth, 5, {"pos": truth.states["pos"][5:]})
    names = ["restitution_error", "contact_time_error", "gravity_error", "penetration_depth",
             "penetration_frequency", "position_rmse", "energy_drift", "momentum_drift"]
    for row in evaluate(truth, pred, names).to_dict("records"):
        assert row["failure"] == "" and row["value"] == pytest.approx(0.0, abs=1e-12), row


def test_restitution_undefined_without_a_bounce() -> None:
    truth = rigid(bouncing(0.8, frames=12, h0=50.0))  # still falling at the end
    rows = evaluate(truth, predict(truth, 5, {"pos": truth.states["pos"][5:]}),
                    ["restitution_error"]).to_dict("records")
    assert all(r["failure"].startswith("undefined: ") for r in rows)


def test_contact_time_error_in_seconds() -> None:
    truth = rigid(bouncing(0.8, h0=1.0))
    # falling from 1 m (phase 0.37): impact at sqrt(2/g) = 0.4515 s -> between frames 13
    # and 14; a later drop from 1.5 m lands at 0.553 s (between frames 16 and 17)
    late = rigid(bouncing(0.8, h0=1.5))
    pred = predict(truth, 5, {"pos": late.states["pos"][5:]})
    value = values(truth, pred, "contact_time_error")
    impact = [int(np.argmin(x.states["pos"][:20, 0, 2])) for x in (truth, late)]
    assert value == pytest.approx(abs(impact[1] - impact[0]) * DT)
    assert impact[1] - impact[0] == 3


def test_gravity_error_of_a_wrong_gravity() -> None:
    truth = rigid(bouncing(0.8, frames=30, h0=100.0, vz0=3.0))  # no impact: all ballistic
    wrong = bouncing(0.8, frames=30, h0=100.0, vz0=3.0, gravity=1.1 * G)
    # same context frames, then a trajectory under 1.1 g continuing from them
    pred = predict(truth, 10, {"pos": wrong[10:] - wrong[9] + truth.states["pos"][9]})
    # second differences centred on predicted frames see exactly 1.1 g
    np.testing.assert_allclose(values(truth, pred, "gravity_error"), 0.1, rtol=1e-9)
    same = predict(truth, 10, {"pos": truth.states["pos"][10:]})
    np.testing.assert_allclose(values(truth, same, "gravity_error"), 0.0, atol=1e-9)


def test_penetration_depth_and_frequency() -> None:
    truth = rigid(np.tile([[[0.0, 0.0, 1.0]]], (20, 1, 1)))
    low = truth.states["pos"][10:].copy()
    low[5:, 0, 2] = RADIUS - 0.05  # 5 cm into the ground from step 6 on
    pred = predict(truth, 10, {"pos": low})
    depth = values(truth, pred, "penetration_depth")
    np.testing.assert_allclose(depth, [0.0] * 5 + [0.05] * 5, atol=1e-12)
    freq = values(truth, pred, "penetration_frequency")
    np.testing.assert_allclose(freq, [0, 0, 0, 0, 0, 1 / 6, 2 / 7, 3 / 8, 4 / 9, 5 / 10])


def test_penetration_between_bodies() -> None:
    pos = np.tile([[[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]]], (12, 1, 1))
    truth = rigid(pos)
    close = pos[6:].copy()
    close[:, 1, 0] = 0.2  # centres 0.2 m apart, radii 0.15: overlap 0.1 m
    np.testing.assert_allclose(values(truth, predict(truth, 6, {"pos": close}),
                                      "penetration_depth"), 0.1, atol=1e-9)


def test_momentum_drift_of_a_velocity_offset() -> None:
    t = np.arange(20)[:, None, None] * DT
    v0 = np.array([[1.0, 0.0, 0.0], [-0.5, 0.0, 0.0]])
    pos = np.array([[0, 0, 5.0], [2, 0, 5.0]]) + v0 * t  # no gravity: free motion
    truth = rigid(pos, gravity=0.0)
    pred_pos = pos[10:] + np.array([0.2, 0.0, 0.0]) * (t[10:] - t[9])  # body drift +0.2 m/s
    value = values(truth, predict(truth, 10, {"pos": pred_pos}), "momentum_drift")
    # P_true = (0.5, 0, 0), extra momentum 2 bodies * 1 kg * 0.2 m/s = 0.4; scale =
    # max(|P|, sum m |v|) = 1.5. Central differences are exact from step 2 on.
    np.testing.assert_allclose(value[1:], 0.4 / 1.5, rtol=1e-9)


def cloth_rollout(frames: int = 6) -> Rollout:
    i, j = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    x0 = np.stack([i.ravel() * 0.1, j.ravel() * 0.1, np.full(16, 1.0)], -1)
    edges = np.array([[a, a + 4] for a in range(12)]
                     + [[a, a + 1] for a in range(16) if a % 4 != 3])
    rest = np.linalg.norm(x0[edges[:, 0]] - x0[edges[:, 1]], axis=-1)
    x = np.repeat(x0[None], frames, 0)
    return Rollout(
        scenario="cloth/hanging", split="test_id", seed=0, params={}, dt=DT,
        states={"x": x, "v": np.zeros_like(x)},
        static={"edges": edges, "rest_length": rest, "mass": np.full(16, 0.01),
                "gravity": np.array([0.0, 0.0, -G]), "faces": np.zeros((0, 3), np.int64)},
    )


def test_edge_strain_of_a_uniform_stretch() -> None:
    truth = cloth_rollout()
    x = truth.states["x"][3:]
    stretched = (x - x[:, :1]) * 1.02 + x[:, :1]
    pred = predict(truth, 3, {"x": stretched, "v": truth.states["v"][3:]})
    np.testing.assert_allclose(values(truth, pred, "edge_strain"), 0.02, rtol=1e-9)
    np.testing.assert_allclose(values(truth, predict(truth, 3, {"x": x, "v": x * 0}),
                                      "edge_strain"), 0.0, atol=1e-12)


def test_density_deviation_of_a_particle_pair() -> None:
    h, m = 0.1, 0.5
    far = np.array([[0.0, 0.0], [1.0, 0.0]])  # 10 h apart: each sees only itself
    near = np.array([[0.0, 0.0], [h, 0.0]])  # q = 1: W(h) = W(0) / 4 for the cubic spline
    x = np.stack([far] * 4)
    w0 = 10.0 / (7.0 * math.pi) / h**2
    truth = Rollout(scenario="fluid/sph", split="test_id", seed=0, params={}, dt=DT,
                    states={"x": x, "v": np.zeros_like(x)},
                    static={"particle_mass": np.float64(m), "smoothing_length": np.float64(h),
                            "rest_density": np.float64(m * w0),
                            "gravity": np.array([0.0, -G])})
    pred = predict(truth, 2, {"x": np.stack([far, near]), "v": np.zeros((2, 2, 2))})
    np.testing.assert_allclose(values(truth, pred, "density_deviation"), [0.0, 0.25],
                               atol=1e-12)


def test_divergence_norm_of_a_constructed_field() -> None:
    n, dx, a = 16, 0.1, 0.3
    y, x = np.meshgrid(np.arange(n) * dx, np.arange(n) * dx, indexing="ij")
    rotation = np.stack([-(y - 0.75), x - 0.75], -1)  # divergence free
    source = rotation + a * np.stack([x, y], -1)  # divergence 2a
    velocity = np.stack([rotation] * 4)
    truth = Rollout(scenario="fluid/smoke", split="test_id", seed=0, params={}, dt=DT,
                    states={"density": np.ones((4, n, n)), "velocity": velocity},
                    static={"grid_spacing": np.float64(dx)})
    pred = predict(truth, 2, {"density": np.ones((2, n, n)),
                              "velocity": np.stack([source, rotation])})
    rms_speed = np.sqrt((rotation**2).sum(-1).mean())
    np.testing.assert_allclose(values(truth, pred, "divergence_norm"),
                               [2 * a * dx / rms_speed, 0.0], atol=1e-12)


def test_registry_says_where_each_plausibility_metric_applies() -> None:
    class Fake:
        def __init__(self, laws: set[str], states: tuple[str, ...]) -> None:
            self.laws, self.state_names = frozenset(laws), states

    rigid_sc = Fake({"ballistic", "non_penetration", "energy_nonincreasing"},
                    ("pos", "quat", "vel", "angvel"))
    cloth_sc = Fake({"inextensible", "energy_nonincreasing"}, ("x", "v"))
    smoke_sc = Fake({"incompressible", "mass_conserved"}, ("density", "velocity"))
    sph_sc = Fake({"incompressible", "mass_conserved", "momentum_conserved"}, ("x", "v"))
    expect = {
        "restitution_error": {"rigid"}, "gravity_error": {"rigid"},
        "contact_time_error": {"rigid"}, "penetration_depth": {"rigid"},
        "edge_strain": {"cloth"}, "divergence_norm": {"smoke"},
        "density_deviation": {"sph"}, "energy_drift": {"rigid", "cloth"},
        "momentum_drift": {"sph"},
    }
    scenarios = {"rigid": rigid_sc, "cloth": cloth_sc, "smoke": smoke_sc, "sph": sph_sc}
    for name, where in expect.items():
        metric = METRICS.get(name)
        assert {k for k, sc in scenarios.items() if metric.applies_to(sc)} == where, name


def _same_batched_and_single(truths: list[Rollout], preds: list[Prediction],
                             metrics: list[str]) -> None:
    from physground.metrics.evaluate import evaluate_batch

    table = evaluate_batch(truths, preds, metrics)
    assert len(table) == sum(p.horizon for p in preds) * len(metrics)
    for i, (truth, pred) in enumerate(zip(truths, preds, strict=True)):
        rows = table[table["rollout"] == i]
        for metric in metrics:
            got = rows[rows["metric"] == metric]
            want = [r for r in evaluate(truth, pred, [metric]).to_dict("records")]
            np.testing.assert_allclose(got["value"].to_numpy(), [r["value"] for r in want],
                                       rtol=1e-12, atol=1e-15, err_msg=metric)
            assert list(got["failure"].astype(str)) == [r["failure"] for r in want]


def test_batched_rigid_metrics_equal_single_rollout_ones() -> None:
    """Rollouts with different masses, gravity and bounces stacked together."""
    truths, preds = [], []
    for i, (e, h0, g) in enumerate(((0.8, 1.0, G), (0.5, 1.5, 7.0), (0.7, 60.0, 12.0))):
        pos = np.concatenate([bouncing(e, h0=h0, gravity=g),
                              bouncing(e * 0.9, h0=h0 / 2, vx=-1, gravity=g) + [0, 1, 0]], 1)
        truth = rigid(pos, gravity=g, seed=i)
        truth = Rollout(scenario=truth.scenario, split=truth.split, seed=i, params={}, dt=DT,
                        states=truth.states, static={**truth.static,
                                                     "mass": np.array([1.0 + i, 0.5])})
        noisy = pos[5:] + np.random.default_rng(i).normal(0, 0.01, pos[5:].shape)
        truths.append(truth)
        preds.append(predict(truth, 5, {"pos": noisy}))
    names = [n for n in METRICS.names("rigid") if METRICS.get(n).modality == "state"]
    _same_batched_and_single(truths, preds, names)


def test_batched_continuum_metrics_equal_single_rollout_ones() -> None:
    cloths, cloth_preds = [], []
    for i, factor in enumerate((1.0, 1.01, 1.03)):
        truth = cloth_rollout()
        truth = Rollout(scenario=truth.scenario, split=truth.split, seed=i, params={}, dt=DT,
                        states=truth.states, static={**truth.static,
                                                     "mass": np.full(16, 0.01 * (i + 1))})
        x = truth.states["x"][3:] * factor
        cloths.append(truth)
        cloth_preds.append(predict(truth, 3, {"x": x, "v": x * 0.1}))
    _same_batched_and_single(cloths, cloth_preds,
                             ["edge_strain", "energy_drift", "momentum_drift", "position_rmse"])
    rng = np.random.default_rng(0)
    fluids, fluid_preds = [], []
    for i in range(3):
        x = rng.uniform(0, 0.3, (4, 12, 2))
        truth = Rollout(scenario="fluid/dam_break", split="test_id", seed=i, params={}, dt=DT,
                        states={"x": x, "v": np.zeros_like(x)},
                        static={"particle_mass": np.float64(0.1 + i), "rest_density": 1e3,
                                "smoothing_length": np.float64(0.05 * (i + 1)),
                                "gravity": np.array([0.0, -G])})
        fluids.append(truth)
        fluid_preds.append(predict(truth, 2, {"x": x[2:] * 0.9, "v": np.zeros((2, 12, 2))}))
    _same_batched_and_single(fluids, fluid_preds, ["density_deviation", "momentum_drift"])


def test_restitution_estimator_matches_mujoco_contact_parameter() -> None:
    """The pixel-rate estimator on MuJoCo's soft contacts recovers the restitution the
    contact was tuned for, within 0.03 (the contact lasts ~20 ms of a 33 ms frame)."""
    from physground.metrics import plausibility as P
    from physground.metrics.batch import Batch
    from physground.scenario import get_scenario

    scenario = get_scenario("rigid/projectile", render=False, num_frames=40)
    seeds = list(range(4))
    params = [scenario.sample_params("test_id", s) for s in seeds]
    truths = scenario.simulate(params, seeds, "test_id")
    preds = [Prediction.for_rollout(t, model="t", context=2, horizon=38,
                                    states=t.target(2, 38).states) for t in truths]
    batch = Batch.stack(truths, preds)
    heights = P._heights(batch, "truth")
    index, found = P.first_bounce(heights, 2, P._radius(batch, 1))
    estimate = P.restitution(heights, index, batch.dt, P._gravity(batch).norm(dim=-1))
    assert bool(found.all())
    np.testing.assert_allclose(estimate[:, 0].numpy(), [p["restitution"] for p in params],
                               atol=0.03)


def test_cloth_energy_matches_the_simulator_energy() -> None:
    """Kinetic + gravitational + spring energy used by energy_drift equals the Warp cloth
    scenario's recorded energy (two formulations)."""
    from physground.metrics.batch import Batch
    from physground.metrics.plausibility import energies
    from physground.scenario import get_scenario

    scenario = get_scenario("cloth/hanging", render=False, num_frames=8)
    truth = scenario.simulate([scenario.sample_params("test_id", 0)], [0], "test_id")[0]
    pred = predict(truth, 3, truth.target(3, 5).states)
    e_truth, e_pred = energies(Batch.stack([truth], [pred]))
    np.testing.assert_allclose(e_truth[0].numpy(), truth.meta["energy"], rtol=1e-9)
    np.testing.assert_allclose(e_pred[0].numpy(), truth.meta["energy"][3:], rtol=1e-9)


def test_resting_boxes_do_not_count_as_penetrating() -> None:
    """A standing MuJoCo tower of cubes: its truth penetrates the ground only by the soft
    contacts' sink (< 5 mm), measured with the cubes' orientation; the old bounding-sphere
    approximation (radius h sqrt(3)) reported centimetres. A prediction that turns the
    bottom cube 45 deg about x without lifting it sinks its edge by h (sqrt(2) - 1)."""
    from physground.metrics import plausibility as P
    from physground.metrics.batch import Batch
    from physground.scenario import get_scenario

    scenario = get_scenario("rigid/stack", render=False, num_frames=12)
    params = scenario.sample_params("test_id", 1)
    truth = scenario.simulate([params], [1], "test_id")[0]
    assert bool(truth.static["stands"])
    target = truth.target(2, 10).states
    batch = Batch.stack([truth], [Prediction.for_rollout(truth, model="t", context=2,
                                                         horizon=10, states=target)])
    depth_truth, depth_pred = P._penetration_pair(batch)
    assert float(depth_truth.max()) < 5e-3
    np.testing.assert_allclose(values(truth, predict(truth, 2, target), "penetration_depth"),
                               0.0, atol=1e-12)
    positions = batch.truth_positions()[:, 2:]
    batch.static.pop("half_size")
    assert float(P.penetration(batch, positions).min()) > 0.01  # the sphere approximation

    half = float(truth.static["half_size"][0, 0])
    turned = {k: v.copy() for k, v in target.items()}
    turned["quat"][:, 0] = [math.cos(math.pi / 8), math.sin(math.pi / 8), 0.0, 0.0]
    depth = values(truth, predict(truth, 2, turned), "penetration_depth")
    np.testing.assert_allclose(depth, half * (math.sqrt(2.0) - 1.0), atol=1e-3)
