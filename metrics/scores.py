"""Bounded scores in [0, 100]: 100 at the physical noise floor, 0 for an uninformative
prediction, monotone (log-linear) in the error in between.

Anchors (rows of the results table, scored like models, never ranked):

- ``truth``: the ground truth scored against itself, the ideal value of every metric;
- ``second-take``: the same scene re-simulated as a second physical realisation would
  differ (initial conditions perturbed at measurement precision, another timestep or
  solver; `physground.benchmarks.anchors`). Its error is the *physical noise floor*, as
  the variance between two real takes in Physics-IQ;
- ``shuffled``: another rollout of the same scenario and split, i.e. a physically valid
  prediction that ignores the context;
- the trivial baselines ``copy-last`` (frozen) and ``constant-velocity``: predictions that
  use the context but no physics.

The *uninformative* level of a rollout is the smallest error of the predictions that use
no physics (shuffled and the baselines present): scoring above 0 means predicting better
than anything obtainable without a physical model. Where such a prediction already
reaches the floor on an accuracy or pixel metric (spheres that do not collide within the
horizon move at constant velocity), the rollout cannot tell physics from no physics and
is left out (``unresolved``). Conservation and contact metrics take the smallest error
*above* the floor instead: their trivially perfect values (a frozen scene conserves
energy and never penetrates) are what the cap by accuracy neutralises (below).

Per (scenario, split, rollout, metric) the error of a model is ``e = |g(v) - g(v_truth)|``
per horizon step (``g(v) = 10^(-v/10)`` for decibel metrics such as PSNR, whose error is
the MSE; else the identity), reduced over the horizon as the metric declares (mean over
steps, or the value at the last step for running metrics). With the floor
``f = max(e_second_take, metric.floor)`` of that rollout (the metric's absolute resolution
in its unit, so a denominator is never round-off) and the uninformative level ``u`` of
that rollout::

    score = 100 * clip(ln(u / e) / ln(u / f), 0, 1)        (100 when e <= f)

Why this transform: Physics-IQ Verified scores each sample by its ratio to the physical
variance between two real takes, and The Well's VRMSE divides by the field's own
variance; both make errors comparable across scenes by a per-scene physical scale. A
ratio alone is unbounded and rewards nothing below the floor, so the ratio ``e / f`` is
read on a log scale between its two physical ends: the floor (not measurable: 100) and
the uninformative prediction (no information about this context: 0). Errors of physical
models span decades, which a log scale ranks evenly (as PSNR does for pixels); a model
that halves its error moves by the same amount anywhere on the scale. Failed predictions
(NaN/Inf, wrong shape, model errors) have an infinite error and score 0, never dropped.
A rollout whose floor reaches the uninformative level (fully chaotic within the horizon)
cannot rank anything: its score is NaN, counted in ``unresolved``.

Aggregation (`aggregate_scores`): per scenario first, then over scenarios. Within a
scenario, each metric family (accuracy, conservation, contact, pixels) has equal weight,
whatever its number of metrics and splits. Conservation and contact are credited only as
far as the motion itself is right: their family scores are capped by the accuracy
family's (the pixels family's for a frames-only model). A frozen prediction conserves
energy and momentum exactly and never penetrates; without the cap it would score high on
every plausibility metric while predicting nothing.

Delivered anchors (frames-only predictions read from files): a video's resolution and codec
blur and quantise the frames before any metric sees them, and its object states are
tracked from frames (an exact PNG folder's too). Anchor rows named
``<anchor>|<model>`` are the anchors' frames passed through ``<model>``'s own delivery
(`physground.benchmarks.delivery`) and measured from frames alone, as the prediction was;
for that model's rows they replace the native anchors: the uninformative level is the
smallest error of the delivered no-physics anchors (a frozen H.264 video is compared with
copy-last delivered the same way, not with its exact frames), and the floor is the error
of an ideal prediction delivered so (the larger of the delivered truth's and the
delivered second take's), capped by the truth's own error through the deliveries the
benchmark tolerates by definition (``reference-delivery|<model>``, one sample per
`REFERENCE_DELIVERIES`: H.264 CRF 23 and half resolution) and never below the native
floor. The cap keeps a delivery from buying score: beyond the tolerated nuisances a
blurrier or coarser file raises its floor no further, and its errors count in full; up
to them, the exact truth delivered so scores 100 by construction.

Stochastic models: with a ``sample`` column in the results (N predictions per rollout),
each sample is scored, and a cell reports the mean and the standard deviation over the N
per-sample scores (``score_std``; NaN with one sample).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from physground.errors import ValidationError
from physground.metrics.registry import FAMILIES, METRICS, UNDEFINED_PREFIX

TRUTH = "truth"
SECOND_TAKE = "second-take"
SHUFFLED = "shuffled"
SCORE_ANCHORS = (TRUTH, SECOND_TAKE, SHUFFLED)
BASELINES = ("copy-last", "constant-velocity")
REFERENCE = "reference"
# shown as anchor rows beside the models, never ranked
ANCHOR_MODELS = (TRUTH, SECOND_TAKE, REFERENCE, *BASELINES, SHUFFLED)
# predictions that use no physics: the score's 0
UNINFORMATIVE = (SHUFFLED, *BASELINES)
RESULT_KEYS = ["scenario", "split", "metric"]
GATED_FAMILIES = ("conservation", "contact")
NO_RANGE = "unresolved (floor >= uninformative)"
DELIVERED = "|"  # "<anchor>|<model>": an anchor delivered as <model>'s files were
REFERENCE_DELIVERY = "reference-delivery"  # the truth through each tolerated delivery


def delivered_name(anchor: str, model: str) -> str:
    """The results' model name of ``anchor`` delivered as ``model``'s files were."""
    return f"{anchor}{DELIVERED}{model}"


def is_delivered(models: pd.Series) -> np.ndarray:
    """Which rows are delivered anchors (scored for another model, never a model)."""
    return models.astype(str).str.contains(DELIVERED, regex=False).to_numpy()


def model_rows(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` without the delivered anchors: the rows of models and native anchors."""
    return results[~is_delivered(results["model"])] if len(results) else results


def _declared(metric: str) -> tuple[bool, bool, str, float]:
    m = METRICS.get(metric)
    return m.higher_is_better, m.decibel, m.reduce, m.floor


def has_anchors(results: pd.DataFrame) -> bool:
    """Whether scores can be computed: the truth and shuffled anchors are in the results
    (the second take sets the physical floor; without it only the metric floors apply)."""
    models = set(results["model"].astype(str).unique())
    return TRUTH in models and SHUFFLED in models


def rollout_errors(results: pd.DataFrame) -> pd.DataFrame:
    """One error per (model, scenario, split, metric, rollout, sample) against the truth
    anchor: ``error`` (>= 0, inf for a failed prediction), ``value`` (the metric value
    reduced over the horizon as declared), ``failed``, ``undefined``."""
    required = {"model", "scenario", "split", "rollout", "metric", "horizon", "value",
                "failure"}
    missing = required - set(results.columns)
    if missing:
        raise ValidationError(f"results table lacks columns {sorted(missing)}")
    df = results[sorted(required | ({"sample"} & set(results.columns)))].copy()
    if "sample" not in df:
        df["sample"] = 0
    df["sample"] = df["sample"].fillna(0).astype(np.int64)
    for col in ("model", "scenario", "split", "metric"):
        df[col] = df[col].astype(str)
    failure = df["failure"].astype(object).where(df["failure"].notna(), "").astype(str)
    df["undefined"] = failure.str.startswith(UNDEFINED_PREFIX).to_numpy()
    value = df["value"].to_numpy(dtype=np.float64)
    df["failed"] = ((failure != "").to_numpy() | ~np.isfinite(value)) & ~df["undefined"]
    truth = df[df["model"] == TRUTH]
    if truth.empty:
        raise ValidationError(f"scores need the '{TRUTH}' anchor in the results (have "
                              f"{sorted(df['model'].unique())})")
    row = ["scenario", "split", "rollout", "metric", "horizon"]
    ideal = truth[~truth["failed"] & ~truth["undefined"]].groupby(row)["value"].first()
    df = df.merge(ideal.rename("ideal").reset_index(), on=row, how="left")
    declared = {m: _declared(m) for m in df["metric"].unique()}
    decibel = df["metric"].map(lambda m: declared[m][1]).to_numpy(dtype=bool)
    with np.errstate(all="ignore"):
        v, t = df["value"].to_numpy(np.float64), df["ideal"].to_numpy(np.float64)
        v = np.where(decibel, 10.0 ** (-v / 10.0), v)
        t = np.where(decibel, 10.0 ** (-t / 10.0), t)
        err = np.abs(v - t)
    df["undefined"] |= ~np.isfinite(t) & ~df["failed"].to_numpy()
    df["error"] = np.where(df["failed"], np.inf, err)
    keys = ["model", "scenario", "split", "metric", "rollout", "sample"]
    df = df.sort_values([*keys, "horizon"], kind="stable")
    grouped = df.groupby(keys, sort=True)
    out = grouped.agg(failed=("failed", "any"), undefined=("undefined", "any"),
                      error_mean=("error", "mean"), error_last=("error", "last"),
                      value_mean=("value", "mean"), value_last=("value", "last")
                      ).reset_index()
    last = out["metric"].map(lambda m: declared[m][2] == "last").to_numpy(dtype=bool)
    out["error"] = np.where(last, out["error_last"], out["error_mean"])
    out["value"] = np.where(last, out["value_last"], out["value_mean"])
    out["undefined"] &= ~out["failed"]
    out.loc[out["undefined"], ["error", "value"]] = np.nan
    out.loc[out["failed"], "error"] = np.inf
    out.loc[out["failed"], "value"] = np.nan
    return out[[*keys, "error", "value", "failed", "undefined"]]


def bounded_score(error: np.ndarray, floor: np.ndarray, uninformative: np.ndarray
                  ) -> np.ndarray:
    """``100 * clip(ln(u / e) / ln(u / f), 0, 1)``; 100 at or below the floor, 0 at or
    beyond the uninformative level (and for infinite errors), NaN where ``u <= f`` or an
    input is NaN. Always within [0, 100] or NaN."""
    e, f, u = (np.asarray(a, dtype=np.float64) for a in (error, floor, uninformative))
    with np.errstate(all="ignore"):
        ratio = np.log(u / np.maximum(e, f)) / np.log(u / f)
        score = 100.0 * np.clip(ratio, 0.0, 1.0)
    score = np.where(np.isinf(e) & (e > 0), 0.0, score)
    resolved = (u > f) & np.isfinite(f) & np.isfinite(u) & (f > 0)
    return np.where(resolved & ~np.isnan(e), score, np.nan)


def rollout_scores(results: pd.DataFrame) -> pd.DataFrame:
    """`rollout_errors` with the ``floor`` and ``uninformative`` level of each (scenario,
    split, metric, rollout) and the bounded ``score`` of every row, anchors included;
    ``delivered`` marks the rows scored against delivered anchors (module docstring)."""
    errors = rollout_errors(results)
    delivered = is_delivered(errors["model"])
    channel, errors = errors[delivered], errors[~delivered]
    floors = pd.Series({m: _declared(m)[3] for m in errors["metric"].unique()}, dtype=float)
    at = ["scenario", "split", "metric", "rollout"]
    take = errors[(errors["model"] == SECOND_TAKE) & np.isfinite(errors["error"])]
    take = take.groupby(at)["error"].median().rename("take_error").reset_index()
    out = errors.merge(take, on=at, how="left")
    metric_floor = out["metric"].map(floors).to_numpy(dtype=np.float64)
    out["floor"] = np.fmax(out["take_error"].to_numpy(dtype=np.float64), metric_floor)
    out = out.merge(_uninformative(out, at), on=at, how="left")
    out["delivered"] = False
    if len(channel):
        out = _delivered_levels(out, channel, at)
    out["score"] = bounded_score(out["error"], out["floor"], out["uninformative"])
    out.loc[out["undefined"], "score"] = np.nan
    return out.drop(columns=["take_error"])


def _uninformative(errors: pd.DataFrame, key: list[str], anchor: str = "model"
                   ) -> pd.Series:
    """The smallest error among the predictions that use no physics (another rollout, the
    frozen last frame, constant velocity) per ``key``; for conservation and contact only
    those above the floor (a frozen scene conserves energy exactly)."""
    gated = errors["metric"].map(lambda m: METRICS.get(m).family in GATED_FAMILIES)
    pool = errors[errors[anchor].isin(UNINFORMATIVE) & np.isfinite(errors["error"])
                  & (~gated | (errors["error"] > errors["floor"]))]
    return pool.groupby(key)["error"].min().rename("uninformative")


def _delivered_levels(out: pd.DataFrame, channel: pd.DataFrame, at: list[str]
                      ) -> pd.DataFrame:
    """Floor and uninformative level of each model with delivered anchors, from them."""
    parts = channel["model"].str.split(DELIVERED, n=1, expand=True)
    channel = channel.assign(model=parts[1].to_numpy(), anchor=parts[0].to_numpy())
    channel = channel[np.isfinite(channel["error"])]
    key = ["model", *at]
    # an ideal prediction delivered so: the truth itself, or its second take (median over
    # samples), whichever errs more
    ideal = channel[channel["anchor"].isin([SECOND_TAKE, TRUTH])]
    take = ideal.groupby([*key, "anchor"])["error"].median().groupby(key).max()
    tolerated = channel[channel["anchor"] == REFERENCE_DELIVERY].groupby(key)["error"].max()
    levels = pd.DataFrame({"take": take, "tolerated": tolerated}).reset_index()
    out = out.merge(levels, on=key, how="left")
    take_d, cap = out.pop("take").to_numpy(np.float64), out.pop("tolerated").to_numpy(np.float64)
    usable = np.isfinite(take_d) & np.isfinite(cap)
    floor = out["floor"].to_numpy(np.float64)
    out["floor"] = np.where(usable, np.fmax(floor, np.minimum(take_d, cap)), floor)
    pool = channel.merge(out[[*key, "floor"]].drop_duplicates(key), on=key, how="inner")
    level = _uninformative(pool, key, anchor="anchor").rename("delivered_u").reset_index()
    out = out.merge(level, on=key, how="left")
    u_d = out.pop("delivered_u").to_numpy(np.float64)
    has = np.isfinite(u_d)
    out["uninformative"] = np.where(has, u_d, out["uninformative"].to_numpy(np.float64))
    out["delivered"] = usable | has
    return out


def normalized_scores(results: pd.DataFrame, by_horizon: bool = False) -> pd.DataFrame:
    """One row per (model, scenario, split, metric) with the bounded score.

    Columns: model, scenario, split, metric, value (mean reduced metric value over scored
    rollouts), floor and uninformative (median errors in the metric's unit), score (mean
    over rollouts, averaged over samples), score_std (std over samples), rollouts,
    failures (failed rollouts), undefined (rollouts), unresolved, note. ``by_horizon`` is
    refused: scores are defined on the horizon reduction the metric declares.
    """
    if by_horizon:
        raise ValidationError("bounded scores are per horizon reduction; by_horizon is gone")
    if not has_anchors(results):
        raise ValidationError(f"scores need the anchors '{TRUTH}' and '{SHUFFLED}' in the "
                              f"results (have {sorted(results['model'].astype(str).unique())})")
    df = rollout_scores(results)
    keys = ["model", *RESULT_KEYS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_sample = df.groupby([*keys, "sample"], sort=True)["score"].mean()
        stats = per_sample.groupby(keys).agg(["mean", "std", "size"])
    group = df.groupby(keys, sort=True)
    table = group.agg(
        value=("value", "mean"), floor=("floor", "median"),
        uninformative=("uninformative", "median"), rollouts=("rollout", "nunique"),
        failures=("failed", "sum"), undefined=("undefined", "sum"),
        delivered=("delivered", "any"),
    ).reset_index()
    unresolved = (df["score"].isna() & ~df["undefined"]).groupby(
        [df[k] for k in keys]).sum().rename("unresolved").reset_index()
    table = table.merge(unresolved, on=keys, how="left")
    table = table.merge(stats.reset_index().rename(columns={
        "mean": "score", "std": "score_std", "size": "samples"}), on=keys, how="left")
    table.loc[table["samples"] < 2, "score_std"] = np.nan
    note = np.full(len(table), "", dtype=object)
    none_scored = table["score"].isna().to_numpy()
    note[none_scored & (table["undefined"] > 0).to_numpy()] = "undefined for the truth"
    note[none_scored & (table["unresolved"] > 0).to_numpy()] = NO_RANGE
    table["note"] = note
    for col in ("failures", "undefined", "unresolved"):
        table[col] = table[col].fillna(0).astype(np.int64)
    return table[[*keys, "value", "floor", "uninformative", "score", "score_std",
                  "samples", "rollouts", "failures", "undefined", "unresolved", "delivered",
                  "note"]]


def scenario_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (model, scenario): one column per family (mean over its metrics and splits),
    conservation and contact capped by accuracy (pixels without accuracy), and
    ``scenario_score``, the mean over the families present."""
    df = scores[np.isfinite(scores["score"])].copy()
    df["family"] = df["metric"].map(lambda m: METRICS.get(m).family)
    wide = df.pivot_table(index=["model", "scenario"], columns="family", values="score",
                          aggfunc="mean")
    for family in FAMILIES:
        if family not in wide:
            wide[family] = np.nan
    wide = wide[list(FAMILIES)]
    motion = wide["accuracy"].fillna(wide["pixels"])
    for family in GATED_FAMILIES:  # NaN (family absent) stays NaN
        wide[family] = np.minimum(wide[family], motion.fillna(np.inf))
    wide["scenario_score"] = wide[list(FAMILIES)].mean(axis=1)
    return wide.reset_index()


def aggregate_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One score per model: the mean over its scenarios of `scenario_scores`, with each
    family's mean over scenarios, ``scenarios`` and ``cells`` (scored (scenario, split,
    metric) cells) and ``failures``."""
    per = scenario_scores(scores)
    rows = []
    cells = scores[np.isfinite(scores["score"])].groupby("model").size()
    failures = scores.groupby("model")["failures"].sum()
    for model, group in per.groupby("model", sort=True):
        row: dict[str, object] = {"model": model,
                                  "physics_score": float(group["scenario_score"].mean())}
        for family in FAMILIES:
            row[family] = float(group[family].mean()) if group[family].notna().any() \
                else np.nan
        row.update(scenarios=int(group["scenario_score"].notna().sum()),
                   cells=int(cells.get(model, 0)), failures=int(failures.get(model, 0)))
        rows.append(row)
    return pd.DataFrame(rows, columns=["model", "physics_score", *FAMILIES, "scenarios",
                                       "cells", "failures"])
