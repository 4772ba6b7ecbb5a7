"""rigid/projectile against the analytic ballistic trajectory and its camera."""

import math

import numpy as np

from physground.scenario import get_scenario
from physground.simulators.mujoco.projectile import BALL_RADIUS, LAUNCH_HEIGHT


def test_matches_analytic_ballistic_arc_before_first_contact(projectile):
    for split in ("train", "test_ood"):
        params = [projectile.sample_params(split, s) for s in range(4)]
        for p, r in zip(params, projectile.generate(params, list(range(4)), split), strict=True):
            g, v, a = p["gravity"], p["launch_speed"], p["launch_angle"]
            t = np.arange(r.num_frames) * r.dt
            x = v * math.cos(a) * t
            z = LAUNCH_HEIGHT + v * math.sin(a) * t - 0.5 * g * t**2
            free = z > BALL_RADIUS + 0.02  # before the ball reaches the ground
            free &= np.cumprod(free).astype(bool)
            assert free.sum() >= 10
            pos = r.states["pos"][:, 0]
            assert np.abs(pos[free, 0] - x[free]).max() < 1e-3
            assert np.abs(pos[free, 2] - z[free]).max() < 1e-3
            assert np.abs(pos[:, 1]).max() < 1e-9  # motion stays in the x-z plane
            vz = v * math.sin(a) - g * t
            assert np.abs(r.states["vel"][free, 0, 2] - vz[free]).max() < 1e-3


def test_ball_bounces_and_energy_never_increases(projectile):
    p = projectile.sample_params("test_id", 0)
    (r,) = projectile.generate([p], [0], "test_id")
    z = r.states["pos"][:, 0, 2]
    assert z.min() > BALL_RADIUS - 0.02  # no deep penetration
    # MuJoCo's energy leaves out the contact spring, so compare frames out of contact.
    energy = np.asarray(r.meta["energy"])[z > BALL_RADIUS]
    assert np.all(np.diff(energy) <= 1e-6 * abs(energy[0]))
    assert energy[-1] < energy[0]  # the bounce dissipated energy (restitution < 1)


def test_same_seed_same_trajectory(projectile):
    p = projectile.sample_params("train", 7)
    a, b = projectile.generate([p, p], [7, 7], "train")
    np.testing.assert_array_equal(a.states["pos"], b.states["pos"])


def test_frames_masks_and_camera_agree():
    scenario = get_scenario("rigid/projectile", num_frames=8, image_size=64)
    (r,) = scenario.generate([scenario.sample_params("test_id", 1)], [1], "test_id")
    assert r.frames.shape == (8, 64, 64, 3) and r.frames.dtype == np.uint8
    assert set(np.unique(r.masks)) == {0, 1}
    for t in range(r.num_frames):
        ys, xs = np.nonzero(r.masks[t] == 1)
        u, v = r.camera.project(r.states["pos"][t, 0])
        assert abs(xs.mean() + 0.5 - u) < 1.0 and abs(ys.mean() + 0.5 - v) < 1.0
        red = r.frames[t][r.masks[t] == 1].astype(int)
        assert (red[:, 0] > red[:, 2]).all()  # the ball is red where the mask says it is
