"""Offscreen rendering of MuJoCo scenes to RGB frames, object-id masks and a pinhole camera.

Rendering needs an OpenGL context: EGL by default (headless GPU or Mesa), OSMesa as the
software fallback. When neither can be created the error says what to install.

One `TiledRenderer` per process and image size is shared by every rollout (`shared_renderer`):
creating a GL context costs tens of milliseconds, so it is made once. Frames are drawn as
tiles of one large offscreen buffer (an RGB tile and a segmentation tile per frame) and read
back with one ``glReadPixels`` per batch of tiles, which amortizes the pipeline flush that
dominates small renders on software GL.

Frames are a pure function of (model, states, versions): each model gets its own MuJoCo
render context (`mujoco.MjrContext`: fog and shadow ranges from the model's extent, line
width, textures, offscreen buffers) on the shared GL context. Sharing one MjrContext across
models, as earlier versions did for primitive-only scenes, made `rigid/collision` frames
differ by +-1 in dozens of pixels depending on which scenario the process had rendered
before (``tests/test_mujoco_rendering.py`` checks bytes alone vs after others). A context
costs ~14 ms to make, a few percent of a rollout's generation.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os

import mujoco
import numpy as np

from physground.errors import SimulationError
from physground.rollout import Camera

_BACKENDS = ("egl", "osmesa")
_MAX_BUFFER = 1024  # pixels per side of the tiled offscreen buffer
# Geoms in this group are drawn but never part of an object's mask (e.g. a pendulum's rod).
DECORATION_GROUP = 3
_UNUSED_PASSES = (mujoco.mjtRndFlag.mjRND_SKYBOX, mujoco.mjtRndFlag.mjRND_HAZE,
                  mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SHADOW)


def make_renderer(model: mujoco.MjModel, size: int) -> mujoco.Renderer:
    """A `mujoco.Renderer` on the backend chosen at import, or a clear error."""
    backend = os.environ.get("MUJOCO_GL", "egl")
    from mujoco.rendering.classic import gl_context

    # A process that imported mujoco before physground had MuJoCo pick GLFW, which fails
    # headless (and then silently borrows whatever context is current): use our backend.
    gl_context.GLContext = _gl_context_class(backend)
    try:
        return mujoco.Renderer(model, height=size, width=size)
    except Exception as err:  # any GL failure: report what to install instead
        raise _gl_error(backend, err) from None


def _gl_error(backend: str, err: Exception) -> SimulationError:
    return SimulationError(
        f"MuJoCo could not create an OpenGL context with MUJOCO_GL={backend} ({err}). "
        f"Install EGL (Debian: libegl1) or OSMesa (libosmesa6), set MUJOCO_GL to one of "
        f"{_BACKENDS}, or generate without frames (render = false)."
    )


def _data_at(model: mujoco.MjModel, state: np.ndarray, spec: int,
             data: mujoco.MjData | None = None) -> mujoco.MjData:
    """MjData with positions of bodies, geoms, cameras and lights at ``state``."""
    data = data if data is not None else mujoco.MjData(model)
    mujoco.mj_setState(model, data, state, spec)
    mujoco.mj_kinematics(model, data)
    mujoco.mj_camlight(model, data)
    return data


def camera_of(
    model: mujoco.MjModel, state: np.ndarray, spec: int, name: str, size: int,
    height: int | None = None,
) -> Camera:
    """Intrinsics and world-to-camera extrinsics (OpenCV convention) of MuJoCo camera
    ``name`` at the first frame of ``state`` ([T, nstate] or [nstate]), for frames of
    ``size`` (width) x ``height`` (default: square) pixels; MuJoCo's ``fovy`` is the
    vertical field of view, so a wider frame sees more to the sides."""
    height = size if height is None else height
    data = _data_at(model, np.atleast_2d(state)[0], spec)
    cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
    fovy = np.deg2rad(model.cam_fovy[cam_id])
    focal = 0.5 * height / np.tan(0.5 * fovy)
    intrinsics = np.array([[focal, 0, size / 2], [0, focal, height / 2], [0, 0, 1.0]])
    # MuJoCo camera axes in world (columns): x right, y up, looking along -z.
    cam_to_world = data.cam_xmat[cam_id].reshape(3, 3)
    rotation = np.diag([1.0, -1.0, -1.0]) @ cam_to_world.T
    extrinsics = np.eye(4)
    extrinsics[:3, :3] = rotation
    extrinsics[:3, 3] = -rotation @ data.cam_xpos[cam_id]
    return Camera(intrinsics=intrinsics, extrinsics=extrinsics, width=size, height=height)


@functools.cache
def _load_triton_llvm_first() -> None:
    """Load triton's native library before the first GL context, if triton is installed.

    Mesa's driver loader opens the DRI driver (llvmpipe) with ``RTLD_GLOBAL``, which puts
    the system ``libLLVM-15.so`` into the process's global symbol scope. ``libtriton.so``
    (shipped with CUDA wheels of torch) links its own LLVM and exports and references
    ~76,000 LLVM symbols with default visibility; dlopened after Mesa, those references
    bind to libLLVM-15's definitions and its static initializers crash (segfault in
    ``import triton``, reached by ``torch.optim.Adam`` -> ``torch._dynamo``). Loaded first
    (``RTLD_LOCAL``), libtriton binds to its own LLVM, and Mesa's LLVM, loaded later, binds
    to itself. Costs ~0.15 s once, only where triton is installed.
    """
    import ctypes
    import importlib.util

    try:
        spec = importlib.util.find_spec("triton")
    except (ImportError, ValueError):
        return
    if spec is None or spec.origin is None:
        return
    library = os.path.join(os.path.dirname(spec.origin), "_C", "libtriton.so")
    if os.path.exists(library):
        with contextlib.suppress(OSError):  # a broken triton fails later, in its own import
            ctypes.CDLL(library, mode=os.RTLD_LOCAL)


def _gl_context_class(backend: str) -> type:
    """The GL context class of ``backend``, independent of what MuJoCo picked when it was
    first imported (a process that imported mujoco before physground got GLFW)."""
    _load_triton_llvm_first()
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        from mujoco.rendering.classic.gl_context import GLContext
    return GLContext


class TiledRenderer:
    """Renders RGB frames and object-id masks of many states through one GL context.

    The offscreen buffer holds ``tiles x tiles`` tiles of ``size`` x ``height`` pixels
    (width x height; square by default); each frame takes two (RGB, then segmentation).
    Object ids are 1 + index in the object body list (0 is background and static scenery).
    """

    def __init__(self, size: int, height: int | None = None) -> None:
        self.size = size
        self.height = size if height is None else height
        self.tiles = max(2, min(8, _MAX_BUFFER // max(size, self.height)))
        self.side = self.tiles * size
        self.rows = self.tiles * self.height
        backend = os.environ.get("MUJOCO_GL", "egl")
        try:
            self._gl = _gl_context_class(backend)(self.side, self.rows)
            self._gl.make_current()
        except Exception as err:  # any GL failure: report what to install instead
            raise _gl_error(backend, err) from None
        self._context: mujoco.MjrContext | None = None
        self._context_model: mujoco.MjModel | None = None
        self._option = mujoco.MjvOption()
        self._option.geomgroup[DECORATION_GROUP] = 1  # drawn (hidden by MuJoCo's default)
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._buffer = np.empty((self.rows, self.side, 3), np.uint8)

    def _ensure_context(self, model: mujoco.MjModel) -> None:
        """The MjrContext of ``model`` (made anew for each model: see the module doc)."""
        if self._context is not None and model is self._context_model:
            return
        if self._context is not None:
            self._context.free()
        big = copy.copy(model)
        big.vis.global_.offwidth = self.side
        big.vis.global_.offheight = self.rows
        self._context = mujoco.MjrContext(big, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._context_model = model

    def render(
        self, model: mujoco.MjModel, states: np.ndarray, spec: int, bodies: list[int],
        camera: str = "main",
    ) -> tuple[np.ndarray, np.ndarray]:
        """RGB ``uint8 [T,H,W,3]`` and object ids ``uint8 [T,H,W]`` of states ``[T, nstate]``
        seen from the fixed camera ``camera``."""
        self._gl.make_current()
        self._ensure_context(model)
        cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cam_id < 0:
            raise SimulationError(f"model '{model.names[:20]!r}' has no camera named '{camera}'")
        self._camera.fixedcamid = cam_id
        geom_to_object = np.zeros(model.ngeom, dtype=np.uint8)
        for index, body in enumerate(bodies):
            own = (model.geom_bodyid == body) & (model.geom_group != DECORATION_GROUP)
            geom_to_object[own] = index + 1
        scene = mujoco.MjvScene(model, maxgeom=model.ngeom + 16)
        # Passes our scenes never need (no skybox texture, no reflective or shadowed
        # surfaces): skipping them saves ~30% of each render on software GL.
        for flag in _UNUSED_PASSES:
            scene.flags[flag] = False
        data = mujoco.MjData(model)
        T, s, h = len(states), self.size, self.height
        frames = np.empty((T, h, s, 3), np.uint8)
        masks = np.empty((T, h, s), np.uint8)
        per_batch = self.tiles * self.tiles // 2
        seg_lut: np.ndarray | None = None
        segment = (mujoco.mjtRndFlag.mjRND_SEGMENT, mujoco.mjtRndFlag.mjRND_IDCOLOR)
        for first in range(0, T, per_batch):
            count = min(per_batch, T - first)
            for k in range(count):
                _data_at(model, states[first + k], spec, data)
                mujoco.mjv_updateScene(model, data, self._option, None, self._camera,
                                       mujoco.mjtCatBit.mjCAT_ALL, scene)
                if seg_lut is None:
                    seg_lut = self._segment_lut(scene, geom_to_object)
                for j, seg in enumerate((False, True)):
                    for flag in segment:
                        scene.flags[flag] = seg
                    tile = 2 * k + j
                    rect = mujoco.MjrRect((tile % self.tiles) * s, (tile // self.tiles) * h,
                                          s, h)
                    mujoco.mjr_render(rect, scene, self._context)
            rows = -(-2 * count // self.tiles) * h
            mujoco.mjr_readPixels(self._buffer[:rows], None,
                                  mujoco.MjrRect(0, 0, self.side, rows), self._context)
            for k in range(count):
                rgb, seg = (self._tile(2 * k + j) for j in range(2))
                frames[first + k] = rgb
                ids = seg[..., 0].astype(np.int64) | (seg[..., 1].astype(np.int64) << 8) | (
                    seg[..., 2].astype(np.int64) << 16)
                masks[first + k] = seg_lut[np.minimum(ids, len(seg_lut) - 1)]  # type: ignore[index]
        for flag in segment:
            scene.flags[flag] = False
        return frames, masks

    def _tile(self, tile: int) -> np.ndarray:
        """Tile ``tile`` of the read-back buffer, top row first (GL reads bottom-up)."""
        s, h = self.size, self.height
        row, col = tile // self.tiles, tile % self.tiles
        return self._buffer[row * h : (row + 1) * h, col * s : (col + 1) * s][::-1]

    @staticmethod
    def _segment_lut(scene: mujoco.MjvScene, geom_to_object: np.ndarray) -> np.ndarray:
        """Segmentation colour (scene geom index + 1; 0 background) -> object id."""
        lut = np.zeros(scene.ngeom + 2, dtype=np.uint8)
        for i in range(scene.ngeom):
            g = scene.geoms[i]
            if g.segid >= 0 and g.objtype == mujoco.mjtObj.mjOBJ_GEOM and g.objid >= 0:
                lut[g.segid + 1] = geom_to_object[g.objid]
        return lut

    def close(self) -> None:
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._context = None
        self._gl.free()


_SHARED: dict[tuple[int, int], TiledRenderer] = {}


def shared_renderer(size: int, height: int | None = None) -> TiledRenderer:
    """This process's renderer for ``size`` x ``height`` frames (width x height; square
    by default), created on first use."""
    key = (size, size if height is None else height)
    renderer = _SHARED.get(key)
    if renderer is None:
        renderer = _SHARED[key] = TiledRenderer(*key)
    return renderer
