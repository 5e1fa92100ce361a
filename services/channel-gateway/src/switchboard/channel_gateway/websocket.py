"""``/v1/ws``: chat over one WebSocket, replies streamed as they are generated.

Frames are JSON text. The first thing on a socket is authentication: an ``Authorization:
Bearer`` header (non-browser clients) or, since browsers cannot set headers on a WebSocket,
a first frame ``{"type": "auth", "token": "<JWT>"}`` within 10 s. A socket lives no longer
than its token: at the token's ``exp`` it gets an error frame and is closed with 4401,
unless an ``auth`` frame with a newer token of the same subject came first. Then:

client → gateway                                   gateway → client
``{"type": "conversation"}``                        ``{"type": "conversation", "conversation_id"}``
``{"type": "message", "conversation_id", "text",     ``{"type": "accepted", "message_id", "id"}``,
  "id"?}`` (id: idempotency key, safe to resend)      then ``chunk`` …, then ``done``
``{"type": "resume", "message_id", "after"}``        the chunks after sequence ``after``, then ``done``
``{"type": "auth", "token"}`` (a renewed token)      ``{"type": "ready", "subject", "expires_at"}``
                                                   ``{"type": "chunk", "message_id", "sequence", "text"}``
                                                   ``{"type": "done", "message_id", "reply", "model", "finish_reason"}``
                                                   ``{"type": "error", "status", "detail"[, "id"]}``
                                                   ``{"type": "ping"}`` every 20 s of silence

A client that reconnects resumes each unfinished reply from the last sequence it saw:
nothing is lost or repeated (every replica keeps every reply for ``reply_ttl_s``, so the new
socket may be on any replica). A client too slow to take its frames (more than
``max_queued`` waiting) is disconnected with 1013 and resumes the same way: a socket never
holds more than that in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.routing import websocket_session
from starlette.types import ASGIApp, Receive, Scope, Send

from switchboard.channel_gateway.auth import SCOPE_CHAT, Authenticator, Principal
from switchboard.channel_gateway.ids import IdSigner
from switchboard.channel_gateway.intake import Intake
from switchboard.channel_gateway.metrics import FRAME_TYPES, WEBSOCKET_FRAMES, WEBSOCKETS_OPEN
from switchboard.channel_gateway.rejections import Record, Rejected
from switchboard.channel_gateway.replies import Replies, Reply
from switchboard.events.v1 import messages_pb2 as m

logger = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = status.WS_1013_TRY_AGAIN_LATER


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    conversation_id: str = Field(min_length=1, max_length=128)
    text: str
    id: str | None = Field(default=None, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")


class _Resume(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    message_id: str = Field(min_length=1, max_length=128)
    after: int = Field(default=-1, ge=-1)


class _TooSlow(Exception):
    pass


class _Session:
    """One socket: a bounded queue of frames to send, drained by one sender task that also
    sends the heartbeat, and the replies being followed (one task each while they stream).
    The socket's own coroutine reads the client's frames."""

    def __init__(self, socket: WebSocket, max_queued: int, heartbeat_s: float) -> None:
        self.socket = socket
        self._queue: asyncio.Queue[str] = asyncio.Queue(max_queued)
        self._heartbeat_s = heartbeat_s
        self.following: dict[str, _Following] = {}
        self.sender: asyncio.Task[None] | None = None
        self.too_slow = False
        self._closing: asyncio.Task[None] | None = None
        self._expiry: asyncio.Task[None] | None = None

    def send(self, frame: dict[str, Any]) -> None:
        """Queue ``frame``; a client that let the queue fill up is disconnected (1013)."""
        try:
            self._queue.put_nowait(json.dumps(frame, ensure_ascii=False))
        except asyncio.QueueFull:
            if not self.too_slow:
                self.too_slow = True
                self._closing = asyncio.create_task(self._close_slow())
            raise _TooSlow from None

    async def run_sender(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._heartbeat_s):
                    frame = await self._queue.get()
            except TimeoutError:
                frame = '{"type": "ping"}'
            await self.socket.send_text(frame)

    async def _close_slow(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await self.socket.close(CLOSE_TOO_SLOW, "too slow: reconnect and resume")

    def expire_at(self, when: float) -> None:
        """Close the socket at ``when`` (Unix seconds), instead of any earlier time set."""
        if self._expiry is not None:
            self._expiry.cancel()
        if math.isfinite(when):
            self._expiry = asyncio.create_task(self._expire(when))

    async def _expire(self, when: float) -> None:
        await asyncio.sleep(max(0.0, when - time.time()))
        if self.sender is not None:
            self.sender.cancel()
        await _refuse(self.socket, CLOSE_UNAUTHORIZED, 401, "token expired: reconnect with a new one")

    def close(self) -> None:
        for following in list(self.following.values()):
            following.stop()
        if self.sender is not None:
            self.sender.cancel()
        if self._expiry is not None:
            self._expiry.cancel()


class _Following:
    """Streams the reply to one message into a session as its pieces arrive: Replies calls
    ``pump`` on each one (no task per message; a timer gives up after ``timeout_s``)."""

    def __init__(self, session: _Session, replies: Replies, message_id: str, after: int, timeout_s: float) -> None:
        self._session = session
        self._replies = replies
        self._message_id = message_id
        self._next = after + 1
        previous = session.following.get(message_id)
        if previous is not None:
            previous.stop()
        session.following[message_id] = self
        self._timer = asyncio.get_running_loop().call_later(timeout_s, self._expire)
        known = replies.watch(message_id, self.pump)
        if known is not None:
            self.pump(known)

    def pump(self, reply: Reply) -> None:
        """Send the pieces not sent yet, in order, then the final reply."""
        try:
            while self._next in reply.chunks:
                chunk = {"type": "chunk", "message_id": self._message_id, "sequence": self._next}
                self._session.send({**chunk, "text": reply.chunks[self._next]})
                self._next += 1
            if reply.final is not None:
                self._session.send(_done(self._message_id, reply.final))
                self.stop()
        except _TooSlow:
            self.stop()

    def _expire(self) -> None:
        with contextlib.suppress(_TooSlow):
            error = {"type": "error", "status": 504, "detail": "no complete reply in time"}
            self._session.send({**error, "message_id": self._message_id})
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        self._replies.unwatch(self._message_id, self.pump)
        if self._session.following.get(self._message_id) is self:
            del self._session.following[self._message_id]


PATH = "/v1/ws"


def sockets_first(api: ASGIApp, sockets: ASGIApp) -> ASGIApp:
    """``api``, except that WebSockets on PATH go straight to ``sockets``: a held socket then
    costs a few coroutines and frames instead of the whole HTTP middleware stack's (a
    process holds tens of thousands, and the garbage collector walks them all)."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == PATH:
            await sockets(scope, receive, send)
        else:
            await api(scope, receive, send)

    return dispatch


def websocket_app(
    auth: Authenticator,
    signer: IdSigner,
    replies: Replies,
    intake: Intake,
    record_rejection: Record,
    *,
    max_wait_s: float,
    max_queued: int = 256,
    heartbeat_s: float = 20.0,
) -> ASGIApp:
    """The ``/v1/ws`` endpoint as an ASGI app (see :func:`sockets_first`)."""

    async def refuse(socket: WebSocket, code: int, status_code: int, detail: str) -> None:
        await record_rejection(status_code, "WEBSOCKET", PATH, detail, socket.client.host if socket.client else "")
        await _refuse(socket, code, status_code, detail)

    async def authenticate(socket: WebSocket) -> Principal | None:
        header = socket.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        if token is None:
            try:
                async with asyncio.timeout(AUTH_TIMEOUT_S):
                    first = json.loads(await socket.receive_text())
                token = first.get("token") if isinstance(first, dict) and first.get("type") == "auth" else None
            except (TimeoutError, ValueError):
                token = None
        if not isinstance(token, str):
            await refuse(socket, CLOSE_UNAUTHORIZED, 401, 'send {"type": "auth", "token": "<JWT>"} first')
            return None
        try:
            return await auth.authorize(token, SCOPE_CHAT)
        except Rejected as exc:
            code = CLOSE_UNAUTHORIZED if exc.status == status.HTTP_401_UNAUTHORIZED else CLOSE_FORBIDDEN
            await refuse(socket, code, exc.status, exc.detail)
            return None

    def follow(session: _Session, message_id: str, after: int) -> None:
        """Stream the reply to ``message_id`` (the pieces after ``after``) into the session."""
        _Following(session, replies, message_id, after, max_wait_s)

    async def handle(session: _Session, caller: Principal, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        WEBSOCKET_FRAMES.labels(type=kind if isinstance(kind, str) and kind in FRAME_TYPES else "other").inc()
        if kind == "conversation":
            session.send({"type": "conversation", "conversation_id": signer.new("c", caller.subject)})
        elif kind == "message":
            message = _Message.model_validate(frame)
            try:
                message_id = await intake.submit(
                    caller, message.conversation_id, message.text, m.CHANNEL_WEBSOCKET, idempotency_key=message.id
                )
            except Rejected as exc:
                await record_rejection(exc.status, "WEBSOCKET", PATH, exc.detail)
                error: dict[str, Any] = {"type": "error", "status": exc.status, "detail": exc.detail, "id": message.id}
                if exc.retry_after_s is not None:
                    error["retry_after_s"] = exc.retry_after_s
                session.send(error)
                return
            session.send({"type": "accepted", "message_id": message_id, "id": message.id})
            follow(session, message_id, after=-1)
        elif kind == "resume":
            resume = _Resume.model_validate(frame)
            if not signer.valid(resume.message_id, "m", caller.subject):
                session.send({"type": "error", "status": 404, "detail": "unknown message id"})
                return
            follow(session, resume.message_id, after=resume.after)
        elif kind == "auth":  # a renewed token: the socket lives until its expiry
            token = frame.get("token")
            try:
                renewed = await auth.authorize(token if isinstance(token, str) else "", SCOPE_CHAT)
            except Rejected as exc:
                session.send({"type": "error", "status": exc.status, "detail": exc.detail})
                return
            if renewed.subject != caller.subject:
                session.send({"type": "error", "status": 403, "detail": "a renewed token must be the same subject's"})
                return
            session.expire_at(renewed.expires_at)
            session.send(_ready(renewed))
        elif kind in ("pong", "ping"):
            pass
        else:
            session.send({"type": "error", "status": 400, "detail": f"unknown frame type {kind!r}"})

    async def chat_socket(socket: WebSocket) -> None:
        await socket.accept()
        caller = await authenticate(socket)
        if caller is None:
            return
        session = _Session(socket, max_queued, heartbeat_s)
        session.sender = asyncio.create_task(session.run_sender())
        session.expire_at(caller.expires_at)
        WEBSOCKETS_OPEN.inc()
        try:
            session.send(_ready(caller))
            await _receive(session, caller, handle)  # until the client goes (or is cut off)
        finally:
            WEBSOCKETS_OPEN.dec()
            session.close()
            await asyncio.gather(session.sender, return_exceptions=True)

    return websocket_session(chat_socket)


async def _receive(session: _Session, caller: Principal, handle: Any) -> None:
    """Read frames until the client goes; a bad frame gets an error frame, not a close."""
    with contextlib.suppress(WebSocketDisconnect, _TooSlow, RuntimeError):
        while True:
            raw = await session.socket.receive_text()
            try:
                frame = json.loads(raw)
                if not isinstance(frame, dict):
                    raise ValueError("a frame must be a JSON object")
                await handle(session, caller, frame)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "frame"
                session.send({"type": "error", "status": 422, "detail": f"{where}: {first['msg']}"})
            except ValueError as exc:
                session.send({"type": "error", "status": 400, "detail": f"not a JSON object: {exc}"[:200]})


def _ready(caller: Principal) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "ready", "subject": caller.subject}
    if math.isfinite(caller.expires_at):
        frame["expires_at"] = int(caller.expires_at)
    return frame


def _done(message_id: str, final: m.OutboundMessage) -> dict[str, Any]:
    return {
        "type": "done",
        "message_id": message_id,
        "reply": final.text,
        "model": final.metadata.get("model"),
        "finish_reason": final.metadata.get("finish_reason"),
    }


async def _refuse(socket: WebSocket, code: int, status_code: int, detail: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await socket.send_text(json.dumps({"type": "error", "status": status_code, "detail": detail}))
        await socket.close(code, detail[:120])
