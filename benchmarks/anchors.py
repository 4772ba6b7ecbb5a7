"""Score anchors: predictions made from the data, not by a model (`physground.metrics.scores`).

- ``truth``: the target window itself (every metric at its ideal value: the score's 100);
- ``second-take``: the scene re-simulated as a second physical realisation
  (`Scenario.second_take`: parameters within measurement precision, another solver
  setting). Its error is the physical noise floor of each rollout;
- ``shuffled``: rollout i predicted by another rollout of the same split with the same
  array shapes (the next one, cyclically): a physically valid prediction that ignores the
  context, the uninformative level (the score's 0).

Anchors are scored on every applicable metric and shown beside the models, never ranked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from physground.provenance import content_hash
from physground.rollout import Prediction, Rollout
from physground.scenario import get_scenario
from physground.storage import Dataset

ANCHOR_KINDS = ("truth", "second-take", "shuffled")


def window_prediction(truth: Rollout, source: Rollout, name: str, context: int,
                      horizon: int) -> Prediction:
    """``source``'s frames [context, context + horizon) as a prediction of ``truth``."""
    window = source.target(context, horizon)
    return Prediction.for_rollout(truth, model=name, context=context, horizon=horizon,
                                  states=dict(window.states), frames=window.frames,
                                  masks=window.masks)


def _shapes(rollout: Rollout) -> tuple:
    return tuple(sorted((k, np.shape(v)) for k, v in rollout.states.items())) + (
        np.shape(rollout.frames) if rollout.frames is not None else None,)


def shuffled_predictions(truths: Sequence[Rollout], context: int, horizon: int
                         ) -> list[Prediction]:
    """Rollout i predicted by the next rollout (cyclically) of the same split and shapes;
    a rollout without such a partner gets a failed prediction with the reason."""
    groups: dict[tuple, list[int]] = {}
    for i, truth in enumerate(truths):
        groups.setdefault((truth.split, _shapes(truth)), []).append(i)
    out: list[Prediction | None] = [None] * len(truths)
    for members in groups.values():
        for k, i in enumerate(members):
            if len(members) < 2:
                out[i] = Prediction.for_rollout(
                    truths[i], model="shuffled", context=context, horizon=horizon,
                    failure="shuffled anchor: no other rollout with the same array shapes")
                continue
            partner = truths[members[(k + 1) % len(members)]]
            out[i] = window_prediction(truths[i], partner, "shuffled", context, horizon)
    return [p for p in out if p is not None]


def anchor_predictions(kind: str, truths: Sequence[Rollout], context: int, horizon: int,
                       config: dict[str, Any]) -> list[Prediction]:
    """The ``kind`` anchor's prediction of each truth (see the module docstring)."""
    if kind == "truth":
        return [window_prediction(t, t, kind, context, horizon) for t in truths]
    if kind == "shuffled":
        return shuffled_predictions(truths, context, horizon)
    if kind == "second-take":
        if not truths:
            return []
        scenario = get_scenario(truths[0].scenario, **config)
        takes = scenario.second_take(truths)
        return [window_prediction(t, s, kind, context, horizon)
                for t, s in zip(truths, takes, strict=True)]
    raise ValueError(f"unknown anchor '{kind}', expected one of {ANCHOR_KINDS}")


@dataclass(frozen=True, kw_only=True)
class AnchorTask:
    """Score one anchor on every rollout of ``dataset`` (same rows as an `EvalTask`)."""

    kind: str
    scenario: str
    split: str
    dataset: str
    dataset_hash: str
    context: int
    horizon: int
    metrics: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.kind

    def key(self) -> str:
        data = asdict(self)
        data.pop("dataset")
        return "anchor-" + content_hash(data)[:16]

    def label(self) -> str:
        return f"{self.kind} on {self.scenario} {self.split}"

    def run(self) -> pd.DataFrame:
        from physground.benchmarks.tasks import score

        truths = Dataset(Path(self.dataset)).rollouts()
        predictions = anchor_predictions(self.kind, truths, self.context, self.horizon,
                                         dict(self.config))
        return score(self.kind, truths, predictions, self.metrics, None)
