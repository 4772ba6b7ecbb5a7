"""`physground export`: a dataset in The Well's HDF5 layout or as a Hugging Face dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from physground.exports import FORMATS, export_dataset


def export_command(
    dataset: Annotated[Path, typer.Argument(help="A physground dataset directory "
                                            "(the one holding manifest.json).")],
    format: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(FORMATS)}.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the copy into.")] = Path(
        "physground-export"),
) -> None:
    """Copy a dataset into a layout other tools read (The Well's HDF5, Hugging Face Arrow)."""
    path = export_dataset(dataset, out, format)
    typer.echo(f"{format}: {path}")
