"""The ``physground`` command line: scenarios, generate, evaluate, report, run.

Errors caused by input (unknown names, bad parameters, malformed suites, corrupted data)
are printed as one line ``error: ...`` with exit code 2, without a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from physground.errors import PhysgroundError

app = typer.Typer(
    name="physground", no_args_is_help=True, add_completion=False,
    help="Physics-grounded benchmark and training suite for learned world models.",
    pretty_exceptions_enable=False,
)

RootOption = Annotated[Path, typer.Option("--root", help="Directory for data and runs.")]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


@app.command("scenarios")
def scenarios_command(
    tag: Annotated[str | None, typer.Option(help="Only scenarios with this tag.")] = None,
) -> None:
    """List scenarios with their parameters, units and per-split ranges."""
    from physground.scenario import SCENARIOS

    for name in SCENARIOS.names(tag):
        scenario = SCENARIOS.get(name)
        tags = ", ".join(sorted(SCENARIOS.tags(name)))
        typer.echo(f"{name}  [{tags}]  laws: {', '.join(sorted(scenario.laws))}")
        rows = scenario.param_space.describe()
        header = ["param", "unit", "valid", "train", "test_id", "test_ood"]
        widths = [max(len(h), *(len(r[h]) for r in rows)) for h in header]
        typer.echo("    " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for row in rows:
            ood = "*" if row["param"] in scenario.param_space.ood_params() else " "
            cells = [row[h].ljust(w) for h, w in zip(header, widths, strict=True)]
            typer.echo(f"  {ood} " + "  ".join(cells))
        typer.echo("")
    typer.echo("* parameter moved outside the training range in test_ood")


def _parse_assignments(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PhysgroundError(f"{what} '{item}' is not of the form NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


def _config_value(text: str) -> int | float | bool | str:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


@app.command("generate")
def generate_command(
    scenario: Annotated[str, typer.Argument(help="Scenario name, e.g. rigid/projectile.")],
    split: Annotated[str, typer.Option(help="train, test_id or test_ood.")] = "train",
    count: Annotated[int, typer.Option(help="Number of rollouts.")] = 16,
    seed: Annotated[int, typer.Option(help="Dataset seed.")] = 0,
    shard_size: Annotated[int, typer.Option(help="Rollouts per HDF5 shard.")] = 16,
    param: Annotated[list[str], typer.Option(help="Pin a parameter: NAME=VALUE.")] = [],  # noqa: B006
    config: Annotated[list[str], typer.Option(help="Scenario config: KEY=VALUE.")] = [],  # noqa: B006
    out: Annotated[Path | None, typer.Option(help="Dataset directory (default: by hash).")] = None,
    root: RootOption = Path("physground-runs"),
    quiet: QuietOption = False,
) -> None:
    """Generate a ground-truth dataset (resumes an interrupted generation)."""
    from physground.storage import DatasetSpec, generate_dataset

    fixed = _parse_assignments(param, "--param")
    spec = DatasetSpec(
        scenario=scenario, split=split, count=count, seed=seed, shard_size=shard_size,
        config={k: _config_value(v) for k, v in _parse_assignments(config, "--config").items()},
        fixed_params={k: _number(k, v) for k, v in fixed.items()},
    )
    from physground.lock import root_lock

    with root_lock(root):
        dataset = generate_dataset(spec, root / "data", out=out, progress=not quiet)
    if dataset.rebuilt:
        typer.echo(f"repaired: re-simulated {', '.join(dataset.rebuilt)} (missing or corrupt)")
    rejected = dataset.manifest.get("rejected", 0)
    typer.echo(f"{dataset.path}  ({len(dataset)} rollouts, {rejected} rejected)")


def _number(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise PhysgroundError(f"--param {name}={text}: value is not a number") from None


ExecutorOption = Annotated[str, typer.Option(
    "--executor", help="local (process pool), sequential or ray.")]
WorkersOption = Annotated[int | None, typer.Option(
    "--workers", help="Worker processes (local) or CPUs (local Ray); default: all cores.")]
RayAddressOption = Annotated[str | None, typer.Option(
    "--ray-address", help="Ray cluster address (ray://host:10001 or auto); default: a "
    "local Ray instance.")]
SuiteOption = Annotated[str, typer.Option(
    help="Shipped suite (quick, standard, full) or path to a suite .toml.")]


def _run(suite: str, root: Path, device: str, quiet: bool, executor: str,
         workers: int | None, ray_address: str | None, report: bool,
         models: list[str] | None = None, external: list | None = None) -> Path:
    from physground.benchmarks.executors import get_executor
    from physground.benchmarks.runner import run_suite
    from physground.device import resolve_device
    from physground.suite import load_suite

    return run_suite(
        load_suite(suite), root=root, device=resolve_device(device),
        executor=get_executor(executor, workers=workers, address=ray_address),
        executor_name=executor, progress=not quiet, report=report, models=models or None,
        external=external or (),
    )


@app.command("run")
def run_command(
    suite: SuiteOption = "quick",
    root: RootOption = Path("physground-runs"),
    device: DeviceOption = "cpu",
    executor: ExecutorOption = "local",
    workers: WorkersOption = None,
    ray_address: RayAddressOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run a suite end to end (ground truth, training, scoring, report); prints the report.

    Finished datasets, trainings and evaluations are reused: rerunning an interrupted run redoes only what was not finished.
    """  # noqa: E501  (typer folds docstring lines; one line per paragraph)
    from physground.reports import markdown_path, report_path

    run_dir = _run(suite, root, device, quiet, executor, workers, ray_address, report=True)
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
    model: Annotated[list[str], typer.Option(
        "--model", help="Only these suite models (repeatable; default: all).")] = [],  # noqa: B006
    root: RootOption = Path("physground-runs"),
    device: DeviceOption = "cpu",
    executor: ExecutorOption = "local",
    workers: WorkersOption = None,
    ray_address: RayAddressOption = None,
    report: Annotated[bool, typer.Option(help="Also write the report.")] = False,
    quiet: QuietOption = False,
) -> None:
    from physground.benchmarks.external import ExternalSource

    if name and len(name) != len(predictions):
        raise PhysgroundError(f"--name given {len(name)} times for {len(predictions)} "
                              "--predictions directories; give one per directory or none")
    sources = [ExternalSource.from_directory(p, name[i] if name else None, allow_missing)
               for i, p in enumerate(predictions)]
    run_dir = _run(suite, root, device, quiet, executor, workers, ray_address, report=report,
                   models=model, external=sources)
    typer.echo(f"results: {run_dir / 'results.parquet'}")
    if report:
        from physground.reports import report_path

        typer.echo(f"report: {report_path(run_dir)}")


@app.command("export-context")
def export_context_command(
    out: Annotated[Path, typer.Option(help="Directory to write the context to.")],
    suite: SuiteOption = "quick",
    root: RootOption = Path("physground-runs"),
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
    """Entry point: one-line errors for bad input and for the environment (disk full,
    read-only, permissions: `physground.environment_errors`), exit code 2; SIGINT and
    SIGTERM stop the work (pool workers included) with one line, exit 130 and 143."""
    from physground.environment_errors import Stopped, describe_os_error, stop_on_signals

    stop_on_signals()
    try:
        app()
    except PhysgroundError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except OSError as err:
        typer.echo(f"error: {describe_os_error(err)}", err=True)
        sys.exit(2)
    except Stopped as stop:
        typer.echo(f"stopped by {stop.name}: finished datasets, checkpoints and evaluations "
                   "are kept; rerun the same command to resume", err=True)
        sys.exit(128 + stop.signum)


if __name__ == "__main__":
    main()
