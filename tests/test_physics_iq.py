"""Physics-IQ parity mode: formulas on hand-made masks, masks of a moving square, and the
exact truth scoring 1, 1, 1, 0."""

from __future__ import annotations

import numpy as np
import pytest

from physground.benchmarks.speed.bench_metrics import add_frames, make_rollouts
from physground.metrics import physics_iq as piq
from physground.metrics.evaluate import evaluate_batch

PIQ = ["piq_spatial_iou", "piq_spatiotemporal_iou", "piq_weighted_spatial_iou", "piq_mse"]


def _masks(*cells: list[tuple[int, int]]) -> np.ndarray:
    """[T, 4, 4] masks with the listed (row, col) cells set at each step."""
    out = np.zeros((len(cells), 4, 4), bool)
    for t, on in enumerate(cells):
        for r, c in on:
            out[t, r, c] = True
    return out


def test_iou_formulas_on_hand_made_masks() -> None:
    truth = _masks([(0, 0), (0, 1)], [(1, 1)], [])
    pred = _masks([(0, 0)], [(1, 1), (2, 2)], [])
    # per step: 1/2, 1/2, empty-vs-empty = 1
    np.testing.assert_allclose(piq.spatiotemporal_iou_curve(truth, pred),
                               [1 / 2, 1 / 2, 2 / 3], rtol=0, atol=1e-9)
    # OR over steps: truth {00,01,11}, pred {00,11,22}: inter 2, union 4
    np.testing.assert_allclose(piq.spatial_iou_curve(truth, pred), [1 / 2, 2 / 4, 2 / 4],
                               rtol=0, atol=1e-9)
    # counts after 2 steps: truth 00:1 01:1 11:1; pred 00:1 11:1 22:1 -> min 2, max 4
    np.testing.assert_allclose(piq.weighted_spatial_iou_curve(truth, pred),
                               [1 / 2, 2 / 4, 2 / 4], rtol=0, atol=1e-9)
    heavy_t = _masks([(0, 0)], [(0, 0)], [(0, 0)])
    heavy_p = _masks([(0, 0)], [], [(1, 0)])
    # counts truth 00:3; pred 00:1, 10:1 -> min 1, max 3 + 1
    np.testing.assert_allclose(piq.weighted_spatial_iou_curve(heavy_t, heavy_p),
                               [1.0, 1 / 2, 1 / 4], rtol=0, atol=1e-9)
    empty = np.zeros((2, 4, 4), bool)
    np.testing.assert_array_equal(piq.spatial_iou_curve(empty, empty), [1.0, 1.0])


def test_mse_formula() -> None:
    a = np.zeros((2, 2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] = 255  # one channel of one pixel fully wrong: 1 / 12
    np.testing.assert_allclose(piq.mse_curve(a, b), [1 / 12, 1 / 24], rtol=0, atol=1e-12)


def test_masks_follow_a_moving_square_and_start_empty() -> None:
    frames = np.full((6, 48, 48, 3), 40, np.uint8)
    for t in range(6):
        frames[t, 10:22, 4 + 5 * t:16 + 5 * t] = 220
    masks = piq.physics_iq_masks(frames)
    assert not masks[0].any()  # the first mask is empty by definition
    for t in range(1, 6):
        rows, cols = np.nonzero(masks[t])
        assert rows.size > 0
        assert rows.min() >= 6 and rows.max() <= 25  # around the square's rows
    still = piq.physics_iq_masks(np.repeat(frames[:1], 4, 0))
    assert not still.any()  # a frozen video has no motion
    with pytest.raises(ValueError, match="uint8"):
        piq.physics_iq_masks(frames.astype(np.float32))


def test_exact_truth_scores_one_one_one_zero() -> None:
    truths, preds = make_rollouts(1, 30)
    truths, preds = add_frames(truths, preds, size=256)  # ball ~7 px: survives the opening
    # white ball on black: a contrast the 10-grey-level threshold sees after the blur
    truths = [type(t)(**{**t.__dict__, "frames": np.repeat(t.masks[..., None] * 255, 3, -1)})
              for t in truths]
    exact = [type(p)(**{**p.__dict__, "frames": t.frames[10:]}) for t, p in zip(
        truths, preds, strict=True)]
    table = evaluate_batch(truths, exact, PIQ)
    assert (table["failure"].astype(str) == "").all()
    final = table[table["horizon"] == 30].groupby("metric", observed=True)["value"].mean()
    np.testing.assert_allclose(final[PIQ].to_numpy(), [1.0, 1.0, 1.0, 0.0], atol=1e-12)
    frozen = [type(p)(**{**p.__dict__, "frames": np.repeat(t.frames[9:10], 30, 0)})
              for t, p in zip(truths, preds, strict=True)]
    wrong = evaluate_batch(truths, frozen, PIQ)  # no motion where the ball flies
    last = wrong[wrong["horizon"] == 30].groupby("metric", observed=True)["value"].mean()
    assert last["piq_spatial_iou"] == 0.0 and last["piq_weighted_spatial_iou"] == 0.0
    assert last["piq_mse"] > 0.0


def test_pixel_metrics_mode_swaps_the_motion_metrics() -> None:
    import dataclasses

    from physground.benchmarks.runner import metrics_for
    from physground.errors import ValidationError
    from physground.suite import load_suite

    suite = load_suite("quick")
    scenario = suite.scenarios[0].name
    default = metrics_for(suite, scenario, suite.scenarios[0])
    parity = metrics_for(dataclasses.replace(suite, pixel_metrics="physics-iq"), scenario,
                         suite.scenarios[0])
    assert "spatial_iou_running" in default and not any(m.startswith("piq_") for m in default)
    assert set(PIQ) <= set(parity) and "spatial_iou_running" not in parity and "psnr" in parity
    assert dataclasses.replace(suite, pixel_metrics="physground").config_hash() == \
        suite.config_hash()
    with pytest.raises(ValidationError, match="pixel_metrics"):
        dataclasses.replace(suite, pixel_metrics="physicsiq")
