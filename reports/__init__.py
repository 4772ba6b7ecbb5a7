"""Comparison reports built from a run directory's results (reads results only).

``write_report(run_dir)`` writes ``report/index.html`` (self-contained) and
``report/report.md`` (with ``figures/`` and ``media/`` beside it); ``compare_runs(a, b)``
writes a report comparing two runs of the same suite.
"""

from __future__ import annotations

from pathlib import Path


def report_path(run_dir: Path) -> Path:
    """Where the HTML report of a run lives."""
    return Path(run_dir) / "report" / "index.html"


def markdown_path(run_dir: Path) -> Path:
    return Path(run_dir) / "report" / "report.md"


def write_report(run_dir: Path, pairs: list[tuple[str, str]] | None = None) -> Path:
    """Write the HTML report and the Markdown summary of a run; returns the HTML path."""
    from physground.reports import html, markdown
    from physground.reports.content import build

    content = build(Path(run_dir), pairs=pairs)
    markdown.write(content, markdown_path(run_dir))
    return html.write(content, report_path(run_dir))


def compare_runs(run_a: Path, run_b: Path, out: Path | None = None) -> Path:
    """Write the comparison of two runs of the same suite; returns the HTML path."""
    from physground.reports.compare import write_comparison

    return write_comparison(Path(run_a), Path(run_b), out)


__all__ = ["compare_runs", "markdown_path", "report_path", "write_report"]
