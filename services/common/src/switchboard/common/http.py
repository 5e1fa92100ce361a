"""Running a uvicorn server inside a service's lifecycle (the gateway's API, the audit API)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn


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
