"""What a report shows, computed once from a run directory and rendered twice (HTML and
Markdown). Reads the run record, the results table and the saved samples; nothing else."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from physground.errors import DataIntegrityError
from physground.metrics.scores import model_rows
from physground.reports import plots, tables

SCORE_NOTE = (
    'Bounded scores in [0, 100]: 100 at or below the physical noise floor (the error of a '
    'second take of the same scene: initial conditions perturbed at measurement '
    "precision, another solver setting; never below the metric's resolution floor), 0 at "
    'the error of an uninformative prediction (another rollout of the same split), '
    'log-linear in between. Per scenario each family (accuracy, conservation, contact, '
    'pixels) weighs equally; conservation and contact count only up to the accuracy score '
    '(a frozen prediction conserves energy exactly). The score is the mean over '
    'scenarios; 95% CIs from a stratified bootstrap over rollouts. Only models scored on '
    'the same cells are ranked against each other; anchors (truth, second take, '
    'reference, baselines, shuffled) are shown for scale and never ranked.'
)


@dataclass
class ScenarioSection:
    """Everything shown for one scenario."""

    name: str
    family: str
    summary: pd.DataFrame  # tables.summary rows of this scenario
    scores: pd.DataFrame | None  # normalized scores of this scenario (None: no anchors)
    horizon_png: bytes | None = None
    conservation_png: dict[str, bytes] = field(default_factory=dict)  # split -> PNG
    strips: dict[str, tuple[bytes, list[str]]] = field(default_factory=dict)  # split -> GIF


@dataclass
class ReportContent:
    run_dir: Path
    run: dict[str, Any]
    results: pd.DataFrame
    models: list[str]
    leaderboard: pd.DataFrame | None
    sections: list[ScenarioSection]
    comparisons: pd.DataFrame
    pairs: list[tuple[str, str]]
    track: str = "default"
    physics_iq: pd.DataFrame = field(default_factory=pd.DataFrame)  # physics_iq_scores

    @property
    def suite(self) -> str:
        return str(self.run["suite"]["name"])

    @property
    def tracks_note(self) -> str:
        """'' unless the run has other tracks: where their separate reports are."""
        tracks = [t for t in result_tracks_of(self.run_dir) if t != self.track]
        if not tracks:
            return ""
        where = ", ".join(f"{t}: report/{t}/" if t != "default" else "default: report/"
                          for t in tracks)
        return ("This run also scored other evaluation tracks, reported apart and never "
                f"mixed with this one ({where}).")

    @property
    def track_note(self) -> str:
        """'' on the default track; a title suffix saying what the other track gives."""
        return "" if self.track == "default" else \
            f" ({self.track} track: latent parameters given to the models)"


def result_tracks(results: pd.DataFrame) -> list[str]:
    """The evaluation tracks present in a results table (``default`` first)."""
    if "track" not in results.columns or not len(results):
        return ["default"]
    present = set(results["track"].astype(str))
    return sorted(present, key=lambda t: (t != "default", t))


def result_tracks_of(run_dir: Path) -> list[str]:
    """The tracks present in a run's results table."""
    path = Path(run_dir) / "results.parquet"
    if not path.exists():
        return ["default"]
    import pyarrow.parquet as pq

    if "track" not in pq.read_schema(path).names:
        return ["default"]
    return result_tracks(pd.read_parquet(path, columns=["track"]))


def load_run(run_dir: Path, track: str = "default") -> tuple[dict[str, Any], pd.DataFrame]:
    """The run record and the results of one evaluation ``track`` (tracks are never mixed:
    the conditioned track, where latent parameters are given, is reported on its own), or a
    clear error naming the missing file."""
    run_dir = Path(run_dir)
    for name in ("run.json", "results.parquet"):
        if not (run_dir / name).exists():
            raise DataIntegrityError(f"{run_dir / name} not found: not a finished run directory")
    results = pd.read_parquet(run_dir / "results.parquet")
    if "track" not in results.columns:  # runs from before tracks: all default
        results["track"] = "default"
    from physground.metrics.scores import SCORE_ANCHORS

    # the score anchors (truth, second take, shuffled) are the same on every track
    keep = (results["track"].astype(str) == track) | results["model"].astype(str).isin(
        SCORE_ANCHORS)
    results = results[keep].reset_index(drop=True)
    for col in ("model", "scenario", "split", "metric"):
        results[col] = results[col].astype(str)
    results["failure"] = results["failure"].astype(object).where(results["failure"].notna(), "")
    return json.loads((run_dir / "run.json").read_text()), results


def load_samples(run_dir: Path, scenario: str, split: str, models: list[str]
                 ) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The saved truth and model samples of rollout 0 of (scenario, split)."""
    from physground.benchmarks.tasks import load_sample, sample_path

    samples = Path(run_dir) / "samples"
    truth_file = sample_path(samples, scenario, split, "truth")
    if not truth_file.exists():
        return None, {}
    predictions = {}
    for model in models:
        path = sample_path(samples, scenario, split, model)
        if path.exists():
            predictions[model] = load_sample(path)
    return load_sample(truth_file), predictions


def build(run_dir: Path, pairs: list[tuple[str, str]] | None = None, media: bool = True,
          n_resamples: int = 1000, track: str = "default") -> ReportContent:
    """Compute every table and figure of the report of ``run_dir``'s ``track``."""
    from physground.reports.media import strip_gif

    run, results = load_run(run_dir, track)
    media = media and track == "default"  # samples are saved from the default track
    models = list(dict.fromkeys(model_rows(results)["model"]))
    colors = plots.model_colors(models)  # one colour per model in every figure
    board = tables.leaderboard(results, n_resamples=n_resamples) if len(results) else None
    summary = tables.summary(results) if len(results) else pd.DataFrame(
        columns=["scenario", "split", "metric", "model", "mean", "ci_low", "ci_high",
                 "rollouts", "failures", "undefined"])
    score_table = tables.scores(results) if len(results) else None
    sections = []
    for scenario in list(dict.fromkeys(results["scenario"])):
        part = results[results["scenario"] == scenario]
        section = ScenarioSection(
            name=scenario, family=scenario.split("/")[0],
            summary=summary[summary["scenario"] == scenario],
            scores=None if score_table is None else
            score_table[score_table["scenario"] == scenario],
            horizon_png=plots.horizon_curves(part, scenario, colors),
        )
        if media:
            for split in list(dict.fromkeys(part["split"])):
                split_models = list(dict.fromkeys(
                    model_rows(part[part["split"] == split])["model"]))
                truth, predictions = load_samples(run_dir, scenario, split, split_models)
                if truth is None:
                    continue
                png = plots.conservation_plot(f"{scenario} · {split} · rollout "
                                              f"{truth['info'].get('seed', 0)}",
                                              truth, predictions, colors)
                if png is not None:
                    section.conservation_png[split] = png
                strip = strip_gif(truth, predictions, colors)
                if strip is not None:
                    section.strips[split] = strip
        sections.append(section)
    if pairs is None:
        pairs = [tuple(p) for p in run["suite"].get("compare", [])] or \
            tables.default_pairs(models)
    pairs = [(a, b) for a, b in pairs if a in models and b in models]
    comparisons = tables.paired_comparisons(results, pairs)
    from physground.metrics.physics_iq_score import physics_iq_scores

    return ReportContent(run_dir=Path(run_dir), run=run, results=results, models=models,
                         leaderboard=board, sections=sections, comparisons=comparisons,
                         pairs=pairs, track=track, physics_iq=physics_iq_scores(results))


def split_table(section: ScenarioSection) -> pd.DataFrame:
    """Rows (metric [unit], model) with columns per split: ``mean [CI]`` of the metric
    reduced over the horizon as it declares, failures, and the bounded score per split
    when available; used by both renderers."""
    rows = []
    splits = sorted(section.summary["split"].unique())
    for (metric, model), group in section.summary.groupby(["metric", "model"], sort=True):
        row: dict[str, Any] = {"metric": tables.metric_label(metric), "model": model}
        for split in splits:
            match = group[group["split"] == split]
            if match.empty:
                row[split] = ""
                continue
            r = match.iloc[0]
            cell = tables.format_cell(r["mean"], r["ci_low"], r["ci_high"])
            if r["failures"]:
                cell += f" ({r['failures']}/{r['rollouts']} failed)"
            row[split] = cell
            if section.scores is not None:
                s = section.scores[(section.scores["metric"] == metric)
                                   & (section.scores["model"] == model)
                                   & (section.scores["split"] == split)]
                row[f"score {split}"] = tables.format_score(
                    float(s["score"].iloc[0])) if len(s) else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def _ordered_models(models: list[str]) -> list[str]:
    """Models first (in run order), then the anchors in their fixed order."""
    from physground.metrics.scores import ANCHOR_MODELS

    return [m for m in models if m not in ANCHOR_MODELS] + [
        m for m in ANCHOR_MODELS if m in models]


def score_table(section: ScenarioSection) -> list[dict[str, str]]:
    """Bounded scores of one scenario: the scenario aggregate, then each family (capped
    as aggregated), then each metric [unit] with its floor; columns ``model · split``
    (plus ``model · all`` for the aggregate rows). Empty without anchors."""
    import numpy as np

    from physground.metrics.registry import FAMILIES
    from physground.metrics.scores import scenario_scores

    if section.scores is None or section.scores.empty:
        return []
    table = section.scores
    models = _ordered_models(list(dict.fromkeys(table["model"])))
    splits = sorted(table["split"].unique())
    columns = [(m, sp) for m in models for sp in splits]
    per_split = {sp: scenario_scores(table[table["split"] == sp]).set_index("model")
                 for sp in splits}
    overall = scenario_scores(table).set_index("model")
    rows = []
    for family in ("scenario_score", *FAMILIES):
        label = "aggregate (families equal)" if family == "scenario_score" else \
            f"family: {family}"
        if family != "scenario_score" and not overall[family].notna().any():
            continue
        row = {"metric": label, "floor": ""}
        for model in models:
            value = overall[family].get(model, np.nan) if model in overall.index else np.nan
            row[f"{model} · all"] = tables.format_score(float(value))
        for model, split in columns:
            frame = per_split[split]
            value = frame[family].get(model, np.nan) if model in frame.index else np.nan
            row[f"{model} · {split}"] = tables.format_score(float(value))
        rows.append(row)
    for metric in sorted(table["metric"].unique()):
        part = table[table["metric"] == metric]
        floor = float(part["floor"].median()) if part["floor"].notna().any() else np.nan
        row = {"metric": tables.metric_label(metric),
               "floor": f"{floor:.3g}" if np.isfinite(floor) else "—"}
        for model in models:
            row[f"{model} · all"] = ""
        for model, split in columns:
            match = part[(part["model"] == model) & (part["split"] == split)]
            text = ""
            if len(match):
                r = match.iloc[0]
                text = tables.format_score(float(r["score"]))
                if np.isfinite(r.get("score_std", np.nan)):
                    text += f" ± {r['score_std']:.1f}"
                if r["note"] and not np.isfinite(r["score"]):
                    text = r["note"]
            row[f"{model} · {split}"] = text
        rows.append(row)
    return rows


PHYSICS_IQ_NOTE = (
    "Physics-IQ score (its public definition): the piq_* metrics normalised by the "
    "physical variance between two takes, here physground's second take: 100 x clip((st/"
    "st_take + s/s_take + ws/ws_take)/3 - (mse - mse_take), 0, 1), means over clips (the "
    "value at the last step); a failed clip counts as IoU 0 and MSE 1. "
    "`metrics.physics_iq_score`."
)


def physics_iq_rows(scores: pd.DataFrame) -> list[dict[str, str]]:
    """One row per model: the score over all clips, then per scenario."""
    from physground.metrics.scores import ANCHOR_MODELS

    if scores is None or scores.empty:
        return []
    scopes = [s for s in dict.fromkeys(scores["scope"]) if s != "all"]
    rows = []
    for model in _ordered_models(list(dict.fromkeys(scores["model"]))):
        part = scores[scores["model"] == model].set_index("scope")
        row = {"model": model + (" (anchor)" if model in ANCHOR_MODELS else "")}
        for scope in ["all", *scopes]:
            row["Physics-IQ (all)" if scope == "all" else scope] = (
                f"{part.loc[scope, 'physics_iq_score']:.1f}" if scope in part.index else "")
        row["clips"] = str(int(part.loc["all", "clips"])) if "all" in part.index else "0"
        rows.append(row)
    return rows


def leaderboard_rows(board: pd.DataFrame) -> list[dict[str, str]]:
    """Formatted leaderboard rows for both renderers: ranked models (per comparable
    group), unranked models, then the anchors."""
    splits = sorted(c[6:] for c in board.columns if c.startswith("score_"))
    rows = []
    for r in board.itertuples(index=False):
        d = r._asdict()
        if d["role"] == "anchor":
            rank = "anchor"
        elif d["rank"]:
            rank = f"{d['rank']}" + (f" (group {d['group']})" if board["group"].max() > 1
                                     else "")
        else:
            rank = "—"
        row = {"rank": rank, "model": str(d["model"]),
               "score [95% CI]": tables.format_score(
                   d["physics_score"], d["ci_low"], d["ci_high"])}
        for split in splits:
            row[split] = tables.format_score(d[f"score_{split}"], d.get(f"ci_low_{split}"),
                                             d.get(f"ci_high_{split}"))
        for family in ("accuracy", "conservation", "contact", "pixels"):
            row[family] = tables.format_score(d.get(family, float("nan")))
        row["coverage"] = f"{int(d.get('scenarios') or 0)} scenarios, " \
                          f"{int(d.get('cells') or 0)} cells"
        row["failed rollouts"] = f"{int(d.get('failed_rollouts') or 0)}/" \
                                 f"{int(d.get('scored_rollouts') or 0)}"
        row["note"] = str(d.get("note") or "")
        rows.append(row)
    return rows


def comparison_rows(comparisons: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for r in comparisons.itertuples(index=False):
        rows.append({
            "A vs B": f"{r.a} vs {r.b}", "scenario": r.scenario, "split": r.split,
            "metric": tables.metric_label(r.metric), "A": f"{r.mean_a:.3g}",
            "B": f"{r.mean_b:.3g}",
            "A − B [95% CI]": tables.format_cell(r.difference, r.ci_low, r.ci_high),
            "p": f"{r.pvalue:.3g}", "p (Holm)": f"{r.p_holm:.3g}", "n": str(r.n),
            "better": r.better, "note": r.note,
        })
    return rows


def run_facts(run: dict[str, Any]) -> list[tuple[str, str]]:
    """Key facts of a run (suite, device, executor, versions, git, time) as label/value."""
    env = run.get("environment", {})
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    facts = [("suite", f"{run['suite']['name']} (hash {str(run.get('suite_hash', ''))[:12]})"),
             ("device", str(run.get("device", ""))),
             ("executor", str(run.get("executor", "local"))),
             ("git", str(env.get("git") or "n/a")),
             ("versions", versions),
             ("platform", str(env.get("platform", ""))),
             ("started", str(run.get("started", "")))]
    if "seconds" in run:
        tasks = run.get("tasks", {})
        facts.append(("wall time", f"{run['seconds']:.1f} s ({tasks.get('run', '?')} of "
                                   f"{tasks.get('total', '?')} evaluation tasks run)"))
    return facts
