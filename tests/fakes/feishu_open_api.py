"""A local server that speaks the Feishu open platform (the part the gateway uses), for tests,
and the platform side of events: built with lark-oapi's own types, encrypted and signed the
way Feishu does it.

Server side: tenant_access_token issued for the app's id and secret (``token_ttl_s``, and
``revoke_tokens()`` to make Feishu forget them), bot info, im/v1 reply and patch (checks the
token, drops a repeated ``uuid`` like Feishu, can answer 429 with a reset time), and the
long-connection endpoint plus its websocket, which pushes events as lark-oapi's protobuf
frames and collects the client's acknowledgements.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import lark_oapi as lark
from aiohttp import WSMsgType, web
from Crypto.Cipher import AES
from Crypto.Util.Padding import pad
from lark_oapi.api.im.v1 import (
    EventMessage,
    EventSender,
    MentionEvent,
    P2ImMessageReceiveV1,
    P2ImMessageReceiveV1Data,
    UserId,
)
from lark_oapi.event.context import EventHeader
from lark_oapi.ws.enum import FrameType, MessageType
from lark_oapi.ws.pb.pbbp2_pb2 import Frame

from tests.fakes import CallLog, json_response, serve

BOT_OPEN_ID = "ou_switchboard_bot"


def message_event(
    text: str,
    *,
    token: str,
    app_id: str,
    chat_type: str = "p2p",
    chat_id: str = "oc_chat",
    user: str = "ou_ada",
    message_id: str | None = None,
    event_id: str | None = None,
    mention_bot: bool = False,
    message_type: str = "text",
    content: dict[str, Any] | None = None,
) -> str:
    """An ``im.message.receive_v1`` event as Feishu sends it, built with lark-oapi's types."""
    header = EventHeader()
    header.event_id = event_id or uuid.uuid4().hex
    header.token = token
    header.create_time = str(int(time.time() * 1000))
    header.event_type = "im.message.receive_v1"
    header.tenant_key = "tenant-1"
    header.app_id = app_id
    mentions = []
    if mention_bot:
        text = f"@_user_1 {text}"
        bot = UserId.builder().open_id(BOT_OPEN_ID).build()
        mentions.append(MentionEvent.builder().key("@_user_1").id(bot).name("Switchboard").build())
    message = (
        EventMessage.builder()
        .message_id(message_id or f"om_{uuid.uuid4().hex}")
        .create_time(int(time.time() * 1000))
        .chat_id(chat_id)
        .chat_type(chat_type)
        .message_type(message_type)
        .content(json.dumps(content if content is not None else {"text": text}, ensure_ascii=False))
        .mentions(mentions)
        .build()
    )
    sender = EventSender.builder().sender_id(UserId.builder().open_id(user).build()).sender_type("user").build()
    data = P2ImMessageReceiveV1Data()
    data.message, data.sender = message, sender
    event = P2ImMessageReceiveV1()
    event.schema, event.header, event.event = "2.0", header, data
    return str(lark.JSON.marshal(event))


def challenge_event(token: str, challenge: str = "challenge-code") -> str:
    return json.dumps({"challenge": challenge, "token": token, "type": "url_verification"})


def encrypt(plaintext: str, encrypt_key: str) -> bytes:
    """The body Feishu POSTs when an encrypt key is set: AES-256-CBC with sha256(key), random
    IV in front, base64 (the inverse of lark-oapi's AESCipher)."""
    iv = os.urandom(16)
    cipher = AES.new(hashlib.sha256(encrypt_key.encode()).digest(), AES.MODE_CBC, iv)
    sealed = base64.b64encode(iv + cipher.encrypt(pad(plaintext.encode(), AES.block_size))).decode()
    return json.dumps({"encrypt": sealed}).encode()


def signed_headers(body: bytes, encrypt_key: str, at: float | None = None) -> dict[str, str]:
    """X-Lark-Request-Timestamp/-Nonce/-Signature of a body, as Feishu computes them, signed
    ``at`` (a Unix time; now by default)."""
    timestamp, nonce = str(int(time.time() if at is None else at)), uuid.uuid4().hex
    digest = hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()
    return {
        lark.LARK_REQUEST_TIMESTAMP: timestamp,
        lark.LARK_REQUEST_NONCE: nonce,
        lark.LARK_REQUEST_SIGNATURE: digest,
        "Content-Type": "application/json",
    }


@dataclass
class Call:
    method: str  # "reply", "patch", "token", "bot_info"
    message_id: str
    body: dict[str, Any]
    at: float  # time.monotonic()


@dataclass
class FakeFeishu(CallLog[Call]):
    app_id: str
    app_secret: str
    token_ttl_s: int = 7200
    calls: list[Call] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)  # long-connection acknowledgements
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry
    _token_numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _message_numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _uuids: dict[str, str] = field(default_factory=dict)
    _throttle: dict[str, list[int]] = field(default_factory=dict)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    def revoke_tokens(self) -> None:
        """Every token issued so far is rejected from now on (as after a secret rotation)."""
        self._tokens.clear()

    def throttle_next(self, method: str, reset_s: int, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and ``x-ogw-ratelimit-reset``."""
        self._throttle.setdefault(method, []).extend([reset_s] * times)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/open-apis/auth/v3/tenant_access_token/internal", self._token)
        app.router.add_get("/open-apis/bot/v3/info", self._bot_info)
        app.router.add_post("/open-apis/im/v1/messages/{message_id}/reply", self._reply)
        app.router.add_patch("/open-apis/im/v1/messages/{message_id}", self._patch)
        app.router.add_post("/callback/ws/endpoint", self._ws_endpoint)
        app.router.add_get("/ws", self._ws)
        self._runner, self.url = await serve(app)
        return self.url

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- long connection -------------------------------------------------------------

    async def wait_connected(self, count: int = 1, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while len(self._sockets) < count:
                await asyncio.sleep(0.05)

    async def push(self, event: str) -> None:
        """Send an event frame to the (first) connected client, as Feishu's gateway does."""
        frame = Frame(SeqID=0, LogID=0, service=1, method=FrameType.DATA.value, payload=event.encode())
        for key, value in (
            ("type", MessageType.EVENT.value),
            ("message_id", uuid.uuid4().hex),
            ("sum", "1"),
            ("seq", "0"),
            ("trace_id", uuid.uuid4().hex),
        ):
            header = frame.headers.add()
            header.key, header.value = key, value
        await self._sockets[0].send_bytes(frame.SerializeToString())

    async def _ws_endpoint(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("AppID") != self.app_id or body.get("AppSecret") != self.app_secret:
            return json_response({"code": 514, "msg": "auth failed"})
        host = request.host
        config = {"ReconnectCount": -1, "ReconnectInterval": 1, "ReconnectNonce": 0, "PingInterval": 30}
        url = f"ws://{host}/ws?device_id={uuid.uuid4().hex}&service_id=1"
        return json_response({"code": 0, "msg": "ok", "data": {"URL": url, "ClientConfig": config}})

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        try:
            async for message in socket:
                if message.type != WSMsgType.BINARY:
                    continue
                frame = Frame()
                frame.ParseFromString(message.data)
                headers = {h.key: h.value for h in frame.headers}
                if frame.method == FrameType.CONTROL.value and headers.get("type") == MessageType.PING.value:
                    pong = Frame(SeqID=0, LogID=0, service=1, method=FrameType.CONTROL.value)
                    header = pong.headers.add()
                    header.key, header.value = "type", MessageType.PONG.value
                    await socket.send_bytes(pong.SerializeToString())
                elif frame.method == FrameType.DATA.value:
                    self.acks.append(json.loads(frame.payload))
        finally:
            self._sockets.remove(socket)
        return socket

    # --- open API --------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(Call("token", "", {}, time.monotonic()))
        if body.get("app_id") != self.app_id or body.get("app_secret") != self.app_secret:
            return json_response({"code": 10014, "msg": "app secret invalid"}, 400)
        token = f"t-{next(self._token_numbers)}"
        self._tokens[token] = time.time() + self.token_ttl_s
        return json_response({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": self.token_ttl_s})

    def _authorized(self, request: web.Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return self._tokens.get(token, 0) > time.time()

    async def _bot_info(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _invalid_token()
        self.calls.append(Call("bot_info", "", {}, time.monotonic()))
        return json_response({"code": 0, "msg": "ok", "bot": {"open_id": BOT_OPEN_ID, "app_name": "Switchboard"}})

    async def _reply(self, request: web.Request) -> web.Response:
        return await self._message_call(request, "reply")

    async def _patch(self, request: web.Request) -> web.Response:
        return await self._message_call(request, "patch")

    async def _message_call(self, request: web.Request, method: str) -> web.Response:
        if not self._authorized(request):
            return _invalid_token()
        message_id = request.match_info["message_id"]
        body = await request.json()
        self.calls.append(Call(method, message_id, body, time.monotonic()))
        pending = self._throttle.get(method)
        if pending:
            reset_s = pending.pop(0)
            return json_response(
                {"code": 99991400, "msg": "request trigger frequency limit"},
                429,
                {"x-ogw-ratelimit-limit": "5", "x-ogw-ratelimit-reset": str(reset_s)},
            )
        if method == "patch":
            return json_response({"code": 0, "msg": "success", "data": {}})
        key = body.get("uuid")
        if key and key in self._uuids:  # Feishu answers a repeated uuid with the first message
            new_id = self._uuids[key]
        else:
            new_id = f"om_reply_{next(self._message_numbers)}"
            if key:
                self._uuids[key] = new_id
        data = {"message_id": new_id, "root_id": message_id, "parent_id": message_id, "msg_type": body.get("msg_type")}
        return json_response({"code": 0, "msg": "success", "data": data})


def _invalid_token() -> web.Response:
    return json_response({"code": 99991663, "msg": "Invalid access token for authorization"}, 400)
