"""Prometheus metrics shared by every service, and the /metrics endpoint."""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Histogram, start_http_server

logger = logging.getLogger(__name__)

EVENTS_PRODUCED = Counter("switchboard_events_produced_total", "Events acknowledged by Kafka.", ["topic", "event_type"])
EVENTS_CONSUMED = Counter("switchboard_events_consumed_total", "Events handled successfully.", ["topic", "event_type"])
DEAD_LETTERED = Counter(
    "switchboard_events_dead_lettered_total", "Records sent to a dead-letter topic.", ["topic", "reason"]
)
HANDLER_SECONDS = Histogram("switchboard_handler_seconds", "Time spent in event handlers.", ["topic"])


class MetricsServer:
    """Serves ``/metrics`` over HTTP on a background thread."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        return self._server.server_port if self._server else self._port

    def start(self) -> None:
        """Bind and start serving."""
        self._server, self._thread = start_http_server(self._port, addr=self._host)
        logger.info("metrics endpoint up", extra={"host": self._host, "port": self.port})

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
