"""Prometheus metrics of the audit logger (served on SB_AUDIT_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

DOCUMENTS = Counter(
    "switchboard_audit_documents_total",
    "Events by what became of them: created, duplicate (already indexed), unmappable or refused (dead-lettered).",
    ["result"],
)
RETENTION_DELETED = Counter(
    "switchboard_audit_retention_deleted_indices_total", "Backing indices deleted by the retention job."
)
OLDEST_DOCUMENT_AGE = Gauge(
    "switchboard_audit_oldest_index_age_seconds", "Age of the oldest backing index still kept (retention)."
)
