"""Tables for reports, computed from the tidy results only.

- `summary`: each metric reduced over the horizon as it declares (mean over steps, or the
  value at the last step for FDE, ADE and running metrics), then the mean over rollouts
  with a bootstrap CI (`physground.metrics.stats.bootstrap_ci`), per (scenario, split,
  metric, model), failures counted.
- `leaderboard`: the bounded score of each model (`physground.metrics.scores`: 100 at the
  physical noise floor of the second take, 0 at the uninformative level), per scenario
  first, then over scenarios, with stratified bootstrap CIs. Anchors (truth, second take,
  reference, baselines, shuffled) are shown apart and never ranked; models are ranked only
  against models scored on the same cells.
- `paired_comparisons`: model A against model B on the same rollouts
  (`physground.metrics.stats.paired_test`), Holm-corrected over the table.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from physground.errors import PhysgroundError
from physground.metrics.registry import FAMILIES, METRICS
from physground.metrics.scores import (
    ANCHOR_MODELS,
    BASELINES,
    GATED_FAMILIES,
    REFERENCE,
    has_anchors,
    rollout_scores,
)

CONFIDENCE = 0.95
__all__ = ["ANCHOR_MODELS", "BASELINES", "REFERENCE", "has_anchors"]


def _failed(failure: pd.Series) -> np.ndarray:
    text = failure.astype(object).where(failure.notna(), "").astype(str)
    return ((text != "") & ~text.str.startswith("undefined: ")).to_numpy()


def metric_label(metric: str) -> str:
    """``name [unit]`` of a registered metric (the bare name for an unknown one)."""
    return METRICS.get(metric).label if metric in METRICS else metric


def per_rollout(results: pd.DataFrame) -> pd.DataFrame:
    """Each (model, scenario, split, metric, rollout) reduced over horizon steps as the
    metric declares (``mean`` of the steps, or the ``last`` step).

    ``failed``: the model's prediction of that rollout could not be scored (value NaN);
    ``undefined``: the metric has no value for that ground truth (the same for every model).
    Delivered anchors (scored for another model's scores) are not listed.
    """
    from physground.metrics.scores import model_rows

    df = model_rows(results).copy()
    for col in ("model", "scenario", "split", "metric"):
        df[col] = df[col].astype(str)
    text = df["failure"].astype(object).where(df["failure"].notna(), "").astype(str)
    df["failed"] = _failed(df["failure"])
    df["undefined"] = text.str.startswith("undefined: ").to_numpy()
    keys = ["model", "scenario", "split", "metric", "rollout"]
    df = df.sort_values([*keys, "horizon"], kind="stable")
    grouped = df.groupby(keys, sort=True)
    out = grouped["value"].mean().rename("value").reset_index()
    last = grouped["value"].last().to_numpy()
    is_last = out["metric"].map(lambda m: m in METRICS and METRICS.get(m).reduce == "last")
    out["value"] = np.where(is_last.to_numpy(dtype=bool), last, out["value"].to_numpy())
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


def scores(results: pd.DataFrame) -> pd.DataFrame | None:
    """Bounded scores per (model, scenario, split, metric), or None without anchors."""
    from physground.metrics.scores import normalized_scores

    if results.empty or not has_anchors(results):
        return None
    return normalized_scores(results)


def _family_columns(metrics: Sequence[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, m in enumerate(metrics):
        out.setdefault(METRICS.get(m).family, []).append(i)
    return out


def bootstrap_aggregate(results: pd.DataFrame, n_resamples: int = 1000, seed: int = 0,
                        confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Stratified bootstrap CI of each model's aggregate score.

    Rollouts are resampled with replacement within each (scenario, split), the same
    resample for every model and metric (paired); each cell's score is the mean of the
    resampled per-rollout scores and the aggregate is recomputed as `aggregate_scores`
    does (family means per scenario, conservation and contact capped by accuracy, mean
    over families, then over scenarios). Columns: model, ci_low, ci_high.
    """
    if results.empty or not has_anchors(results):
        return pd.DataFrame(columns=["model", "ci_low", "ci_high"])
    per = rollout_scores(results)
    per = per.groupby(["model", "scenario", "split", "metric", "rollout"], sort=True
                      )["score"].mean().reset_index()
    models = sorted(per["model"].unique())
    rng = np.random.default_rng(seed)
    scenario_totals = []
    for _, part in per.groupby("scenario", sort=True):
        metrics = sorted(part["metric"].unique())
        family_sum: dict[str, np.ndarray] = {}
        family_n: dict[str, np.ndarray] = {}
        for _, cell in part.groupby("split", sort=True):
            cube = cell.pivot_table(index=["model", "metric"], columns="rollout",
                                    values="score", aggfunc="first", dropna=False)
            full = pd.MultiIndex.from_product([models, metrics], names=["model", "metric"])
            arr = cube.reindex(full).to_numpy(dtype=np.float64).reshape(
                len(models), len(metrics), -1)
            n = arr.shape[-1]
            idx = rng.integers(0, n, size=(n_resamples, n))
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                means = np.nanmean(arr[:, :, idx], axis=-1)  # [models, metrics, resamples]
            for family, cols in _family_columns(metrics).items():
                block = means[:, cols]
                ok = np.isfinite(block)
                family_sum[family] = family_sum.get(family, 0) + np.where(ok, block, 0).sum(1)
                family_n[family] = family_n.get(family, 0) + ok.sum(1)
        with np.errstate(all="ignore"):
            fam = {f: family_sum[f] / family_n[f] for f in family_sum}
            motion = fam.get("accuracy", fam.get("pixels"))
            if "accuracy" in fam and "pixels" in fam:
                motion = np.where(np.isfinite(fam["accuracy"]), fam["accuracy"], fam["pixels"])
            for f in GATED_FAMILIES:
                if f in fam and motion is not None:
                    fam[f] = np.minimum(fam[f], np.where(np.isfinite(motion), motion,
                                                         np.inf))
            stack = np.stack([fam[f] for f in FAMILIES if f in fam])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                scenario_totals.append(np.nanmean(stack, axis=0))  # [models, resamples]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        aggregate = np.nanmean(np.stack(scenario_totals), axis=0)
    alpha = (1.0 - confidence) / 2.0
    rows = []
    for i, model in enumerate(models):
        samples = aggregate[i][np.isfinite(aggregate[i])]
        low, high = (np.quantile(samples, [alpha, 1.0 - alpha]) if len(samples)
                     else (np.nan, np.nan))
        rows.append({"model": model, "ci_low": float(low), "ci_high": float(high)})
    return pd.DataFrame(rows)


def comparable_groups(table: pd.DataFrame) -> dict[str, tuple[int, int, str]]:
    """Per non-anchor model: (group number, cells covered, note). Models whose scored
    (scenario, split, metric) cells are identical form one group and are ranked against
    each other; a model alone in its group is listed apart, unranked."""
    scored = table[np.isfinite(table["score"]) & ~table["model"].isin(ANCHOR_MODELS)]
    cells = {m: frozenset(zip(g["scenario"], g["split"], g["metric"], strict=True))
             for m, g in scored.groupby("model")}
    groups: dict[frozenset, list[str]] = {}
    for model, cover in cells.items():
        groups.setdefault(cover, []).append(model)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), -len(kv[0])))
    out: dict[str, tuple[int, int, str]] = {}
    number = 0
    for cover, members in ordered:
        if len(members) > 1:
            number += 1
            for m in members:
                out[m] = (number, len(cover), "")
        else:
            out[members[0]] = (0, len(cover), "not ranked: no other model is scored on the "
                                               "same cells")
    return out


def leaderboard(results: pd.DataFrame, n_resamples: int = 1000, seed: int = 0
                ) -> pd.DataFrame | None:
    """Aggregate scores with CIs, overall and per split; anchors and models apart.

    Columns: model, role (``anchor`` or ``model``), group (comparable group, 0: not
    ranked), rank (within its group), physics_score, ci_low, ci_high, the family scores,
    score_<split> (+ ci), scenarios, cells, failures, failed_rollouts, scored_rollouts,
    note. None when the results lack the score anchors.
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
        split_scores = scores(part)
        if split_scores is None:
            continue
        agg = aggregate_scores(split_scores)[["model", "physics_score"]]
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
    groups = comparable_groups(table)
    board["role"] = np.where(board["model"].isin(ANCHOR_MODELS), "anchor", "model")
    board["group"] = [groups.get(m, (0, 0, ""))[0] for m in board["model"]]
    board["note"] = [groups.get(m, (0, 0, ""))[2] for m in board["model"]]
    anchor_order = {m: i for i, m in enumerate(ANCHOR_MODELS)}
    is_model = board["role"] == "model"
    # models: ranked groups first (by group, then score), unranked ones after; then anchors
    board["_key0"] = np.where(is_model, np.where(board["group"] > 0, board["group"], 10**6),
                              10**7)
    board["_key1"] = np.where(is_model, -board["physics_score"].fillna(-np.inf),
                              board["model"].map(anchor_order).fillna(0))
    board = board.sort_values(["_key0", "_key1"], ignore_index=True)
    rank = np.zeros(len(board), dtype=np.int64)
    for _, idx in board[is_model.reindex(board.index, fill_value=False) & (board["group"] > 0)
                        ].groupby("group").groups.items():
        rank[np.asarray(idx)] = np.arange(1, len(idx) + 1)
    board["rank"] = rank
    return board.drop(columns=["_key0", "_key1"])


def default_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """Each model that is not an anchor against each baseline present; without such
    models, constant-velocity against copy-last."""
    present = [b for b in BASELINES if b in models]
    others = [m for m in models if m not in ANCHOR_MODELS]
    pairs = [(m, b) for m in others for b in present]
    if not pairs and len(present) == 2:
        pairs = [(present[1], present[0])]
    return pairs


def paired_comparisons(results: pd.DataFrame, pairs: Sequence[tuple[str, str]],
                       method: str = "wilcoxon", seed: int = 0) -> pd.DataFrame:
    """Paired tests of A against B per (scenario, split, metric) on the rollouts both scored.

    A rollout that a model failed gets the worst value any model reached on it — a
    failure never helps. ``p_holm`` is the p-value Holm-corrected over every test of the
    table (family-wise error 5 %); ``better`` names the model with the lower error when
    p_holm < 0.05 (higher for higher-is-better metrics), else ``—``. ``note`` says when n
    is too small for any p below 0.05 (`physground.metrics.stats.min_pvalue`).
    """
    from physground.metrics.stats import holm, min_pvalue, paired_test

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
            a_better = test.mean_difference > 0 if higher else test.mean_difference < 0
            floor_p = min_pvalue(test.n, method)
            rows.append({
                "a": a, "b": b, "scenario": scenario, "split": split, "metric": metric,
                "mean_a": float(va[ok].mean()), "mean_b": float(vb[ok].mean()),
                "difference": test.mean_difference,
                "ci_low": test.ci.low if test.ci else np.nan,
                "ci_high": test.ci.high if test.ci else np.nan,
                "pvalue": test.pvalue, "n": test.n, "winner": a if a_better else b,
                "method": method,
                "note": (f"n = {test.n} too small: no p < 0.05 possible (minimum "
                         f"{floor_p:.3g})") if floor_p >= 0.05 else "",
            })
    columns = ["a", "b", "scenario", "split", "metric", "mean_a", "mean_b", "difference",
               "ci_low", "ci_high", "pvalue", "p_holm", "n", "better", "method", "note"]
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=columns)
    out["p_holm"] = holm(out["pvalue"].to_numpy(dtype=np.float64))
    out["better"] = np.where(out["p_holm"] < 0.05, out["winner"], "—")
    return out[columns]


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
