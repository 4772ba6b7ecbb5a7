"""Trivial baselines that anchor the normalized scores at 0.

`copy-last` repeats the last context frame (states and pixels); `constant-velocity`
extrapolates positions with the last velocity (finite difference of the last two context
frames) and copies everything else. Neither reads the physical parameters.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from physground.observation import Observation
from physground.rollout import Prediction
from physground.world_model import Modality

# State names that are positions, and the velocity each one's time derivative is stored in.
POSITION_VELOCITY = {"pos": "vel", "x": "v"}


def _repeat_last(array: np.ndarray, horizon: int) -> np.ndarray:
    return np.repeat(array[-1:], horizon, axis=0)


class BaselineCopyLast:
    """Predicts that nothing moves: every future frame equals the last context frame."""

    name: ClassVar[str] = "copy-last"
    modalities: ClassVar[frozenset[Modality]] = frozenset({"state", "pixels"})

    def predict(self, context: Observation, horizon: int) -> Prediction:
        return Prediction.for_observation(
            context, model=self.name, horizon=horizon,
            states={k: _repeat_last(v, horizon) for k, v in context.states.items()},
            frames=None if context.frames is None else _repeat_last(context.frames, horizon),
            masks=None if context.masks is None else _repeat_last(context.masks, horizon),
        )


class BaselineConstantVelocity:
    """Extrapolates positions linearly from the last two context frames."""

    name: ClassVar[str] = "constant-velocity"
    modalities: ClassVar[frozenset[Modality]] = frozenset({"state", "pixels"})

    def predict(self, context: Observation, horizon: int) -> Prediction:
        states = {k: _repeat_last(v, horizon) for k, v in context.states.items()}
        steps = np.arange(1, horizon + 1, dtype=np.float64)
        for pos_name, vel_name in POSITION_VELOCITY.items():
            if pos_name not in context.states:
                continue
            pos = np.asarray(context.states[pos_name])
            velocity = (pos[-1] - pos[-2]) / context.dt if len(pos) > 1 else np.zeros_like(pos[-1])
            shape = (horizon,) + (1,) * velocity.ndim
            states[pos_name] = pos[-1] + steps.reshape(shape) * context.dt * velocity
            if vel_name in context.states:
                states[vel_name] = np.repeat(velocity[None], horizon, axis=0)
        return Prediction.for_observation(
            context, model=self.name, horizon=horizon,
            states=states,
            frames=None if context.frames is None else _repeat_last(context.frames, horizon),
            masks=None if context.masks is None else _repeat_last(context.masks, horizon),
        )
