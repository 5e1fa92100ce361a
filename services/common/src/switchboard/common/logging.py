"""ECS JSON log lines on stdout (Elastic Common Schema, with Elastic's ``ecs-logging``).

Each line has ``@timestamp``, ``log.level``, ``message``, ``log.logger``, ``service.name``,
``ecs.version``, the process and the code location, ``error.*`` for an exception, and
``trace.id`` / ``span.id`` of the current span (or of the event being handled), so that a
line lines up with its trace in Jaeger and with the audit documents in Kibana. A value
passed with ``extra=`` goes under ``switchboard.<name>`` (its own namespace: a plain
``error`` or ``topic`` would collide with ECS's objects in Elasticsearch); an ``extra``
whose name is dotted (``http.response.status_code``) is taken as the ECS field it names.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import ecs_logging

from switchboard.common import telemetry, tracing

_JSON_TYPES = (str, int, float, bool, type(None), list, dict)


class EcsFormatter(ecs_logging.StdlibFormatter):
    """One ECS JSON object per line; see the module docstring."""

    def __init__(self, service: str) -> None:
        # The thread and process names say nothing here (one process, one event loop).
        super().__init__(exclude_fields=["log.original", "process.name", "process.thread.name"])
        self._service = service

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        own = {
            key: value if isinstance(value, _JSON_TYPES) else str(value)
            for key, value in vars(record).items()
            if key not in self._LOGRECORD_DICT and key != "message" and not key.startswith("_") and "." not in key
        }
        if own:
            record = logging.makeLogRecord({k: v for k, v in vars(record).items() if k not in own})
            record.switchboard = own
        doc = super().format_to_ecs(record)
        doc.setdefault("service", {})["name"] = self._service
        traceparent = telemetry.current_traceparent()
        if traceparent and (trace_id := tracing.trace_id(traceparent)):
            doc["trace"] = {"id": trace_id}
            doc["span"] = {"id": traceparent[36:52]}
        return doc


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route all logging to stdout as ECS JSON lines; call once, in ``__main__``."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(EcsFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every connection at INFO; keep it to warnings.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
