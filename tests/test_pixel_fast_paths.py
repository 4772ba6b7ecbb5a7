"""The fast paths of the pixel metrics give the values of their plain definitions: sparse
tracker coverage, SSIM on crops, MSE from differing rows, motion counts from moving pixels,
the background median."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from physground.metrics import pixels
from physground.metrics.batch import Batch
from physground.metrics.pixel_tracking import ColourTracker, free_median


def ball_frames(steps: int = 8, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A red 3x3 square moving right over a two-tone background: frames, masks."""
    frames = np.empty((steps, size, size, 3), np.uint8)
    frames[:] = [110, 110, 110]
    frames[:, : size // 2] = [180, 200, 220]
    masks = np.zeros((steps, size, size), np.uint8)
    for t in range(steps):
        frames[t, 14:17, 3 + 2 * t:6 + 2 * t] = [230, 40, 25]
        masks[t, 14:17, 3 + 2 * t:6 + 2 * t] = 1
    return frames, masks


def test_sparse_coverage_equals_every_pixel_evaluation() -> None:
    """uint8 frames evaluate only pixels that differ from the 8-bit background; float
    frames evaluate every pixel: the same coverage (edge blur and noise included)."""
    frames, masks = ball_frames()
    tracker = ColourTracker.fit(frames[:4], masks[:4], 1)
    test = frames.copy()
    test[5] = (0.5 * test[5] + 0.5 * np.roll(test[5], 1, axis=1)).astype(np.uint8)  # smear
    test[6, 0:3, 0:3] += 2  # background noise
    sparse = tracker.coverage(test)
    dense = tracker.coverage(test.astype(np.float64))
    assert sparse.shape == (1, 8, 32, 32)
    assert sparse.sum() > 8 * 9 * 0.5
    np.testing.assert_array_equal(sparse, dense)
    area, centroid = tracker.moments(test)
    np.testing.assert_allclose(area[:, 0], dense.sum((-2, -1))[0], rtol=1e-12)
    np.testing.assert_allclose(centroid[0, 0], (4.5, 15.5), atol=1e-9)


def reference_ssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSIM of whole frames [n, h, w, c] by the block evaluator, no crops."""
    g = pixels._gaussian_window(min(11, *x.shape[1:3]), 1.5).numpy()
    return pixels._ssim_block(x, y, g)


@pytest.mark.parametrize("size", [(9, 13), (24, 24), (40, 33)])
def test_ssim_on_crops_equals_whole_frames(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(size))
    x = rng.integers(0, 256, (6, *size, 3)).astype(np.uint8)
    y = x.copy()
    y[1, 0, 0] += 1  # corner
    y[2, -1, -2:] = 0  # last row
    y[3, 4:6, 5:7] = 255
    y[3, -3:, 1] = 7  # two separate changes
    y[4] = rng.integers(0, 256, y[4].shape)  # all of it
    got = pixels.ssim(x, y).numpy()
    assert got[0] == 1.0 and got[5] == 1.0
    np.testing.assert_allclose(got, reference_ssim(x, y), rtol=0, atol=1e-9)
    # float images in [0, 1], in leading dims [2, 3]
    fx, fy = (x / 255.0).reshape(2, 3, *size, 3), (y / 255.0).reshape(2, 3, *size, 3)
    np.testing.assert_allclose(pixels.ssim(fx, fy).numpy().ravel(),
                               reference_ssim(x / 255.0, y / 255.0), atol=1e-9)


def test_mse_from_differing_rows_equals_the_mean_over_pixels() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 256, (2, 7, 16, 16, 3)).astype(np.uint8)
    pred = truth[:, 3:].copy()
    pred[0, 1, 4, 2] = [0, 0, 0]
    pred[1, 3] = rng.integers(0, 256, pred[1, 3].shape)
    batch = Batch(scenario="x", context=3, horizon=4, dt=torch.full((2,), 0.1), truth={},
                  pred={}, static={}, params={}, truth_frames=torch.from_numpy(truth),
                  pred_frames=torch.from_numpy(pred))
    want = ((truth[:, 3:] / 255.0 - pred / 255.0) ** 2).mean((-3, -2, -1))
    np.testing.assert_allclose(pixels.pixel_mse_batch(batch).numpy(), want, rtol=1e-12)
    assert (want == 0).sum() == 6


def dense_counts(truth: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """The motion counts by their definitions on masks [H, P]."""
    seen_t, seen_p = np.logical_or.accumulate(truth, 0), np.logical_or.accumulate(pred, 0)
    a, b = np.cumsum(truth, 0), np.cumsum(pred, 0)
    return {"inter": (seen_t & seen_p).sum(-1), "union": (seen_t | seen_p).sum(-1),
            "step_inter": (truth & pred).sum(-1), "step_union": (truth | pred).sum(-1),
            "total": (a + b).sum(-1), "gap": np.abs(a - b).sum(-1)}


def test_motion_counts_from_moving_pixels_equal_dense_masks() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        horizon, size = rng.integers(1, 10), rng.integers(1, 30)
        rates = rng.uniform(0, 0.5, 2) * rng.integers(0, 2, 2)  # empty masks too
        truth = rng.uniform(size=(horizon, size)) < rates[0]
        pred = rng.uniform(size=(horizon, size)) < rates[1]
        got = pixels.motion_counts(np.flatnonzero(truth), np.flatnonzero(pred), horizon, size)
        for key, want in dense_counts(truth, pred).items():
            np.testing.assert_array_equal(got[key], want, err_msg=key)


def test_free_median_equals_nanmedian() -> None:
    rng = np.random.default_rng(1)
    for steps, dtype in [(1, np.uint8), (2, np.float64), (5, np.uint8), (10, np.uint8),
                         (10, np.float64)]:
        frames = rng.integers(0, 256, (steps, 6, 5, 3)).astype(dtype)
        frames[:, :3] = frames[:1, :3]  # static pixels
        frames[:, 4, 4] = 255
        free = rng.uniform(size=(steps, 6, 5)) < 0.7
        free[:, 0, 0] = False  # never free
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanmedian(np.where(free[..., None], frames, np.nan), axis=0)
        np.testing.assert_array_equal(free_median(frames, free), want)
