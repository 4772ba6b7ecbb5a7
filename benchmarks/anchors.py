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
from dataclasses import asdict, dataclass, field, replace
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


DELIVERED_ANCHORS = ("truth", "second-take", "shuffled", "copy-last", "constant-velocity")


def no_physics_anchors(truths: Sequence[Rollout], context: int, horizon: int,
                       config: dict[str, Any]) -> dict[str, list[Prediction]]:
    """The `DELIVERED_ANCHORS`' predictions of every truth: its window, the second take,
    shuffled, and the baselines' predictions from the observation."""
    from physground.benchmarks.tasks import predict_safely
    from physground.world_model import MODELS

    out = {kind: anchor_predictions(kind, truths, context, horizon, config)
           for kind in ANCHOR_KINDS}
    for name in DELIVERED_ANCHORS[len(ANCHOR_KINDS):]:
        baseline = MODELS.get(name)()
        out[name] = [predict_safely(baseline, name, t, context, horizon) for t in truths]
    return out


def delivered_anchor_results(model: str, truths: Sequence[Rollout],
                             deliveries: Sequence[Any | None],
                             anchors: dict[str, Sequence[Prediction]],
                             metrics: tuple[str, ...]) -> pd.DataFrame:
    """Result rows of the anchors delivered as ``model``'s files were, for the scores'
    floor and uninformative level of that model (`physground.metrics.scores`, "Delivered
    anchors"): each of `DELIVERED_ANCHORS` in ``anchors`` (`no_physics_anchors`), its
    frames passed through ``deliveries[i]`` (a `Delivery`; None: not delivered) and
    measured from frames alone; plus ``reference-delivery`` rows, the truth window
    through each tolerated delivery (one ``sample`` each). A delivery this machine cannot
    reproduce leaves its rollout with the native anchors."""
    from physground.benchmarks.delivery import (
        REFERENCE_DELIVERIES,
        DeliveryUnavailable,
        reference_delivery,
    )
    from physground.benchmarks.tasks import empty_results, score
    from physground.metrics.scores import REFERENCE_DELIVERY, delivered_name

    keep = [i for i, d in enumerate(deliveries) if d is not None]
    rows = []

    def scored(name: str, deliver: Any, sources: Sequence[Prediction],
               sample: int | None = None) -> None:
        pairs = []
        for i in keep:
            source = sources[i]
            if source.failure or source.frames is None:
                continue
            try:
                frames = deliver(i).apply(np.asarray(source.frames, dtype=np.uint8))
            except DeliveryUnavailable:
                continue
            pairs.append((truths[i], replace(source, model=name, states={}, masks=None,
                                             frames=frames)))
        if pairs:
            frame = score(name, [t for t, _ in pairs], [p for _, p in pairs], metrics, None)
            if sample is not None:
                frame["sample"] = np.int64(sample)
            rows.append(frame)

    if keep and metrics:
        for kind in DELIVERED_ANCHORS:
            scored(delivered_name(kind, model), lambda i: deliveries[i], anchors[kind])
        for sample, reference in enumerate(REFERENCE_DELIVERIES):
            scored(delivered_name(REFERENCE_DELIVERY, model),
                   lambda i, r=reference: reference_delivery(
                       r, *np.shape(truths[i].frames)[1:3]), anchors["truth"], sample)
    return pd.concat(rows, ignore_index=True) if rows else empty_results()
