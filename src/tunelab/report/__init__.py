"""Report stage: plots, report.md and a self-contained report.html, read from the run directory."""

from tunelab.report.render import write_report

__all__ = ["write_report"]
