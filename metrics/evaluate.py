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
import torch

from physground.errors import PhysgroundError
from physground.metrics.batch import Batch
from physground.metrics.registry import (
    METRICS,
    UNDEFINED_PREFIX,
    Metric,
    MetricUndefinedError,
    batch_values,
)
from physground.rollout import Prediction, Rollout

NONFINITE = "metric value is NaN or Inf (the prediction yields non-finite physical quantities)"
DEFAULT_CHUNK = 256
CHUNK_BYTES = 64 * 2**20  # float64 inputs per chunk; temporaries take a few times more


def applicable_metrics(scenario: Any, metrics: Sequence[str] | None = None,
                       modalities: Sequence[str] | None = None) -> list[str]:
    """Registered metrics (or those in ``metrics``) that apply to ``scenario``.

    ``scenario`` is a registry name such as ``"rigid/projectile"`` or a Scenario instance;
    a metric applies when the scenario emits its required states (or renders, for pixel
    metrics) and declares at least one of its required laws. ``modalities`` (a model's,
    e.g. ``["pixels"]``) further keeps only what that model can be scored on: a
    pixels-only model gets pixel metrics and rigid-body state metrics derived from masks.
    """
    if isinstance(scenario, str):
        from physground.scenario import get_scenario

        scenario = get_scenario(scenario)
    names = METRICS.names() if metrics is None else METRICS.select(metrics)
    return [n for n in names if METRICS.get(n).applies_to(scenario, modalities)]


def metric_table(scenarios: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per registered metric: name, direction, unit, modality, tags, description
    and the registered scenarios (or those in ``scenarios``) it applies to."""
    from physground.scenario import SCENARIOS, get_scenario

    names = SCENARIOS.names() if scenarios is None else list(scenarios)
    instances = {name: get_scenario(name) for name in names}
    rows = []
    for metric_name in METRICS.names():
        metric = METRICS.get(metric_name)
        rows.append({
            "metric": metric_name, "higher_is_better": metric.higher_is_better,
            "unit": metric.unit, "modality": metric.modality,
            "tags": ",".join(sorted(METRICS.tags(metric_name))),
            "scenarios": ",".join(n for n, sc in instances.items() if metric.applies_to(sc)),
            "description": metric.description,
        })
    return pd.DataFrame(rows)


def evaluate(truth: Rollout, prediction: Prediction, metrics: Sequence[str]) -> pd.DataFrame:
    """Score one pair: a tidy DataFrame with one row per metric and horizon step, columns
    ``metric``, ``horizon`` (1..H), ``value`` and ``failure`` ("" when scored; NaN values
    keep their reason). `evaluate_batch` scores many pairs at once."""
    table = evaluate_batch([truth], [prediction], metrics)
    return pd.DataFrame({
        "metric": table["metric"].astype(str).to_numpy(),
        "horizon": table["horizon"].astype("int64").to_numpy(),
        "value": table["value"].astype("float64").to_numpy(),
        "failure": table["failure"].astype(str).to_numpy(),
    })


def evaluate_batch(
    truths: Sequence[Rollout],
    predictions: Sequence[Prediction],
    metrics: Sequence[str],
    *,
    chunk_size: int = DEFAULT_CHUNK,
    device: str = "cpu",
    threads: int | None = 1,
) -> pd.DataFrame:
    """Score many pairs at once; a DataFrame with columns ``rollout`` (index into the
    inputs), ``scenario``, ``split``, ``seed``, ``metric``, ``horizon``, ``value``,
    ``failure`` (``metric``, ``scenario``, ``split`` and ``failure`` are categorical).

    Pairs that share scenario, context, horizon and array shapes are stacked (``chunk_size``
    at a time) and every metric runs vectorized over the stack. Rows come grouped by chunk,
    then metric (in the requested order), then rollout, then horizon.

    ``threads``: torch intra-op threads while scoring (restored afterwards; None keeps the
    current setting). Metrics are many small tensor operations, for which intra-op
    threading costs more than it gains: on 2 shared cores one thread scored 2,000 rollouts
    in 0.49 s and two threads in 8.5 s (`benchmarks/speed/bench_metrics.py`). Parallelize
    over tasks (processes) instead.
    """
    if len(truths) != len(predictions):
        raise PhysgroundError(
            f"evaluate_batch got {len(truths)} truths and {len(predictions)} predictions"
        )
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _evaluate_batch(truths, predictions, metrics, chunk_size, device)
    finally:
        torch.set_num_threads(previous)


def _evaluate_batch(truths: Sequence[Rollout], predictions: Sequence[Prediction],
                    metrics: Sequence[str], chunk_size: int, device: str) -> pd.DataFrame:
    names = METRICS.select(metrics)
    resolved = [METRICS.get(n) for n in names]
    table = _Table(names)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, (truth, pred) in enumerate(zip(truths, predictions, strict=True)):
        reason = _check(truth, pred)
        if reason is not None:
            codes = np.full((1, pred.horizon), table.code(reason), dtype=np.int32)
            for metric in resolved:
                table.add(np.array([i]), metric.name, np.full((1, pred.horizon), np.nan), codes)
            continue
        groups[_group_key(truth, pred)].append(i)
    for indices in groups.values():
        size = _chunk_for(truths[indices[0]], predictions[indices[0]], chunk_size)
        for start in range(0, len(indices), size):
            chunk = np.asarray(indices[start:start + size])
            _score_chunk(truths, predictions, chunk, resolved, device, table)
    return table.frame(truths)


class _Table:
    """Columnar accumulator of result rows; failure reasons are stored as integer codes."""

    def __init__(self, metrics: list[str]) -> None:
        self.metrics = {name: i for i, name in enumerate(metrics)}
        self.reasons: dict[str, int] = {"": 0}
        self.parts: list[tuple[np.ndarray, int, np.ndarray, np.ndarray]] = []

    def code(self, reason: str) -> int:
        return self.reasons.setdefault(reason, len(self.reasons))

    def add(self, rollouts: np.ndarray, metric: str, values: np.ndarray,
            codes: np.ndarray) -> None:
        self.parts.append((rollouts, self.metrics[metric], values, codes))

    def frame(self, truths: Sequence[Rollout]) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
        rollout = np.concatenate([np.repeat(r, v.shape[1]) for r, _, v, _ in self.parts])
        metric = np.concatenate([np.full(v.size, m, dtype=np.int32) for _, m, v, _ in self.parts])
        horizon = np.concatenate([np.tile(np.arange(1, v.shape[1] + 1), v.shape[0])
                                  for _, _, v, _ in self.parts])
        value = np.concatenate([v.reshape(-1) for _, _, v, _ in self.parts])
        failure = np.concatenate([c.reshape(-1) for _, _, _, c in self.parts])
        scenarios = sorted({t.scenario for t in truths})
        splits = sorted({t.split for t in truths})
        scenario_code = np.array([scenarios.index(t.scenario) for t in truths], np.int32)
        split_code = np.array([splits.index(t.split) for t in truths], np.int32)
        seeds = np.array([t.seed for t in truths], dtype=np.int64)
        return pd.DataFrame({
            "rollout": rollout.astype(np.int64),
            "scenario": pd.Categorical.from_codes(scenario_code[rollout], scenarios),
            "split": pd.Categorical.from_codes(split_code[rollout], splits),
            "seed": seeds[rollout],
            "metric": pd.Categorical.from_codes(metric, list(self.metrics)),
            "horizon": horizon.astype(np.int64),
            "value": value,
            "failure": pd.Categorical.from_codes(failure, list(self.reasons)),
        })


def _chunk_for(truth: Rollout, pred: Prediction, chunk_size: int) -> int:
    """Rollouts per chunk: ``chunk_size``, fewer when one pair's arrays (frames!) are big."""
    frames = pred.context + pred.horizon
    per_frame = 8 * sum(int(np.prod(np.shape(v)[1:])) for v in truth.states.values())
    if truth.frames is not None:  # uint8 truth and prediction, float32 grey levels
        per_frame += 3 * int(np.prod(np.shape(truth.frames)[1:]))
    per_rollout = frames * per_frame + pred.horizon * per_frame
    return int(max(1, min(chunk_size, CHUNK_BYTES // max(per_rollout, 1))))


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

    truth_shapes = tuple(sorted((k, np.shape(v)[1:]) for k, v in truth.states.items()))
    return (truth.scenario, pred.context, pred.horizon, truth_shapes, shapes(pred.states),
            shapes(truth.static),
            None if truth.frames is None else np.shape(truth.frames)[1:],
            None if pred.frames is None else np.shape(pred.frames),
            truth.masks is None, pred.masks is None)


def _score_chunk(truths: Sequence[Rollout], predictions: Sequence[Prediction],
                 chunk: np.ndarray, metrics: list[Metric], device: str, table: _Table) -> None:
    horizon = predictions[chunk[0]].horizon
    try:
        batch = Batch.stack([truths[i] for i in chunk], [predictions[i] for i in chunk],
                            device=device)
    except PhysgroundError as err:
        codes = np.full((len(chunk), horizon), table.code(str(err)), dtype=np.int32)
        for m in metrics:
            table.add(chunk, m.name, np.full(codes.shape, np.nan), codes)
        return
    for metric in metrics:
        values, codes = _run_metric(metric, batch, truths, predictions, chunk, table)
        table.add(chunk, metric.name, values, codes)


def _run_metric(metric: Metric, batch: Batch, truths: Sequence[Rollout],
                predictions: Sequence[Prediction], chunk: np.ndarray, table: _Table
                ) -> tuple[np.ndarray, np.ndarray]:
    shape = (len(chunk), batch.horizon)
    codes = np.zeros(shape, dtype=np.int32)
    batch.undefined.clear()
    if batch.horizon < metric.min_horizon:
        codes[:] = table.code(f"{UNDEFINED_PREFIX}{metric.name} needs a horizon of at least "
                              f"{metric.min_horizon} steps, the suite predicts {batch.horizon}")
        return np.full(shape, np.nan), codes
    try:
        if metric.batch_fn is not None:
            values = batch_values(metric.batch_fn, batch)
        else:
            values = np.stack([np.asarray(metric.fn(truths[i], predictions[i]), np.float64)
                               for i in chunk]).reshape(shape)
    except MetricUndefinedError as err:
        codes[:] = table.code(UNDEFINED_PREFIX + str(err))
        return np.full(shape, np.nan), codes
    except PhysgroundError as err:
        codes[:] = table.code(f"{metric.name}: {err}")
        return np.full(shape, np.nan), codes
    values = np.array(values, dtype=np.float64, copy=True)
    for mask, reason in batch.undefined:
        codes[mask] = table.code(UNDEFINED_PREFIX + reason)
    bad = ~np.isfinite(values) & (codes == 0)
    if bad.any():
        codes[bad] = table.code(NONFINITE)
    values[codes != 0] = np.nan
    batch.undefined.clear()
    return values, codes


COLUMNS = ["rollout", "scenario", "split", "seed", "metric", "horizon", "value", "failure"]
