"""Normalized scores: 0 = trivial baseline, 100 = reference (the physical noise floor).

For each (scenario, split, metric) with per-metric means over rollouts and horizon steps,
written as errors ``e`` (the value, negated for higher-is-better metrics)::

    score = 100 * (e_baseline - e_model) / (e_baseline - e_reference),   capped at 100

The reference re-simulates the ground truth with another timestep/solver, so its error is
the physical noise floor (as Physics-IQ's physical variance): being closer to the truth
than that is not measurable, hence the cap; the ground truth itself scores 100. Scores
below 0 mean worse than the trivial baseline and are kept (clipped at -100 only inside the
aggregate, so one blown-up metric cannot dominate it).

Rows are handled by their ``failure`` column:

- model failures (NaN/Inf, wrong shape, model error ...) count, never dropped: a failed
  row takes the *worst* value any model (the baseline included) reached on the same
  (scenario, split, rollout, metric, horizon) — or, if every model failed there, the
  worst over all rollouts at that horizon. A failure thus never scores better than the
  baseline or than any model that did predict; ``failures`` counts them.
- rows whose failure starts with ``"undefined: "`` (the metric has no value for that
  ground truth, the same for every model) are excluded and counted in ``undefined``.

A (scenario, split, metric) where the reference is not better than the baseline has no
meaningful scale: its score is NaN with the reason in ``note`` and it is left out of the
aggregate (counted in ``degenerate``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from physground.errors import ValidationError
from physground.metrics.registry import METRICS, UNDEFINED_PREFIX

RESULT_KEYS = ["scenario", "split", "metric"]
AGGREGATE_TAGS = ("accuracy", "plausibility", "pixels")
SCORE_FLOOR = -100.0  # per-metric clip inside the aggregate only


def _as_str_category(column: pd.Series) -> pd.Series:
    """A categorical column with string categories (cheap for categorical input)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = column.cat.categories.astype(str)
        if categories.has_duplicates:  # e.g. 1 and "1"
            return column.astype(str).astype("category")
        return column.cat.rename_categories(categories)
    return column.astype(str).astype("category")


def _oriented(results: pd.DataFrame) -> pd.DataFrame:
    """Rows with ``error`` (lower is better), ``failed`` and ``undefined`` flags."""
    required = {"model", "scenario", "split", "rollout", "metric", "horizon", "value", "failure"}
    missing = required - set(results.columns)
    if missing:
        raise ValidationError(f"results table lacks columns {sorted(missing)}")
    df = results[sorted(required)].copy()
    for col in ("model", "scenario", "split", "metric"):
        df[col] = _as_str_category(df[col])
    failure = df["failure"]
    if not isinstance(failure.dtype, pd.CategoricalDtype):
        failure = failure.where(failure.notna(), "")
    failure = _as_str_category(failure)  # missing values (code -1) mean no failure
    reasons = pd.Series(failure.cat.categories.astype(str))
    codes = failure.cat.codes.to_numpy()  # -1 for missing (no failure)
    is_undefined = np.append(reasons.str.startswith(UNDEFINED_PREFIX).to_numpy(), False)
    is_failure = np.append((reasons != "").to_numpy(), False)
    df["undefined"] = is_undefined[codes]
    value = df["value"].to_numpy(dtype=np.float64)
    df["failed"] = (is_failure[codes] | ~np.isfinite(value)) & ~df["undefined"].to_numpy()
    metric = df["metric"].cat
    signs = np.array([-1.0 if METRICS.get(str(m)).higher_is_better else 1.0
                      for m in metric.categories])
    df["error"] = np.where(df["failed"] | df["undefined"], np.nan,
                           value * signs[metric.codes.to_numpy()])
    return df


def _fill_failures(df: pd.DataFrame) -> pd.DataFrame:
    """Replace failed rows' errors by the worst error on the same row (then horizon)."""
    if not df["failed"].any():
        return df
    row_key = ["scenario", "split", "rollout", "metric", "horizon"]
    worst_row = df.groupby(row_key, sort=False, observed=True)["error"].transform("max")
    worst_horizon = df.groupby(["scenario", "split", "metric", "horizon"], sort=False,
                               observed=True)["error"].transform("max")
    fill = worst_row.fillna(worst_horizon)
    df["error"] = df["error"].where(~df["failed"], fill)
    return df


def rollout_errors(results: pd.DataFrame) -> pd.DataFrame:
    """Per-rollout mean errors (lower is better) with failures filled as the scores fill
    them and undefined rows left out; columns model, scenario, split, metric, rollout,
    error. The normalized score is linear in the error, so resampling these rows gives the
    scores' uncertainty."""
    df = _fill_failures(_oriented(results))
    df = df[~df["undefined"]]
    keys = ["model", "scenario", "split", "metric", "rollout"]
    return df.groupby(keys, sort=True, observed=True)["error"].mean().rename(
        "error").reset_index()


def normalized_scores(
    results: pd.DataFrame,
    baseline: str = "copy-last",
    reference: str = "reference",
    by_horizon: bool = False,
) -> pd.DataFrame:
    """One row per (model, scenario, split, metric[, horizon]) with the normalized score.

    Columns: model, scenario, split, metric, [horizon,] value (mean metric value, failures
    filled as described above), baseline_value, reference_value, score, rollouts,
    failures, undefined, note. ``results`` is the tidy table of the benchmark runner
    (columns model, scenario, split, rollout, metric, horizon, value, failure).
    """
    df = _oriented(results)
    models = set(df["model"].unique())
    for role, name in (("baseline", baseline), ("reference", reference)):
        if name not in models:
            raise ValidationError(
                f"normalized scores need the {role} model '{name}' in the results "
                f"(have {sorted(models)})"
            )
    df = _fill_failures(df)
    keys = RESULT_KEYS + (["horizon"] if by_horizon else [])
    group = df.groupby(["model", *keys], sort=True, observed=True)
    table = group.agg(
        error=("error", "mean"),
        rollouts=("rollout", "nunique"),
        failures=("failed", "sum"),
        undefined=("undefined", "sum"),
    ).reset_index()
    for col in ("model", *RESULT_KEYS):
        table[col] = table[col].astype(str)
    anchors = table[table["model"].isin([baseline, reference])].pivot_table(
        index=keys, columns="model", values="error", aggfunc="first", dropna=False)
    table = table.merge(anchors.rename(columns={baseline: "e_baseline",
                                                reference: "e_reference"})
                        [["e_baseline", "e_reference"]].reset_index(), on=keys, how="left")
    e, eb, er = (table[c].to_numpy(dtype=np.float64)
                 for c in ("error", "e_baseline", "e_reference"))
    span = eb - er
    tol = 1e-12 * np.maximum(np.abs(eb), np.abs(er)) + 1e-300
    with np.errstate(all="ignore"):
        raw = 100.0 * (eb - e) / span
    valid = np.isfinite(span) & (span > tol) & np.isfinite(e)
    table["score"] = np.where(valid, np.minimum(raw, 100.0), np.nan)
    note = np.full(len(table), "", dtype=object)
    note[~np.isfinite(e)] = "no scorable rows (every row undefined or failed everywhere)"
    degenerate = np.isfinite(e) & ~(np.isfinite(span) & (span > tol))
    note[degenerate] = "degenerate: reference not better than baseline"
    table["note"] = note
    signs = np.array([-1.0 if METRICS.get(m).higher_is_better else 1.0
                      for m in table["metric"]])
    table["value"] = e * signs
    table["baseline_value"] = eb * signs
    table["reference_value"] = er * signs
    table["failures"] = table["failures"].astype(np.int64)
    table["undefined"] = table["undefined"].astype(np.int64)
    columns = ["model", *keys, "value", "baseline_value", "reference_value", "score",
               "rollouts", "failures", "undefined", "note"]
    return table[columns]


def aggregate_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One physics score per model from `normalized_scores` (not by horizon).

    ``physics_score``: mean over every (scenario, split, metric) with a defined score,
    each clipped below at -100; ``accuracy``, ``plausibility``, ``pixels``: the same mean
    over metrics carrying that tag. Also ``scores`` (how many went in), ``degenerate``
    (left out: no scale) and ``failures`` (failed rows, filled as worst).
    """
    if "horizon" in scores.columns:
        raise ValidationError("aggregate_scores takes normalized_scores(by_horizon=False)")
    df = scores.copy()
    df["clipped"] = df["score"].clip(lower=SCORE_FLOOR)
    tags = {m: METRICS.tags(m) for m in df["metric"].unique()}
    rows = []
    for model, group in df.groupby("model", sort=True):
        ok = group[np.isfinite(group["clipped"])]
        row: dict[str, object] = {
            "model": model,
            "physics_score": float(ok["clipped"].mean()) if len(ok) else np.nan,
        }
        for tag in AGGREGATE_TAGS:
            sel = ok[[tag in tags[m] for m in ok["metric"]]]
            row[tag] = float(sel["clipped"].mean()) if len(sel) else np.nan
        row.update(scores=len(ok), degenerate=int((~np.isfinite(group["clipped"])).sum()),
                   failures=int(group["failures"].sum()))
        rows.append(row)
    return pd.DataFrame(rows)
