"""The Faust worker's own sensors as Prometheus series, beside the common counters.

Faust's ``PrometheusMonitor`` records what the worker sees: messages in per topic and
partition, events per stream, sends and their latency, commits and their
latency, rebalances and their duration, table operations. The series are named
``switchboard_parser_faust_*`` (e.g. ``switchboard_parser_faust_messages_received_per_topic``,
``switchboard_parser_faust_total_rebalances``) and are served on the parser's /metrics.
``_events_runtime_ms`` stays empty: Faust times only the events its stream acknowledges
itself, and the parser acknowledges its own.
"""

from __future__ import annotations

import functools

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import REGISTRY

PREFIX = "switchboard_parser_faust"


@functools.cache
def metrics() -> FaustMetrics:
    """The series, registered once per process (every app of the process shares them)."""
    return FaustMetrics.create(REGISTRY, PREFIX)


def attach(app: faust.App) -> None:
    """Make ``app``'s monitor the Prometheus one; before the app starts."""
    app.monitor = PrometheusMonitor(metrics=metrics())


metrics()  # registered on import, so /metrics lists them before the first message
