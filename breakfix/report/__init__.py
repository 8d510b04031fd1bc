"""The HTML report: plots of the audit store for people who do not write SQL (``breakfix report``)."""

from breakfix.report.build import build_report

__all__ = ["build_report"]
