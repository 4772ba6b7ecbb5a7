"""Synthetic rollouts with analytic physics for the learned-model tests (no simulator)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physground.rollout import Rollout

DT = 1.0 / 30.0


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models train fastest on one thread (no oversubscription on shared 2-core CI);
    the previous thread count is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def ballistic_rollout(seed: int, *, frames: int = 20, gravity: float = 9.81,
                      split: str = "train") -> Rollout:
    """A ball in free flight high above the ground: x(t) = x0 + v0 t + g t^2 / 2 (exact)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] * DT
    g = np.array([0.0, 0.0, -gravity])
    x0 = np.array([0.0, 0.0, 5.0]) + rng.uniform(-0.5, 0.5, 3)
    v0 = np.array([rng.uniform(1, 3), 0.0, rng.uniform(1, 3)])
    pos = x0 + v0 * t + 0.5 * g * t * t
    vel = v0 + g * t
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (frames, 1))
    return Rollout(
        scenario="rigid/projectile", split=split, seed=seed,
        params={"gravity": gravity}, dt=DT,
        states={"pos": pos[:, None], "vel": vel[:, None], "quat": quat[:, None],
                "angvel": np.zeros((frames, 1, 3))},
        static={"mass": np.array([1.0]), "radius": np.array([0.15]), "gravity": g,
                "ground_height": np.float64(0.0)},
    )


def sheet_rollout(seed: int, *, frames: int = 12, n: int = 4) -> Rollout:
    """A rigid square sheet (n x n nodes, 1 m) falling and spinning: edges keep their length."""
    rng = np.random.default_rng(seed)
    u, v = np.meshgrid(np.linspace(-0.5, 0.5, n), np.linspace(-0.5, 0.5, n))
    local = np.stack([u.ravel(), v.ravel(), np.zeros(n * n)], axis=1)
    idx = np.arange(n * n).reshape(n, n)
    edges = np.concatenate([np.stack([idx[:, :-1], idx[:, 1:]], -1).reshape(-1, 2),
                            np.stack([idx[:-1, :], idx[1:, :]], -1).reshape(-1, 2)])
    omega = rng.uniform(0.5, 1.5)
    xs, vs = [], []
    for k in range(frames):
        t = k * DT
        c, s = np.cos(omega * t), np.sin(omega * t)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        drot = omega * np.array([[-s, -c, 0], [c, -s, 0], [0, 0, 0.0]])
        centre = np.array([0.0, 0.0, 3.0 - 0.5 * 9.81 * t * t])
        xs.append(local @ rot.T + centre)
        vs.append(local @ drot.T + np.array([0.0, 0.0, -9.81 * t]))
    rest = np.linalg.norm(local[edges[:, 1]] - local[edges[:, 0]], axis=1)
    return Rollout(
        scenario="cloth/hanging", split="train", seed=seed, params={}, dt=DT,
        states={"x": np.array(xs), "v": np.array(vs)},
        static={"edges": edges, "rest_length": rest, "mass": np.full(n * n, 0.3 / (n * n)),
                "pinned": np.zeros(n * n, dtype=bool), "gravity": np.array([0, 0, -9.81]),
                "ground_height": np.float64(0.0)},
    )


def blob_masks(frames: int, size: int = 32, *, gravity_px: float = 60.0, sigma: float = 2.0,
               radius_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Soft Gaussian blobs [T,H,W] whose centre follows a parabola with constant pixel
    acceleration (0, gravity_px) px/s^2 (v grows downwards); returns (masks, centres)."""
    t = np.arange(frames) * DT
    centre = np.stack([8.0 + 20.0 * t, 12.0 - 15.0 * t + 0.5 * gravity_px * t * t], axis=1)
    grid = np.arange(size) + 0.5
    uu, vv = np.meshgrid(grid, grid)
    d2 = (uu[None] - centre[:, 0, None, None]) ** 2 + (vv[None] - centre[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * (sigma * radius_scale) ** 2)), centre
