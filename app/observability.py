"""Prometheus metrics, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

GRADINGS = Counter("mockinterview_gradings_total", "Gradings by status and grader mode.", ["status", "mode"])
GRADING_SECONDS = Histogram(
    "mockinterview_grading_seconds",
    "Wall time of one grading (embedding evidence plus the judge when on).",
    ["mode"],
    buckets=(0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48),
)
GRADING_FAILURES = Counter("mockinterview_grading_failures_total", "Gradings that raised (answer kept ungraded).")
REVIEW_FLAGS = Counter("mockinterview_review_flags_total", "Flags raised for human review.", ["flag"])
