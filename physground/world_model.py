"""The `WorldModel` protocol, the privileged `Anchor` protocol and the model registry.

A model sees an `Observation` (the first ``context`` frames and states, the camera, dt and
the given statics; `physground.observation`) and returns a `Prediction` for the next
``horizon`` frames in the modalities it supports. Trainable models also expose
``parameters()`` and save/load a checkpoint (weights plus a JSON config).

An *anchor* (the `reference` re-simulation) is no model: it re-runs the simulator with the
truth's own parameters to calibrate scores, so it takes the whole `Rollout` through a
separate method, `Anchor.anchor`, that the benchmark calls only for anchors. It is shown as
an anchor row in reports, never ranked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from physground.registry import Registry
from physground.rollout import Prediction, Rollout

if TYPE_CHECKING:
    from physground.observation import Observation

Modality = Literal["state", "pixels"]

MODELS: Registry[Any] = Registry("model", providers=("physground.learned",))


@runtime_checkable
class WorldModel(Protocol):
    """Anything that predicts the future of a scene from an observation of its start."""

    name: str
    modalities: frozenset[Modality]

    def predict(self, observation: Observation, horizon: int) -> Prediction:
        """Prediction for frames [observation.context, observation.context + horizon)."""
        ...


@runtime_checkable
class Anchor(Protocol):
    """A privileged score anchor that reads the ground truth (parameters included)."""

    name: str
    modalities: frozenset[Modality]

    def anchor(self, truth: Rollout, context: int, horizon: int) -> Prediction:
        """Its rollout of frames [context, context + horizon) of ``truth``."""
        ...


def get_model(name: str, **kwargs: Any) -> WorldModel:
    """Instantiate the model registered under ``name``."""
    return MODELS.get(name)(**kwargs)
