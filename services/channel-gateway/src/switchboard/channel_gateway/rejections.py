"""Every request the gateway refuses (bad token or signature, malformed, oversized, unknown
id, rate limited) becomes an AuditEvent, so analysts see attacks and misconfigured clients
in Kibana next to the traffic that got through.

Unauthenticated refusals (401) cost nothing to send, so they are counted rather than
stored one by one: per client address, method and path, the first of each minute is
recorded as it came and the rest as one ``request.rejected.summary`` event after the
minute (its ``count`` label says how many). A flood of bad tokens is a few documents a
minute, not one per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.common import events
from switchboard.common.kafka import EventProducer
from switchboard.common.lifecycle import sleep_unless_stopped
from switchboard.events.v1 import messages_pb2 as m

logger = logging.getLogger(__name__)


class Record(Protocol):
    """Records one refused request (``client``: its address, where known)."""

    async def __call__(self, status: int, method: str, path: str, detail: str, client: str = "") -> None: ...


class Rejected(Exception):
    """Input the gateway will not take, from any channel: ``status`` (an HTTP status, also
    used in MQTT and WebSocket error answers), ``detail`` (why) and, for 429, when to retry."""

    def __init__(self, status: int, detail: str, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s


def audit_event(status: int, method: str, path: str, detail: str, client: str = "") -> m.AuditEvent:
    """The audit record of one refused request."""
    parts = path.split("/")
    channel = parts[3] if path.startswith("/v1/channels/") and len(parts) > 3 else "http"
    if path == "/v1/ws":
        channel = "websocket"
    labels = {"channel": channel, "status": str(status), "method": method, "path": path[:200]}
    if client:
        labels["client"] = client[:64]
    return m.AuditEvent(action="request.rejected", outcome=m.OUTCOME_BLOCKED, reason=detail[:500], labels=labels)


class RejectionLog:
    """The gateway's :class:`Record`: queues each refusal's AuditEvent without waiting for
    Kafka (a refusal is never slowed down), counting unauthenticated ones (see the module)."""

    def __init__(
        self,
        producer: EventProducer,
        topic: str,
        source: str,
        tenant_id: str,
        window_s: float = 60,
        max_counted: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._source = source
        self._tenant_id = tenant_id
        self._window_s = window_s
        self._max_counted = max_counted
        self._clock = clock
        # (window, client, method, path) -> (refusals after the first, the first one's detail)
        self._counted: dict[tuple[int, str, str, str], tuple[int, str]] = {}

    async def __call__(self, status: int, method: str, path: str, detail: str, client: str = "") -> None:
        if status == 401:
            window = int(self._clock() // self._window_s)
            if len(self._counted) >= self._max_counted:  # a flood from very many addresses
                client = "(others)"
            key = (window, client, method, path[:200])
            if key in self._counted:
                more, first = self._counted[key]
                self._counted[key] = (more + 1, first)
                return
            self._counted[key] = (0, detail)
        await self._queue(audit_event(status, method, path, detail, client))

    async def flush(self, everything: bool = False) -> None:
        """Record the counts of the minutes that are over (``everything``: of all)."""
        now = int(self._clock() // self._window_s)
        for key in [k for k in self._counted if everything or k[0] < now]:
            more, detail = self._counted.pop(key)
            if more:
                window, client, method, path = key
                event = audit_event(401, method, path, f"{more} more like: {detail}", client)
                event.action = "request.rejected.summary"
                started = datetime.fromtimestamp(window * self._window_s, UTC)
                event.labels.update({"count": str(more), "window_start": started.isoformat()})
                await self._queue(event)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush after each minute until ``stop``, then everything."""
        while not stop.is_set():
            await sleep_unless_stopped(stop, self._window_s - self._clock() % self._window_s + 0.5)
            await self.flush()
        await self.flush(everything=True)

    async def _queue(self, event: m.AuditEvent) -> None:
        envelope = events.wrap(
            event, conversation_key=f"{self._source}:rejections", source=self._source, tenant_id=self._tenant_id
        )
        try:
            await self._producer.enqueue(self._topic, envelope)
        except Exception:  # auditing must never turn a 4xx into a 5xx
            logger.exception("could not queue the audit event of a rejected request")


class AuditRejections:
    """ASGI middleware: records every 4xx answer with the reason the body gave."""

    def __init__(self, app: ASGIApp, record: Record) -> None:
        self._app = app
        self._record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 0
        first_body = b""

        async def watching(message: Message) -> None:
            nonlocal status, first_body
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and 400 <= status < 500 and not first_body:
                first_body = bytes(message.get("body", b""))[:4096]
            await send(message)

        await self._app(scope, receive, watching)
        if 400 <= status < 500:
            client = scope.get("client")
            host = str(client[0]) if client else ""
            await self._record(status, scope["method"], scope["path"], _detail(first_body), host)


def _detail(body: bytes) -> str:
    """Why a request was refused, from the answer's body, without what the caller sent: a
    422's details keep each error's location and message, never its ``input``."""
    try:
        detail = json.loads(body).get("detail", "")
    except (ValueError, AttributeError):
        return body.decode("utf-8", errors="replace")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        return "; ".join(_validation_error(item) for item in detail)
    return "refused (no reason given)"


def _validation_error(item: object) -> str:
    if not isinstance(item, dict):
        return "invalid"
    where = ".".join(str(part) for part in item.get("loc", ()) if isinstance(part, str | int))
    return f"{where}: {item.get('msg', 'invalid')}"
