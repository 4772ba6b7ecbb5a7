"""Comparison reports built from a run directory's results (reads results only).

``write_report(run_dir)`` writes ``report/index.html`` (self-contained) and
``report/report.md`` (with ``figures/`` and ``media/`` beside it) for the default track,
and the same under ``report/conditioned/`` when the suite also ran the conditioned track
(latent parameters given): the two tracks are never mixed in one table or ranking.
``compare_runs(a, b)`` writes a report comparing two runs of the same suite.
"""

from __future__ import annotations

from pathlib import Path


def _report_dir(run_dir: Path, track: str) -> Path:
    base = Path(run_dir) / "report"
    return base if track == "default" else base / track


def report_path(run_dir: Path, track: str = "default") -> Path:
    """Where the HTML report of a run's ``track`` lives."""
    return _report_dir(run_dir, track) / "index.html"


def markdown_path(run_dir: Path, track: str = "default") -> Path:
    return _report_dir(run_dir, track) / "report.md"


def write_report(run_dir: Path, pairs: list[tuple[str, str]] | None = None) -> Path:
    """Write the HTML report and the Markdown summary of each track of a run; returns the
    default track's HTML path."""
    from physground.reports import html, markdown
    from physground.reports.content import build, result_tracks_of

    for track in result_tracks_of(Path(run_dir)):
        if track == "default":
            continue
        content = build(Path(run_dir), pairs=pairs, track=track)
        markdown.write(content, markdown_path(run_dir, track))
        html.write(content, report_path(run_dir, track))
    content = build(Path(run_dir), pairs=pairs)
    markdown.write(content, markdown_path(run_dir))
    if not content.physics_iq.empty:  # the Physics-IQ scores as a table of their own
        from physground.atomic import write_atomic

        write_atomic(report_path(run_dir).parent / "physics_iq.csv",
                     lambda tmp: content.physics_iq.to_csv(tmp, index=False))
    return html.write(content, report_path(run_dir))


def compare_runs(run_a: Path, run_b: Path, out: Path | None = None) -> Path:
    """Write the comparison of two runs of the same suite; returns the HTML path."""
    from physground.reports.compare import write_comparison

    return write_comparison(Path(run_a), Path(run_b), out)


__all__ = ["compare_runs", "markdown_path", "report_path", "write_report"]
