"""``physground validate-physics``: run the validation studies and write their page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from physground.errors import PhysgroundError


def validate_physics_command(
    quick: Annotated[bool, typer.Option("--quick", help="Smaller grids (< 5 min on 2 cores).")]
    = False,
    study: Annotated[list[str], typer.Option(
        "--study", help="Only this study (repeatable; glob patterns allowed).")] = [],  # noqa: B006
    tag: Annotated[list[str], typer.Option(
        "--tag", help="Only studies with this tag (repeatable: all must match).")] = [],  # noqa: B006
    root: Annotated[Path, typer.Option("--root", help="Directory for data and runs.")]
    = Path("physground-runs"),
    out: Annotated[Path | None, typer.Option(
        help="Output directory (default: ROOT/validation, which run reports link).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Validate the ground truth against experiments and closed forms; exit 1 if a study
    fails."""
    from physground.benchmarks.validation.runner import PAGE, run_studies, select_studies

    if not select_studies(study, tag):
        raise PhysgroundError(f"no validation study matches --study {study} --tag {tag}")
    out_dir = out or root / "validation"
    results = run_studies(out_dir, quick=quick, names=study, tags=tag, progress=not quiet)
    width = max(len(r.name) for r in results)
    for r in results:
        typer.echo(f"{'PASS' if r.passed else 'FAIL'}  {r.name.ljust(width)}  {r.summary}")
    typer.echo(f"validation: {out_dir / PAGE}")
    failed = [r.name for r in results if not r.passed]
    if failed:
        typer.echo(f"error: {len(failed)} validation studies failed: {', '.join(failed)}",
                   err=True)
        raise typer.Exit(1)
