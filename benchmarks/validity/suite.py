"""The metric validity suite: does each metric see the physics errors it claims to see?

For every scenario of a benchmark suite and every applicable metric, controlled
predictions built from the truth (`physground.benchmarks.validity.corruptions`) are scored
exactly as models are (`physground.metrics.scores`, with the truth, second-take, shuffled
and baseline anchors of the same rollouts). Pass criteria:

- ``identical``: every metric scores 100;
- a nuisance the metric declares in ``tolerates``: score >= 90;
- a violation the metric declares in ``detects``: the score falls monotonically with the
  magnitude (Spearman rho <= -0.9 over the five magnitudes; where ties at 0 weaken rho, a
  non-increasing curve down to 0, or one *saturated*: at most 10 from the second magnitude
  on, ending no higher than it started unless it is at most 10 at every magnitude) and is
  below 50 at the largest magnitude.

Undeclared pairs are measured and shown too (the heat map) but do not fail. A metric that
fails its own declaration is a bug in the metric, not in the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from physground.benchmarks.anchors import anchor_predictions, delivered_anchor_results
from physground.benchmarks.validity.corruptions import CORRUPTIONS, Corruption
from physground.metrics.registry import METRICS

NUISANCE_MIN = 90.0
VIOLATION_MAX = 50.0
SPEARMAN_MAX = -0.9
SATURATED = 10.0
BASELINE_MODELS = ("copy-last", "constant-velocity")


@dataclass(frozen=True)
class ValidityResult:
    table: pd.DataFrame  # one row per (scenario, metric, corruption)
    scores: pd.DataFrame  # one row per (scenario, metric, corruption, magnitude)

    @property
    def passed(self) -> bool:
        return bool(self.table["passed"].fillna(True).all())

    def failures(self) -> pd.DataFrame:
        return self.table[self.table["passed"] == False]  # noqa: E712  (NaN: not declared)


def _truths(name: str, config: dict[str, Any], rollouts: int, seed: int) -> tuple[Any, list]:
    from physground.scenario import get_scenario

    scenario = get_scenario(name, **config)
    seeds = [seed + i for i in range(rollouts)]
    params = [scenario.sample_params("test_id", s) for s in seeds]
    return scenario, scenario.generate(params, seeds, "test_id")


def _baselines(truths: list, context: int, horizon: int) -> dict[str, list]:
    from physground.benchmarks.tasks import predict_safely
    from physground.world_model import MODELS

    out = {}
    for name in BASELINE_MODELS:
        model = MODELS.get(name)()
        out[name] = [predict_safely(model, name, t, context, horizon) for t in truths]
    return out


def score_scenario(name: str, config: dict[str, Any], context: int, horizon: int,
                   rollouts: int, seed: int = 0,
                   corruptions: list[str] | None = None) -> pd.DataFrame:
    """Scores [model = ``corruption@magnitude``] of every corruption of one scenario."""
    table = scenario_scores(name, config, context, horizon, rollouts, seed, corruptions)
    table = table[table["model"].str.contains("@")].copy()
    table[["corruption", "magnitude"]] = table["model"].str.split("@", expand=True)
    table["magnitude"] = table["magnitude"].astype(float)
    return table


def scenario_scores(name: str, config: dict[str, Any], context: int, horizon: int,
                    rollouts: int, seed: int = 0, corruptions: list[str] | None = None,
                    videos: tuple[str, ...] = ()) -> pd.DataFrame:
    """Normalized scores of every corruption (model ``corruption@magnitude``) of one
    scenario, with the anchors and baselines (``copy-last`` ...) scored beside them.

    Frames-only corruptions (codecs), and those named in ``videos`` again as
    ``<name>-video@magnitude`` with their frames alone, are scored on the metrics of a
    frames-only model (`metrics_for_modalities`), against anchors delivered the same way
    and measured from frames alone, as `physground evaluate` scores a video file's
    (`delivered_anchor_results`; exact frames: the lossless delivery)."""
    from physground.benchmarks.delivery import Delivery
    from physground.benchmarks.runner import metrics_for_modalities
    from physground.benchmarks.tasks import score
    from physground.benchmarks.validity.corruptions import as_video
    from physground.metrics.evaluate import applicable_metrics
    from physground.metrics.scores import normalized_scores

    scenario, truths = _truths(name, config, rollouts, seed)
    metrics = tuple(applicable_metrics(scenario))
    frames = []
    predictions: dict[str, list] = {
        kind: anchor_predictions(kind, truths, context, horizon, config)
        for kind in ("truth", "second-take", "shuffled")}
    predictions.update(_baselines(truths, context, horizon))
    rng = np.random.default_rng(seed)
    video: set[str] = set()
    deliveries: dict[str, Any] = {}  # frames-only models: their `Delivery` of (h, w)
    for cname in corruptions or CORRUPTIONS.names():
        corruption: Corruption = CORRUPTIONS.get(cname)
        for magnitude in corruption.magnitudes:
            made = [corruption.make(t, context, horizon, magnitude, rng, **(
                {"scenario": scenario} if cname == "restitution_changed" else {}))
                for t in truths]
            if any(p is None for p in made):
                continue
            predictions[f"{cname}@{magnitude:g}"] = made
            if corruption.frames_only:
                video.add(f"{cname}@{magnitude:g}")
            if corruption.delivery is not None:
                deliveries[f"{cname}@{magnitude:g}"] = corruption.delivery
            if cname in videos and truths[0].frames is not None:
                predictions[f"{cname}-video@{magnitude:g}"] = [as_video(p) for p in made]
                video.add(f"{cname}-video@{magnitude:g}")
                deliveries[f"{cname}-video@{magnitude:g}"] = Delivery  # exact frames: lossless
    pixels_only = metrics_for_modalities(metrics, {"pixels"}, name)
    for model, preds in predictions.items():
        frames.append(score(model, truths, preds, pixels_only if model in video else metrics,
                            None))
    for model, delivery in deliveries.items():  # its anchors delivered as it was
        frames.append(delivered_anchor_results(
            model, truths, [None if t.frames is None else delivery(*t.frames.shape[1:3])
                            for t in truths], predictions, pixels_only))
    return normalized_scores(pd.concat(frames, ignore_index=True))


def judge(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (scenario, metric, corruption): kind, declared, the scores over the
    magnitudes, Spearman rho, passed (NaN when the metric declares nothing about it)."""
    rows = []
    for (scenario, metric, cname), g in scores.groupby(["scenario", "metric", "corruption"]):
        corruption = CORRUPTIONS.get(cname)
        declared_metric = METRICS.get(metric)
        g = g.sort_values("magnitude")
        values = g["score"].to_numpy(dtype=np.float64)
        ok = np.isfinite(values)
        rho = np.nan
        if corruption.kind == "identical":
            declared = True
            passed = bool(ok.all() and (values[ok] == 100.0).all()) if ok.any() else np.nan
        elif corruption.kind == "nuisance":
            declared = cname in declared_metric.tolerates
            passed = bool(ok.all() and values.min() >= NUISANCE_MIN) if ok.all() else False
        else:
            declared = cname in declared_metric.detects
            if ok.sum() >= 3 and np.ptp(values[ok]) > 0:
                rho = float(stats.spearmanr(g["magnitude"].to_numpy()[ok], values[ok])[0])
            # detected (almost) in full from the second magnitude on, ties and noise near 0
            # weaken rho: saturated
            # (or at every magnitude: then its order is noise near 0)
            saturated = bool(ok.all() and values[1:].max() <= SATURATED
                             and (values[-1] <= values[0] or values[0] <= SATURATED))
            non_increasing = bool(ok.all() and np.all(np.diff(values) <= 0.0))
            monotone = (np.isfinite(rho) and rho <= SPEARMAN_MAX) or saturated or (
                non_increasing and values[-1] == 0.0)
            passed = bool(ok.all() and monotone and values[-1] < VIOLATION_MAX)
        if not ok.any():
            passed = np.nan  # undefined for this truth (e.g. no bounce in the window)
        rows.append({
            "scenario": scenario, "metric": metric, "corruption": cname,
            "kind": corruption.kind, "declared": declared,
            "scores": " ".join("—" if not np.isfinite(v) else f"{v:.0f}" for v in values),
            "worst": float(np.nanmin(values)) if ok.any() else np.nan,
            "at_largest": float(values[-1]) if ok.any() else np.nan,
            "spearman": rho,
            "passed": passed if declared else np.nan,
        })
    return pd.DataFrame(rows)


def run_validity(entries: list[tuple[str, dict[str, Any], int, int]], rollouts: int = 4,
                 seed: int = 0, progress: bool = True,
                 corruptions: list[str] | None = None) -> ValidityResult:
    """The validity suite over ``entries`` (scenario, config, context, horizon)."""
    parts = []
    for name, config, context, horizon in tqdm(entries, desc="validate-metrics",
                                               unit="scenario", disable=not progress):
        parts.append(score_scenario(name, config, context, horizon, rollouts, seed,
                                    corruptions))
    scores = pd.concat(parts, ignore_index=True)
    return ValidityResult(table=judge(scores), scores=scores)


def suite_entries(suite: Any) -> list[tuple[str, dict[str, Any], int, int]]:
    return [(e.name, dict(e.config), e.context, e.horizon) for e in suite.scenarios]


def heatmap_png(result: ValidityResult) -> bytes:
    """Score at the largest magnitude per (scenario · metric) row and corruption column;
    declared cells framed (green: passed, red: failed)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = result.table
    order = list(CORRUPTIONS.names())
    table = table.assign(row=table["scenario"] + " · " + table["metric"].map(
        lambda m: METRICS.get(m).label))
    grid = table.pivot_table(index="row", columns="corruption", values="at_largest",
                             aggfunc="first")
    grid = grid[[c for c in order if c in grid.columns]]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * grid.shape[1], 1.2 + 0.24 * grid.shape[0]))
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="RdYlGn", vmin=0, vmax=100,
                      aspect="auto")
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=6)
    status = table.set_index(["row", "corruption"])["passed"]
    for i, row in enumerate(grid.index):
        for j, col in enumerate(grid.columns):
            passed = status.get((row, col), np.nan)
            if isinstance(passed, bool | np.bool_):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.2,
                                           edgecolor="black" if passed else "magenta"))
    fig.colorbar(image, ax=ax, label="score at the largest magnitude [0-100]", shrink=0.6)
    ax.set_title("Metric validity: score of each controlled corruption of the truth "
                 "(framed: declared; magenta: failed)", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write_report(result: ValidityResult, out_dir: Path, title: str) -> Path:
    """``validity.md`` (table), ``validity.csv``/``validity_scores.csv`` and
    ``validity.png`` (heat map) under ``out_dir``; returns the Markdown path."""
    from physground.atomic import atomic_path, write_text_atomic
    from physground.reports.markdown import md_table

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "validity.png") as tmp:
        tmp.write_bytes(heatmap_png(result))
    for name, frame in (("validity.csv", result.table), ("validity_scores.csv", result.scores)):
        with atomic_path(out_dir / name) as tmp:
            frame.to_csv(tmp, index=False)
    declared = result.table[result.table["declared"]]
    failed = result.failures()
    lines = [f"# Metric validity: {title}", "",
             "Each cell scores a controlled corruption of the truth with the benchmark's "
             "bounded score (100 = second-take noise floor, 0 = uninformative). Declared "
             f"pairs must pass: identical 100; tolerated nuisances >= {NUISANCE_MIN:.0f}; "
             f"detected violations fall with the magnitude (Spearman <= {SPEARMAN_MAX}) "
             f"to below {VIOLATION_MAX:.0f}. Scores are listed over the five magnitudes.",
             "", f"Declared pairs: {len(declared)}, passed: "
             f"{int((declared['passed'] == True).sum())}, failed: {len(failed)}, "  # noqa: E712
             f"undefined for the truth: {int(declared['passed'].isna().sum())}.", "",
             "![heat map](validity.png)", ""]
    rows = []
    for r in result.table.sort_values(["scenario", "metric", "kind", "corruption"]
                                      ).itertuples(index=False):
        rows.append({"scenario": r.scenario, "metric": METRICS.get(r.metric).label,
                     "corruption": r.corruption, "kind": r.kind,
                     "declared": "yes" if r.declared else "",
                     "scores": r.scores,
                     "Spearman": "" if not np.isfinite(r.spearman) else f"{r.spearman:.2f}",
                     "result": ("pass" if r.passed is True or r.passed == 1.0 else "FAIL")
                     if r.declared and isinstance(r.passed, bool | np.bool_ | float) and
                     not (isinstance(r.passed, float) and np.isnan(r.passed)) else
                     ("undefined" if r.declared else "")})
    lines += md_table(rows)
    path = out_dir / "validity.md"
    write_text_atomic(path, "\n".join(lines))
    return path
