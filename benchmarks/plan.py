"""What a run would do, without doing it (``physground run --dry-run``).

The plan lists every dataset, training and evaluation task of a suite with whether its
result is already cached under the root (a rerun reuses those), from the same functions
the runner uses to build its stages, so the plan and the run cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from physground.benchmarks.runner import (
    checkpoint_recorded,
    dataset_complete,
    metrics_for,
    metrics_for_modalities,
    model_modalities,
    plan_tasks,
    run_directory,
    suite_models,
    task_file,
    train_record,
    train_tasks,
    wanted_datasets,
)
from physground.storage import dataset_path
from physground.suite import Suite


def run_plan(suite: Suite, root: Path, device: str, *, models: Sequence[str] | None = None,
             scenarios: Sequence[str] | None = None) -> dict[str, Any]:
    """``{"run_dir", "datasets", "trainings", "evaluations"}``: one row per task with
    ``cached`` (its result exists and will be reused)."""
    run_dir = run_directory(suite, root, device)
    if scenarios:
        suite = suite.restrict(scenarios)
    data_root = Path(root) / "data"
    wanted = wanted_datasets(suite, models)
    paths = {where: str(dataset_path(data_root, spec)) for where, spec in wanted.items()}
    datasets = [{"scenario": spec.scenario, "split": spec.split, "count": spec.count,
                 "path": paths[where], "cached": dataset_complete(Path(paths[where]))}
                for where, spec in wanted.items()]
    trainings_by_where = train_tasks(suite, paths, run_dir, device, models)
    trainings = []
    trained: dict[tuple, dict] = {}
    for where, task in trainings_by_where.items():
        record = train_record(run_dir, task)
        cached = checkpoint_recorded(record)
        trainings.append({"model": task.model, "scenario": task.scenario,
                          "steps": task.steps or 200, "checkpoint": task.out,
                          "cached": cached})
        if cached:
            outcome = json.loads(record.read_text())
            trained[where] = {k: outcome[k] for k in ("checkpoint", "failure") if k in outcome}
    evaluations = []
    inputs_ready = all(d["cached"] for d in datasets) and all(t["cached"] for t in trainings)
    if inputs_ready:  # the tasks' keys hash their inputs: known only once these exist
        for task in plan_tasks(suite, paths, trained, run_dir, device, models):
            evaluations.append({"model": task.model, "scenario": task.scenario,
                                "split": task.split, "metrics": len(task.metrics),
                                "cached": task_file(run_dir, task).exists()})
    else:
        for entry in suite.scenarios:
            metrics = metrics_for(suite, entry.name, entry)
            for split in entry.splits:
                for model in suite_models(suite, entry, models):
                    usable = metrics_for_modalities(metrics, model_modalities(model))
                    evaluations.append({"model": model, "scenario": entry.name,
                                        "split": split, "metrics": len(usable),
                                        "cached": False})
    return {"suite": suite.name, "run_dir": str(run_dir), "datasets": datasets,
            "trainings": trainings, "evaluations": evaluations}


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as text: one line per task, ``cached`` or ``to run``, and totals."""
    lines = [f"suite {plan['suite']}: run directory {plan['run_dir']}"]
    for title, rows, label in (
        ("datasets", plan["datasets"],
         lambda r: f"{r['scenario']} {r['split']} ({r['count']} rollouts)  {r['path']}"),
        ("trainings", plan["trainings"],
         lambda r: f"{r['model']} on {r['scenario']} ({r['steps']} steps)"),
        ("evaluations", plan["evaluations"],
         lambda r: f"{r['model']} on {r['scenario']} {r['split']} ({r['metrics']} metrics)"),
    ):
        cached = sum(r["cached"] for r in rows)
        lines.append(f"{title}: {len(rows)} ({cached} cached, {len(rows) - cached} to run)")
        lines.extend(f"  {'cached' if r['cached'] else 'to run'}  {label(r)}" for r in rows)
    return "\n".join(lines)
