"""The `WorldModel` protocol and the model registry.

A model sees the first ``context`` frames of a Rollout and returns a `Prediction` for the
next ``horizon`` frames in the modalities it supports. Trainable models also expose
``parameters()`` and save/load a checkpoint (weights plus a JSON config).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from physground.registry import Registry
from physground.rollout import Prediction, Rollout

Modality = Literal["state", "pixels"]

MODELS: Registry[Any] = Registry("model", providers=("physground.learned",))


@runtime_checkable
class WorldModel(Protocol):
    """Anything that predicts the future of a rollout from its first frames."""

    name: str
    modalities: frozenset[Modality]

    def predict(self, context: Rollout, horizon: int) -> Prediction:
        """Prediction for frames [len(context), len(context) + horizon)."""
        ...


def get_model(name: str, **kwargs: Any) -> WorldModel:
    """Instantiate the model registered under ``name``."""
    return MODELS.get(name)(**kwargs)
