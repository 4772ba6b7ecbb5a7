"""The ``physground`` command line: scenarios, metrics, models, generate, evaluate, report,
run, train.

Errors caused by input (unknown names, bad parameters, malformed suites, corrupted data,
malformed options) are printed as one line ``error: ...`` with exit code 2, without a
traceback, by `PhysgroundGroup`, so that `typer.testing.CliRunner` sees exactly what a
shell sees. Other modules mount their commands with ``app.command(NAME)(function)``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
import typer.core

from physground.errors import ErrorList, PhysgroundError

# typer (>= 0.25) vendors click; its usage errors derive from typer's own UsageError
_USAGE_ERRORS = tuple({c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"}
                      | {click.UsageError})


class PhysgroundGroup(typer.core.TyperGroup):
    """The command group; turns input errors (ours and click's) into one line, exit 2."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _USAGE_ERRORS as err:
            ctx = getattr(err, "ctx", None)
            if type(err).__name__ == "NoArgsIsHelpError":
                typer.echo(ctx.get_help() if ctx else str(err))
                code = 0
            else:
                where = f" (see '{ctx.command_path} --help')" if ctx else ""
                code = _fail(" ".join(err.format_message().split()) + where)
        except ErrorList as err:  # several independent problems: one line each
            for message in err.messages:
                code = _fail(message)
        except PhysgroundError as err:
            code = _fail(" ".join(str(err).split("\n")))
        except (typer.Abort, click.exceptions.Abort):
            typer.echo("aborted", err=True)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str) -> int:
    typer.echo(f"error: {message}", err=True)
    return 2


app = typer.Typer(
    name="physground", no_args_is_help=True, add_completion=False, cls=PhysgroundGroup,
    help="Physics-grounded benchmark and training suite for learned world models.",
    pretty_exceptions_enable=False, rich_markup_mode=None,
)

RootOption = Annotated[Path, typer.Option(
    "--root", help="Directory for data and runs (datasets are cached in ROOT/data).")]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
ListQuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Names only.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DEFAULT_ROOT = Path("physground-runs")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"physground {version('physground')}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")]
          = False) -> None:
    """Physics-grounded benchmark and training suite for learned world models."""


def _print_json(rows: Any) -> None:
    typer.echo(json.dumps(rows, indent=2, sort_keys=False, default=str))


def _table(rows: list[dict[str, str]], header: list[str], indent: str = "") -> list[str]:
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in header]
    out = [indent + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out += [indent + "  ".join(r[h].ljust(w) for h, w in zip(header, widths, strict=True))
            for r in rows]
    return [line.rstrip() for line in out]


TagOption = Annotated[str | None, typer.Option(help="Only entries with this tag.")]


@app.command("scenarios")
def scenarios_command(tag: TagOption = None, as_json: JsonOption = False,
                      quiet: ListQuietOption = False) -> None:
    """List scenarios with their parameters, units and per-split ranges."""
    from physground.listing import scenario_rows

    rows = scenario_rows(tag)
    if as_json:
        return _print_json(rows)
    for row in rows:
        if quiet:
            typer.echo(row["name"])
            continue
        typer.echo(f"{row['name']}  [{', '.join(row['tags'])}]  laws: {', '.join(row['laws'])}")
        header = ["param", "unit", "valid", "train", "test_id", "test_ood"]
        lines = _table(row["params"], header)
        typer.echo("    " + lines[0])
        for param, line in zip(row["params"], lines[1:], strict=True):
            typer.echo(f"  {'*' if param['ood'] else ' '} {line}")
        typer.echo("")
    if not quiet:
        typer.echo("* parameter moved outside the training range in test_ood")


@app.command("metrics")
def metrics_command(tag: TagOption = None, as_json: JsonOption = False,
                    quiet: ListQuietOption = False) -> None:
    """List metrics: direction, unit, modality, the laws they need and where they apply."""
    from physground.listing import metric_rows

    rows = metric_rows(tag)
    if as_json:
        return _print_json(rows)
    if quiet:
        return typer.echo("\n".join(r["name"] for r in rows))
    cells = [{"metric": r["name"], "better": "higher" if r["higher_is_better"] else "lower",
              "unit": r["unit"] or "-", "modality": r["modality"],
              "laws": _laws_cell(r["requires_laws"], r["laws_mode"]),
              "scenarios": str(len(r["scenarios"])), "description": r["description"]}
             for r in rows]
    typer.echo("\n".join(_table(cells, list(cells[0]) if cells else ["metric"])))


def _laws_cell(laws: list[str], mode: str) -> str:
    if not laws:
        return "-"
    return ",".join(laws) if len(laws) == 1 else f"{mode}:{','.join(laws)}"


@app.command("models")
def models_command(tag: TagOption = None, as_json: JsonOption = False,
                   quiet: ListQuietOption = False) -> None:
    """List world models: tags, output modalities and whether they train."""
    from physground.listing import model_rows

    rows = model_rows(tag)
    if as_json:
        return _print_json(rows)
    if quiet:
        return typer.echo("\n".join(r["name"] for r in rows))
    cells = [{"model": r["name"], "outputs": ",".join(r["modalities"]),
              "trains": "yes" if r["trainable"] else "no", "tags": ",".join(r["tags"]),
              "description": r["description"]} for r in rows]
    typer.echo("\n".join(_table(cells, list(cells[0]) if cells else ["model"])))


@app.command("generate")
def generate_command(
    scenario: Annotated[str, typer.Argument(help="Scenario name, e.g. rigid/projectile.")],
    split: Annotated[str, typer.Option(help="train, test_id or test_ood.")] = "train",
    count: Annotated[int, typer.Option(min=1, help="Number of rollouts.")] = 16,
    seed: Annotated[int, typer.Option(min=0, help="Dataset seed.")] = 0,
    shard_size: Annotated[int, typer.Option(min=1, help="Rollouts per HDF5 shard.")] = 16,
    param: Annotated[list[str], typer.Option(help="Pin a parameter: NAME=VALUE.")] = [],  # noqa: B006
    config: Annotated[list[str], typer.Option(help="Scenario config: KEY=VALUE.")] = [],  # noqa: B006
    out: Annotated[Path | None, typer.Option(help="Dataset directory (default: by hash).")] = None,
    root: RootOption = DEFAULT_ROOT,
    quiet: QuietOption = False,
) -> None:
    """Generate a ground-truth dataset (resumes an interrupted generation)."""
    from physground.scenario import SCENARIOS
    from physground.schema import finite_number, instantiate, parse_assignments, validate_fields
    from physground.storage import DatasetSpec, generate_dataset

    config_type = SCENARIOS.get(scenario).config_type
    overrides = validate_fields(config_type, parse_assignments(config, "--config"),
                                "--config", from_text=True)
    instantiate(config_type, overrides, "--config")  # range checks before any work
    fixed = {k: finite_number(v, f"--param {k}")
             for k, v in parse_assignments(param, "--param").items()}
    spec = DatasetSpec(scenario=scenario, split=split, count=count, seed=seed,
                       shard_size=shard_size, config=overrides, fixed_params=fixed)
    from physground.lock import root_lock

    with root_lock(root):
        dataset = generate_dataset(spec, root / "data", out=out, progress=not quiet)
    if dataset.rebuilt:
        typer.echo(f"repaired: re-simulated {', '.join(dataset.rebuilt)} (missing or corrupt)")
    rejected = dataset.manifest.get("rejected", 0)
    typer.echo(f"{dataset.path}  ({len(dataset)} rollouts, {rejected} rejected)")


ExecutorOption = Annotated[str, typer.Option(
    "--executor", help="local (process pool), sequential or ray.")]
WorkersOption = Annotated[int | None, typer.Option(
    "--workers", help="Worker processes (local) or CPUs (local Ray); default: all cores.")]
RayAddressOption = Annotated[str | None, typer.Option(
    "--ray-address", help="Ray cluster address (ray://host:10001 or auto); default: a "
    "local Ray instance.")]
SuiteOption = Annotated[str, typer.Option(
    help="Shipped suite (quick, standard, full) or path to a suite .toml.")]


ScenarioFilter = Annotated[list[str], typer.Option(
    "--scenario", help="Only these suite scenarios (name or tag:NAME, repeatable; default: "
    "all).")]
ModelFilter = Annotated[list[str], typer.Option(
    "--model", help="Only these suite models (repeatable; default: all).")]


def _run(suite: str, root: Path, device: str, quiet: bool, executor: str,
         workers: int | None, ray_address: str | None, report: bool,
         models: list[str] | None = None, external: list | None = None,
         pixel_metrics: str | None = None, scenarios: list[str] | None = None,
         splits: list[str] | None = None, evaluation: bool = False) -> Path:
    """Run (or, with ``evaluation``, evaluate) a suite; returns its run directory.

    An evaluation writes to a run directory of its own (`evaluation_directory`, named from
    the predictions' content hash and the filters) and only reads the suite's run."""
    import dataclasses

    from physground.benchmarks.executors import get_executor
    from physground.benchmarks.runner import evaluation_directory, run_directory, run_suite
    from physground.device import resolve_device
    from physground.suite import load_suite

    loaded = load_suite(suite)
    original = loaded
    if pixel_metrics is not None:
        loaded = dataclasses.replace(loaded, pixel_metrics=pixel_metrics)
    _check_models(loaded, models)
    if scenarios:
        loaded.restrict(scenarios)  # errors before any work; run_suite keeps the run dir
    if splits:
        from physground.suite import filter_suite

        loaded = filter_suite(loaded, None, splits)
    device = resolve_device(device)
    run_dir, reuse = None, []
    if evaluation:
        scored = loaded.restrict(scenarios) if scenarios else loaded
        run_dir = evaluation_directory(loaded, root, device, external or [], {
            "models": sorted(models or []), "scenarios": sorted(scenarios or []),
            "splits": sorted(splits or []), "pixel_metrics": pixel_metrics,
            "scored": [(e.name, list(e.splits)) for e in scored.scenarios]})
        reuse = list(dict.fromkeys([run_directory(original, root, device),
                                    run_directory(loaded, root, device)]))
    return run_suite(
        loaded, root=root, device=device, run_dir=run_dir, reuse=reuse,
        executor=get_executor(executor, workers=workers, address=ray_address),
        executor_name=executor, progress=not quiet, report=report, models=models or None,
        external=external or (), scenarios=scenarios or None,
    )


def _check_models(suite: Any, models: list[str] | None) -> None:
    """Every ``--model`` is a model of the suite (did you mean ... otherwise)."""
    from physground.errors import UnknownNameError, did_you_mean

    known = sorted({m for e in suite.scenarios for m in [*suite.models, *e.models]})
    for model in models or ():
        if model not in known:
            raise UnknownNameError(f"--model {model}: not a model of suite '{suite.name}'"
                                   f"{did_you_mean(model, known)}; its models: "
                                   f"{', '.join(known)}")


@app.command("run")
def run_command(
    suite: SuiteOption = "quick",
    root: RootOption = DEFAULT_ROOT,
    device: DeviceOption = "cpu",
    executor: ExecutorOption = "local",
    workers: WorkersOption = None,
    ray_address: RayAddressOption = None,
    scenario: ScenarioFilter = [],  # noqa: B006
    model: ModelFilter = [],  # noqa: B006
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the task plan and what is cached; run nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: the plan as JSON.")]
    = False,
    quiet: QuietOption = False,
) -> None:
    """Run a suite end to end (ground truth, training, scoring, report); prints the report.

    Finished datasets, trainings and evaluations are reused: rerunning an interrupted run redoes only what was not finished.
    """  # noqa: E501  (typer folds docstring lines; one line per paragraph)
    if dry_run:
        from physground.benchmarks.plan import format_plan, run_plan
        from physground.device import resolve_device
        from physground.suite import load_suite

        loaded = load_suite(suite)
        _check_models(loaded, model)
        plan = run_plan(loaded, root, resolve_device(device), models=model or None,
                        scenarios=scenario or None)
        return _print_json(plan) if as_json else typer.echo(format_plan(plan))
    if as_json:
        raise PhysgroundError("--json is for --dry-run (a run writes results.parquet)")
    from physground.reports import markdown_path, report_path

    run_dir = _run(suite, root, device, quiet, executor, workers, ray_address, report=True,
                   models=model, scenarios=scenario)
    typer.echo(f"results: {run_dir / 'results.parquet'}")
    typer.echo(f"summary: {markdown_path(run_dir)}")
    typer.echo(f"report: {report_path(run_dir)}")


def _observation_help() -> str:
    from physground.observation import CONTRACT_HELP

    return CONTRACT_HELP


def _evaluate_help() -> str:
    """The prediction layout of `physground.benchmarks.external`, reflowed for --help."""
    from physground.benchmarks import external

    layout = (external.__doc__ or "").split("Prediction layout", 1)[-1]
    items: list[str] = []
    for raw in ("Prediction layout" + layout).splitlines():
        line = raw.strip()
        if not line:
            items.append("")
        elif line.startswith(("PRED_DIR", "- ")) or not items or not items[-1]:
            items.append(line)
        else:
            items[-1] += " " + line
    # typer folds single newlines; a blank line between items keeps them apart
    return "\n\n".join(item.replace("``", "`") for item in items if item)


def _score_help() -> str:
    """How to read the score, for --help (details: README, `physground.metrics.scores`)."""
    return (
        "Scores: each (scenario, split, metric) is scored in [0, 100] per rollout: 100 at "
        "or below the noise floor of a second take of the scene (perturbed initial "
        "conditions, another solver), 0 at the best prediction without physics (another "
        "rollout, copy-last, constant velocity), log-linear between; failures score 0. Per "
        "scenario the families accuracy, conservation, contact and pixels weigh equally "
        "(conservation and contact capped by accuracy: freezing conserves energy), then "
        "the mean over scenarios. Only models scored on the same cells are ranked; truth, "
        "second-take, reference, baselines and shuffled are anchors, never ranked. "
        "`physground validate-metrics` scores controlled corruptions of the truth; in its "
        "table, rows marked declared are each metric's contract (truth 100, a tolerated "
        "nuisance >= 90, a detected violation falling with its magnitude to below 50), "
        "the other rows and the heat map show what a metric does not see.\n\n")


@app.command("evaluate", help=(
    "Score the suite's models (and external predictions) and write the results table.\n\n"
    "The results go to a run directory of their own, runs/<suite>-<hash>-eval-<hash>, named "
    "from the predictions' content hash and the filters; the suite's run directory is only "
    "read (its finished tasks and checkpoints are reused), never rewritten.\n\n"
    "With --predictions DIR the predictions of an outside model are scored exactly like "
    "the built-in models (use `physground export-context` to get its inputs).\n\n"
    + _observation_help() + "\n\n" + _score_help() + _evaluate_help()))
def evaluate_command(
    suite: SuiteOption = "quick",
    predictions: Annotated[list[Path], typer.Option(
        "--predictions", help="Directory of external predictions (repeatable).")] = [],  # noqa: B006
    name: Annotated[list[str], typer.Option(
        "--name", help="Model name for each --predictions directory (default: model.json "
        "or the directory name).")] = [],  # noqa: B006
    allow_missing: Annotated[bool, typer.Option(
        help="Score rollouts without a prediction file as failures instead of an error.")]
    = False,
    follow_symlinks: Annotated[bool, typer.Option(
        help="Follow symlinks that leave the predictions directory.")] = False,
    model: ModelFilter = [],  # noqa: B006
    scenario: ScenarioFilter = [],  # noqa: B006
    root: RootOption = DEFAULT_ROOT,
    device: DeviceOption = "cpu",
    executor: ExecutorOption = "local",
    workers: WorkersOption = None,
    ray_address: RayAddressOption = None,
    report: Annotated[bool, typer.Option(help="Also write the report.")] = False,
    split: Annotated[list[str], typer.Option(
        "--split", help="Only these splits (repeatable).")] = [],  # noqa: B006
    pixel_metrics: Annotated[str | None, typer.Option(
        help="Motion-mask metrics: 'physground' (its own masks) or 'physics-iq' (Physics-IQ's "
             "OpenCV masks, metrics piq_*); default: the suite's.")] = None,
    quiet: QuietOption = False,
) -> None:
    from physground.benchmarks.external import ExternalSource

    if name and len(name) != len(predictions):
        raise PhysgroundError(f"--name given {len(name)} times for {len(predictions)} "
                              "--predictions directories; give one per directory or none")
    sources = [ExternalSource.from_directory(p, name[i] if name else None, allow_missing,
                                             follow_symlinks)
               for i, p in enumerate(predictions)]
    run_dir = _run(suite, root, device, quiet, executor, workers, ray_address, report=report,
                   models=model, external=sources, pixel_metrics=pixel_metrics,
                   scenarios=scenario, splits=split, evaluation=True)
    typer.echo(f"results: {run_dir / 'results.parquet'}")
    if report:
        from physground.reports import report_path

        typer.echo(f"report: {report_path(run_dir)}")


@app.command("export-context")
def export_context_command(
    out: Annotated[Path, typer.Option(help="Directory to write the context to.")],
    suite: SuiteOption = "quick",
    root: RootOption = DEFAULT_ROOT,
    quiet: QuietOption = False,
) -> None:
    """Write the context frames, states and prompts an external model needs.

    context.npz holds exactly the observation our own models get (context frames, states,
    masks, camera, dt, given statics; no parameters). One folder per test rollout of the
    suite, plus index.json and README.md describing the
    layout the predictions must follow (see `physground evaluate --help`).
    """
    from physground.benchmarks.external import export_context
    from physground.suite import load_suite

    index = export_context(load_suite(suite), root, out, progress=not quiet)
    typer.echo(f"context: {index}")


@app.command("report")
def report_command(
    runs: Annotated[list[Path], typer.Argument(
        help="A run directory (runs/<suite>-<hash>), or two to compare (RUN_A RUN_B).")],
    compare: Annotated[list[str], typer.Option(
        "--compare", help="Model pair A:B for paired tests (repeatable).")] = [],  # noqa: B006
    out: Annotated[Path | None, typer.Option(help="Output directory of a comparison.")]
    = None,
    quiet: QuietOption = False,
) -> None:
    """(Re)write a run's report, or compare two runs of the same suite."""
    from physground.reports import compare_runs, report_path, write_report

    if len(runs) == 2:
        typer.echo(f"report: {compare_runs(runs[0], runs[1], out)}")
        return
    if len(runs) != 1:
        raise PhysgroundError(f"report takes one run directory or two to compare, got "
                              f"{len(runs)}")
    pairs = []
    for item in compare:
        a, sep, b = item.partition(":")
        if not sep or not a or not b:
            raise PhysgroundError(f"--compare '{item}' is not of the form MODEL_A:MODEL_B")
        pairs.append((a, b))
    write_report(runs[0], pairs=pairs or None)
    typer.echo(f"report: {report_path(runs[0])}")


def _mount_train() -> None:
    """`physground train` lives with the learned models (`physground.learned.cli`)."""
    from physground.learned.cli import train_command

    app.command("train")(train_command)


_mount_train()


def _mount_export() -> None:
    from physground.export_cli import export_command

    app.command("export")(export_command)


_mount_export()


def _mount_validity() -> None:
    """`physground validate-metrics` lives with the validity suite."""
    from physground.benchmarks.validity.cli import validate_metrics_command

    app.command("validate-metrics")(validate_metrics_command)


_mount_validity()


def _mount_validate() -> None:
    """`physground validate-physics` lives with the studies (`benchmarks/validation`)."""
    from physground.benchmarks.validation.cli import validate_physics_command

    app.command("validate-physics")(validate_physics_command)


_mount_validate()


def main() -> None:
    """Entry point: one-line errors for bad input (`PhysgroundGroup`) and for the
    environment (disk full, read-only, permissions: `physground.environment_errors`), exit
    code 2; SIGINT and SIGTERM stop the work (pool workers included) with one line, exit 130
    and 143."""
    from physground.environment_errors import Stopped, describe_os_error, stop_on_signals

    stop_on_signals()
    try:
        app()
    except OSError as err:
        typer.echo(f"error: {describe_os_error(err)}", err=True)
        sys.exit(2)
    except Stopped as stop:
        typer.echo(f"stopped by {stop.name}: finished datasets, checkpoints and evaluations "
                   "are kept; rerun the same command to resume", err=True)
        sys.exit(128 + stop.signum)


if __name__ == "__main__":
    main()
