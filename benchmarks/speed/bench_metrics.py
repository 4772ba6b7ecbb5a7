"""Speed of metric scoring: 10,000 rollouts x 100 steps on CPU (target < 30 s on 2 cores).

Run: ``python -m physground.benchmarks.speed.bench_metrics [--rollouts N] [--steps H]``
(``--pixels-only`` for the pixel-metric comparison alone).

Rollouts are analytic ballistic flights with bounces laid out exactly like
``rigid/projectile`` ground truth (``pos``, ``quat``, ``vel``, ``angvel`` and the same
static arrays), so that generation does not dominate; predictions are the truth plus a
smooth drift. The batched path (`evaluate_batch`) is timed on all rollouts, the
single-rollout path (`evaluate`) on a subset, side by side in one run, and their ratio
printed.

Pixel metrics (frames-only predictions rendered at 64 px and 256 px) are timed with the
fast path and with today's pre-speed-up implementation (`legacy_pixels`, patched in) in
the same run; the old/new ratio and the largest difference between the two are printed,
and the fast path's time per metric (``--split``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np

from physground.metrics import evaluate as evaluate_module
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


def side_camera(size: int = SIZE) -> Camera:
    """``size`` px pinhole camera at (5, -20, 1) looking along +y (OpenCV axes); it sees
    x in [-8, 18] m, the whole 100-step flight."""
    f = 60.0 * size / SIZE
    rot = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    ext = np.eye(4)
    ext[:3, :3] = rot
    ext[:3, 3] = -rot @ np.array([5.0, -20.0, 1.0])
    k = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])
    return Camera(intrinsics=k, extrinsics=ext, width=size, height=size)


def add_frames(truths: list[Rollout], preds: list[Prediction], size: int = SIZE) -> tuple[
        list[Rollout], list[Prediction]]:
    """Flat-shaded renders of the ball (truth) and of the predicted positions (frames-only
    predictions), to time pixel metrics and pixel-derived state metrics."""
    camera = side_camera(size)
    focal = camera.intrinsics[0, 0]
    v, u = np.mgrid[0:size, 0:size] + 0.5

    def render(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pix = camera.project(pos[:, 0])
        depth = (pos[:, 0] @ camera.extrinsics[:3, :3].T + camera.extrinsics[:3, 3])[:, 2]
        radius = focal * VISUAL_RADIUS / depth
        inside = ((u - pix[:, 0, None, None]) ** 2 + (v - pix[:, 1, None, None]) ** 2
                  < radius[:, None, None] ** 2)
        frames = np.where((v < size / 2)[None, ..., None], [180, 200, 220], [110, 110, 110])
        frames = np.where(inside[..., None], [230, 40, 25], frames).astype(np.uint8)
        return frames, inside.astype(np.uint8)

    out_t, out_p = [], []
    for truth, pred in zip(truths, preds, strict=True):
        frames, masks = render(truth.states["pos"])
        out_t.append(dataclasses.replace(truth, frames=frames, masks=masks, camera=camera))
        pred_frames, _ = render(pred.states["pos"])
        out_p.append(dataclasses.replace(pred, states={}, frames=pred_frames, camera=camera))
    return out_t, out_p


def legacy_metrics() -> Iterator[None]:
    """Score with today's (pre-speed-up) pixel implementation, `legacy_pixels`."""
    from physground.benchmarks.speed import legacy_pixels as old
    from physground.metrics import pixels
    from physground.metrics.registry import METRICS

    batch_fns = {"psnr": old.psnr_batch, "ssim": old.ssim_batch,
                 "pixel_mse": old.pixel_mse_batch,
                 "spatial_iou_running": old.spatial_iou_batch,
                 "spatiotemporal_iou_running": old.spatiotemporal_iou_batch,
                 "weighted_spatial_iou_running": old.weighted_spatial_iou_batch,
                 "object_permanence": old.object_permanence_batch}
    get = METRICS.get

    def legacy_get(name: str):  # noqa: ANN202
        metric = get(name)
        if name in batch_fns:
            return dataclasses.replace(metric, batch_fn=batch_fns[name])
        return metric
    with mock.patch.object(METRICS, "get", legacy_get), \
            mock.patch.object(pixels, "positions_from_frames", old.positions_from_frames), \
            mock.patch.object(evaluate_module, "_chunk_for", legacy_chunk):
        yield


def legacy_chunk(truth: Rollout, pred: Prediction, chunk_size: int) -> int:
    """Today's chunking: frames counted as float64 (one 64 px rollout per chunk)."""
    frames = pred.context + pred.horizon
    per_frame = sum(int(np.prod(np.shape(v)[1:])) for v in truth.states.values())
    if truth.frames is not None:
        per_frame += 2 * int(np.prod(np.shape(truth.frames)[1:]))
    per_rollout = 8 * (frames * per_frame + pred.horizon * per_frame)
    return int(max(1, min(chunk_size, evaluate_module.CHUNK_BYTES // max(per_rollout, 1))))


def compare_pixel_paths(truths: list[Rollout], preds: list[Prediction], rollouts: int,
                        legacy_rollouts: int, sizes: list[int], repeats: int = 1,
                        split: int = 0) -> list[str]:
    """Time the pixel metrics (frames-only predictions) with today's and the fast path
    side by side, per frame size, and check that they agree; with ``split`` > 0, also
    the fast path's time per metric on that many rollouts (`metric_split`)."""
    lines = []
    for size in sizes:
        n = min(rollouts, len(truths))
        pix_t, pix_p = add_frames(truths[:n], preds[:n], size)
        n_old = max(1, min(n, round(legacy_rollouts * (SIZE / size) ** 2)))
        evaluate_batch(pix_t[:2], pix_p[:2], PIXEL_METRICS)  # warm-up
        with contextmanager(legacy_metrics)():
            evaluate_batch(pix_t[:1], pix_p[:1], PIXEL_METRICS)
        fast = slow = float("inf")
        # alternated, best of each: a shared machine's load changes between the two
        for _ in range(repeats):
            start = time.perf_counter()
            new = evaluate_batch(pix_t, pix_p, PIXEL_METRICS)
            fast = min(fast, (time.perf_counter() - start) / n)
            with contextmanager(legacy_metrics)():
                start = time.perf_counter()
                old = evaluate_batch(pix_t[:n_old], pix_p[:n_old], PIXEL_METRICS)
                slow = min(slow, (time.perf_counter() - start) / n_old)
        keys = ["rollout", "metric", "horizon"]
        both = new[new["rollout"] < n_old].merge(old, on=keys, suffixes=("", "_old"))
        diff = np.abs(both["value"].to_numpy() - both["value_old"].to_numpy())
        failures = int((new["failure"].astype(str) != "").sum())
        lines.append(
            f"pixel metrics {size}x{size} px, {len(PIXEL_METRICS)} metrics, frames-only, "
            f"{failures} failure rows: fast {1 / fast:,.1f} rollouts/s ({n} rollouts), "
            f"today's {1 / slow:,.2f} rollouts/s ({n_old} rollouts) -> "
            f"ratio {slow / fast:.1f}x (best of {repeats}, alternated); "
            f"max |fast - today's| = {np.nanmax(diff):.2e}")
        if split:
            lines.append(f"  fast path {size} px, ms per rollout of each metric scored alone "
                         f"(with the shared work it needs: frames, tracker, masks), "
                         f"{min(n, split)} rollouts: "
                         + metric_split(pix_t[:split], pix_p[:split]))
    return lines


def metric_split(truths: list[Rollout], preds: list[Prediction]) -> str:
    """Time per rollout of each pixel metric scored alone, and of the tracker-free and the
    tracker-based ones together (the tracker's fit, coverages and motion masks are shared
    by the motion IoUs, object permanence and the position metrics)."""
    def timed(metrics: list[str]) -> float:
        start = time.perf_counter()
        evaluate_batch(truths, preds, metrics)
        return (time.perf_counter() - start) / len(truths) * 1e3
    parts = [f"{m} {timed([m]):.2f}" for m in PIXEL_METRICS]
    image = ["psnr", "ssim", "pixel_mse"]
    tracked = [m for m in PIXEL_METRICS if m not in image]
    return (", ".join(parts) + f"; psnr+ssim+mse {timed(image):.2f}, tracker-based "
            f"{len(tracked)} {timed(tracked):.2f}, all {timed(PIXEL_METRICS):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--single", type=int, default=200, help="rollouts for the 1-by-1 path")
    parser.add_argument("--threaded", type=int, default=2000,
                        help="rollouts for the 2-intra-op-thread comparison")
    parser.add_argument("--pixel-rollouts", type=int, default=100,
                        help="rollouts with frames for the pixel-metric timing")
    parser.add_argument("--legacy-rollouts", type=int, default=100,
                        help="rollouts for the pre-speed-up pixel path at 64 px (fewer, "
                             "scaled by area, at larger sizes)")
    parser.add_argument("--pixel-sizes", type=int, nargs="+", default=[64, 256],
                        help="frame sides (px) of the pixel-metric timing")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternated timings of the fast and today's pixel paths (the "
                             "best of each is reported)")
    parser.add_argument("--split", type=int, default=25,
                        help="rollouts for the fast path's time per pixel metric (0: none)")
    parser.add_argument("--pixels-only", action="store_true",
                        help="time only the pixel metrics")
    args = parser.parse_args()
    import torch

    if args.pixels_only:
        truths, preds = make_rollouts(args.pixel_rollouts, args.steps)
        lines = compare_pixel_paths(truths, preds, args.pixel_rollouts, args.legacy_rollouts,
                                    args.pixel_sizes, args.repeats, args.split)
        print(f"cpu cores visible: {os.cpu_count()}, load average: "
              f"{os.getloadavg()[0]:.1f}, torch {torch.__version__}")
        for line in lines:
            print(line)
        return
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

    pixel_lines = compare_pixel_paths(truths, preds, args.pixel_rollouts, args.legacy_rollouts,
                                      args.pixel_sizes, args.repeats, args.split)
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
    for line in pixel_lines:
        print(line)
    print(f"ratios: one-by-one / batched = {single / batched:.1f}x, "
          f"2 threads / 1 thread = {threaded / batched:.2f}x")


if __name__ == "__main__":
    main()
