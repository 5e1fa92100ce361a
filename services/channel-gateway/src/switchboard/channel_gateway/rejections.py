"""Every request the gateway refuses (bad token or signature, malformed, oversized, unknown
id, rate limited) becomes an AuditEvent, so analysts see attacks and misconfigured clients
in Kibana next to the traffic that got through."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.common import events
from switchboard.common.kafka import EventProducer
from switchboard.events.v1 import messages_pb2 as m

logger = logging.getLogger(__name__)

Record = Callable[[int, str, str, str], Awaitable[None]]


class Rejected(Exception):
    """Input the gateway will not take, from any channel: ``status`` (an HTTP status, also
    used in MQTT and WebSocket error answers), ``detail`` (why) and, for 429, when to retry."""

    def __init__(self, status: int, detail: str, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s


def audit_event(status: int, method: str, path: str, detail: str) -> m.AuditEvent:
    """The audit record of one refused request."""
    parts = path.split("/")
    channel = parts[3] if path.startswith("/v1/channels/") and len(parts) > 3 else "http"
    if path == "/v1/ws":
        channel = "websocket"
    return m.AuditEvent(
        action="request.rejected",
        outcome=m.OUTCOME_BLOCKED,
        reason=detail[:500],
        labels={"channel": channel, "status": str(status), "method": method, "path": path[:200]},
    )


def recorder(producer: EventProducer, topic: str, source: str, tenant_id: str) -> Record:
    """Queues the AuditEvent without waiting for Kafka: a refusal is never slowed down."""

    async def record(status: int, method: str, path: str, detail: str) -> None:
        envelope = events.wrap(
            audit_event(status, method, path, detail),
            conversation_key=f"{source}:rejections",
            source=source,
            tenant_id=tenant_id,
        )
        try:
            await producer.enqueue(topic, envelope)
        except Exception:  # auditing must never turn a 4xx into a 5xx
            logger.exception("could not queue the audit event of a rejected request")

    return record


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
            await self._record(status, scope["method"], scope["path"], _detail(first_body))


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
