"""The `reference` model: the ground truth re-simulated with another discretization.

It re-runs the same scenario, parameters and seed with the scenario's
``reference_overrides`` (another integrator or timestep). Its error against the ground
truth is the physical noise floor that anchors normalized scores at 100, in the spirit of
Physics-IQ's physical-variance reference.
"""

from __future__ import annotations

from typing import ClassVar

from physground.errors import ValidationError
from physground.rollout import Prediction, Rollout
from physground.scenario import SCENARIOS
from physground.world_model import Modality


class ModelReference:
    """Re-simulates the context's scenario from its recorded config and parameters."""

    name: ClassVar[str] = "reference"
    modalities: ClassVar[frozenset[Modality]] = frozenset({"state", "pixels"})

    def predict(self, context: Rollout, horizon: int) -> Prediction:
        config = context.meta.get("scenario_config")
        if config is None:
            raise ValidationError(
                f"rollout {context.scenario} seed {context.seed} has no meta['scenario_config']"
                "; the reference model needs rollouts made by Scenario.generate"
            )
        factory = SCENARIOS.get(context.scenario)
        overrides = {**config, **factory.reference_overrides,
                     "num_frames": context.num_frames + horizon}
        scenario = factory(**overrides)
        (resim,) = scenario.simulate([dict(context.params)], [context.seed], context.split)
        window = resim.target(context.num_frames, horizon)
        return Prediction.for_rollout(
            context, model=self.name, context=context.num_frames, horizon=horizon,
            states=window.states, frames=window.frames, masks=window.masks,
        )
