"""The `reference` anchor: the ground truth re-simulated with another discretization.

It re-runs the same scenario, parameters and seed with the scenario's
``reference_overrides`` (another integrator or timestep). Its error against the ground
truth is the physical noise floor that anchors normalized scores at 100, in the spirit of
Physics-IQ's physical-variance reference.

It is an `Anchor`, not a `WorldModel`: it legitimately reads the truth's parameters and
recorded config, so it has no ``predict(observation)``; the benchmark calls
`ModelReference.anchor` with the whole rollout, a path no model is given.
"""

from __future__ import annotations

from typing import ClassVar

from physground.errors import ValidationError
from physground.rollout import Prediction, Rollout
from physground.scenario import SCENARIOS
from physground.world_model import Modality


class ModelReference:
    """Re-simulates a rollout from its recorded config and parameters (privileged)."""

    name: ClassVar[str] = "reference"
    modalities: ClassVar[frozenset[Modality]] = frozenset({"state", "pixels"})

    def anchor(self, truth: Rollout, context: int, horizon: int) -> Prediction:
        """Frames [context, context + horizon) of ``truth`` re-simulated."""
        config = truth.meta.get("scenario_config")
        if config is None:
            raise ValidationError(
                f"rollout {truth.scenario} seed {truth.seed} has no meta['scenario_config']"
                "; the reference anchor needs rollouts made by Scenario.generate"
            )
        truth.target(context, horizon)  # checks that the window exists
        factory = SCENARIOS.get(truth.scenario)
        overrides = {**config, **factory.reference_overrides,
                     "num_frames": context + horizon}
        scenario = factory(**overrides)
        (resim,) = scenario.simulate([dict(truth.params)], [truth.seed], truth.split)
        window = resim.target(context, horizon)
        return Prediction.for_rollout(
            truth, model=self.name, context=context, horizon=horizon,
            states=window.states, frames=window.frames, masks=window.masks,
        )
