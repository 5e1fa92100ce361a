"""A local server that speaks the Telegram Bot API (the part the gateway uses), for tests.

It answers ``POST /bot<token>/<method>`` the way api.telegram.org does (``{"ok": true,
"result": …}``, or ``{"ok": false, "error_code": …}``), checks the token, records every
call with its time, and can be told to answer the next calls of a method with
``429 Too Many Requests`` and a ``retry_after``. getUpdates serves queued updates with
long polling and offset confirmation.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import CallLog, json_response, serve


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()


@dataclass
class FakeBotApi(CallLog[Call]):
    token: str
    calls: list[Call] = field(default_factory=list)
    _throttle: dict[str, list[int]] = field(default_factory=dict)
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _polling: int = 0
    conflicts: int = 0  # getUpdates calls made while another was still open
    _runner: web.AppRunner | None = None
    url: str = ""

    def throttle_next(self, method: str, retry_after: int, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and ``retry_after`` seconds."""
        self._throttle.setdefault(method, []).extend([retry_after] * times)

    def queue_update(self, update: dict[str, Any]) -> None:
        """Serve ``update`` to getUpdates until a later call's offset confirms it."""
        self._updates.append(update)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner, self.url = await serve(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
        method = request.match_info["method"]
        params = await _params(request)
        self.calls.append(Call(method, params, time.monotonic()))
        pending = self._throttle.get(method)
        if pending:
            retry_after = pending.pop(0)
            body = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            }
            return json_response(body, 429)
        if method == "getUpdates":
            if self._polling:  # Telegram allows one poller per bot
                self.conflicts += 1
                body = {
                    "ok": False,
                    "error_code": 409,
                    "description": "Conflict: terminated by other getUpdates request",
                }
                return json_response(body, 409)
            self._polling += 1
            try:
                return json_response({"ok": True, "result": await self._get_updates(params)})
            finally:
                self._polling -= 1
        return json_response({"ok": True, "result": self._result(method, params)})

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Like Telegram: an offset confirms (drops) every update below it; waits up to
        ``timeout`` seconds for one to come."""
        offset = int(params.get("offset") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while not self._updates and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return list(self._updates)

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "Switchboard"}
        if method == "sendMessage":
            chat_id = int(params["chat_id"])
            return {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "text": params.get("text", ""),
            }
        return True


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        return dict(await request.json())
    form = await request.post()
    return {key: value for key, value in form.items() if isinstance(value, str)}
