"""Summary tables from the tidy results: per-rollout means, then means with bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from physground.metrics.stats import bootstrap_ci


def per_rollout(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over horizon steps of each (model, scenario, split, metric, rollout); a rollout
    with any failed step keeps value NaN and counts as a failure."""
    keys = ["model", "scenario", "split", "metric", "rollout"]
    grouped = results.groupby(keys, sort=True)
    out = grouped["value"].mean().rename("value").reset_index()
    failed = grouped["failure"].apply(lambda f: (f.fillna("") != "").any()).reset_index(drop=True)
    out["failed"] = failed.to_numpy()
    out.loc[out["failed"], "value"] = np.nan
    return out


def summary(results: pd.DataFrame, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """One row per (scenario, split, metric, model): mean over rollouts, CI, failures."""
    rows = []
    for (scenario, split, metric, model), group in per_rollout(results).groupby(
        ["scenario", "split", "metric", "model"], sort=True
    ):
        values = group["value"].to_numpy(dtype=np.float64)
        ok = values[np.isfinite(values)]
        low, high = bootstrap_ci(ok, confidence=confidence, seed=seed) if len(ok) > 1 else (
            np.nan, np.nan)
        rows.append({
            "scenario": scenario, "split": split, "metric": metric, "model": model,
            "mean": float(ok.mean()) if len(ok) else np.nan, "ci_low": low, "ci_high": high,
            "rollouts": len(values), "failures": int(group["failed"].sum()),
        })
    return pd.DataFrame(rows)


def format_cell(mean: float, low: float, high: float) -> str:
    """``mean [low, high]`` with 3 significant digits; ``—`` when nothing was scored."""
    if not np.isfinite(mean):
        return "—"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean:.3g}"
    return f"{mean:.3g} [{low:.3g}, {high:.3g}]"
