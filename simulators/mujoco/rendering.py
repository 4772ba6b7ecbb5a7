"""Offscreen rendering of MuJoCo scenes to RGB frames, object-id masks and a pinhole camera.

Rendering needs an OpenGL context: EGL by default (headless GPU or Mesa), OSMesa as the
software fallback. When neither can be created the error says what to install.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np

from physground.errors import SimulationError
from physground.rollout import Camera

_BACKENDS = ("egl", "osmesa")


def make_renderer(model: mujoco.MjModel, size: int) -> mujoco.Renderer:
    """A `mujoco.Renderer` on the backend chosen at import, or a clear error."""
    backend = os.environ.get("MUJOCO_GL", "egl")
    try:
        return mujoco.Renderer(model, height=size, width=size)
    except Exception as err:  # any GL failure: report what to install instead
        raise SimulationError(
            f"MuJoCo could not create an OpenGL context with MUJOCO_GL={backend} ({err}). "
            f"Install EGL (Debian: libegl1) or OSMesa (libosmesa6), set MUJOCO_GL to one of "
            f"{_BACKENDS}, or generate without frames (render = false)."
        ) from None


def camera_of(model: mujoco.MjModel, data: mujoco.MjData, name: str, size: int) -> Camera:
    """Intrinsics and world-to-camera extrinsics (OpenCV convention) of a MuJoCo camera."""
    cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
    fovy = np.deg2rad(model.cam_fovy[cam_id])
    focal = 0.5 * size / np.tan(0.5 * fovy)
    intrinsics = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1.0]])
    # MuJoCo camera axes in world (columns): x right, y up, looking along -z.
    cam_to_world = data.cam_xmat[cam_id].reshape(3, 3)
    rotation = np.diag([1.0, -1.0, -1.0]) @ cam_to_world.T
    extrinsics = np.eye(4)
    extrinsics[:3, :3] = rotation
    extrinsics[:3, 3] = -rotation @ data.cam_xpos[cam_id]
    return Camera(intrinsics=intrinsics, extrinsics=extrinsics, width=size, height=size)


class FrameRenderer:
    """Renders RGB and object-id masks for one model; object ids are 1 + index in
    ``object_bodies`` (0 is background and static scenery)."""

    def __init__(
        self, model: mujoco.MjModel, size: int, camera: str, object_bodies: list[int]
    ) -> None:
        self.renderer = make_renderer(model, size)
        self.camera = camera
        lookup = np.zeros(model.ngeom + 1, dtype=np.uint8)  # index -1 -> slot ngeom -> 0
        for index, body in enumerate(object_bodies):
            lookup[np.flatnonzero(model.geom_bodyid == body)] = index + 1
        self._geom_to_object = lookup

    def render(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 [H,W,3] and object ids uint8 [H,W] of the current state."""
        self.renderer.update_scene(data, camera=self.camera)
        rgb = self.renderer.render().copy()
        self.renderer.enable_segmentation_rendering()
        try:
            self.renderer.update_scene(data, camera=self.camera)
            seg = self.renderer.render()
        finally:
            self.renderer.disable_segmentation_rendering()
        geom_ids = np.where(seg[..., 1] == mujoco.mjtObj.mjOBJ_GEOM, seg[..., 0], -1)
        return rgb, self._geom_to_object[geom_ids]

    def close(self) -> None:
        self.renderer.close()
