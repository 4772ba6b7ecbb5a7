"""Scoring (truth, prediction) pairs into tidy rows: one per metric and horizon step.

A prediction that cannot be scored (NaN/Inf, wrong shape, dtype or length, a model
failure, missing inputs) gets a row per requested metric and horizon step with value NaN
and the reason in ``failure``: failures are recorded, never dropped. Rows whose metric is
undefined for the *truth* (e.g. no bounce to measure a restitution from) carry a failure
starting with ``"undefined: "`` and are excluded from normalized scores.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from physground.metrics.batch import Batch
from physground.metrics.registry import (
    METRICS,
    UNDEFINED_PREFIX,
    Metric,
    MetricUndefinedError,
    batch_values,
)

from physground.errors import PhysgroundError
from physground.rollout import Prediction, Rollout

NONFINITE = "metric value is NaN or Inf (the prediction yields non-finite physical quantities)"
DEFAULT_CHUNK = 2048


def applicable_metrics(scenario: Any, metrics: Sequence[str] | None = None) -> list[str]:
    """Registered metrics (or those in ``metrics``) that apply to ``scenario``.

    ``scenario`` is a registry name such as ``"rigid/projectile"`` or a Scenario instance;
    a metric applies when the scenario emits its required states (or renders, for pixel
    metrics) and declares at least one of its required laws.
    """
    if isinstance(scenario, str):
        from physground.scenario import get_scenario

        scenario = get_scenario(scenario)
    names = METRICS.names() if metrics is None else METRICS.select(metrics)
    return [n for n in names if METRICS.get(n).applies_to(scenario)]


def evaluate(truth: Rollout, prediction: Prediction, metrics: Sequence[str]) -> list[dict]:
    """Tidy rows ``{"metric", "horizon" (1..H), "value", "failure"}`` for one pair."""
    table = evaluate_batch([truth], [prediction], metrics)
    return [
        {"metric": str(m), "horizon": int(h), "value": float(v), "failure": str(f)}
        for m, h, v, f in zip(table["metric"], table["horizon"], table["value"],
                              table["failure"], strict=True)
    ]


def evaluate_batch(
    truths: Sequence[Rollout],
    predictions: Sequence[Prediction],
    metrics: Sequence[str],
    *,
    chunk_size: int = DEFAULT_CHUNK,
    device: str = "cpu",
) -> pd.DataFrame:
    """Score many pairs at once; a DataFrame with columns ``rollout`` (index into the
    inputs), ``scenario``, ``split``, ``seed``, ``metric``, ``horizon``, ``value``,
    ``failure``.

    Pairs that share scenario, context, horizon and array shapes are stacked (``chunk_size``
    at a time) and every metric runs vectorized over the stack.
    """
    if len(truths) != len(predictions):
        raise PhysgroundError(
            f"evaluate_batch got {len(truths)} truths and {len(predictions)} predictions"
        )
    names = METRICS.select(metrics)
    resolved = [METRICS.get(n) for n in names]
    parts: list[dict[str, np.ndarray]] = []
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, (truth, pred) in enumerate(zip(truths, predictions, strict=True)):
        reason = _check(truth, pred)
        if reason is not None:
            for metric in resolved:
                parts.append(_rows(np.array([i]), metric.name, np.full((1, pred.horizon), np.nan),
                                   np.full((1, pred.horizon), reason, dtype=object)))
            continue
        groups[_group_key(truth, pred)].append(i)
    for indices in groups.values():
        for start in range(0, len(indices), chunk_size):
            chunk = np.asarray(indices[start:start + chunk_size])
            parts.extend(_score_chunk(truths, predictions, chunk, resolved, device))
    return _assemble(parts, truths)


def _check(truth: Rollout, pred: Prediction) -> str | None:
    """Why the pair cannot be scored, or None."""
    if pred.scenario != truth.scenario:
        return f"prediction is for scenario '{pred.scenario}', truth is '{truth.scenario}'"
    try:
        target = truth.target(pred.context, pred.horizon)
    except PhysgroundError as err:
        return str(err)
    if pred.context < 1:
        return f"prediction context is {pred.context}, expected >= 1 frame"
    return pred.check_against(target)


def _group_key(truth: Rollout, pred: Prediction) -> tuple:
    def shapes(arrays: dict[str, Any]) -> tuple:
        return tuple(sorted((k, np.shape(v)) for k, v in arrays.items()))

    stop = pred.context + pred.horizon
    truth_shapes = tuple(sorted((k, np.shape(v)[1:]) for k, v in truth.states.items()))
    return (truth.scenario, pred.context, pred.horizon, stop <= truth.num_frames,
            truth_shapes, shapes(pred.states), shapes(truth.static),
            None if truth.frames is None else np.shape(truth.frames)[1:],
            None if pred.frames is None else np.shape(pred.frames),
            truth.masks is None, pred.masks is None)


def _score_chunk(truths: Sequence[Rollout], predictions: Sequence[Prediction],
                 chunk: np.ndarray, metrics: list[Metric], device: str) -> list[dict]:
    horizon = predictions[chunk[0]].horizon
    parts = []
    try:
        batch = Batch.stack([truths[i] for i in chunk], [predictions[i] for i in chunk],
                            device=device)
    except PhysgroundError as err:
        reason = np.full((len(chunk), horizon), str(err), dtype=object)
        return [_rows(chunk, m.name, np.full(reason.shape, np.nan), reason) for m in metrics]
    for metric in metrics:
        values, failure = _run_metric(metric, batch, truths, predictions, chunk)
        parts.append(_rows(chunk, metric.name, values, failure))
    return parts


def _run_metric(metric: Metric, batch: Batch, truths: Sequence[Rollout],
                predictions: Sequence[Prediction], chunk: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    shape = (len(chunk), batch.horizon)
    failure = np.full(shape, "", dtype=object)
    batch.undefined.clear()
    try:
        if metric.batch_fn is not None:
            values = batch_values(metric.batch_fn, batch)
        else:
            values = np.stack([np.asarray(metric.fn(truths[i], predictions[i]), np.float64)
                               for i in chunk]).reshape(shape)
    except MetricUndefinedError as err:
        failure[:] = UNDEFINED_PREFIX + str(err)
        return np.full(shape, np.nan), failure
    except PhysgroundError as err:
        failure[:] = f"{metric.name}: {err}"
        return np.full(shape, np.nan), failure
    values = np.array(values, dtype=np.float64, copy=True)
    for mask, reason in batch.undefined:
        failure[mask] = UNDEFINED_PREFIX + reason
    bad = ~np.isfinite(values) & (failure == "")
    failure[bad] = NONFINITE
    values[failure != ""] = np.nan
    batch.undefined.clear()
    return values, failure


def _rows(rollouts: np.ndarray, metric: str, values: np.ndarray,
          failure: np.ndarray) -> dict[str, np.ndarray]:
    n, horizon = values.shape
    return {
        "rollout": np.repeat(rollouts, horizon),
        "metric": np.full(n * horizon, metric, dtype=object),
        "horizon": np.tile(np.arange(1, horizon + 1), n),
        "value": values.reshape(-1),
        "failure": failure.reshape(-1),
    }


COLUMNS = ["rollout", "scenario", "split", "seed", "metric", "horizon", "value", "failure"]


def _assemble(parts: list[dict[str, np.ndarray]], truths: Sequence[Rollout]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    rollout = cols["rollout"]
    scenarios = np.array([t.scenario for t in truths], dtype=object)
    splits = np.array([t.split for t in truths], dtype=object)
    seeds = np.array([t.seed for t in truths], dtype=np.int64)
    frame = pd.DataFrame({
        "rollout": rollout,
        "scenario": pd.Categorical(scenarios[rollout]),
        "split": pd.Categorical(splits[rollout]),
        "seed": seeds[rollout],
        "metric": pd.Categorical(cols["metric"]),
        "horizon": cols["horizon"].astype(np.int64),
        "value": cols["value"],
        "failure": pd.Categorical(cols["failure"]),
    })
    order = np.lexsort((frame["horizon"].to_numpy(), frame["metric"].cat.codes.to_numpy(),
                        rollout))
    return frame.iloc[order].reset_index(drop=True)
