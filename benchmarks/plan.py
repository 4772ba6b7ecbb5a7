"""What a run would do, without doing it (``physground run --dry-run``).

The plan lists every dataset, training and evaluation task of a suite with whether its
result is already cached under the root (a rerun reuses those), from the same functions
the runner uses to build its stages, so the plan and the run cannot disagree.
"""

from __future__ import annotations

import dataclasses
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
    done = {(d["scenario"], d["split"]) for d in datasets if d["cached"]}
    trained_ok = {(t["model"], t["scenario"]) for t in trainings if t["cached"]}
    for i, entry in enumerate(suite.scenarios):
        needed = [split for (j, split) in wanted if j == i]
        models_here = suite_models(suite, entry, models)
        ready = all((entry.name, s) in done for s in needed) and all(
            (m, entry.name) in trained_ok for m in models_here if (i, m) in trainings_by_where)
        if ready:  # task keys hash their inputs: known once datasets and checkpoints exist
            one = dataclasses.replace(suite, scenarios=(entry,))
            tasks = plan_tasks(one, {(0, s): paths[(i, s)] for s in needed},
                               {(0, m): v for (j, m), v in trained.items() if j == i},
                               run_dir, device, models)
            evaluations += [{"model": t.model, "scenario": t.scenario, "split": t.split,
                             "metrics": len(t.metrics),
                             "cached": task_file(run_dir, t).exists()} for t in tasks]
            continue
        metrics = metrics_for(suite, entry.name, entry)
        for split in entry.splits:
            for model in models_here:
                usable = metrics_for_modalities(metrics, model_modalities(model),
                                                entry.name)
                evaluations.append({"model": model, "scenario": entry.name, "split": split,
                                    "metrics": len(usable), "cached": False})
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
