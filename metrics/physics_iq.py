"""Physics-IQ parity mode: the four metrics of the Physics-IQ benchmark (Motamed et al.
2025), written from the definitions in its public code, on OpenCV.

Motion masks (`physics_iq_masks`), per video: grey level (``RGB2GRAY``), 5x5 Gaussian blur
(sigma from the kernel size), a running-average background ``B <- (1 - a) B + a G`` with
``a = 0.3`` started at the first frame, ``|G - round(B)| > 10`` grey levels (10/255), then a
5x5 morphological opening and closing; the first frame's mask is empty. physground feeds
the last context frame followed by the horizon (truth or prediction), so the empty first
mask belongs to the context frame and step 1 can show motion.

On the window's masks (steps 1..t, so the value at t = H is Physics-IQ's per-clip number):

- ``piq_spatial_iou``: IoU of the masks OR-ed over time;
- ``piq_spatiotemporal_iou``: mean over steps of the per-step IoU;
- ``piq_weighted_spatial_iou``: ``sum_p min(a, b) / sum_p max(a, b)`` of the per-pixel
  fractions of moving steps;
- ``piq_mse``: mean over steps of the per-frame mean squared error in [0, 1] units.

Two empty masks have IoU 1, as in Physics-IQ. These are named ``piq_*`` to keep them apart
from physground's own frame-difference masks (``spatial_iou`` ...), which its default score
uses. Not reproduced here: Physics-IQ's resize to a quarter of the source resolution (the
scoring grid is the suite's). Its final score, normalised by the variance between two
takes (physground's second take), is `physground.metrics.physics_iq_score`.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from physground.metrics import PHYSICS_IQ_TAG
from physground.metrics.batch import Batch
from physground.metrics.pixels import _uint8_frames
from physground.metrics.registry import batched_metric

Tensor = torch.Tensor

ALPHA = 0.3  # running-average weight of the new frame
THRESHOLD = 10  # grey levels (of 255)
BLUR = (5, 5)
KERNEL = np.ones((5, 5), np.uint8)


def physics_iq_masks(frames: np.ndarray) -> np.ndarray:
    """Binary motion masks [T, h, w] (bool) of uint8 RGB frames [T, h, w, 3]; mask 0 empty."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames are {frames.dtype} {list(frames.shape)}, expected uint8 "
                         "[T, h, w, 3]")
    masks = np.zeros(frames.shape[:3], bool)
    background = None
    for t, frame in enumerate(frames):
        gray = cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), BLUR, 0)
        if background is None:
            background = gray.astype(np.float64)
            continue
        cv2.accumulateWeighted(gray, background, ALPHA)
        diff = cv2.absdiff(gray, cv2.convertScaleAbs(background))
        _, binary = cv2.threshold(diff, THRESHOLD, 255, cv2.THRESH_BINARY)
        binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, KERNEL)
        binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, KERNEL)
        masks[t] = binary > 0
    return masks


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU over the last two axes of boolean masks (1 where both are empty)."""
    inter = np.count_nonzero(a & b, axis=(-2, -1)).astype(np.float64)
    union = np.count_nonzero(a | b, axis=(-2, -1)).astype(np.float64)
    return np.where(union > 0, inter / np.maximum(union, 1.0), 1.0)


def spatial_iou_curve(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of the masks [T, h, w] OR-ed over steps 1..t, per t [T]."""
    return iou(np.logical_or.accumulate(truth, 0), np.logical_or.accumulate(pred, 0))


def spatiotemporal_iou_curve(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Mean over steps 1..t of the per-step IoU, per t [T]."""
    per_step = iou(truth, pred)
    return np.cumsum(per_step) / np.arange(1, per_step.shape[0] + 1)


def weighted_spatial_iou_curve(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``sum min / sum max`` of per-pixel moving fractions over steps 1..t, per t [T] (the
    fraction's common 1/t cancels, so counts are used)."""
    a = np.cumsum(truth, 0, dtype=np.int64)
    b = np.cumsum(pred, 0, dtype=np.int64)
    num = np.minimum(a, b).sum((-2, -1))
    den = np.maximum(a, b).sum((-2, -1))
    return np.where(den > 0, num / np.maximum(den, 1), 1.0)


def mse_curve(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Mean over steps 1..t of the per-frame MSE of uint8 frames in [0, 1] units, per t."""
    diff = truth.astype(np.float64) / 255.0 - pred.astype(np.float64) / 255.0
    per_frame = (diff * diff).reshape(diff.shape[0], -1).mean(-1)
    return np.cumsum(per_frame) / np.arange(1, per_frame.shape[0] + 1)


def _masks(batch: Batch) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Physics-IQ masks of the window [R][H, h, w], truth and prediction, once per batch."""
    def compute() -> tuple[list[np.ndarray], list[np.ndarray]]:
        truth, pred = _uint8_frames(batch)
        last = batch.truth_frames[:, batch.context - 1].cpu().numpy()  # type: ignore[union-attr]
        out_t, out_p = [], []
        for r in range(batch.size):
            out_t.append(physics_iq_masks(np.concatenate([last[r:r + 1], truth[r]]))[1:])
            out_p.append(physics_iq_masks(np.concatenate([last[r:r + 1], pred[r]]))[1:])
        return out_t, out_p
    return batch.cached("physics_iq_masks", compute)


def _per_rollout(batch: Batch, curve) -> Tensor:  # noqa: ANN001
    truth, pred = _masks(batch)
    return torch.from_numpy(np.stack([curve(t, p) for t, p in zip(truth, pred, strict=True)]))


def spatial_iou_batch(batch: Batch) -> Tensor:
    return _per_rollout(batch, spatial_iou_curve)


def spatiotemporal_iou_batch(batch: Batch) -> Tensor:
    return _per_rollout(batch, spatiotemporal_iou_curve)


def weighted_spatial_iou_batch(batch: Batch) -> Tensor:
    return _per_rollout(batch, weighted_spatial_iou_curve)


def mse_batch(batch: Batch) -> Tensor:
    truth, pred = _uint8_frames(batch)
    return torch.from_numpy(np.stack([mse_curve(t, p) for t, p in zip(truth, pred,
                                                                       strict=True)]))


# running metrics (steps 1..t): a horizon is scored by its last step, Physics-IQ's value
_PIX = dict(modality="pixels", family="pixels", reduce="last",
            tags=("pixels", "accuracy", PHYSICS_IQ_TAG))
piq_spatial_iou = batched_metric(
    "piq_spatial_iou", spatial_iou_batch, higher_is_better=True, unit="1", floor=0.02,
    description="Physics-IQ spatial IoU (OpenCV masks, OR over steps 1..t)", **_PIX)
piq_spatiotemporal_iou = batched_metric(
    "piq_spatiotemporal_iou", spatiotemporal_iou_batch, higher_is_better=True, unit="1",
    floor=0.02, description="Physics-IQ spatiotemporal IoU (mean per-step IoU up to t)",
    **_PIX)
piq_weighted_spatial_iou = batched_metric(
    "piq_weighted_spatial_iou", weighted_spatial_iou_batch, higher_is_better=True, unit="1",
    floor=0.02, description="Physics-IQ weighted spatial IoU (per-pixel motion amounts up "
                            "to t)", **_PIX)
piq_mse = batched_metric(
    "piq_mse", mse_batch, higher_is_better=False, unit="1", floor=(4.0 / 255.0) ** 2,
    description="Physics-IQ MSE (mean per-frame squared error up to t, [0, 1] units)",
    **_PIX)
