"""Run a suite end to end: ground truth, training, prediction, scoring, results, report.

Layout under the runs root (default ``./physground-runs``):

    data/<family>/<name>/<split>-n<count>-s<seed>-<hash>/   cached ground truth datasets
    runs/<suite>-<hash>/run.json                            config, versions, git, device
    runs/<suite>-<hash>/tasks/<task key>.parquet            one finished task each (resume)
    runs/<suite>-<hash>/results.parquet (+ .csv)            the tidy results table
    runs/<suite>-<hash>/samples/*.npz                       one rollout per task, for plots
    runs/<suite>-<hash>/checkpoints/<model>/<scenario>/     trained models
    runs/<suite>-<hash>/report/                             report.md, index.html, figures

Rerunning skips every finished task (and every finished dataset shard).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from physground.benchmarks.tasks import RESULT_COLUMNS, EvalTask
from tqdm.auto import tqdm

from physground.atomic import write_atomic, write_json_atomic
from physground.provenance import environment
from physground.storage import Dataset, DatasetSpec, generate_dataset
from physground.suite import ScenarioEntry, Suite

DEFAULT_ROOT = Path("physground-runs")

Executor = Callable[[list[EvalTask]], Iterable[tuple[EvalTask, pd.DataFrame]]]


def run_directory(suite: Suite, root: Path, device: str) -> Path:
    """Deterministic run location from the suite config (never from the clock)."""
    from physground.provenance import content_hash, library_versions

    digest = content_hash({"suite": suite.config_hash(), "device": device,
                           "versions": library_versions()})[:12]
    return Path(root) / "runs" / f"{suite.name}-{digest}"


def metrics_for(suite: Suite, scenario: str) -> tuple[str, ...]:
    """The suite's metrics that apply to ``scenario`` (all applicable ones for 'auto')."""
    from physground.metrics.evaluate import applicable_metrics

    applicable = applicable_metrics(scenario)
    if suite.metrics == "auto":
        return tuple(applicable)
    return tuple(m for m in suite.metrics if m in applicable)


def ensure_datasets(
    entry: ScenarioEntry, suite: Suite, data_root: Path, splits: Iterable[str],
    progress: bool,
) -> dict[str, Dataset]:
    """Generate (or reuse, by content hash) the ground truth of each split."""
    out = {}
    for split in splits:
        count = entry.train_rollouts if split == "train" else entry.rollouts
        spec = DatasetSpec(scenario=entry.name, split=split, count=count, seed=suite.seed,
                           config=dict(entry.config))
        out[split] = generate_dataset(spec, data_root, progress=progress)
    return out


def run_suite(
    suite: Suite,
    *,
    root: Path = DEFAULT_ROOT,
    device: str = "cpu",
    executor: Executor | None = None,
    progress: bool = True,
    report: bool = True,
) -> Path:
    """Run ``suite``; returns the run directory (with the report when ``report``)."""
    from physground.benchmarks.executors import run_local

    root = Path(root)
    run_dir = run_directory(suite, root, device)
    (run_dir / "tasks").mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "run.json", {
        "suite": asdict(suite), "suite_hash": suite.config_hash(), "device": device,
        "environment": environment(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    })
    tasks = plan_tasks(suite, root, run_dir, device, progress)
    pending = [t for t in tasks if not (run_dir / "tasks" / f"{t.key()}.parquet").exists()]
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(pending), desc=f"evaluate {suite.name}",
               unit="task", disable=not progress)
    for task, frame in (executor or run_local)(pending):
        write_atomic(run_dir / "tasks" / f"{task.key()}.parquet",
                     lambda tmp, f=frame: f.to_parquet(tmp, index=False))
        bar.update(1)
    bar.close()
    results = collect_results(run_dir, tasks)
    write_atomic(run_dir / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    write_atomic(run_dir / "results.csv", lambda tmp: results.to_csv(tmp, index=False))
    if report:
        from physground.reports import write_report

        write_report(run_dir)
    return run_dir


def plan_tasks(
    suite: Suite, root: Path, run_dir: Path, device: str, progress: bool
) -> list[EvalTask]:
    """Datasets first (generated or reused), trained models next, then one task per
    (scenario, split, model)."""
    tasks = []
    for entry in suite.scenarios:
        models = list(dict.fromkeys([*suite.models, *entry.models]))
        trained = [m for m in models if _is_trainable(m)]
        splits = list(entry.splits) + (["train"] if trained else [])
        datasets = ensure_datasets(entry, suite, root / "data", splits, progress)
        checkpoints = {
            m: train_for_suite(m, suite, entry, datasets["train"], run_dir, device, progress)
            for m in trained
        }
        metrics = metrics_for(suite, entry.name)
        for split in entry.splits:
            ds = datasets[split]
            for model in models:
                tasks.append(EvalTask(
                    model=model, scenario=entry.name, split=split, dataset=str(ds.path),
                    dataset_hash=ds.manifest["config_hash"], context=entry.context,
                    horizon=entry.horizon, metrics=metrics, checkpoint=checkpoints.get(model),
                    device=device, samples_dir=str(run_dir / "samples"),
                ))
    return tasks


def _is_trainable(model: str) -> bool:
    from physground.world_model import MODELS

    return hasattr(MODELS.get(model), "load")


def train_for_suite(
    model: str, suite: Suite, entry: ScenarioEntry, train: Dataset, run_dir: Path,
    device: str, progress: bool,
) -> str:
    """Train ``model`` on the train split as the suite says; reuse a finished checkpoint."""
    from physground.learned.training import train_for_benchmark

    options: dict[str, Any] = {}
    steps = None
    for t in suite.training:
        if t.model == model:
            options, steps = dict(t.options), t.steps
    out = run_dir / "checkpoints" / model / entry.name.replace("/", "__")
    return str(train_for_benchmark(model, train, out, steps=steps, options=options,
                                   context=entry.context, horizon=entry.horizon,
                                   seed=suite.seed, device=device, progress=progress))


def collect_results(run_dir: Path, tasks: list[EvalTask]) -> pd.DataFrame:
    """Concatenate the finished task tables in task order (one row per model, scenario,
    split, rollout, metric and horizon step)."""
    frames = [pd.read_parquet(run_dir / "tasks" / f"{t.key()}.parquet") for t in tasks]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return pd.concat(frames, ignore_index=True)[RESULT_COLUMNS]

