"""Comparison reports built from a run directory's results (reads results only)."""

from physground.reports.markdown import report_path, write_report

__all__ = ["report_path", "write_report"]
