"""`physground validate-metrics`: the metric validity suite from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from physground.errors import PhysgroundError


def validate_metrics_command(
    suite: Annotated[str, typer.Option(
        help="Shipped suite (quick, standard, full) or path to a suite .toml: its "
        "scenarios, configs, context and horizon.")] = "quick",
    rollouts: Annotated[int, typer.Option(help="Test rollouts per scenario.")] = 8,
    out: Annotated[Path, typer.Option(help="Directory for validity.md, .csv and .png.")]
    = Path("physground-runs/validity"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Score controlled corruptions of the truth (identical, nuisances, physics violations at five magnitudes) with every applicable metric; write a table and a heat map; exit 1 if a metric fails its own declaration.

    Reading the table: each row is (scenario, metric, corruption) with its scores over the magnitudes (100 = second-take noise floor, 0 = uninformative). Rows marked declared are the metric's contract: identical scores 100, a tolerated nuisance >= 90, a detected violation falls with the magnitude (Spearman <= -0.9) to below 50. Undeclared rows are shown to tell what a metric does not see (e.g. PSNR and a 1 px shift).
    """  # noqa: E501  (typer folds docstring lines; one line per paragraph)
    from physground.benchmarks.validity.suite import run_validity, suite_entries, write_report
    from physground.suite import load_suite

    if rollouts < 2:
        raise PhysgroundError(f"--rollouts {rollouts}: the shuffled anchor needs >= 2")
    loaded = load_suite(suite)
    result = run_validity(suite_entries(loaded), rollouts=rollouts, seed=loaded.seed,
                          progress=not quiet)
    path = write_report(result, out, f"suite {loaded.name}")
    failed = result.failures()
    typer.echo(f"validity: {path}")
    if len(failed):
        for r in failed.itertuples(index=False):
            typer.echo(f"FAIL {r.scenario} {r.metric} {r.corruption}: {r.scores}", err=True)
        raise typer.Exit(1)
