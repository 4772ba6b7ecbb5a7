"""Shared machinery of the Warp scenarios: lazy Warp start-up, device choice, config base,
cameras and small helpers to move arrays between NumPy, torch and Warp.

Warp is imported at module level (kernels must be defined at module level) but started
(`wp.init`) only on first use; this module is itself imported only when a Warp scenario is
used, because `physground.simulators.warp` registers its scenarios as lazy strings.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import warp as wp

from physground.device import DEVICE_CHOICES, resolve_device, warp_device
from physground.errors import ValidationError
from physground.rollout import Camera
from physground.scenario import ScenarioConfig

wp.config.quiet = True
wp.config.log_level = wp.LOG_WARNING

_STARTED = False


_DRIVER_PROBE = "Could not find or load the NVIDIA CUDA driver"


def start_warp() -> None:
    """Initialise Warp once per process (quietly); kernels compile on first launch.

    Warp's native library prints a CUDA-driver warning straight to file descriptor 2 in
    every process that starts it (once per worker); that line is swallowed here, since
    the CPU is the default, and a run asked for ``auto`` gets one notice from
    `physground.device.resolve_device`. Anything else Warp prints is passed on.
    """
    global _STARTED
    if not _STARTED:
        wp.config.quiet = True
        wp.config.log_level = wp.LOG_WARNING
        with _stderr_filtered(_DRIVER_PROBE):
            wp.init()
        _STARTED = True


@contextlib.contextmanager
def _stderr_filtered(drop: str) -> Iterator[None]:
    """Capture file descriptor 2 (native code writes there) and re-emit all lines but those
    containing ``drop``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines(keepends=True) if drop not in line]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def warp_device_of(device: str) -> str:
    """Resolve a config device (``cpu``, ``cuda``, ``cuda:N``, ``auto``) to a Warp device."""
    start_warp()
    return warp_device(resolve_device(device))


def chunk_size(device: str, total: int) -> int:
    """Elements per thread of a chunked kernel over ``total`` elements of each environment.

    A Warp CPU launch runs its threads one after another, each with a fixed start-up cost
    (index arithmetic, argument set-up) that for small kernel bodies costs as much as the
    body; so on the CPU one thread per environment loops over all its elements (in the
    same order as the threads would run, hence with the same results), while on CUDA each
    thread keeps one element. Launch such a kernel with `chunk_count` threads per
    environment."""
    return max(int(total), 1) if wp.get_device(device).is_cpu else 1


def chunk_count(total: int, chunk: int) -> int:
    """Threads per environment covering ``total`` elements in chunks of ``chunk``."""
    return max(-(-int(total) // chunk), 1)


@dataclass(frozen=True, kw_only=True)
class WarpConfig(ScenarioConfig):
    """Settings of every Warp scenario: physics substeps per stored frame and the device.

    ``device`` is ``cpu`` (default, reproducible in CI), ``cuda``/``cuda:N`` or ``auto``
    (CUDA when torch sees a GPU); it is resolved when simulating, never switched silently.
    """

    substeps: int = 8
    device: str = "cpu"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.substeps < 1:
            raise ValidationError(f"substeps = {self.substeps}, expected >= 1")
        if self.device.split(":")[0] not in DEVICE_CHOICES:
            raise ValidationError(
                f"device = '{self.device}', expected one of {DEVICE_CHOICES} (or cuda:N)"
            )


def check_batch(params: Sequence[Mapping[str, float]], seeds: Sequence[int], where: str) -> None:
    """Params and seeds must pair up one to one and be non-empty."""
    if len(params) != len(seeds):
        raise ValidationError(
            f"{where}: got {len(params)} parameter sets for {len(seeds)} seeds, expected equal"
        )
    if len(seeds) == 0:
        raise ValidationError(f"{where}: empty batch, expected at least one seed")


def look_at_camera(
    eye: np.ndarray, target: np.ndarray, up: np.ndarray, fovy_deg: float, size: int,
    height: int | None = None,
) -> Camera:
    """Pinhole camera at ``eye`` looking at ``target`` (OpenCV axes: x right, y down, z fwd)
    for frames of ``size`` (width) x ``height`` (default square); ``fovy_deg`` is vertical."""
    height = size if height is None else height
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    focal = 0.5 * height / math.tan(0.5 * math.radians(fovy_deg))
    intrinsics = np.array([[focal, 0.0, size / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    extrinsics = np.eye(4)
    extrinsics[:3, :3] = rotation
    extrinsics[:3, 3] = -rotation @ eye
    return Camera(intrinsics=intrinsics, extrinsics=extrinsics, width=size, height=height)


def plane_camera(lower: tuple[float, float], upper: tuple[float, float], size: int,
                 height: int | None = None) -> Camera:
    """Orthographic-equivalent pinhole for a 2D field in the world plane z = 0 (x right, y up).

    The camera sits on the +z axis above the centre of the box [lower, upper] and looks down
    -z; every point of the plane has the same depth, so the projection is affine: the larger
    box side spans the image's smaller side exactly (frames of ``size`` (width) x
    ``height``, default square; a wider frame shows the box centred, with margins) and the
    world y axis points up in the image.
    """
    height = size if height is None else height
    (x0, y0), (x1, y1) = lower, upper
    extent = max(x1 - x0, y1 - y0)
    depth = 10.0 * extent
    focal = min(size, height) * depth / extent
    rotation = np.diag([1.0, -1.0, -1.0])  # x right, y down (world -y), z forward (world -z)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2, depth])
    extrinsics = np.eye(4)
    extrinsics[:3, :3] = rotation
    extrinsics[:3, 3] = -rotation @ centre
    intrinsics = np.array([[focal, 0.0, size / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    return Camera(intrinsics=intrinsics, extrinsics=extrinsics, width=size, height=height)


def warp_meta(integrator: str, substeps: int, device: str, **extra: Any) -> dict[str, Any]:
    """Rollout ``meta`` common to Warp scenarios."""
    return {
        "simulator": "warp",
        "simulator_version": wp.config.version,
        "integrator": integrator,
        "substeps": substeps,
        "device": device,
        **extra,
    }


def torch_to_warp(tensor: Any, dtype: Any, device: str, requires_grad: bool = False) -> wp.array:
    """A float32 Warp copy of a torch tensor (detached, on ``device``)."""
    host = tensor.detach().to("cpu").float().contiguous().numpy()
    return wp.array(host, dtype=dtype, device=device, requires_grad=requires_grad)


def warp_to_torch(array: np.ndarray, like: Any) -> Any:
    """A torch *copy* of Warp data, with the dtype and device of ``like``.

    The copy matters: Warp reuses (and the tape zeroes) its buffers, so a tensor sharing
    their memory would change under the caller.
    """
    import torch

    return torch.tensor(np.asarray(array)).to(like)
