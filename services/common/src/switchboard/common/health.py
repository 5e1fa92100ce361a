"""grpc.health.v1 server, the standard Kubernetes gRPC probe target."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

logger = logging.getLogger(__name__)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthServer:
    """Answers grpc.health.v1 Check/Watch for the overall server ("") and named services.

    Starts NOT_SERVING; the service calls :meth:`set_serving` once its clients are up,
    and :meth:`set_not_serving` when it begins to drain.
    """

    def __init__(self, host: str, port: int, services: tuple[str, ...] = ()) -> None:
        self._address = f"{host}:{port}"
        self._services = ("", *services)
        self._servicer = health.aio.HealthServicer()
        self._server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, self._server)
        self.port = 0

    async def start(self) -> None:
        """Bind and start; the bound port is in :attr:`port`."""
        self.port = self._server.add_insecure_port(self._address)
        await self._server.start()
        await self._set(_NOT_SERVING)
        logger.info("health endpoint up", extra={"address": self._address, "port": self.port})

    async def set_serving(self) -> None:
        """Report SERVING for every registered service."""
        await self._set(_SERVING)

    async def set_not_serving(self) -> None:
        """Report NOT_SERVING (readiness probes fail, traffic drains away)."""
        await self._set(_NOT_SERVING)

    async def stop(self, grace: float = 1.0) -> None:
        """Stop answering."""
        await self._servicer.enter_graceful_shutdown()
        await self._server.stop(grace)

    async def _set(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in self._services:
            await self._servicer.set(name, status)
