"""Figures for reports: error against horizon per model, one panel per scenario and split."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from physground.atomic import atomic_path  # noqa: E402


def plot_metric_vs_horizon(results: pd.DataFrame, metric: str, path: Path) -> Path | None:
    """Mean of ``metric`` over rollouts at each horizon step, per model; None if absent."""
    data = results[(results["metric"] == metric) & (results["failure"].fillna("") == "")]
    if data.empty:
        return None
    panels = sorted(data.groupby(["scenario", "split"]).groups)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False,
                             sharey=False)
    for ax, (scenario, split) in zip(axes[0], panels, strict=True):
        panel = data[(data["scenario"] == scenario) & (data["split"] == split)]
        for model, curve in panel.groupby("model", sort=True):
            mean = curve.groupby("horizon")["value"].mean()
            ax.plot(mean.index, mean.to_numpy(), marker=".", label=model)
        ax.set_title(f"{scenario} · {split}", fontsize=9)
        ax.set_xlabel("horizon step")
        ax.set_yscale("symlog", linthresh=1e-4)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(metric)
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
