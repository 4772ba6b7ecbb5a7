"""Comparing two runs of the same suite (``physground report RUN_A RUN_B``).

Typical uses: the same suite before and after a code change, on another machine or device,
with another library version. The comparison shows both runs' facts, the leaderboard of
each with the change in score, and every (scenario, split, metric, model) mean of A and B
with a paired test over the rollouts both runs scored (the ground truth is the same when
the dataset hashes agree; otherwise the rows are compared unpaired and flagged).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from physground.errors import PhysgroundError, ValidationError
from physground.reports import tables
from physground.reports.content import load_run, run_facts


def compare_tables(results_a: pd.DataFrame, results_b: pd.DataFrame) -> pd.DataFrame:
    """One row per (scenario, split, metric, model) present in both runs: means with CIs,
    the difference B − A and, when both scored the same rollouts, a paired test."""
    from physground.metrics.stats import paired_test

    summary_a, summary_b = tables.summary(results_a), tables.summary(results_b)
    keys = ["scenario", "split", "metric", "model"]
    merged = summary_a.merge(summary_b, on=keys, suffixes=("_a", "_b"))
    per_a, per_b = tables.per_rollout(results_a), tables.per_rollout(results_b)
    rows = []
    for r in merged.itertuples(index=False):
        d = r._asdict()
        sel = {k: d[k] for k in keys}
        va = _values(per_a, sel)
        vb = _values(per_b, sel)
        common = va.index.intersection(vb.index)
        pvalue = np.nan
        paired = len(common) == len(va) == len(vb) and len(common) >= 2
        if paired:
            a, b = va.loc[common].to_numpy(), vb.loc[common].to_numpy()
            ok = np.isfinite(a) & np.isfinite(b)
            if ok.sum() >= 2:
                try:
                    pvalue = paired_test(b[ok], a[ok]).pvalue
                except PhysgroundError:
                    pvalue = np.nan
        rows.append({**sel, "mean_a": d["mean_a"], "ci_low_a": d["ci_low_a"],
                     "ci_high_a": d["ci_high_a"], "mean_b": d["mean_b"],
                     "ci_low_b": d["ci_low_b"], "ci_high_b": d["ci_high_b"],
                     "difference": d["mean_b"] - d["mean_a"], "paired": paired,
                     "pvalue": pvalue, "failures_a": d["failures_a"],
                     "failures_b": d["failures_b"]})
    return pd.DataFrame(rows)


def _values(per: pd.DataFrame, sel: dict[str, str]) -> pd.Series:
    mask = np.ones(len(per), dtype=bool)
    for key, value in sel.items():
        mask &= (per[key] == value).to_numpy()
    return per[mask].set_index("rollout")["value"]


def _score_rows(board_a: pd.DataFrame | None, board_b: pd.DataFrame | None) -> list[dict]:
    if board_a is None or board_b is None:
        return []
    merged = board_a.merge(board_b, on="model", how="outer", suffixes=("_a", "_b"))
    rows = []
    for r in merged.itertuples(index=False):
        d = r._asdict()
        rows.append({
            "model": d["model"],
            "A score [95% CI]": tables.format_score(d["physics_score_a"], d["ci_low_a"],
                                                    d["ci_high_a"]),
            "B score [95% CI]": tables.format_score(d["physics_score_b"], d["ci_low_b"],
                                                    d["ci_high_b"]),
            "B − A": tables.format_score(d["physics_score_b"] - d["physics_score_a"]),
        })
    return rows


def write_comparison(run_a: Path, run_b: Path, out: Path | None = None) -> Path:
    """Write ``compare.html`` and ``compare.md`` for runs A and B; returns the HTML path
    (default: ``<root>/comparisons/<A>--vs--<B>/compare.html``)."""
    from physground.atomic import write_text_atomic
    from physground.reports import html as html_mod
    from physground.reports.markdown import md_table

    info_a, results_a = load_run(run_a)
    info_b, results_b = load_run(run_b)
    name_a, name_b = info_a["suite"]["name"], info_b["suite"]["name"]
    if name_a != name_b:
        raise ValidationError(
            f"{run_a} ran suite '{name_a}' and {run_b} ran suite '{name_b}': a comparison "
            "needs two runs of the same suite"
        )
    same_config = info_a.get("suite_hash") == info_b.get("suite_hash")
    out_dir = Path(out) if out is not None else \
        Path(run_b).resolve().parent.parent / "comparisons" / \
        f"{Path(run_a).resolve().name}--vs--{Path(run_b).resolve().name}"
    table = compare_tables(results_a, results_b)
    board_a = tables.leaderboard(results_a, n_resamples=500)
    board_b = tables.leaderboard(results_b, n_resamples=500)
    detail = []
    for r in table.itertuples(index=False):
        flag = ""
        if r.paired and np.isfinite(r.pvalue) and r.pvalue < 0.05:
            flag = "changed (p < 0.05)"
        elif not r.paired:
            flag = "unpaired"
        detail.append({
            "scenario": r.scenario, "split": r.split, "metric": r.metric, "model": r.model,
            "A [95% CI]": tables.format_cell(r.mean_a, r.ci_low_a, r.ci_high_a),
            "B [95% CI]": tables.format_cell(r.mean_b, r.ci_low_b, r.ci_high_b),
            "B − A": f"{r.difference:.3g}" if np.isfinite(r.difference) else "—",
            "p (paired)": f"{r.pvalue:.3g}" if np.isfinite(r.pvalue) else "—",
            "failures A/B": f"{r.failures_a}/{r.failures_b}", "flag": flag,
        })
    facts = [{"": k, "A": va, "B": vb} for (k, va), (_, vb)
             in zip(run_facts(info_a), run_facts(info_b), strict=True)]
    note = ("Both runs use the same suite configuration." if same_config else
            "The suite configurations differ (different hashes): rows may not be comparable.")
    title = f"physground comparison: suite {name_a}: A = {Path(run_a).name}, " \
            f"B = {Path(run_b).name}"
    html = "\n".join([
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html_mod._esc(title)}</title><style>{html_mod.CSS}</style></head><body>",
        f"<header><h1>{html_mod._esc(title)}</h1><p>{html_mod._esc(note)}</p></header><main>",
        "<h2>Leaderboards</h2>", html_mod.table(_score_rows(board_a, board_b)),
        "<h2>Per scenario, split, metric and model</h2>", html_mod.table(detail),
        "<h2>Runs</h2>", html_mod.table(facts, cls="facts"), "</main></body></html>",
    ])
    markdown = "\n".join([f"# {title}", "", note, "", "## Leaderboards", "",
                          *md_table(_score_rows(board_a, board_b)),
                          "## Per scenario, split, metric and model", "", *md_table(detail),
                          "## Runs", "", *md_table(facts)])
    write_text_atomic(out_dir / "compare.md", markdown)
    write_text_atomic(out_dir / "compare.html", html)
    return out_dir / "compare.html"
