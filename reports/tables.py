"""Tables for reports, computed from the tidy results only.

- `summary`: mean of each metric over rollouts (per-rollout mean over the horizon) with a
  bootstrap CI (`physground.metrics.stats.bootstrap_ci`), per (scenario, split, metric,
  model), failures counted.
- `leaderboard`: the aggregate physics-plausibility score of each model
  (`physground.metrics.scores.normalized_scores` + `aggregate_scores`: 0 = trivial
  baseline, 100 = reference) overall and per split, with stratified bootstrap CIs.
- `paired_comparisons`: model A against model B on the same rollouts
  (`physground.metrics.stats.paired_test`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from physground.errors import PhysgroundError
from physground.metrics.scores import rollout_errors

BASELINE = "copy-last"
REFERENCE = "reference"
ANCHORS = (BASELINE, REFERENCE)
BASELINES = ("copy-last", "constant-velocity")
CONFIDENCE = 0.95


def _failed(failure: pd.Series) -> np.ndarray:
    text = failure.astype(object).where(failure.notna(), "").astype(str)
    return ((text != "") & ~text.str.startswith("undefined: ")).to_numpy()


def per_rollout(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over horizon steps of each (model, scenario, split, metric, rollout).

    ``failed``: the model's prediction of that rollout could not be scored (value NaN);
    ``undefined``: the metric has no value for that ground truth (the same for every model).
    """
    df = results.copy()
    for col in ("model", "scenario", "split", "metric"):
        df[col] = df[col].astype(str)
    text = df["failure"].astype(object).where(df["failure"].notna(), "").astype(str)
    df["failed"] = _failed(df["failure"])
    df["undefined"] = text.str.startswith("undefined: ").to_numpy()
    keys = ["model", "scenario", "split", "metric", "rollout"]
    grouped = df.groupby(keys, sort=True)
    out = grouped["value"].mean().rename("value").reset_index()
    out["failed"] = grouped["failed"].any().to_numpy()
    out["undefined"] = grouped["undefined"].all().to_numpy() & ~out["failed"].to_numpy()
    out.loc[out["failed"] | out["undefined"], "value"] = np.nan
    return out


def summary(results: pd.DataFrame, confidence: float = CONFIDENCE, seed: int = 0
            ) -> pd.DataFrame:
    """One row per (scenario, split, metric, model): mean over scored rollouts with its
    bootstrap CI, number of rollouts, failures and undefined rollouts."""
    from physground.metrics.stats import bootstrap_ci

    rows = []
    for (scenario, split, metric, model), group in per_rollout(results).groupby(
        ["scenario", "split", "metric", "model"], sort=True
    ):
        values = group["value"].to_numpy(dtype=np.float64)
        ok = values[np.isfinite(values)]
        low = high = np.nan
        if len(ok) > 1:
            ci = bootstrap_ci(ok, confidence=confidence, seed=seed)
            low, high = ci.low, ci.high
        rows.append({
            "scenario": scenario, "split": split, "metric": metric, "model": model,
            "mean": float(ok.mean()) if len(ok) else np.nan, "ci_low": low, "ci_high": high,
            "rollouts": len(values), "failures": int(group["failed"].sum()),
            "undefined": int(group["undefined"].sum()),
        })
    return pd.DataFrame(rows, columns=["scenario", "split", "metric", "model", "mean",
                                       "ci_low", "ci_high", "rollouts", "failures",
                                       "undefined"])


def has_anchors(results: pd.DataFrame) -> bool:
    """Whether the normalized scores can be computed (baseline and reference present)."""
    models = set(results["model"].astype(str).unique())
    return all(a in models for a in ANCHORS)


def scores(results: pd.DataFrame) -> pd.DataFrame | None:
    """Normalized scores per (model, scenario, split, metric), or None without anchors."""
    from physground.metrics.scores import normalized_scores

    if not has_anchors(results) or results.empty:
        return None
    return normalized_scores(results, baseline=BASELINE, reference=REFERENCE)


def bootstrap_aggregate(results: pd.DataFrame, n_resamples: int = 1000, seed: int = 0,
                        confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Stratified bootstrap CI of each model's aggregate physics score.

    Rollouts are resampled with replacement within each (scenario, split) — the same
    resample for every model and metric, anchors included (paired) — and the aggregate is
    recomputed exactly as `aggregate_scores` does (cap at 100 per metric, clip at -100,
    mean over the defined (scenario, split, metric) cells). Columns: model, ci_low, ci_high.
    """
    from physground.metrics.scores import SCORE_FLOOR

    errors = rollout_errors(results)
    models = sorted(errors["model"].unique())
    if not all(a in models for a in ANCHORS):
        return pd.DataFrame(columns=["model", "ci_low", "ci_high"])
    rng = np.random.default_rng(seed)
    total = np.zeros((len(models), n_resamples))
    count = np.zeros((len(models), n_resamples))
    for (_, _), cell in errors.groupby(["scenario", "split"], sort=True):
        cube = cell.pivot_table(index=["model", "metric"], columns="rollout", values="error",
                                aggfunc="first", dropna=False)
        metrics = sorted(cube.index.get_level_values("metric").unique())
        full = pd.MultiIndex.from_product([models, metrics], names=["model", "metric"])
        arr = cube.reindex(full).to_numpy(dtype=np.float64).reshape(
            len(models), len(metrics), -1)
        n = arr.shape[-1]
        idx = rng.integers(0, n, size=(n_resamples, n))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no value
            means = np.nanmean(arr[:, :, idx], axis=-1)  # [models, metrics, resamples]
            eb = means[models.index(BASELINE)]
            er = means[models.index(REFERENCE)]
            span = eb - er
            tol = 1e-12 * np.maximum(np.abs(eb), np.abs(er)) + 1e-300
            score = np.minimum(100.0 * (eb - means) / span, 100.0)
        valid = np.isfinite(score) & (np.isfinite(span) & (span > tol))[None]
        clipped = np.where(valid, np.maximum(score, SCORE_FLOOR), 0.0)
        total += clipped.sum(1)
        count += valid.sum(1)
    with np.errstate(all="ignore"):
        aggregate = total / count
    alpha = (1.0 - confidence) / 2.0
    rows = []
    for i, model in enumerate(models):
        samples = aggregate[i][np.isfinite(aggregate[i])]
        low, high = (np.quantile(samples, [alpha, 1.0 - alpha]) if len(samples)
                     else (np.nan, np.nan))
        rows.append({"model": model, "ci_low": float(low), "ci_high": float(high)})
    return pd.DataFrame(rows)


def leaderboard(results: pd.DataFrame, n_resamples: int = 1000, seed: int = 0
                ) -> pd.DataFrame | None:
    """Models ranked by aggregate physics score with CIs, overall and per split.

    Columns: model, physics_score, ci_low, ci_high, accuracy, plausibility, pixels,
    score_<split> (+ ci) for each split, failures, failed_rollouts, rollouts. None when the
    results lack the baseline or reference model (no normalization possible).
    """
    from physground.metrics.scores import aggregate_scores

    table = scores(results)
    if table is None:
        return None
    board = aggregate_scores(table)
    board = board.merge(bootstrap_aggregate(results, n_resamples, seed), on="model",
                        how="left")
    for split in sorted(results["split"].astype(str).unique()):
        part = results[results["split"].astype(str) == split]
        agg = aggregate_scores(scores(part))[["model", "physics_score"]]
        ci = bootstrap_aggregate(part, n_resamples, seed)
        agg = agg.merge(ci, on="model", how="left").rename(columns={
            "physics_score": f"score_{split}", "ci_low": f"ci_low_{split}",
            "ci_high": f"ci_high_{split}"})
        board = board.merge(agg, on="model", how="left")
    rollout_table = per_rollout(results)
    by_rollout = rollout_table.groupby(["model", "scenario", "split", "rollout"])["failed"].any()
    counts = by_rollout.groupby("model").agg(["sum", "size"]).reset_index()
    counts.columns = ["model", "failed_rollouts", "scored_rollouts"]
    board = board.merge(counts, on="model", how="left")
    return board.sort_values("physics_score", ascending=False, na_position="last",
                             ignore_index=True)


def default_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """Each model that is not a baseline or the reference against each baseline present;
    without such models, constant-velocity against copy-last."""
    present = [b for b in BASELINES if b in models]
    others = [m for m in models if m not in BASELINES and m != REFERENCE]
    pairs = [(m, b) for m in others for b in present]
    if not pairs and len(present) == 2:
        pairs = [(present[1], present[0])]
    return pairs


def paired_comparisons(results: pd.DataFrame, pairs: Sequence[tuple[str, str]],
                       method: str = "wilcoxon", seed: int = 0) -> pd.DataFrame:
    """Paired tests of A against B per (scenario, split, metric) on the rollouts both scored.

    A rollout that a model failed gets the worst value any model reached on it (as the
    normalized scores fill failures) — a failure never helps. ``better`` names the model
    with the lower error when p < 0.05 (higher for higher-is-better metrics), else ``—``.
    """
    from physground.metrics import METRICS
    from physground.metrics.stats import paired_test

    table = per_rollout(results)
    rows = []
    for a, b in pairs:
        for (scenario, split, metric), cell in table.groupby(["scenario", "split", "metric"],
                                                             sort=True):
            higher = METRICS.get(metric).higher_is_better
            values = cell.pivot_table(index="rollout", columns="model", values="value",
                                      aggfunc="first", dropna=False)
            if a not in values or b not in values:
                continue
            failed = cell.pivot_table(index="rollout", columns="model", values="failed",
                                      aggfunc="first")
            defined = ~cell.groupby("rollout")["undefined"].any()
            values = values[defined.reindex(values.index).fillna(False).to_numpy()]
            va, vb = (_fill_worst(values, m, failed[m].reindex(values.index), higher)
                      for m in (a, b))
            ok = np.isfinite(va) & np.isfinite(vb)
            if ok.sum() < 2:
                continue
            try:
                test = paired_test(va[ok], vb[ok], method=method, seed=seed)
            except PhysgroundError:
                continue
            better = "—"
            if test.significant():
                a_better = test.mean_difference > 0 if higher else test.mean_difference < 0
                better = a if a_better else b
            rows.append({
                "a": a, "b": b, "scenario": scenario, "split": split, "metric": metric,
                "mean_a": float(va[ok].mean()), "mean_b": float(vb[ok].mean()),
                "difference": test.mean_difference,
                "ci_low": test.ci.low if test.ci else np.nan,
                "ci_high": test.ci.high if test.ci else np.nan,
                "pvalue": test.pvalue, "n": test.n, "better": better, "method": method,
            })
    return pd.DataFrame(rows, columns=["a", "b", "scenario", "split", "metric", "mean_a",
                                       "mean_b", "difference", "ci_low", "ci_high", "pvalue",
                                       "n", "better", "method"])


def _fill_worst(values: pd.DataFrame, model: str, failed: pd.Series,
                higher_is_better: bool) -> np.ndarray:
    """``model``'s per-rollout values with failures replaced by the worst value any model
    reached on that rollout (else the worst on any rollout), as the normalized scores do."""
    out = values[model].to_numpy(dtype=np.float64).copy()
    bad = failed.fillna(False).to_numpy(dtype=bool)
    if bad.any():
        table = values.to_numpy(dtype=np.float64)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            row = np.nanmin(table, 1) if higher_is_better else np.nanmax(table, 1)
            overall = np.nanmin(table) if higher_is_better else np.nanmax(table)
        out[bad] = np.where(np.isfinite(row[bad]), row[bad], overall)
    return out


def format_cell(mean: float, low: float, high: float) -> str:
    """``mean [low, high]`` with 3 significant digits; ``—`` when nothing was scored."""
    if not np.isfinite(mean):
        return "—"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean:.3g}"
    return f"{mean:.3g} [{low:.3g}, {high:.3g}]"


def format_score(value: float, low: float = np.nan, high: float = np.nan) -> str:
    """A normalized score with one decimal and its CI."""
    if not np.isfinite(value):
        return "—"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.1f}"
    return f"{value:.1f} [{low:.1f}, {high:.1f}]"
