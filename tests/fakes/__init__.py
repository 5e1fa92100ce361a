"""Local stand-ins for the platforms the gateway talks to, and what they share: serving an
aiohttp app on a free loopback port, JSON answers, and a log of the calls they received."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web


class _Call(Protocol):
    method: str


C = TypeVar("C", bound=_Call)


class CallLog(Generic[C]):
    """``of`` and ``wait_for`` over ``self.calls`` (a stand-in's record of what it was asked)."""

    calls: list[C]

    def of(self, method: str) -> list[C]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 60) -> list[C]:
        async with asyncio.timeout(timeout):
            while len(self.of(method)) < count:
                await asyncio.sleep(0.05)
        return self.of(method)


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start ``app`` on a free port of 127.0.0.1; its runner (to clean up) and base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json", headers=headers)
