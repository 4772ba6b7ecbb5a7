"""Run a suite end to end: ground truth, training, prediction, scoring, results, report.

Layout under the runs root (default ``./physground-runs``):

    data/<family>/<name>/<split>-n<count>-s<seed>-<hash>/   cached ground truth datasets
    runs/<suite>-<hash>/run.json                            config, versions, git, device
    runs/<suite>-<hash>/tasks/<task key>.parquet            one finished evaluation each
    runs/<suite>-<hash>/tasks/train-<key>.json              one finished training each
    runs/<suite>-<hash>/external.json                       external prediction sources
    runs/<suite>-<hash>/results.parquet (+ .csv)            the tidy results table
    runs/<suite>-<hash>/samples/*.npz                       one rollout per task, for plots
    runs/<suite>-<hash>/checkpoints/<model>/<scenario>/     trained models
    runs/<suite>-<hash>/report/                             index.html, report.md, figures
    runs/<suite>-<hash>-eval-<hash>/                        an ``evaluate`` of its own (same
                                                            layout; named from the
                                                            predictions' content hash)

The work runs in three stages, each a list of tasks handed to one executor (local process
pool by default, or Ray): generate every dataset, train every trainable model, evaluate
every (scenario, split, model). Each finished task is written atomically under its key as
soon as it arrives, so rerunning an interrupted run redoes only the unfinished tasks, and
the results table is rebuilt from the task files in plan order (no duplicated or lost
rows).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from physground.atomic import write_atomic, write_json_atomic
from physground.benchmarks.executors import Executor, run_local
from physground.benchmarks.tasks import (
    RESULT_COLUMNS,
    EvalTask,
    GenerateTask,
    TrainTask,
    empty_results,
)
from physground.errors import DataIntegrityError, ValidationError
from physground.faults import failpoint
from physground.provenance import content_hash, environment, file_sha256
from physground.storage import DatasetSpec, dataset_path, read_manifest
from physground.suite import ScenarioEntry, Suite

DEFAULT_ROOT = Path("physground-runs")


def run_directory(suite: Suite, root: Path, device: str) -> Path:
    """Deterministic run location from everything that determines the results (never from
    the clock): the suite config, device, library versions and `run_provenance`."""
    from physground.provenance import library_versions

    digest = content_hash({"suite": suite.config_hash(), "device": device,
                           "versions": library_versions(),
                           "provenance": run_provenance(suite)})[:12]
    return Path(root) / "runs" / f"{suite.name}-{digest}"


def evaluation_directory(suite: Suite, root: Path, device: str, sources: Sequence[Any],
                         settings: dict[str, Any]) -> Path:
    """Where ``physground evaluate`` writes: a run directory of its own, named from the
    suite run's identity, the content hash of every prediction directory
    (`physground.benchmarks.external.predictions_digest`) and the evaluation's settings
    (filters). The suite's own run directory is only read (finished tasks and checkpoints
    are reused from it), never rewritten; re-evaluating the same predictions reuses (and
    atomically overwrites) this directory only."""
    from physground.benchmarks.external import predictions_digest

    base = run_directory(suite, root, device)
    digest = content_hash({
        "run": base.name, "settings": settings,
        "predictions": sorted((s.name, predictions_digest(s, suite),
                               s.allow_missing, s.follow_symlinks, s.context_frames)
                              for s in sources),
    })[:12]
    return base.with_name(f"{base.name}-eval-{digest}")


def run_provenance(suite: Suite) -> dict[str, Any]:
    """What besides the suite text changes a run's results, resolved: the suite's version,
    the metric list of each scenario (``metrics = "auto"`` resolved against the installed
    metrics), each scenario's version and observation declaration, and the installed
    plugins with their versions. Part of the run hash and of ``run.json``."""
    from physground.observation import observation_spec
    from physground.provenance import plugin_versions
    from physground.scenario import scenario_class

    scenarios = {}
    for entry in suite.scenarios:
        spec = observation_spec(entry.name)
        scenarios[entry.name] = {
            "version": scenario_class(entry.name).version,
            "metrics": list(metrics_for(suite, entry.name, entry)),
            "observation": {"given_static": sorted(spec.given_static),
                            "latent_static": sorted(spec.latent_static),
                            "latent_params": sorted(spec.latent_params)},
        }
    return {"suite_version": suite.version, "tracks": list(suite.tracks),
            "scenarios": scenarios, "plugins": plugin_versions()}


def metrics_for(suite: Suite, scenario: str, entry: ScenarioEntry | None = None
                ) -> tuple[str, ...]:
    """The suite's metrics that apply to ``scenario`` (all applicable ones for 'auto')."""
    from physground.metrics.evaluate import applicable_metrics
    from physground.scenario import get_scenario

    instance = get_scenario(scenario, **(dict(entry.config) if entry else {}))
    applicable = applicable_metrics(instance)
    if suite.metrics == "auto":
        return pixel_family(applicable, suite.pixel_metrics)
    return tuple(m for m in suite.metrics if m in applicable)


PHYSGROUND_MOTION = ("pixel_mse", "spatial_iou_running", "spatiotemporal_iou_running",
                     "weighted_spatial_iou_running")


def pixel_family(metrics: Sequence[str], mode: str) -> tuple[str, ...]:
    """``metrics`` with the motion-mask metrics of ``mode``: physground's own masks
    (default) or Physics-IQ's OpenCV masks (``piq_*``, in place of physground's)."""
    from physground.metrics import METRICS, PHYSICS_IQ_TAG

    piq = set(METRICS.names(PHYSICS_IQ_TAG))
    if mode == "physics-iq":
        return tuple(m for m in metrics if m not in PHYSGROUND_MOTION)
    return tuple(m for m in metrics if m not in piq)


def metrics_for_modalities(metrics: Sequence[str], modalities: Iterable[str],
                           scenario: str | None = None) -> tuple[str, ...]:
    """The metrics a model with ``modalities`` can be scored on in ``scenario``
    (`Metric.scorable_with`): pixel metrics need frames; state metrics need states, unless
    their positions can come from the frames' masks (rigid bodies only).

    A state-only model is not failed on PSNR, nor a video model on a velocity field or
    cloth nodes it cannot output; its scores average over the metrics of its own
    modalities, so exact frames score 100.
    """
    from physground.metrics import METRICS
    from physground.scenario import SCENARIOS

    have = set(modalities)
    names = SCENARIOS.get(scenario).state_names if scenario is not None else ("pos",)
    return tuple(n for n in metrics if METRICS.get(n).scorable_with(have, names))


def model_modalities(model: str) -> frozenset[str]:
    """What a registered model outputs (both when it does not say)."""
    from physground.world_model import MODELS

    return frozenset(getattr(MODELS.get(model), "modalities", ("state", "pixels")))


def dataset_spec(entry: ScenarioEntry, suite: Suite, split: str) -> DatasetSpec:
    """The ground truth of one split of a suite scenario."""
    count = entry.train_rollouts if split == "train" else entry.rollouts
    return DatasetSpec(scenario=entry.name, split=split, count=count, seed=suite.seed,
                       config=dict(entry.config))


def suite_models(suite: Suite, entry: ScenarioEntry,
                 only: Sequence[str] | None = None) -> list[str]:
    """Models evaluated on ``entry``: the suite's and the scenario's own, in order."""
    models = list(dict.fromkeys([*suite.models, *entry.models]))
    if only is not None:
        models = [m for m in models if m in only]
    return models


def is_trainable(model: str) -> bool:
    """Whether the registered model learns (restored with ``load`` from a checkpoint)."""
    from physground.world_model import MODELS

    return hasattr(MODELS.get(model), "load")


class RunProgress:
    """Runs one stage of tasks through an executor with a progress bar and timings."""

    def __init__(self, executor: Executor, progress: bool) -> None:
        self.executor = executor
        self.progress = progress
        self.timings: dict[str, float] = {}

    def stage(self, name: str, tasks: Sequence[Any], total: int,
              on_result: Callable[[Any, Any], None]) -> None:
        start = time.perf_counter()
        bar = tqdm(total=total, initial=total - len(tasks), desc=name, unit="task",
                   disable=not self.progress)
        try:
            if tasks:
                for task, result in self.executor(list(tasks)):
                    on_result(task, result)
                    bar.set_postfix_str(task.label()[:40], refresh=False)
                    bar.update(1)
        finally:
            bar.close()
            self.timings[name] = round(time.perf_counter() - start, 3)


def run_suite(
    suite: Suite,
    *,
    root: Path = DEFAULT_ROOT,
    device: str = "cpu",
    executor: Executor | None = None,
    executor_name: str = "local",
    progress: bool = True,
    report: bool = True,
    models: Sequence[str] | None = None,
    external: Sequence[Any] = (),
    scenarios: Sequence[str] | None = None,
    run_dir: Path | None = None,
    reuse: Sequence[Path] = (),
) -> Path:
    """Run ``suite``; returns the run directory (with the report when ``report``).

    ``run_dir`` overrides the suite's run directory (`evaluation_directory` for
    ``evaluate``); ``reuse`` are run directories that are only read: a finished task or
    training recorded there is taken over (copied) instead of redone.

    ``models`` restricts the suite's models and ``scenarios`` its scenarios (names or
    ``tag:NAME``; the run directory stays the whole suite's, so that finished work is
    shared); ``external`` adds `ExternalSource`s (scored predictions of outside models),
    which the run remembers in ``external.json``. The root is locked for the run
    (`physground.lock`); stale temporaries are removed first.
    """
    from physground.lock import root_lock

    with root_lock(Path(root)):
        return _run_suite(suite, root=Path(root), device=device, executor=executor,
                          executor_name=executor_name, progress=progress, report=report,
                          models=models, external=external, scenarios=scenarios,
                          run_dir=run_dir, reuse=[Path(r) for r in reuse])


def _run_suite(suite: Suite, *, root: Path, device: str, executor: Executor | None,
               executor_name: str, progress: bool, report: bool,
               models: Sequence[str] | None, external: Sequence[Any],
               scenarios: Sequence[str] | None, run_dir: Path | None = None,
               reuse: Sequence[Path] = ()) -> Path:
    from physground.benchmarks.external import (
        ExternalSource,
        check_source,
        load_sources,
        save_sources,
    )

    started = time.perf_counter()
    run_dir = Path(run_dir) if run_dir is not None else run_directory(suite, root, device)
    reuse = [r for r in reuse if Path(r).resolve() != run_dir.resolve()]
    record: dict[str, Any] = {
        "suite": asdict(suite), "suite_hash": suite.config_hash(), "device": device,
        "provenance": run_provenance(suite),
        "executor": executor_name, "environment": environment(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if reuse:
        record["reuses"] = [str(r) for r in reuse]
    if scenarios:
        suite = suite.restrict(scenarios)
        record["scenarios_only"] = [e.name for e in suite.scenarios]
    if models:
        record["models_only"] = list(models)
    (run_dir / "tasks").mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "run.json", record)
    sources: dict[str, ExternalSource] = load_sources(run_dir)
    builtin = {m for e in suite.scenarios for m in suite_models(suite, e)}
    for source in external:
        if source.name in builtin:
            raise ValidationError(
                f"external predictions {source.directory} are named '{source.name}', a model "
                "of this suite; give them another name (--name)"
            )
        check_source(source, suite)
        sources[source.name] = source

    runner = RunProgress(executor or run_local, progress)
    try:
        datasets = generate_stage(suite, root / "data", runner, models)
        trained = train_stage(suite, datasets, run_dir, device, runner, models, reuse)
        tasks = plan_tasks(suite, datasets, trained, run_dir, device, models,
                           list(sources.values()))

        def store(task: Any, frame: pd.DataFrame) -> None:
            write_atomic(task_file(run_dir, task),
                         lambda tmp: frame.to_parquet(tmp, index=False))
            failpoint("evaluate.stored")

        for task in tasks:
            take_over(run_dir, reuse, task)
        pending = [t for t in tasks if not task_file(run_dir, t).exists()]
        runner.stage(f"evaluate {suite.name}", pending, len(tasks), store)
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()
    save_sources(run_dir, sources)  # remembered once all of their tasks succeeded
    results = collect_results(run_dir, tasks)
    failpoint("results.write")
    settings = {"suite": record["suite"], "suite_hash": record["suite_hash"],
                "device": device, "environment": record["environment"],
                "provenance": record["provenance"]}
    write_atomic(run_dir / "results.parquet",
                 lambda tmp: write_results_parquet(results, tmp, settings))
    write_atomic(run_dir / "results.csv", lambda tmp: results.to_csv(tmp, index=False))
    record.update({
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 3), "stage_seconds": runner.timings,
        "tasks": {"total": len(tasks), "run": len(pending)}, "rows": len(results),
        "external": {k: s.describe() for k, s in sources.items()},
    })
    write_json_atomic(run_dir / "run.json", record)
    if report:
        from physground.reports import write_report

        write_report(run_dir)
    return run_dir


def write_results_parquet(results: pd.DataFrame, path: Path, settings: dict[str, Any]) -> None:
    """Parquet with the run's settings and versions in the file's metadata (key
    ``physground``), so that the table carries its provenance wherever it is copied."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(results, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[b"physground"] = json.dumps(settings, sort_keys=True, default=str).encode()
    pq.write_table(table.replace_schema_metadata(metadata), path)


def read_results_settings(path: Path) -> dict[str, Any]:
    """The settings stored in a results Parquet file by `write_results_parquet`."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata.get(b"physground", b"{}"))


def task_file(run_dir: Path, task: Any) -> Path:
    return Path(run_dir) / "tasks" / f"{task.key()}.parquet"


def take_over(run_dir: Path, reuse: Sequence[Path], task: Any) -> bool:
    """Copy ``task``'s finished result (and its plotted sample) from the first of the
    read-only run directories ``reuse`` that has it into ``run_dir``; whether one did."""
    import shutil

    from physground.benchmarks.tasks import sample_path

    if task_file(run_dir, task).exists():
        return False
    for other in reuse:
        source = task_file(other, task)
        if not source.exists():
            continue
        write_atomic(task_file(run_dir, task), lambda tmp, src=source: shutil.copyfile(src, tmp))
        model = getattr(task, "model", None)
        if model is not None:
            for who in ("truth", model):
                sample = sample_path(other / "samples", task.scenario, task.split, who)
                if sample.exists():
                    target = sample_path(run_dir / "samples", task.scenario, task.split, who)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_atomic(target, lambda tmp, src=sample: shutil.copyfile(src, tmp))
        return True
    return False


def generate_stage(suite: Suite, data_root: Path, runner: RunProgress,
                   only: Sequence[str] | None = None) -> dict[tuple, str]:
    """Every dataset the suite needs, generated (or reused by content hash) in parallel.

    Returns ``{(scenario index, split): dataset directory}``.
    """
    wanted = wanted_datasets(suite, only)
    paths: dict[tuple, str] = {}
    todo: dict[str, GenerateTask] = {}
    for where, spec in wanted.items():
        path = dataset_path(data_root, spec)
        paths[where] = str(path)
        if not dataset_complete(path):
            todo.setdefault(str(path), GenerateTask(spec=spec, data_root=str(data_root)))
    runner.stage("generate", list(todo.values()), len(set(paths.values())),
                 lambda task, path: None)
    for path in set(paths.values()):
        if not dataset_complete(Path(path)):
            raise DataIntegrityError(f"dataset {path} was not completed by generation")
    return paths


def wanted_datasets(suite: Suite, only: Sequence[str] | None = None
                    ) -> dict[tuple, DatasetSpec]:
    """``{(scenario index, split): spec}`` of every dataset the suite needs (the train split
    only where a trainable model is evaluated)."""
    wanted: dict[tuple, DatasetSpec] = {}
    for i, entry in enumerate(suite.scenarios):
        needs_train = any(is_trainable(m) for m in suite_models(suite, entry, only))
        for split in [*entry.splits, *(["train"] if needs_train else [])]:
            wanted[(i, split)] = dataset_spec(entry, suite, split)
    return wanted


def dataset_complete(path: Path) -> bool:
    """Whether a finished dataset is cached at ``path``."""
    if not (Path(path) / "manifest.json").exists():
        return False
    return bool(read_manifest(path).get("complete"))


def train_stage(suite: Suite, datasets: dict[tuple, str], run_dir: Path, device: str,
                runner: RunProgress, only: Sequence[str] | None,
                reuse: Sequence[Path] = ()) -> dict[tuple, dict]:
    """Train every trainable model on each scenario's train split (reusing finished ones).

    Returns ``{(scenario index, model): {"checkpoint": directory}}``, or ``{"failure":
    reason}`` for a model that cannot be trained on that scenario (its evaluation then
    scores every rollout as a failure with that reason; a rerun tries again).
    """
    tasks = train_tasks(suite, datasets, run_dir, device, only)
    records = {}
    for where, task in tasks.items():
        found = [train_record(r, task) for r in reuse
                 if checkpoint_recorded(train_record(r, task))]
        records[where] = found[0] if found and not train_record(run_dir, task).exists() \
            else train_record(run_dir, task)  # a checkpoint of a read-only run is used there
    pending = [t for where, t in tasks.items() if not checkpoint_recorded(records[where])]

    def store(task: TrainTask, outcome: dict[str, str]) -> None:
        where = next(w for w, t in tasks.items() if t is task or t == task)
        write_json_atomic(records[where], {**outcome, "task": asdict(task)})

    runner.stage("train", pending, len(tasks), store)
    out = {}
    for where in tasks:
        record = json.loads(records[where].read_text())
        out[where] = {k: record[k] for k in ("checkpoint", "failure") if k in record}
    return out


def train_record(run_dir: Path, task: TrainTask) -> Path:
    """Where the outcome of a training task is recorded."""
    return Path(run_dir) / "tasks" / f"{task.key()}.json"


def train_tasks(suite: Suite, datasets: dict[tuple, str], run_dir: Path, device: str,
                only: Sequence[str] | None) -> dict[tuple, TrainTask]:
    """``{(scenario index, model): TrainTask}`` for every trainable model of the suite."""
    tasks: dict[tuple, TrainTask] = {}
    for i, entry in enumerate(suite.scenarios):
        for model in suite_models(suite, entry, only):
            if not is_trainable(model):
                continue
            options: dict[str, Any] = {}
            steps = None
            matches = [t for t in suite.training if t.applies(model, entry.name)]
            matches.sort(key=lambda t: t.scenario is not None)  # specific entries last, win
            for t in matches:
                options, steps = dict(t.options), t.steps
            tasks[(i, model)] = TrainTask(
                model=model, scenario=entry.name, train_dataset=datasets[(i, "train")],
                out=str(run_dir / "checkpoints" / model / entry.name.replace("/", "__")),
                steps=steps, options=options, seed=suite.seed, device=device,
            )
    return tasks


def checkpoint_recorded(record: Path) -> bool:
    """Whether a training's outcome is recorded and its checkpoint still exists."""
    if not record.exists():
        return False
    checkpoint = json.loads(record.read_text()).get("checkpoint")
    return checkpoint is not None and Path(checkpoint).exists()


def checkpoint_digest(checkpoint: str) -> str:
    """sha256 over the files of a checkpoint directory (names and contents; training logs,
    which hold wall-clock times, are left out)."""
    path = Path(checkpoint)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix != ".jsonl"
                   ) if path.is_dir() else [path]
    return content_hash({str(p.relative_to(path) if path.is_dir() else p.name): file_sha256(p)
                         for p in files})


def plan_tasks(
    suite: Suite,
    datasets: dict[tuple, str],
    trained: dict[tuple, dict],
    run_dir: Path,
    device: str,
    only: Sequence[str] | None = None,
    external: Iterable[Any] = (),
) -> list[Any]:
    """One evaluation task per (scenario, split, track, model), one per score anchor
    (truth, second take, shuffled: `physground.benchmarks.anchors`), then one per
    external source (external predictions are made from the exported default-track
    observation)."""
    from physground.benchmarks.anchors import ANCHOR_KINDS, AnchorTask
    from physground.benchmarks.external import ExternalTask

    tasks: list[Any] = []
    external = list(external)
    for i, entry in enumerate(suite.scenarios):
        metrics = metrics_for(suite, entry.name, entry)
        for split in entry.splits:
            path = datasets[(i, split)]
            dataset_hash = read_manifest(Path(path))["config_hash"]
            common = dict(scenario=entry.name, split=split, dataset=path,
                          dataset_hash=dataset_hash, context=entry.context,
                          horizon=entry.horizon, metrics=metrics,
                          samples_dir=str(run_dir / "samples"))
            for track in suite.tracks:
                for model in suite_models(suite, entry, only):
                    outcome = trained.get((i, model), {})
                    checkpoint = outcome.get("checkpoint")
                    tasks.append(EvalTask(
                        model=model, checkpoint=checkpoint, device=device, track=track,
                        samples=suite.samples,
                        checkpoint_hash=checkpoint_digest(checkpoint) if checkpoint else None,
                        failure=outcome.get("failure"),
                        **{**common, "metrics": metrics_for_modalities(
                            metrics, model_modalities(model), entry.name)},
                    ))
            tasks += [AnchorTask(kind=kind, scenario=entry.name, split=split, dataset=path,
                                 dataset_hash=dataset_hash, context=entry.context,
                                 horizon=entry.horizon, metrics=metrics,
                                 config=dict(entry.config)) for kind in ANCHOR_KINDS]
            for source in external:
                modalities = source.modalities(entry.name, split)
                tasks.append(ExternalTask(source=source.describe(), config=dict(entry.config),
                                          **{**common, "metrics": metrics_for_modalities(
                                              metrics, modalities, entry.name)}))
    return tasks


def collect_results(run_dir: Path, tasks: list[Any]) -> pd.DataFrame:
    """Concatenate the finished task tables in plan order (one row per model, scenario,
    split, rollout, metric and horizon step)."""
    frames = []
    for task in tasks:
        path = task_file(run_dir, task)
        if not path.exists():
            raise DataIntegrityError(f"task result {path} ({task.label()}) is missing")
        frame = pd.read_parquet(path)
        if len(frame):
            frames.append(frame)
    if not frames:
        return empty_results()
    table = pd.concat(frames, ignore_index=True)
    if "sample" not in table:
        return table[RESULT_COLUMNS]
    # stochastic models: one block per sample; deterministic rows are sample 0
    table["sample"] = table["sample"].fillna(0).astype("int64")
    return table[[*RESULT_COLUMNS, "sample"]]
