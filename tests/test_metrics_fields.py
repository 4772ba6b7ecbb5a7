"""Field metrics on constructed smoke states with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from physground.metrics import METRICS
from physground.metrics.evaluate import evaluate
from physground.rollout import Prediction, Rollout

N = 16
DT = 0.1


def smoke(density: np.ndarray, velocity: np.ndarray) -> Rollout:
    return Rollout(scenario="fluid/smoke", split="test_id", seed=0, params={}, dt=DT,
                   states={"density": density, "velocity": velocity},
                   static={"grid_spacing": np.float64(1.0 / N)})


def values(truth: Rollout, density: np.ndarray, velocity: np.ndarray, metric: str,
           context: int = 2) -> np.ndarray:
    pred = Prediction.for_rollout(truth, model="m", context=context, horizon=len(density),
                                  states={"density": density, "velocity": velocity})
    rows = evaluate(truth, pred, [metric]).to_dict("records")
    assert all(r["failure"] == "" for r in rows), rows[0]["failure"]
    return np.array([r["value"] for r in rows])


def wave(kx: int, amplitude: float = 1.0, frames: int = 5) -> np.ndarray:
    x = np.arange(N) / N
    field = amplitude * np.sin(2 * np.pi * kx * x)[None, :] * np.ones((N, 1))
    return np.repeat(field[None], frames, 0)


@pytest.fixture()
def truth() -> Rollout:
    density = 1.0 + wave(1)
    velocity = np.stack([wave(2), wave(3)], -1)
    return smoke(density, velocity)


def test_nrmse_and_vrmse_of_a_scaled_field(truth: Rollout) -> None:
    d = truth.states["density"][2:]
    v = truth.states["velocity"][2:]
    # density: error 0.1 * (1 + sin); ||1 + sin||: nRMSE = 0.1 exactly
    np.testing.assert_allclose(values(truth, 1.1 * d, v, "density_nrmse"), 0.1, rtol=1e-12)
    # velocity: adding a constant c: RMSE = c, std of a sine of amplitude 1 = 1/sqrt(2)
    np.testing.assert_allclose(values(truth, d, v + 0.2, "velocity_vrmse"),
                               0.2 * np.sqrt(2), rtol=1e-12)


def test_spectral_bands_locate_the_error(truth: Rollout) -> None:
    d, v = truth.states["density"][2:], truth.states["velocity"][2:]
    total = np.sqrt((d[0] ** 2).sum())
    # a wavenumber-1 error (1/8 of Nyquist 8) is low; wavenumber 7 (0.875) is high
    for k, band in ((1, "low"), (4, "mid"), (7, "high")):
        noisy = d + 0.05 * wave(k, frames=3)
        err = np.sqrt(((0.05 * wave(k, frames=3)[0]) ** 2).sum()) / total
        for other in ("low", "mid", "high"):
            got = values(truth, noisy, v, f"density_spectral_{other}")
            np.testing.assert_allclose(got, err if other == band else 0.0, atol=1e-12)
    # Parseval: the band errors add up in squares to nRMSE^2
    noisy = d + 0.05 * (wave(1, frames=3) + wave(4, frames=3) + wave(7, frames=3))
    bands = [values(truth, noisy, v, f"density_spectral_{b}") for b in ("low", "mid", "high")]
    nrmse = values(truth, noisy, v, "density_nrmse")
    np.testing.assert_allclose(np.sqrt(sum(b**2 for b in bands)), nrmse, rtol=1e-10)


def test_correlation_time_counts_steps_until_decorrelation(truth: Rollout) -> None:
    d, v = truth.states["density"][2:].copy(), truth.states["velocity"][2:]
    d[1] = 1.0 - wave(1, frames=1)[0]  # anti-correlated at step 2
    got = values(truth, d, v, "density_correlation_time")
    np.testing.assert_allclose(got, [DT, DT, DT])
    np.testing.assert_allclose(values(truth, truth.states["density"][2:], v,
                                      "density_correlation_time"), [DT, 2 * DT, 3 * DT])
    assert METRICS.get("density_correlation_time").higher_is_better


def test_field_metrics_apply_to_smoke_only() -> None:
    class Fake:
        laws = frozenset({"incompressible"})

        def __init__(self, states: tuple[str, ...]) -> None:
            self.state_names = states

    assert METRICS.get("velocity_nrmse").applies_to(Fake(("density", "velocity")))
    assert not METRICS.get("velocity_nrmse").applies_to(Fake(("x", "v")))
    assert "density_spectral_high" in METRICS.names("fluid")
