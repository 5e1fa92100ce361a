"""Running a uvicorn server inside a service's lifecycle (the gateway's API, the audit API)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn

# How long an idle keep-alive connection stays open. It must outlast the idle timeout of
# whatever pools connections to us (httpx 5 s, ingress-nginx upstreams and cloud load
# balancers 60 s): the client must be the one to close an idle connection. Otherwise a
# request sent just as the server closes is lost with "server disconnected without sending
# a response" (uvicorn's own default, 5 s, equals httpx's and loses one such request in a
# few hundred reuses at the boundary).
KEEPALIVE_S = 75


def server_config(app: Any, host: str, port: int, keepalive_s: int = KEEPALIVE_S, **options: Any) -> uvicorn.Config:
    """uvicorn settings for a service's API: our logging (not uvicorn's), no access log (the
    services log and audit what matters), no lifespan (the service's lifecycle owns start and stop)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=keepalive_s,
        **options,
    )


class HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service's lifecycle owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def listening(server: HttpServer) -> None:
    """Return once uvicorn has started and listens (a service reports SERVING only then)."""
    while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
        await asyncio.sleep(0.02)


async def serve_http(server: HttpServer, stop: asyncio.Event) -> None:
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True  # stop accepting, finish in-flight requests
    await task
