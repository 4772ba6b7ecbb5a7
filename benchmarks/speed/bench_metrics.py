"""Speed of metric scoring: 10,000 rollouts x 100 steps on CPU (target < 30 s on 2 cores).

Run: ``python -m physground.benchmarks.speed.bench_metrics [--rollouts N] [--steps H]``.

Rollouts are analytic ballistic flights with bounces laid out exactly like
``rigid/projectile`` ground truth (``pos``, ``quat``, ``vel``, ``angvel`` and the same
static arrays), so that generation does not dominate; predictions are the truth plus a
smooth drift. The batched path (`evaluate_batch`) is timed on all rollouts, the
single-rollout path (`evaluate`) on a subset, side by side in one run, and their ratio
printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np

from physground.metrics.evaluate import evaluate, evaluate_batch
from physground.rollout import Camera, Prediction, Rollout

CONTEXT = 10
DT = 1.0 / 30.0
RADIUS = 0.15
METRICS = ["position_rmse", "position_ade", "position_fde", "energy_drift",
           "penetration_depth", "penetration_frequency", "gravity_error",
           "restitution_error", "contact_time_error"]


def bouncing_heights(h0: np.ndarray, vz0: np.ndarray, e: np.ndarray, g: np.ndarray,
                     t: np.ndarray) -> np.ndarray:
    """Heights above the contact level [N, T] of balls bouncing with restitution e
    (vectorized over N; at most 8 bounces are followed)."""
    z = np.empty((h0.size, t.size))
    clock = np.zeros(h0.size)
    height, vz = h0.copy(), vz0.copy()
    done = np.zeros((h0.size, t.size), bool)
    for _ in range(8):
        hit = (vz + np.sqrt(vz**2 + 2 * g * height)) / g
        s = t[None] - clock[:, None]
        inside = (s < hit[:, None]) & ~done
        z[inside] = (height[:, None] + vz[:, None] * s - 0.5 * g[:, None] * s**2)[inside]
        done |= inside
        clock, vz, height = clock + hit, e * (g * hit - vz), np.zeros_like(height)
    z[~done] = 0.0
    return z


def make_rollouts(n: int, steps: int, seed: int = 0) -> tuple[list[Rollout], list[Prediction]]:
    rng = np.random.default_rng(seed)
    frames = CONTEXT + steps
    t = np.arange(frames) * DT
    g = rng.uniform(8.5, 10.5, n)
    speed, angle = rng.uniform(2.5, 4.0, n), rng.uniform(0.6, 1.1, n)
    e = rng.uniform(0.5, 0.75, n)
    z = bouncing_heights(np.full(n, 0.35), speed * np.sin(angle), e, g, t) + RADIUS
    x = speed[:, None] * np.cos(angle)[:, None] * t[None]
    pos = np.stack([x, np.zeros_like(x), z], -1)[:, :, None, :]  # [N, T, 1, 3]
    vel = np.gradient(pos, DT, axis=1)
    quat = np.zeros((frames, 1, 4))
    quat[..., 0] = 1.0
    truths, preds = [], []
    drift = rng.normal(0, 0.05, (n, 1, 1, 3)) * np.arange(1, steps + 1)[None, :, None, None] * DT
    for i in range(n):
        static = {"mass": np.ones(1), "inertia": np.full((1, 3), 0.009),
                  "radius": np.full(1, RADIUS), "gravity": np.array([0.0, 0.0, -g[i]]),
                  "ground_height": np.float64(0.0)}
        truth = Rollout(scenario="rigid/projectile", split="test_id", seed=i,
                        params={"gravity": g[i], "restitution": e[i]}, dt=DT,
                        states={"pos": pos[i], "quat": quat, "vel": vel[i],
                                "angvel": np.zeros((frames, 1, 3))}, static=static)
        states = {"pos": pos[i, CONTEXT:] + drift[i], "quat": quat[CONTEXT:],
                  "vel": vel[i, CONTEXT:], "angvel": np.zeros((steps, 1, 3))}
        truths.append(truth)
        preds.append(Prediction.for_rollout(truth, model="bench", context=CONTEXT,
                                            horizon=steps, states=states))
    return truths, preds


PIXEL_METRICS = ["psnr", "ssim", "pixel_mse", "spatial_iou_running",
                 "spatiotemporal_iou_running", "weighted_spatial_iou_running",
                 "object_permanence", "position_rmse", "energy_drift"]
SIZE = 64


VISUAL_RADIUS = 0.3  # m, drawn size of the ball (1 px at the camera's distance)


def side_camera() -> Camera:
    """64 px pinhole camera at (5, -20, 1) looking along +y (OpenCV axes); it sees
    x in [-8, 18] m, the whole 100-step flight."""
    rot = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    ext = np.eye(4)
    ext[:3, :3] = rot
    ext[:3, 3] = -rot @ np.array([5.0, -20.0, 1.0])
    k = np.array([[60.0, 0, SIZE / 2], [0, 60.0, SIZE / 2], [0, 0, 1.0]])
    return Camera(intrinsics=k, extrinsics=ext, width=SIZE, height=SIZE)


def add_frames(truths: list[Rollout], preds: list[Prediction]) -> tuple[
        list[Rollout], list[Prediction]]:
    """Flat-shaded renders of the ball (truth) and of the predicted positions (frames-only
    predictions), to time pixel metrics and pixel-derived state metrics."""
    camera = side_camera()
    v, u = np.mgrid[0:SIZE, 0:SIZE] + 0.5

    def render(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pix = camera.project(pos[:, 0])
        depth = (pos[:, 0] @ camera.extrinsics[:3, :3].T + camera.extrinsics[:3, 3])[:, 2]
        radius = 60.0 * VISUAL_RADIUS / depth
        inside = ((u - pix[:, 0, None, None]) ** 2 + (v - pix[:, 1, None, None]) ** 2
                  < radius[:, None, None] ** 2)
        frames = np.where((v < SIZE / 2)[None, ..., None], [180, 200, 220], [110, 110, 110])
        frames = np.where(inside[..., None], [230, 40, 25], frames).astype(np.uint8)
        return frames, inside.astype(np.uint8)

    out_t, out_p = [], []
    for truth, pred in zip(truths, preds, strict=True):
        frames, masks = render(truth.states["pos"])
        out_t.append(dataclasses.replace(truth, frames=frames, masks=masks, camera=camera))
        pred_frames, _ = render(pred.states["pos"])
        out_p.append(dataclasses.replace(pred, states={}, frames=pred_frames, camera=camera))
    return out_t, out_p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--single", type=int, default=200, help="rollouts for the 1-by-1 path")
    parser.add_argument("--threaded", type=int, default=2000,
                        help="rollouts for the 2-intra-op-thread comparison")
    parser.add_argument("--pixel-rollouts", type=int, default=100,
                        help="rollouts with 64x64 frames for the pixel-metric timing")
    args = parser.parse_args()
    import torch

    start = time.perf_counter()
    truths, preds = make_rollouts(args.rollouts, args.steps)
    built = time.perf_counter() - start
    evaluate_batch(truths[:64], preds[:64], METRICS)  # warm-up (imports, lazy loading)

    start = time.perf_counter()
    table = evaluate_batch(truths, preds, METRICS)
    batched = time.perf_counter() - start
    sub = min(args.single, args.rollouts)
    start = time.perf_counter()
    for truth, pred in zip(truths[:sub], preds[:sub], strict=True):
        evaluate(truth, pred, METRICS)
    single = (time.perf_counter() - start) / sub * args.rollouts
    sub2 = min(args.threaded, args.rollouts)
    start = time.perf_counter()
    evaluate_batch(truths[:sub2], preds[:sub2], METRICS, threads=2)
    threaded = (time.perf_counter() - start) / sub2 * args.rollouts

    pix_t, pix_p = add_frames(truths[: args.pixel_rollouts], preds[: args.pixel_rollouts])
    start = time.perf_counter()
    pix_table = evaluate_batch(pix_t, pix_p, PIXEL_METRICS)
    pixels = time.perf_counter() - start
    pix_failures = int((pix_table["failure"].astype(str) != "").sum())

    failures = int((table["failure"].astype(str) != "").sum())
    print(f"cpu cores visible: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, "
          f"torch {torch.__version__}")
    print(f"{args.rollouts} rollouts x {args.steps} steps, {len(METRICS)} metrics "
          f"-> {len(table):,} rows ({failures:,} failure/undefined rows)")
    print(f"building Rollout/Prediction objects (not scored): {built:.2f} s")
    print(f"evaluate_batch, 1 intra-op thread (all):  {batched:.2f} s "
          f"({args.rollouts / batched:,.0f} rollouts/s)  target < 30 s")
    print(f"evaluate_batch, 2 intra-op threads (extrapolated from {sub2}): {threaded:.2f} s")
    print(f"evaluate one by one (extrapolated from {sub}): {single:.2f} s")
    print(f"pixel metrics, {len(pix_t)} frames-only rollouts of 64x64 px "
          f"({len(PIXEL_METRICS)} metrics, {pix_failures} failure rows): {pixels:.2f} s "
          f"({len(pix_t) / pixels:,.0f} rollouts/s)")
    print(f"ratios: one-by-one / batched = {single / batched:.1f}x, "
          f"2 threads / 1 thread = {threaded / batched:.2f}x")


if __name__ == "__main__":
    main()
