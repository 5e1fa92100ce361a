"""The Prometheus series the services export, from the live prometheus_client registry once
every service's metric modules are imported: what dashboards and alert rules may query."""

from __future__ import annotations

import re

from prometheus_client import REGISTRY

import switchboard.audit_logger.metrics
import switchboard.channel_gateway.metrics
import switchboard.common.metrics
import switchboard.inference_client.metrics
import switchboard.intent_parser.sensors
import switchboard.scheduler.dispatcher
import switchboard.scheduler.outbox  # noqa: F401 (each import registers that service's metrics)

# A Switchboard series named in a PromQL expression.
SWITCHBOARD_SERIES = re.compile(r"\b(switchboard_[a-z_]+)")

_SUFFIXES = {
    "counter": ["_total"],
    "histogram": ["_bucket", "_sum", "_count"],
    "gauge": [""],
    "summary": ["_sum", "_count", ""],
}


def exported() -> set[str]:
    """The series names of every registered metric (labelled ones have no samples yet)."""
    return {metric.name + suffix for metric in REGISTRY.collect() for suffix in _SUFFIXES.get(metric.type, [""])}
