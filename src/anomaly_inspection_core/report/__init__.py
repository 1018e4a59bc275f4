"""Inspection reports: report.json (documented schema) and a self-contained report.html."""

from anomaly_inspection_core.report.writer import build_report, load_schema, write_report

__all__ = ["build_report", "load_schema", "write_report"]
