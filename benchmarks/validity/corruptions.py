"""Controlled predictions built from the truth: nuisances and physics violations.

Each corruption maps (truth rollout, context C, horizon H, magnitude) to a `Prediction` of
frames [C, C + H), or None where it does not apply to that rollout (no gravity to scale, no
frames to shift, no restitution parameter ...). Nuisances have one magnitude and are not
physics errors; violations have five increasing magnitudes. `CORRUPTIONS` is a registry:
another module adds rows with ``CORRUPTIONS.register(name, Corruption(...))``; the codec
rows (H.264, half size, GIF) come from `physground.benchmarks.validity.codecs`.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from physground.benchmarks.validity.codecs import CODECS
from physground.metrics.registry import NUISANCES, VIOLATIONS
from physground.registry import Registry
from physground.rollout import Prediction, Rollout

POSITION_NOISE = 0.5e-4  # m: half the position resolution floor
VELOCITY_NOISE = 1e-3  # m/s
FIELD_NOISE = 1e-4  # relative to the field's RMS
PIXEL_NOISE = 2.0  # grey levels of 255
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Corruption:
    """``make(truth, context, horizon, magnitude, rng) -> Prediction | None``."""

    name: str
    kind: str  # "identical", "nuisance" or "violation"
    magnitudes: tuple[float, ...]
    make: Callable[..., Prediction | None]
    unit: str = ""
    doc: str = ""
    frames_only: bool = False  # a video file: no states, no masks (scored as a video model)
    delivery: Callable[[int, int], Any] | None = None  # its `Delivery` of (height, width)


CORRUPTIONS: Registry[Corruption] = Registry("corruption")


@dataclass
class Window:
    """Mutable copies of the truth's states, frames and masks over [C, C + H)."""

    states: dict[str, np.ndarray]
    frames: np.ndarray | None
    masks: np.ndarray | None

    @classmethod
    def of(cls, truth: Rollout, start: int, stop: int) -> Window:
        part = truth.time_slice(start, stop)
        return cls({k: np.array(v, dtype=np.float64 if np.issubdtype(np.asarray(v).dtype,
                                                                      np.floating) else None)
                    for k, v in part.states.items()},
                   None if part.frames is None else np.array(part.frames),
                   None if part.masks is None else np.array(part.masks))

    def prediction(self, truth: Rollout, name: str, context: int, horizon: int
                   ) -> Prediction:
        return Prediction.for_rollout(truth, model=name, context=context, horizon=horizon,
                                      states=self.states, frames=self.frames,
                                      masks=self.masks)


def _positions(window: Window) -> list[tuple[str, str | None]]:
    """(position name, velocity name or None) pairs present in the window."""
    return [(p, v if v in window.states else None) for p, v in (("pos", "vel"), ("x", "v"))
            if p in window.states]


# -- identical and nuisances ---------------------------------------------------------------


def identical(truth: Rollout, c: int, h: int, m: float, rng: Any) -> Prediction:
    return Window.of(truth, c, c + h).prediction(truth, "identical", c, h)


def state_noise(truth: Rollout, c: int, h: int, m: float, rng: Any) -> Prediction:
    w = Window.of(truth, c, c + h)
    for name, array in w.states.items():
        if name in ("pos", "x"):
            sigma = POSITION_NOISE
        elif name in ("vel", "v", "angvel"):
            sigma = VELOCITY_NOISE
        elif name in ("density", "velocity"):
            sigma = FIELD_NOISE * float(np.sqrt(np.mean(array**2)))
        else:
            continue
        w.states[name] = array + sigma * rng.standard_normal(array.shape)
    return w.prediction(truth, "state_noise", c, h)


def _with_frames(fn: Callable[[np.ndarray, Any], np.ndarray]) -> Callable[..., Any]:
    def make(truth: Rollout, c: int, h: int, m: float, rng: Any) -> Prediction | None:
        if truth.frames is None:
            return None
        w = Window.of(truth, c, c + h)
        w.frames = np.clip(np.rint(fn(w.frames.astype(np.float64), rng)), 0, 255
                           ).astype(np.uint8)
        return w.prediction(truth, fn.__name__, c, h)
    return make


def _codec_frames(name: str, delivery: Callable[[int, int], Any]
                  ) -> Callable[..., Prediction | None]:
    """A nuisance that passes the window's uint8 frames through ``delivery(h, w)``: frames
    only, as a video file is (its states come from the frames where they can)."""
    def make(truth: Rollout, c: int, h: int, m: float, rng: Any) -> Prediction | None:
        if truth.frames is None:
            return None
        frames = np.asarray(truth.frames[c:c + h], dtype=np.uint8)
        frames = delivery(*frames.shape[1:3]).apply(frames)
        return Window({}, frames, None).prediction(truth, name, c, h)
    return make


def as_video(prediction: Prediction) -> Prediction:
    """The frames of ``prediction`` alone (no states, no masks), as a video model's file."""
    return dataclasses.replace(prediction, states={}, masks=None)


def pixel_noise(frames: np.ndarray, rng: Any) -> np.ndarray:
    return frames + PIXEL_NOISE * rng.standard_normal(frames.shape)


def pixel_shift(frames: np.ndarray, rng: Any) -> np.ndarray:
    shifted = np.roll(frames, 1, axis=2)
    shifted[:, :, 0] = frames[:, :, 0]  # replicate the edge column
    return shifted


def downscale(frames: np.ndarray, rng: Any) -> np.ndarray:
    t, hh, ww, ch = frames.shape
    small = frames[:, : hh // 2 * 2, : ww // 2 * 2].reshape(t, hh // 2, 2, ww // 2, 2, ch)
    up = small.mean((2, 4)).repeat(2, axis=1).repeat(2, axis=2)
    out = frames.copy()
    out[:, : up.shape[1], : up.shape[2]] = up
    return out


def quantise(frames: np.ndarray, rng: Any) -> np.ndarray:
    """JPEG round trip of every frame (quality 90, Pillow)."""
    from PIL import Image

    out = np.empty_like(frames)
    for i, frame in enumerate(frames.astype(np.uint8)):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=JPEG_QUALITY)
        out[i] = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return out


# -- violations ----------------------------------------------------------------------------

FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)


def frozen(truth: Rollout, c: int, h: int, m: float, rng: Any) -> Prediction:
    """The last fraction ``m`` of the horizon frozen at the frame before it."""
    w = Window.of(truth, c - 1, c + h)  # index 0 is the last context frame
    start = 1 + int(round(h * (1.0 - m)))
    for v in w.states.values():
        v[start:] = v[start - 1]
    for arr in (w.frames, w.masks):
        if arr is not None:
            arr[start:] = arr[start - 1]
    return _drop_first(w).prediction(truth, "frozen", c, h)


def _drop_first(w: Window) -> Window:
    return Window({k: v[1:] for k, v in w.states.items()},
                  None if w.frames is None else w.frames[1:],
                  None if w.masks is None else w.masks[1:])


def time_reversed(truth: Rollout, c: int, h: int, m: float, rng: Any) -> Prediction:
    """The last fraction ``m`` of the horizon played backwards (velocities negated)."""
    w = Window.of(truth, c, c + h)
    start = h - max(2, int(round(h * m)))
    for k, v in w.states.items():
        v[start:] = v[start:][::-1].copy()
        if k in ("vel", "v", "angvel", "velocity"):
            v[start:] *= -1.0
    for arr in (w.frames, w.masks):
        if arr is not None:
            arr[start:] = arr[start:][::-1].copy()
    return w.prediction(truth, "time_reversed", c, h)


def delayed(truth: Rollout, c: int, h: int, m: float, rng: Any) -> Prediction | None:
    """Everything ``m`` frames late."""
    k = int(m)
    if k > c:
        return None
    return Window.of(truth, c - k, c + h - k).prediction(truth, "delayed", c, h)


def _gravity(truth: Rollout) -> np.ndarray | None:
    g = truth.static.get("gravity")
    if g is None:
        return None
    g = np.asarray(g, dtype=np.float64).reshape(-1)
    return g if np.linalg.norm(g) > 0 else None


def gravity_scaled(truth: Rollout, c: int, h: int, m: float, rng: Any) -> Prediction | None:
    """Free motion under (1 + m) g: ``x += m g tau^2 / 2``, ``v += m g tau``."""
    w = Window.of(truth, c, c + h)
    g = _gravity(truth)
    pairs = _positions(w)
    if g is None or not pairs:
        return None
    tau = (np.arange(1, h + 1) * truth.dt).reshape((h,) + (1,) * (w.states[pairs[0][0]].ndim - 1))
    for pos, vel in pairs:
        d = w.states[pos].shape[-1]
        w.states[pos] = w.states[pos] + 0.5 * m * g[:d] * tau**2
        if vel is not None:
            w.states[vel] = w.states[vel] + m * g[:d] * tau
    return w.prediction(truth, "gravity_scaled", c, h)


def energy_injected(truth: Rollout, c: int, h: int, m: float, rng: Any) -> Prediction | None:
    """Motion sped up by (1 + m) from the last context frame (kinetic energy x (1+m)^2)."""
    w = Window.of(truth, c, c + h)
    last = truth.time_slice(c - 1, c)
    pairs = _positions(w)
    if not pairs and "velocity" not in w.states:
        return None
    for pos, vel in pairs:
        origin = np.asarray(last.states[pos], dtype=np.float64)
        w.states[pos] = origin + (1.0 + m) * (w.states[pos] - origin)
        if vel is not None:
            w.states[vel] = (1.0 + m) * w.states[vel]
    if "velocity" in w.states:
        w.states["velocity"] = (1.0 + m) * w.states["velocity"]
    return w.prediction(truth, "energy_injected", c, h)


def mass_not_conserved(truth: Rollout, c: int, h: int, m: float, rng: Any
                       ) -> Prediction | None:
    """Smoke density lost linearly over the horizon, a fraction ``m`` by its end."""
    w = Window.of(truth, c, c + h)
    if "density" not in w.states:
        return None
    ramp = 1.0 - m * np.arange(1, h + 1) / h
    w.states["density"] = w.states["density"] * ramp.reshape((h,) + (1,) * (
        w.states["density"].ndim - 1))
    return w.prediction(truth, "mass_not_conserved", c, h)


def vanish_reappear(truth: Rollout, c: int, h: int, m: float, rng: Any) -> Prediction | None:
    """Objects painted over with the background in the middle fraction ``m`` of the horizon."""
    if truth.frames is None or truth.masks is None:
        return None
    w = Window.of(truth, c, c + h)
    background = np.median(np.asarray(truth.frames), axis=0)
    n = max(1, int(round(h * m)))
    start = (h - n) // 2
    for t in range(start, start + n):
        obj = w.masks[t] > 0
        w.frames[t][obj] = background[obj].astype(np.uint8)
        w.masks[t][obj] = 0
    return w.prediction(truth, "vanish_reappear", c, h)


def interpenetration(truth: Rollout, c: int, h: int, m: float, rng: Any
                     ) -> Prediction | None:
    """Bodies sunk by ``m`` radii (along gravity) in the second half of the horizon."""
    w = Window.of(truth, c, c + h)
    radius = truth.static.get("radius")
    if "pos" not in w.states or radius is None:
        return None
    g = _gravity(truth)
    down = g / np.linalg.norm(g) if g is not None else np.array([0.0, 0.0, -1.0])
    r = np.asarray(radius, dtype=np.float64).reshape(-1, 1)
    w.states["pos"][h // 2:] = w.states["pos"][h // 2:] + m * r * down
    return w.prediction(truth, "interpenetration", c, h)


def teleport(truth: Rollout, c: int, h: int, m: float, rng: Any) -> Prediction | None:
    """Positions jump sideways by ``m`` times the scene's extent at mid-horizon."""
    w = Window.of(truth, c, c + h)
    pairs = _positions(w)
    if not pairs:
        return None
    for pos, _ in pairs:
        x = np.asarray(truth.states[pos], dtype=np.float64)
        extent = max(float(np.ptp(x.reshape(-1, x.shape[-1]), axis=0).max()), 0.1)
        w.states[pos][h // 2:, ..., 0] += m * extent
    return w.prediction(truth, "teleport", c, h)


def restitution_changed(truth: Rollout, c: int, h: int, m: float, rng: Any,
                        scenario: Any = None) -> Prediction | None:
    """The scene re-simulated with the restitution lowered by a fraction ``m``."""
    if scenario is None or "restitution" not in truth.params:
        return None
    params = dict(truth.params)
    params["restitution"] = params["restitution"] * (1.0 - m)
    (resim,) = scenario.simulate([params], [truth.seed], truth.split)
    return Window.of(resim, c, c + h).prediction(truth, "restitution_changed", c, h)


def _register() -> None:
    one = (1.0,)
    CORRUPTIONS.register("identical", Corruption("identical", "identical", one, identical))
    nuisances = {
        "state_noise": (state_noise, "Gaussian: 0.05 mm on positions, 1 mm/s on velocities"),
        "pixel_noise": (_with_frames(pixel_noise), "Gaussian sigma = 2/255 on frames"),
        "pixel_shift": (_with_frames(pixel_shift), "frames shifted by 1 px"),
        "downscale": (_with_frames(downscale), "frames downscaled x2 and back"),
        "quantise": (_with_frames(quantise), f"JPEG round trip, quality {JPEG_QUALITY}"),
    }
    for name, (fn, doc) in nuisances.items():
        CORRUPTIONS.register(name, Corruption(name, "nuisance", one, fn, doc=doc))
    for name, (delivery, doc) in CODECS.items():
        nuisances[name] = (_codec_frames(name, delivery), doc)
        CORRUPTIONS.register(name, Corruption(name, "nuisance", one, nuisances[name][0],
                                              doc=doc, frames_only=True, delivery=delivery))
    violations = {
        "frozen": (frozen, FRACTIONS, "1", "last fraction of the horizon frozen"),
        "time_reversed": (time_reversed, FRACTIONS, "1", "last fraction played backwards"),
        "delayed": (delayed, (1.0, 2.0, 3.0, 4.0, 5.0), "frames", "late by k frames"),
        "gravity_scaled": (gravity_scaled, (0.1, 0.2, 0.4, 0.7, 1.0), "g",
                           "extra acceleration m g"),
        "restitution_changed": (restitution_changed, (0.1, 0.2, 0.4, 0.7, 1.0), "1",
                                "restitution lowered by a fraction"),
        "energy_injected": (energy_injected, (0.05, 0.1, 0.2, 0.5, 1.0), "1",
                            "speeds x (1 + m)"),
        "mass_not_conserved": (mass_not_conserved, FRACTIONS, "1",
                               "density fraction lost by the end"),
        "vanish_reappear": (vanish_reappear, FRACTIONS, "1",
                            "objects hidden for a fraction of the horizon"),
        "interpenetration": (interpenetration, (0.1, 0.2, 0.4, 0.7, 1.0), "radius",
                             "bodies sunk into the ground"),
        "teleport": (teleport, (0.05, 0.1, 0.2, 0.5, 1.0), "scene extent",
                     "sideways jump at mid-horizon"),
    }
    for name, (fn, mags, unit, doc) in violations.items():
        CORRUPTIONS.register(name, Corruption(name, "violation", mags, fn, unit=unit, doc=doc))
    assert set(nuisances) == set(NUISANCES) and set(violations) == set(VIOLATIONS)


_register()
