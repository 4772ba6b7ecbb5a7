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
    dataset = generate_dataset(spec, root / "data", out=out, progress=not quiet)
    rejected = dataset.manifest.get("rejected", 0)
    typer.echo(f"{dataset.path}  ({len(dataset)} rollouts, {rejected} rejected)")


def _number(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise PhysgroundError(f"--param {name}={text}: value is not a number") from None


@app.command("run")
def run_command(
    suite: Annotated[str, typer.Option(help="Shipped suite name or path to a .toml.")] = "quick",
    root: RootOption = Path("physground-runs"),
    device: DeviceOption = "cpu",
    quiet: QuietOption = False,
) -> None:
    """Run a suite end to end (ground truth, training, scoring, report); prints the report."""
    from physground.benchmarks.runner import run_suite
    from physground.device import resolve_device
    from physground.reports import report_path
    from physground.suite import load_suite

    run_dir = run_suite(load_suite(suite), root=root, device=resolve_device(device),
                        progress=not quiet)
    typer.echo(f"report: {report_path(run_dir)}")


@app.command("evaluate")
def evaluate_command(
    suite: Annotated[str, typer.Option(help="Shipped suite name or path to a .toml.")] = "quick",
    root: RootOption = Path("physground-runs"),
    device: DeviceOption = "cpu",
    quiet: QuietOption = False,
) -> None:
    """Score the suite's models and write the results table (no report)."""
    from physground.benchmarks.runner import run_suite
    from physground.device import resolve_device
    from physground.suite import load_suite

    run_dir = run_suite(load_suite(suite), root=root, device=resolve_device(device),
                        progress=not quiet, report=False)
    typer.echo(f"results: {run_dir / 'results.parquet'}")


@app.command("report")
def report_command(
    run: Annotated[Path, typer.Argument(help="A run directory (runs/<suite>-<hash>).")],
) -> None:
    """(Re)write the report of a finished run."""
    from physground.reports import write_report

    typer.echo(f"report: {write_report(run)}")


def main() -> None:
    """Entry point: one-line errors for bad input, exit code 2."""
    try:
        app()
    except PhysgroundError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
