"""The study result type and the study registry shared by every validation study."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from physground.registry import Registry

# name -> "module:function"; the function is ``study(quick: bool, out_dir: Path) -> StudyResult``.
# The catalog registers the built-in studies lazily and imports every ``study_*`` module of
# this package, so a module may also register its studies itself on import.
STUDIES: Registry[Any] = Registry(
    "validation study", providers=("physground.benchmarks.validation.catalog",)
)


@dataclass(frozen=True, kw_only=True)
class StudyResult:
    """What one validation study found.

    ``table`` holds one row per compared point (measured, expected, relative or absolute
    error); ``tolerance`` says in words and units what passing means; ``figures`` are paths
    of the figures written into the output directory; ``reference`` cites the experiment or
    names the closed form.
    """

    name: str
    title: str
    reference: str
    tolerance: str
    passed: bool
    table: pd.DataFrame
    figures: tuple[Path, ...] = ()
    summary: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
