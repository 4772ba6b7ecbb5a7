"""Pixel metrics and pixel-derived states on frames with known masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from physground.metrics import METRICS
from physground.metrics import quantities as q
from physground.metrics.batch import Batch
from physground.metrics.evaluate import evaluate
from physground.metrics.pixels import positions_from_frames, soft_object_masks, ssim
from physground.rollout import Camera, Prediction, Rollout

SIZE, FOCAL = 64, 64.0
COLORS = np.array([[230, 40, 25], [30, 60, 220]], dtype=np.uint8)  # red, blue balls
RADIUS = 0.3
DT = 0.05


def side_camera() -> Camera:
    """Camera at (1, -10, 1) looking along +y (OpenCV: x right, y down, z forward)."""
    rot = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    ext = np.eye(4)
    ext[:3, :3] = rot
    ext[:3, 3] = -rot @ np.array([1.0, -10.0, 1.0])
    k = np.array([[FOCAL, 0, SIZE / 2], [0, FOCAL, SIZE / 2], [0, 0, 1.0]])
    return Camera(intrinsics=k, extrinsics=ext, width=SIZE, height=SIZE)


def render(pos: np.ndarray, camera: Camera, hide: set[int] = frozenset()) -> tuple[
        np.ndarray, np.ndarray]:
    """Flat-shaded spheres over a two-tone background: frames [T,h,w,3], masks [T,h,w]."""
    t_count = pos.shape[0]
    v, u = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    frames = np.empty((t_count, SIZE, SIZE, 3), np.uint8)
    frames[:] = np.where((v < SIZE / 2)[..., None], [[180, 200, 220]], [[110, 110, 110]])
    masks = np.zeros((t_count, SIZE, SIZE), np.uint8)
    for t in range(t_count):
        for b in range(pos.shape[1]):
            if b in hide:
                continue
            cu, cv = camera.project(pos[t, b])
            depth = (camera.extrinsics[:3, :3] @ pos[t, b] + camera.extrinsics[:3, 3])[2]
            inside = (u - cu) ** 2 + (v - cv) ** 2 < (FOCAL * RADIUS / depth) ** 2
            frames[t][inside] = COLORS[b]
            masks[t][inside] = b + 1
    return frames, masks


def scene(frames: int = 12) -> Rollout:
    t = np.arange(frames)[:, None] * DT
    pos = np.stack([
        np.concatenate([-1.0 + 2.0 * t, 0 * t, 1.5 + 1.0 * t - 2.0 * t**2], -1),
        np.concatenate([2.5 - 1.0 * t, 0 * t, 0.0 + 0.5 * t], -1),
    ], axis=1)
    camera = side_camera()
    rgb, masks = render(pos, camera)
    return Rollout(scenario="rigid/projectile", split="test_id", seed=0, params={}, dt=DT,
                   states={"pos": pos}, static={"mass": np.ones(2), "radius": np.full(2, RADIUS),
                                                "gravity": np.array([0, 0, -4.0])},
                   frames=rgb, masks=masks, camera=camera)


def frames_only(truth: Rollout, context: int, frames: np.ndarray,
                masks: np.ndarray | None = None) -> Prediction:
    return Prediction.for_rollout(truth, model="video", context=context, horizon=len(frames),
                                  frames=frames, masks=masks)


def values(truth: Rollout, pred: Prediction, metric: str) -> np.ndarray:
    rows = evaluate(truth, pred, [metric]).to_dict("records")
    assert all(r["failure"] == "" for r in rows), rows[0]["failure"]
    return np.array([r["value"] for r in rows])


def test_positions_from_frames_recover_the_trajectory() -> None:
    truth = scene()
    pred = frames_only(truth, 4, truth.frames[4:])
    batch = Batch.stack([truth], [pred])
    measured = positions_from_frames(batch, "truth")[0].numpy()
    # a metre is FOCAL / depth = 6.4 px here; discs of ~2 px radius, discretized, keep
    # their centroid within a quarter pixel (0.04 m) of the projected centre
    np.testing.assert_allclose(measured, truth.states["pos"], atol=0.25 / 6.4)
    # the truth is measured from its own frames by the same estimator: the true video
    # scores exactly like the truth
    assert values(truth, pred, "position_rmse").max() == 0.0
    shifted_pos = truth.states["pos"][4:] + np.array([0.5, 0.0, 0.0])
    shifted, _ = render(shifted_pos, truth.camera)
    rmse = values(truth, frames_only(truth, 4, shifted), "position_rmse")
    np.testing.assert_allclose(rmse, 0.5, atol=0.2 / 6.4)


def test_soft_centroid_and_area_of_a_disc() -> None:
    truth = scene(frames=3)
    frame = torch.as_tensor(truth.frames[0], dtype=torch.float64) / 255.0
    colors = torch.as_tensor(COLORS, dtype=torch.float64) / 255.0
    palette = torch.tensor([[180, 200, 220], [110, 110, 110]], dtype=torch.float64) / 255.0
    weights = soft_object_masks(frame, colors, palette, 0.005)
    area, centroid = q.soft_mask_moments(weights)
    hard = truth.masks[0]
    for b in range(2):
        assert area[b].item() == pytest.approx((hard == b + 1).sum(), rel=1e-6)
        cu, cv = truth.camera.project(truth.states["pos"][0, b])
        assert centroid[b].tolist() == pytest.approx([cu, cv], abs=0.1)
    # differentiable in the pixels
    frame.requires_grad_()
    soft_object_masks(frame, colors, palette, 0.05).sum().backward()
    assert torch.isfinite(frame.grad).all() and frame.grad.abs().sum() > 0


def test_psnr_and_ssim_known_answers() -> None:
    truth = scene()
    brighter = np.clip(truth.frames[4:].astype(np.int64) + 10, 0, 255).astype(np.uint8)
    assert (truth.frames.max() <= 245)
    psnr = values(truth, frames_only(truth, 4, brighter), "psnr")
    np.testing.assert_allclose(psnr, 20 * math.log10(255 / 10), rtol=1e-9)
    np.testing.assert_allclose(values(truth, frames_only(truth, 4, truth.frames[4:]), "psnr"),
                               100.0)
    np.testing.assert_allclose(values(truth, frames_only(truth, 4, truth.frames[4:]), "ssim"),
                               1.0, rtol=1e-9)
    # constant images: SSIM = (2 a b + c1) / (a^2 + b^2 + c1)
    a, b = torch.full((16, 16, 3), 0.2, dtype=torch.float64), torch.full((16, 16, 3), 0.6,
                                                                          dtype=torch.float64)
    c1 = 0.01**2
    assert ssim(a, b).item() == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.04 + 0.36 + c1))


def flashing(region: tuple[slice, slice], frames: int = 6) -> np.ndarray:
    out = np.full((frames, 16, 16, 3), 100, np.uint8)
    out[1:, region[0], region[1]] = 200  # changes once, between frame 0 and 1
    return out


def test_physics_iq_motion_metrics_of_known_masks() -> None:
    # truth region rows 0-3 x cols 0-3 changes at step 1; prediction rows 0-3 x cols 2-5
    truth_frames = flashing((slice(0, 4), slice(0, 4)))
    truth = Rollout(scenario="rigid/projectile", split="test_id", seed=0, params={}, dt=DT,
                    frames=truth_frames, masks=np.zeros((6, 16, 16), np.uint8))
    pred_frames = flashing((slice(0, 4), slice(2, 6)))[1:]
    pred = frames_only(truth, 1, pred_frames)
    steps = np.arange(1, 6)
    np.testing.assert_allclose(values(truth, pred, "spatial_iou_running"), 1 / 3)
    np.testing.assert_allclose(values(truth, pred, "weighted_spatial_iou_running"), 1 / 3)
    np.testing.assert_allclose(values(truth, pred, "spatiotemporal_iou_running"),
                               (1 / 3 + (steps - 1)) / steps)
    mse = values(truth, pred, "pixel_mse")
    np.testing.assert_allclose(mse, 16 * (100 / 255) ** 2 / 256)  # 16 of 256 pixels differ
    same = frames_only(truth, 1, truth_frames[1:])
    for name in ("spatial_iou_running", "spatiotemporal_iou_running",
                 "weighted_spatial_iou_running"):
        np.testing.assert_allclose(values(truth, same, name), 1.0)
    static = frames_only(truth, 1, np.repeat(truth_frames[:1], 5, 0))
    np.testing.assert_allclose(values(truth, static, "spatial_iou_running"), 0.0)


def test_object_permanence_detects_a_vanishing_object() -> None:
    truth = scene()
    gone, _ = render(truth.states["pos"][4:], truth.camera, hide={1})
    both = values(truth, frames_only(truth, 4, truth.frames[4:]), "object_permanence")
    np.testing.assert_allclose(both, 1.0, atol=0.02)
    one = values(truth, frames_only(truth, 4, gone), "object_permanence")
    np.testing.assert_allclose(one, 0.5, atol=0.02)
    # with predicted masks the areas are exact
    masks = truth.masks[4:].copy()
    masks[masks == 2] = 0
    exact = values(truth, frames_only(truth, 4, gone, masks), "object_permanence")
    np.testing.assert_allclose(exact, 0.5, atol=1e-12)


def test_pixel_metrics_need_frames_and_apply_to_rendered_scenarios() -> None:
    truth = scene()
    states_only = Prediction.for_rollout(truth, model="m", context=4, horizon=8,
                                         states={"pos": truth.states["pos"][4:]})
    rows = evaluate(truth, states_only, ["psnr"]).to_dict("records")
    assert all("prediction has no frames" in r["failure"] for r in rows)

    class Config:
        render = False

    class Fake:
        laws, state_names, config = frozenset(), ("pos",), Config()

    assert not METRICS.get("psnr").applies_to(Fake())
    assert {"psnr", "ssim", "spatial_iou_running", "spatiotemporal_iou_running",
            "weighted_spatial_iou_running", "pixel_mse", "object_permanence"
            } <= set(METRICS.names("pixels"))


def test_hidden_objects_in_frames() -> None:
    """Hidden in truth and prediction: no error; hidden only in the prediction: failure."""
    truth = scene()
    frames, masks = truth.frames.copy(), truth.masks.copy()
    hidden_frames, _ = render(truth.states["pos"], truth.camera, hide={1})
    frames[6:9] = hidden_frames[6:9]  # object 2 occluded in frames 6..8
    masks[6:9][masks[6:9] == 2] = 0
    occluded = Rollout(scenario=truth.scenario, split=truth.split, seed=0, params={}, dt=DT,
                       states=truth.states, static=truth.static, frames=frames, masks=masks,
                       camera=truth.camera)
    same = values(occluded, frames_only(occluded, 4, frames[4:]), "position_rmse")
    np.testing.assert_allclose(same, 0.0, atol=1e-12)
    table = evaluate(occluded, frames_only(occluded, 4, hidden_frames[4:]), ["position_rmse"])
    failed = table.loc[table["failure"] != "", "horizon"].tolist()
    assert failed == [1, 2, 6, 7, 8]  # steps whose true frame shows object 2


def test_frames_only_cloth_prediction_fails_state_metrics_with_reason() -> None:
    """Mesh nodes cannot be recovered from one object mask: a clear failure, not garbage."""
    x = np.zeros((6, 4, 3))
    frames = np.zeros((6, 8, 8, 3), np.uint8)
    truth = Rollout(scenario="cloth/hanging", split="test_id", seed=0, params={}, dt=DT,
                    states={"x": x, "v": x}, static={"mass": np.ones(4)}, frames=frames,
                    masks=np.ones((6, 8, 8), np.uint8), camera=side_camera())
    table = evaluate(truth, frames_only(truth, 3, frames[3:]), ["position_rmse", "psnr"])
    failures = dict(zip(table["metric"], table["failure"], strict=True))
    assert "one object mask per rigid body" in failures["position_rmse"]
    assert failures["psnr"] == ""


def test_batched_pixel_metrics_equal_single_rollout_ones() -> None:
    from physground.metrics.evaluate import evaluate_batch

    truths, preds = [], []
    for i, shift in enumerate((0.0, 0.3, -0.4)):
        base = scene()
        pos = base.states["pos"] + np.array([shift, 0.0, -shift])
        rgb, masks = render(pos, base.camera)
        truth = Rollout(scenario=base.scenario, split=base.split, seed=i, params={}, dt=DT,
                        states={"pos": pos}, static=base.static, frames=rgb, masks=masks,
                        camera=base.camera)
        moved, _ = render(pos[4:] + np.array([0.1 * i, 0.0, 0.05]), base.camera)
        truths.append(truth)
        preds.append(frames_only(truth, 4, moved))
    metrics = ["psnr", "ssim", "pixel_mse", "spatial_iou_running",
               "spatiotemporal_iou_running", "weighted_spatial_iou_running",
               "object_permanence", "position_rmse", "energy_drift"]
    table = evaluate_batch(truths, preds, metrics)
    for i, (truth, pred) in enumerate(zip(truths, preds, strict=True)):
        single = evaluate(truth, pred, metrics).to_dict("records")
        rows = table[table["rollout"] == i]
        np.testing.assert_allclose(rows["value"].to_numpy(), [r["value"] for r in single],
                                   rtol=1e-10)
