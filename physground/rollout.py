"""The data contract: `Rollout` (ground truth) and its twin `Prediction` (a model's output).

Both hold named state arrays with a leading time axis in SI units and world coordinates,
static (time-invariant) arrays, optional frames/masks with the camera that maps pixels back
to the world, and metadata. Metrics take a (Rollout, Prediction) pair; nothing else crosses
module boundaries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from physground.errors import ValidationError

if TYPE_CHECKING:
    from physground.observation import Observation

SPLITS: tuple[str, ...] = ("train", "test_id", "test_ood")


@dataclass(frozen=True, kw_only=True)
class Camera:
    """Pinhole camera. Pixel (u, v) of a world point X: ``K @ (R @ X + t)`` after division.

    ``intrinsics`` is K [3,3] in pixels; ``extrinsics`` is the world-to-camera transform
    [4,4] in the OpenCV convention (x right, y down, z forward).
    """

    intrinsics: np.ndarray
    extrinsics: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        _check_shape("camera.intrinsics", np.asarray(self.intrinsics), (3, 3))
        _check_shape("camera.extrinsics", np.asarray(self.extrinsics), (4, 4))

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points [..., 3] -> pixel coordinates [..., 2] (u right, v down)."""
        homogeneous = np.concatenate([points, np.ones((*points.shape[:-1], 1))], axis=-1)
        cam = homogeneous @ self.extrinsics.T
        pix = cam[..., :3] @ self.intrinsics.T
        return pix[..., :2] / pix[..., 2:3]

    def to_dict(self) -> dict[str, Any]:
        return {
            "intrinsics": np.asarray(self.intrinsics).tolist(),
            "extrinsics": np.asarray(self.extrinsics).tolist(),
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Camera:
        return cls(
            intrinsics=np.asarray(data["intrinsics"], dtype=np.float64),
            extrinsics=np.asarray(data["extrinsics"], dtype=np.float64),
            width=int(data["width"]),
            height=int(data["height"]),
        )


def _check_shape(name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> None:
    ok = array.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, array.shape, strict=True)
    )
    if not ok:
        want = "[" + ",".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValidationError(f"{name} has shape {list(array.shape)}, expected {want}")


def _shapes(arrays: dict[str, Any]) -> str:
    """``pos[24,1,3] float64, vel[...]``: names, shapes and dtypes, never the values."""
    parts = []
    for name, value in arrays.items():
        shape = np.shape(value)
        if shape:
            dtype = getattr(value, "dtype", type(value).__name__)
            parts.append(f"{name}[{','.join(map(str, shape))}] {dtype}")
        elif isinstance(value, int | float | np.number) and not isinstance(value, bool):
            parts.append(f"{name}={float(value):.4g}")
        else:
            parts.append(f"{name}={value!r}" if len(repr(value)) < 24 else
                         f"{name} {type(value).__name__}")
    return "{" + ", ".join(parts) + "}"


def _compact_repr(obj: _Trajectory, extra: str = "") -> str:
    """One line naming what the trajectory is, with array shapes instead of contents."""
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in obj.params.items())
    frames = "" if obj.frames is None else f", frames[{','.join(map(str, np.shape(obj.frames)))}]"
    return (f"{type(obj).__name__}({obj.scenario!r}, split={obj.split!r}, seed={obj.seed}"
            f"{extra}, dt={obj.dt:.4g}, params={{{params}}}, states={_shapes(obj.states)}"
            f", static={_shapes(obj.static)}{frames})")


@dataclass(frozen=True, kw_only=True)
class _Trajectory:
    scenario: str
    split: str
    seed: int
    params: dict[str, float]
    dt: float
    states: dict[str, np.ndarray] = field(default_factory=dict)
    static: dict[str, Any] = field(default_factory=dict)
    frames: np.ndarray | None = None
    masks: np.ndarray | None = None
    camera: Camera | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        what = type(self).__name__
        if self.split not in SPLITS and not (self.split == "" and isinstance(self, Prediction)):
            raise ValidationError(f"{what}.split is '{self.split}', expected one of {SPLITS}")
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise ValidationError(f"{what}.dt is {self.dt}, expected a positive number of s")
        lengths = {name: np.shape(arr)[0] if np.ndim(arr) else -1 for name, arr in
                   self.states.items()}
        if self.frames is not None:
            frames = np.asarray(self.frames)
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
                raise ValidationError(
                    f"{what}.frames is {frames.dtype} {list(frames.shape)}, "
                    "expected uint8 [T,H,W,3]"
                )
            lengths["frames"] = frames.shape[0]
        if self.masks is not None:
            masks = np.asarray(self.masks)
            if masks.ndim != 3 or not np.issubdtype(masks.dtype, np.integer):
                raise ValidationError(
                    f"{what}.masks is {masks.dtype} {list(masks.shape)}, expected integer [T,H,W]"
                )
            if self.frames is not None and masks.shape != np.shape(self.frames)[:3]:
                raise ValidationError(
                    f"{what}.masks has shape {list(masks.shape)}, expected "
                    f"{list(np.shape(self.frames)[:3])} to match frames"
                )
            lengths["masks"] = masks.shape[0]
        for name, length in lengths.items():
            if length < 0:
                raise ValidationError(f"{what}.states['{name}'] needs a leading time axis")
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k}: {v}" for k, v in lengths.items())
            raise ValidationError(f"{what} arrays disagree on the number of frames ({detail})")

    @property
    def num_frames(self) -> int:
        """Number of stored frames T (0 for an empty trajectory)."""
        for arr in self.states.values():
            return int(np.shape(arr)[0])
        if self.frames is not None:
            return int(np.shape(self.frames)[0])
        return 0

    def time_slice(self, start: int, stop: int | None = None) -> Any:
        """A copy restricted to frames [start, stop) on every time-indexed array."""
        sl = slice(start, stop)
        return dataclasses.replace(
            self,
            states={k: v[sl] for k, v in self.states.items()},
            frames=None if self.frames is None else self.frames[sl],
            masks=None if self.masks is None else self.masks[sl],
        )

    def to_torch(self, device: str = "cpu", dtype: Any = None) -> dict[str, Any]:
        """States as torch tensors (float arrays cast to ``dtype``, default float32)."""
        import torch

        dtype = dtype or torch.float32
        return {k: torch.as_tensor(np.asarray(v), device=device).to(dtype)
                for k, v in self.states.items()}


@dataclass(frozen=True, kw_only=True)
class Rollout(_Trajectory):
    """Ground truth from an explicit simulator.

    ``states``: rigid ``pos [T,B,3]`` (m), ``quat [T,B,4]`` (w,x,y,z), ``vel [T,B,3]`` (m/s),
    ``angvel [T,B,3]`` (rad/s); cloth ``x [T,N,3]``, ``v [T,N,3]``; smoke
    ``density [T,H,W]``, ``velocity [T,H,W,2]``; SPH ``x [T,N,d]``, ``v [T,N,d]``.
    ``meta`` records simulator, version, integrator, substeps and the content hash.
    """

    def __repr__(self) -> str:
        return _compact_repr(self)

    def context(self, num_frames: int, *, track: str = "default") -> Observation:
        """What a model is shown of the first ``num_frames`` frames: an `Observation`
        (context frames and states, camera, dt, given statics; no params or meta)."""
        from physground.observation import observe

        if not 1 <= num_frames < self.num_frames:
            raise ValidationError(
                f"context of {num_frames} frames needs 1 <= context < {self.num_frames} "
                f"(rollout length of {self.scenario})"
            )
        return observe(self, num_frames, track=track)

    def target(self, context: int, horizon: int) -> Rollout:
        """Frames [context, context + horizon): what a prediction is scored against."""
        if context + horizon > self.num_frames:
            raise ValidationError(
                f"context {context} + horizon {horizon} exceeds the {self.num_frames} frames "
                f"of {self.scenario} rollouts"
            )
        return self.time_slice(context, context + horizon)


@dataclass(frozen=True, kw_only=True)
class Prediction(_Trajectory):
    """What a model produced for frames [context, context + horizon) of one Rollout.

    ``model`` names the producer; ``failure`` is set (and arrays may be empty) when the
    model could not produce a valid prediction, so that the failure is scored, not dropped.
    A model builds it from its `Observation` (`for_observation`), which knows no split,
    seed or params: those stay empty until the benchmark binds it to the truth (`bind`).
    """

    split: str = ""
    seed: int = -1
    params: dict[str, float] = field(default_factory=dict)
    model: str
    context: int
    horizon: int
    failure: str | None = None

    def __repr__(self) -> str:
        failure = f", failure={self.failure!r}" if self.failure else ""
        return _compact_repr(self, f", model={self.model!r}, context={self.context}, "
                                   f"horizon={self.horizon}{failure}")

    @classmethod
    def for_observation(cls, observation: Observation, *, model: str, horizon: int,
                        **fields: Any) -> Prediction:
        """A model's prediction for the frames after ``observation`` (not yet bound)."""
        return cls(scenario=observation.scenario, dt=observation.dt, camera=observation.camera,
                   model=model, context=observation.context, horizon=horizon, **fields)

    def bind(self, truth: Rollout, *, context: int, horizon: int) -> Prediction:
        """This prediction tied to the rollout it predicts (identity copied from ``truth``);
        a prediction for another scenario, context or horizon is refused."""
        for what, got, want in (("scenario", self.scenario, truth.scenario),
                                ("context", self.context, context),
                                ("horizon", self.horizon, horizon)):
            if got != want:
                raise ValidationError(f"prediction of {self.model} has {what} {got!r}, "
                                      f"expected {want!r}")
        return dataclasses.replace(self, split=truth.split, seed=truth.seed,
                                   params=dict(truth.params), static=truth.static,
                                   camera=truth.camera)

    @classmethod
    def for_rollout(
        cls, rollout: Rollout, *, model: str, context: int, horizon: int, **fields: Any
    ) -> Prediction:
        """A prediction with identity fields (scenario, split, seed, params, dt) copied."""
        base: dict[str, Any] = dict(
            scenario=rollout.scenario, split=rollout.split, seed=rollout.seed,
            params=dict(rollout.params), dt=rollout.dt, static=rollout.static,
            camera=rollout.camera,
        )
        base.update(fields)
        return cls(model=model, context=context, horizon=horizon, **base)

    def check_against(self, truth: Rollout) -> str | None:
        """Why this prediction cannot be scored against ``truth`` (None when it can).

        Checks shape, dtype, length and finiteness of every array the truth also has.
        """
        if self.failure:
            return self.failure
        shared = [k for k in self.states if k in truth.states]
        if not shared and self.frames is None:
            return (f"prediction has states {sorted(self.states)} and no frames; "
                    f"truth has states {sorted(truth.states)}")
        for name in shared:
            pred, want = np.asarray(self.states[name]), np.asarray(truth.states[name])
            if pred.shape != want.shape:
                return (f"states['{name}'] has shape {list(pred.shape)}, "
                        f"expected {list(want.shape)}")
            if not np.issubdtype(pred.dtype, np.floating):
                return f"states['{name}'] has dtype {pred.dtype}, expected a float dtype"
            bad = ~np.isfinite(pred)
            if bad.any():
                first = int(np.argwhere(bad)[0][0])
                return f"states['{name}'] has NaN or Inf (first at horizon step {first})"
        if (self.frames is not None and truth.frames is not None
                and np.shape(self.frames) != np.shape(truth.frames)):
            return (f"frames have shape {list(np.shape(self.frames))}, "
                    f"expected {list(np.shape(truth.frames))}")
        return None
