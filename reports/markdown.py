"""The Markdown report of a run: a results table with bootstrap CIs and horizon plots."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from physground.reports.plots import plot_metric_vs_horizon
from physground.reports.tables import format_cell, summary

from physground.atomic import write_text_atomic
from physground.errors import DataIntegrityError


def report_path(run_dir: Path) -> Path:
    return Path(run_dir) / "report" / "report.md"


def load_run(run_dir: Path) -> tuple[dict, pd.DataFrame]:
    """The run record and its results table, or a clear error naming the missing file."""
    run_dir = Path(run_dir)
    for name in ("run.json", "results.parquet"):
        if not (run_dir / name).exists():
            raise DataIntegrityError(f"{run_dir / name} not found: not a finished run directory")
    return json.loads((run_dir / "run.json").read_text()), pd.read_parquet(
        run_dir / "results.parquet")


def write_report(run_dir: Path) -> Path:
    """Write ``report/report.md`` (and its figures) for a run; returns its path."""
    run, results = load_run(run_dir)
    out = report_path(run_dir)
    figures = out.parent / "figures"
    table = summary(results)
    lines = [f"# physground report: suite `{run['suite']['name']}`", ""]
    env = run["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    lines += [f"Device `{run['device']}` · git `{env.get('git') or 'n/a'}` · {versions}", ""]
    lines += ["Values are means over rollouts of the per-rollout mean over the horizon, with "
              "95% bootstrap confidence intervals; failures are rollouts whose prediction "
              "could not be scored (NaN/Inf, wrong shape) and are counted, not dropped.", ""]
    for metric, part in table.groupby("metric", sort=True):
        lines += [f"## {metric}", ""]
        models = sorted(part["model"].unique())
        lines.append("| scenario | split | " + " | ".join(models) + " |")
        lines.append("|---|---|" + "---|" * len(models))
        for (scenario, split), row in part.groupby(["scenario", "split"], sort=True):
            cells = []
            for model in models:
                match = row[row["model"] == model]
                if match.empty:
                    cells.append("")
                    continue
                r = match.iloc[0]
                cell = format_cell(r["mean"], r["ci_low"], r["ci_high"])
                if r["failures"]:
                    cell += f" ({r['failures']}/{r['rollouts']} failed)"
                cells.append(cell)
            lines.append(f"| {scenario} | {split} | " + " | ".join(cells) + " |")
        lines.append("")
        figure = plot_metric_vs_horizon(results, metric, figures / f"{metric}_vs_horizon.png")
        if figure is not None:
            lines += [f"![{metric} against horizon](figures/{figure.name})", ""]
    write_text_atomic(out, "\n".join(lines))
    return out
