"""Executors run lists of `EvalTask`s and yield (task, results) as each finishes."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from physground.benchmarks.tasks import EvalTask


def run_local(tasks: list[EvalTask]) -> Iterator[tuple[EvalTask, pd.DataFrame]]:
    """Run tasks one after another in this process."""
    for task in tasks:
        yield task, task.run()
