"""The Physics-IQ score: its four metrics normalised by the physical variance between
two takes of the same scene (Motamed et al. 2025), written from the definition in its
public scoring code.

Physics-IQ films every scenario twice; the "physical variance" of a metric is its value
when the second real take is scored as a prediction of the first. For physground that
second take is `Scenario.second_take` (the ``second-take`` anchor of the results: the same
scene with parameters moved within measurement precision and another discretization).

With ``m_k`` a model's mean of metric ``k`` over the clips it is scored on (each clip's
value is the metric at the last step, ``reduce = "last"``: Physics-IQ's per-clip number)
and ``p_k`` the second take's mean over the same clips::

    score = 100 * clip((m_st / p_st + m_s / p_s + m_ws / p_ws) / 3 - (m_mse - p_mse), 0, 1)

(st: spatiotemporal IoU, s: spatial IoU, ws: weighted spatial IoU, mse: MSE in [0, 1]
units). A model as good as the second take scores 100; the truth itself scores 100 too
(its IoUs are 1 >= the take's, clipped). A failed clip (no prediction, NaN) counts as the
worst value of each metric: IoU 0 and MSE 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from physground.metrics.scores import SECOND_TAKE, model_rows, rollout_errors

IOU_METRICS = ("piq_spatiotemporal_iou", "piq_spatial_iou", "piq_weighted_spatial_iou")
MSE_METRIC = "piq_mse"
PIQ_METRICS = (*IOU_METRICS, MSE_METRIC)
WORST = {**dict.fromkeys(IOU_METRICS, 0.0), MSE_METRIC: 1.0}  # a failed clip
CLIP = ["scenario", "split", "rollout"]
RATIO_EPS = 1e-8  # as Physics-IQ: a second take with IoU 0 does not divide by zero


def physics_iq_score(model: dict[str, float], take: dict[str, float]) -> float:
    """The score (0..100) from the mean metric values of a model and of the second take
    (keys `PIQ_METRICS`)."""
    ratios = [model[k] / (take[k] + RATIO_EPS) for k in IOU_METRICS]
    raw = sum(ratios) / 3.0 - (model[MSE_METRIC] - take[MSE_METRIC])
    return 100.0 * float(np.clip(raw, 0.0, 1.0))


def physics_iq_scores(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, scope) with the Physics-IQ score and the means it is made of;
    scope is each scenario and ``all`` (every clip of every scenario, equally weighted,
    as Physics-IQ averages over its scenarios). Empty when the results lack the four
    ``piq_*`` metrics or the second-take anchor."""
    columns = ["model", "scope", "physics_iq_score", "clips",
               *[f"{k}_mean" for k in PIQ_METRICS],
               *[f"{k}_take" for k in PIQ_METRICS]]
    results = model_rows(results)  # Physics-IQ normalises by its own second take only
    have = set(results["metric"].astype(str).unique()) if len(results) else set()
    if not set(PIQ_METRICS) <= have or SECOND_TAKE not in set(results["model"].astype(str)):
        return pd.DataFrame(columns=columns)
    per = rollout_errors(results[results["metric"].isin(PIQ_METRICS)])
    per = per[~per["undefined"]].copy()
    worst = per["metric"].map(WORST)
    per["value"] = np.where(per["failed"], worst, per["value"])
    # samples of a stochastic model: each clip's value is the mean over its samples
    per = per.groupby(["model", *CLIP, "metric"], as_index=False)["value"].mean()
    wide = per.pivot_table(index=["model", *CLIP], columns="metric", values="value",
                           aggfunc="first").reset_index()
    take = wide[wide["model"] == SECOND_TAKE].drop(columns="model")
    rows = []
    for model, part in wide.groupby("model", sort=False):
        both = part.merge(take, on=CLIP, suffixes=("", "_take")).dropna(
            subset=[*PIQ_METRICS, *[f"{k}_take" for k in PIQ_METRICS]])
        scopes = [("all", both)] + [(s, g) for s, g in both.groupby("scenario", sort=True)]
        for scope, clips in scopes:
            if clips.empty:
                continue
            m = {k: float(clips[k].mean()) for k in PIQ_METRICS}
            p = {k: float(clips[f"{k}_take"].mean()) for k in PIQ_METRICS}
            rows.append({"model": model, "scope": scope,
                         "physics_iq_score": physics_iq_score(m, p), "clips": len(clips),
                         **{f"{k}_mean": m[k] for k in PIQ_METRICS},
                         **{f"{k}_take": p[k] for k in PIQ_METRICS}})
    return pd.DataFrame(rows, columns=columns)
