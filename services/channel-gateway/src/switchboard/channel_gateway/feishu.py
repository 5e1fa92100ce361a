"""Feishu / Lark (lark-oapi): events in by webhook or long connection, replies in thread.

In, by webhook (``POST /v1/channels/feishu/events``): the body is decrypted with the encrypt
key (AES-256-CBC, lark-oapi's own cipher; webhook mode refuses to start without one), its
``X-Lark-Signature`` checked (SHA-256 of timestamp + nonce + key + body), its timestamp
within 5 minutes of now and its verification token compared in constant time; a failure
is a 4xx with the reason and produces nothing. The ``url_verification`` challenge
is answered at once. Message events are acknowledged once they are on Kafka, well within
Feishu's 3 s. In, by long connection: lark-oapi's websocket client (authenticated by the app
secret) hands over events, acknowledged the same way.

Feishu retries an unacknowledged event for up to 6 hours and may repeat a message under a
new event id, so both the event id and the message id are remembered in PostgreSQL (48 h by
default), by all replicas together. In groups, only messages that @-mention the bot are
taken; the mention itself is removed from the text.

Out: the reply is threaded under the user's message (a new thread in groups, a quoted reply
in one-to-one chats) through im/v1. A streamed answer first appears as an interactive card
that is updated at most every ``card_interval_s`` and completed with the final text. Each
request carries a ``uuid`` derived from our message id, which Feishu uses to drop repeats
(an at-least-once redelivery does not post twice). The tenant_access_token is obtained and
cached by lark-oapi (refreshed 10 minutes before it expires); a token Feishu rejects anyway
is dropped and fetched again once. A 429 pauses every call of the app.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import lark_oapi as lark
from fastapi import APIRouter, HTTPException, Request
from lark_oapi.api.im.v1 import (
    P2ImMessageReceiveV1,
    PatchMessageRequest,
    PatchMessageRequestBody,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
)
from lark_oapi.core.cache import ICache
from lark_oapi.core.token import TokenManager

from switchboard.channel_gateway.dedupe import Deliveries
from switchboard.channel_gateway.pacing import RateGate, split_text
from switchboard.channel_gateway.rejections import Rejected
from switchboard.channel_gateway.targets import ReplyTargets
from switchboard.common import events
from switchboard.common.kafka import ConsumedEvent
from switchboard.events.v1 import messages_pb2 as m

logger = logging.getLogger(__name__)

CHANNEL = "feishu"
MESSAGE_EVENT = "im.message.receive_v1"
# A card holds about 30 KB; 8 000 characters stay below it even in CJK (3 bytes each).
MAX_CARD_CHARS = 8000
_TOKEN_REJECTED = {99991661, 99991663, 99991668}  # access token missing, invalid, expired
_RATE_LIMITED = 99991400
_IDS = uuid.UUID("5b2d0a8e-7c41-4f0b-9d3e-1a6c8f2e4b70")
# A signed webhook call is taken this many seconds either side of its timestamp.
SIGNATURE_WINDOW_S = 300


class FeishuError(Exception):
    """Feishu answered an API call with an error code."""


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """``X-Lark-Signature`` of a webhook call."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def open_event(
    body: bytes, headers: Mapping[str, str], encrypt_key: str, verification_token: str, now: float | None = None
) -> dict[str, Any]:
    """The event of one webhook call, decrypted and authenticated; raises Rejected otherwise.

    Events must be encrypted with ``encrypt_key``, signed with it, and signed within
    ``SIGNATURE_WINDOW_S`` of ``now`` (a recorded call cannot be replayed later); the
    ``url_verification`` challenge, which Feishu does not sign, needs only the token."""
    if not encrypt_key:
        raise ValueError("the Feishu webhook needs an encrypt key")
    try:
        outer = json.loads(body)
    except ValueError as exc:
        raise Rejected(400, "body is not JSON") from exc
    if not isinstance(outer, dict):
        raise Rejected(400, "body is not a JSON object")
    encrypted = outer.get("encrypt")
    if not isinstance(encrypted, str):
        raise Rejected(400, "body is not encrypted with the app's encrypt key")
    try:
        event = json.loads(lark.AESCipher(encrypt_key).decrypt_str(encrypted))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Rejected(400, "body cannot be decrypted with the encrypt key") from exc
    if not isinstance(event, dict):
        raise Rejected(400, "decrypted body is not a JSON object")
    if event.get("type") != "url_verification":  # Feishu signs events, not the challenge
        given = headers.get(lark.LARK_REQUEST_SIGNATURE, "")
        timestamp = headers.get(lark.LARK_REQUEST_TIMESTAMP, "")
        nonce = headers.get(lark.LARK_REQUEST_NONCE, "")
        if not hmac.compare_digest(given.encode(), signature(timestamp, nonce, encrypt_key, body).encode()):
            raise Rejected(401, "missing or wrong X-Lark-Signature")
        now = time.time() if now is None else now
        if not timestamp.isdigit() or abs(int(timestamp) - now) > SIGNATURE_WINDOW_S:
            raise Rejected(401, f"X-Lark-Request-Timestamp is more than {SIGNATURE_WINDOW_S} s from now")
    header = event.get("header")
    token = header.get("token") if isinstance(header, dict) else event.get("token")
    if not isinstance(token, str) or not hmac.compare_digest(token.encode(), verification_token.encode()):
        raise Rejected(401, "missing or wrong verification token")
    return event


def message_id_for(app_id: str, feishu_message_id: str) -> str:
    """The same Feishu message always becomes the same message id (downstream dedupes on it)."""
    return str(uuid.uuid5(_IDS, f"{CHANNEL}:{app_id}:{feishu_message_id}"))


def inbound_from_event(
    received: P2ImMessageReceiveV1, app_id: str, bot_open_id: str
) -> tuple[m.InboundMessage, str] | None:
    """The InboundMessage and conversation key of a message event, or None for messages we
    leave alone (from other bots, group chatter without an @-mention of us, stickers, …)."""
    event = received.event
    message, sender = event.message, event.sender
    if sender.sender_type not in (None, "user"):
        return None
    mentions = message.mentions or []
    mentioned = any(mention.id is not None and mention.id.open_id == bot_open_id for mention in mentions)
    if message.chat_type != "p2p" and not mentioned:
        return None
    kind, text, attachments = _content(message.message_type or "", message.content or "", message.message_id)
    if kind is None:
        return None
    for mention in mentions:
        ours = mention.id is not None and mention.id.open_id == bot_open_id
        text = text.replace(mention.key or "\0", "" if ours else f"@{mention.name or ''}")
    text = " ".join(text.split()) if kind in (m.MESSAGE_KIND_TEXT, m.MESSAGE_KIND_COMMAND) else text.strip()
    if kind == m.MESSAGE_KIND_TEXT and not text:
        return None  # only "@bot": nothing to answer
    if kind == m.MESSAGE_KIND_TEXT and text.startswith("/"):
        kind = m.MESSAGE_KIND_COMMAND
    conversation = f"{CHANNEL}:{message.chat_id}"
    metadata = {"chat_type": message.chat_type or "", "feishu_message_id": message.message_id}
    if message.thread_id:
        conversation += f":{message.thread_id}"
        metadata["thread_id"] = message.thread_id
    if received.header.tenant_key:
        metadata["tenant_key"] = received.header.tenant_key
    ids = sender.sender_id
    open_id = ids.open_id if ids is not None and ids.open_id else "unknown"
    inbound = m.InboundMessage(
        message_id=message_id_for(app_id, message.message_id),
        channel=m.CHANNEL_FEISHU,
        channel_message_id=message.message_id,
        channel_chat_id=message.chat_id or "",
        sender=m.Actor(user_id=f"{CHANNEL}:{open_id}", channel_user_id=open_id),
        kind=kind,
        text=text,
        attachments=attachments,
        reply_to=message.parent_id or "",
        metadata=metadata,
    )
    return inbound, conversation


def _content(message_type: str, content: str, message_id: str) -> tuple[m.MessageKind | None, str, list[m.Attachment]]:
    """Kind, text and media references (bytes stay at Feishu) of a message's content JSON."""
    try:
        body = json.loads(content)
    except ValueError:
        return None, "", []
    if not isinstance(body, dict):
        return None, "", []
    if message_type == "text":
        return m.MESSAGE_KIND_TEXT, str(body.get("text", "")), []
    if message_type == "post":
        return m.MESSAGE_KIND_TEXT, _post_text(body), []
    key = body.get("file_key") or body.get("image_key")
    if not isinstance(key, str):
        return None, "", []
    uri = f"feishu-resource:{message_id}/{key}"
    if message_type == "image":
        return m.MESSAGE_KIND_IMAGE, "", [m.Attachment(uri=uri, mime_type="image/*")]
    if message_type == "audio":
        return m.MESSAGE_KIND_VOICE, "", [m.Attachment(uri=uri, mime_type="audio/opus")]
    if message_type in ("file", "media"):
        name = str(body.get("file_name", ""))
        mime = "video/mp4" if message_type == "media" else "application/octet-stream"
        return m.MESSAGE_KIND_DOCUMENT, "", [m.Attachment(uri=uri, mime_type=mime, file_name=name)]
    return None, "", []


def _post_text(body: dict[str, Any]) -> str:
    """The plain text of a rich-text post (``{"title", "content": [[{tag, text}, …], …]}``,
    possibly per locale)."""
    if "content" not in body and body:
        body = next((value for value in body.values() if isinstance(value, dict)), {})
    lines = [str(body.get("title") or "")]
    for paragraph in body.get("content") or []:
        parts = []
        for element in paragraph if isinstance(paragraph, list) else []:
            if not isinstance(element, dict):
                continue
            if element.get("tag") == "at":
                parts.append(str(element.get("user_id") or ""))  # the mention key, resolved later
            elif element.get("tag") in ("text", "a", "md", "code_block"):
                parts.append(str(element.get("text") or ""))
        lines.append(" ".join(parts))
    return "\n".join(line for line in lines if line)


def card(text: str, streaming: bool) -> str:
    """An interactive card showing ``text`` (markdown), with "…" below while it streams."""
    elements: list[dict[str, Any]] = [{"tag": "markdown", "content": text or " "}]
    if streaming:
        elements.append({"tag": "note", "elements": [{"tag": "plain_text", "content": "…"}]})
    return json.dumps({"config": {"wide_screen_mode": True, "update_multi": True}, "elements": elements})


class TokenCache(ICache):
    """Where lark-oapi keeps the tenant_access_token; ours, so a rejected token can be dropped."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> str:
        value, expires = self._values.get(key, ("", 0.0))
        return value if expires > time.time() else ""

    def set(self, key: str, value: str, expire: int) -> None:
        self._values[key] = (value, float(expire))

    def forget(self) -> None:
        self._values.clear()


@dataclass
class _Stream:
    target: dict[str, Any]  # {"message_id": the Feishu message replied to, "in_thread": bool}
    text: str = ""
    card_id: str | None = None  # the card showing the answer while it streams
    shown_at: float = 0.0


class FeishuChannel:
    """The Feishu side of the gateway: event intake (webhook router or long connection) and replies."""

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        deliveries: Deliveries,
        targets: ReplyTargets,
        *,
        verification_token: str = "",
        encrypt_key: str = "",
        api_url: str | None = None,
        card_interval_s: float = 0.5,
    ) -> None:
        self.app_id = app_id
        self.api_url = api_url or lark.FEISHU_DOMAIN
        self.app_secret = app_secret
        self._tokens = TokenCache()
        self.client = (
            lark.Client.builder()
            .app_id(app_id)
            .app_secret(app_secret)
            .domain(self.api_url)
            .enable_set_token(True)  # we pass the token, fetched off the event loop
            .cache(self._tokens)
            .log_level(lark.LogLevel.WARNING)
            .build()
        )
        self._verification_token = verification_token
        self._encrypt_key = encrypt_key
        self._deliveries = deliveries
        self._targets = targets
        self._card_interval_s = card_interval_s
        # Feishu allows 50 calls/s per app and 5/s per chat or message: keep a margin.
        self._gate = RateGate(1 / 40, lambda _: 0.25, CHANNEL)
        self._streams: dict[str, _Stream] = {}
        self.bot_open_id = ""

    async def start(self) -> None:
        """Learn the bot's own open_id (to recognise @-mentions of it in groups)."""
        request = (
            lark.BaseRequest.builder()
            .http_method(lark.HttpMethod.GET)
            .uri("/open-apis/bot/v3/info")
            .token_types({lark.AccessTokenType.TENANT})
            .build()
        )
        response = await self._call("bot-info", lambda option: self.client.arequest(request, option))
        self.bot_open_id = json.loads(response.raw.content)["bot"]["open_id"]
        logger.info("feishu bot ready", extra={"bot_open_id": self.bot_open_id})

    def router(self) -> APIRouter:
        router = APIRouter(tags=["feishu"])

        @router.post(
            "/v1/channels/feishu/events",
            responses={
                400: {"description": "not JSON, or not decryptable with the encrypt key"},
                401: {"description": "wrong signature or verification token"},
                422: {"description": "not a well-formed message event"},
            },
        )
        async def events_webhook(request: Request) -> dict[str, str]:
            """Feishu calls this with each event it was subscribed to (and the URL challenge)."""
            try:
                event = open_event(await request.body(), request.headers, self._encrypt_key, self._verification_token)
            except Rejected as exc:
                raise HTTPException(exc.status, exc.detail) from exc
            if event.get("type") == "url_verification":
                return {"challenge": str(event.get("challenge", ""))}
            header = event.get("header")
            event_type = header.get("event_type") if isinstance(header, dict) else None
            if event_type != MESSAGE_EVENT:
                logger.info("feishu event ignored", extra={"event_type": str(event_type)})
                return {"msg": "ignored"}
            try:
                received = P2ImMessageReceiveV1(event)
                converted = self.convert(received)
            except Exception as exc:  # the SDK's models raise all sorts on odd shapes
                raise HTTPException(422, f"not a well-formed {MESSAGE_EVENT} event: {exc!r}"[:300]) from exc
            await self.accept(received, converted)
            return {"msg": "success"}

        return router

    def convert(self, received: P2ImMessageReceiveV1) -> tuple[m.InboundMessage, str] | None:
        """The event's InboundMessage and conversation key (None: an event we leave alone);
        ValueError if it is not a well-formed message event."""
        _check_complete(received)
        try:
            return inbound_from_event(received, self.app_id, self.bot_open_id)
        except TypeError as exc:  # a field of the wrong type: the SDK's models do not check them
            raise ValueError(f"a field of the wrong type ({exc})") from exc

    async def accept(self, received: P2ImMessageReceiveV1, converted: tuple[m.InboundMessage, str] | None) -> bool:
        """Put the message (``converted`` from ``convert``) on Kafka unless it was accepted
        before; True when it was new. Feishu may repeat a message under a new event id: both
        ids count."""
        message = received.event.message
        keys = [f"event:{received.header.event_id}", f"message:{message.message_id}"]
        target = {"message_id": message.message_id, "in_thread": message.chat_type != "p2p"}
        return await self._deliveries.accept(CHANNEL, keys, converted, f"/v1/channels/{CHANNEL}/events", target)

    async def deliver(self, event: ConsumedEvent) -> None:
        """Stream or send the reply to a Feishu message (other outbound events are not ours)."""
        reply = events.unwrap(event.envelope)
        if not isinstance(reply, m.OutboundMessage) or reply.channel != m.CHANNEL_FEISHU:
            return
        stream = self._streams.get(reply.in_reply_to)
        if stream is None:
            target = await self._targets.get(reply.in_reply_to)
            if target is None:
                logger.warning("no feishu message to reply to; reply dropped", extra={"in_reply_to": reply.in_reply_to})
                return
            stream = self._streams[reply.in_reply_to] = _Stream(target)
        if not reply.final:
            stream.text += reply.text
            due = time.monotonic() - stream.shown_at >= self._card_interval_s
            if due and len(stream.text) <= MAX_CARD_CHARS and self._gate.ready(stream.target["message_id"]):
                await self._show(reply.in_reply_to, stream, card(stream.text, streaming=True))
            return
        del self._streams[reply.in_reply_to]
        pieces = split_text(reply.text, MAX_CARD_CHARS)
        if stream.card_id is not None:
            await self._show(reply.in_reply_to, stream, card(pieces.pop(0) if pieces else "", streaming=False))
        for number, piece in enumerate(pieces):
            body = json.dumps({"text": piece})
            await self._reply(stream.target, "text", body, dedupe=f"{reply.message_id}:{number}")

    async def _show(self, in_reply_to: str, stream: _Stream, content: str) -> None:
        """Create the streaming card (a reply), or update it."""
        if stream.card_id is None:
            sent = await self._reply(stream.target, "interactive", content, dedupe=f"{in_reply_to}:card")
            stream.card_id = sent.data.message_id
        else:
            card_id = stream.card_id
            request = (
                PatchMessageRequest.builder()
                .message_id(card_id)
                .request_body(PatchMessageRequestBody.builder().content(content).build())
                .build()
            )
            await self._call(card_id, lambda option: self.client.im.v1.message.apatch(request, option))
        stream.shown_at = time.monotonic()

    async def _reply(self, target: dict[str, Any], msg_type: str, content: str, dedupe: str) -> Any:
        feishu_message_id, in_thread = target["message_id"], target["in_thread"]
        body = (
            ReplyMessageRequestBody.builder()
            .msg_type(msg_type)
            .content(content)
            .reply_in_thread(in_thread)
            .uuid(str(uuid.uuid5(_IDS, dedupe)))  # Feishu drops a repeat of the same uuid (1 h)
            .build()
        )
        request = ReplyMessageRequest.builder().message_id(feishu_message_id).request_body(body).build()
        return await self._call(feishu_message_id, lambda option: self.client.im.v1.message.areply(request, option))

    async def _call(self, chat_key: str, call: Callable[[lark.RequestOption], Awaitable[Any]]) -> Any:
        """``call`` with a tenant token when the pace allows; a rejected token is fetched again
        once, a 429 pauses the app for the time Feishu gives."""
        refreshed = False
        while True:
            await self._gate.wait(chat_key)
            token = await asyncio.to_thread(TokenManager.get_self_tenant_token, self.client.config)
            response = await call(lark.RequestOption.builder().tenant_access_token(token).build())
            if response.success():
                return response
            status = response.raw.status_code if response.raw is not None else 0
            if response.code in _TOKEN_REJECTED and not refreshed:
                logger.info("feishu rejected the tenant token; fetching a new one")
                self._tokens.forget()
                refreshed = True
            elif response.code == _RATE_LIMITED or status == 429:
                headers = response.raw.headers if response.raw is not None else {}
                self._gate.pause(float(headers.get("x-ogw-ratelimit-reset") or 1))
            else:
                raise FeishuError(f"feishu answered {status} code {response.code}: {response.msg}")


def _check_complete(received: P2ImMessageReceiveV1) -> None:
    """Raise unless the event has what a message needs (the SDK's models accept anything)."""
    header, event = received.header, received.event
    if header is None or event is None or not _is_id(header.event_id):
        raise ValueError("no header.event_id or no event")
    message, sender = event.message, event.sender
    if message is None or sender is None or not _is_id(message.message_id):
        raise ValueError("no event.message.message_id or no event.sender")
    if not _is_id(message.chat_id) or not isinstance(message.content, str | None):
        raise ValueError("event.message.chat_id or .content of the wrong type")
    # The header's fields are not type-checked by the SDK at all.
    optional_ids = (header.tenant_key, message.thread_id, message.parent_id, message.chat_type, message.message_type)
    for optional in optional_ids:
        if optional is not None and not _is_id(optional):
            raise ValueError("an id of the event is not a plain string")


def _is_id(value: object) -> bool:
    """A Feishu id: 1 to 200 printable characters (they end up as database keys)."""
    return isinstance(value, str) and 0 < len(value) <= 200 and value.isprintable()


class LongConnection:
    """Events over lark-oapi's websocket client instead of a webhook (no public URL needed).

    The SDK's client runs its own event loop (a module-level one) and calls handlers
    synchronously, so it lives in a thread of its own; each event is handed to the
    service's loop and the SDK acknowledges it only once it was accepted (an exception
    makes it answer 500, and Feishu delivers the event again). Every replica may connect:
    Feishu gives each event to one of an app's connections.
    """

    def __init__(self, channel: FeishuChannel) -> None:
        self._channel = channel
        self._main: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None

    async def run(self, stop: asyncio.Event) -> None:
        self._main = asyncio.get_running_loop()
        thread = threading.Thread(target=self._thread_main, name="feishu-long-connection", daemon=True)
        thread.start()
        await stop.wait()
        loop, client = self._loop, self._client
        if loop is not None and client is not None:
            client._auto_reconnect = False
            done = asyncio.run_coroutine_threadsafe(client._disconnect(), loop)
            await asyncio.wrap_future(done)
            loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)

    def _thread_main(self) -> None:
        import lark_oapi.ws.client as ws_client

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        ws_client.loop = loop  # the SDK drives the loop of its module; make it this thread's
        handler = (
            lark.EventDispatcherHandler.builder("", "").register_p2_im_message_receive_v1(self._on_message).build()
        )
        self._client = ws_client.Client(
            self._channel.app_id,
            self._channel.app_secret,
            event_handler=handler,
            domain=self._channel.api_url,
            log_level=lark.LogLevel.WARNING,
        )
        self._loop = loop
        try:
            self._client.start()
        except RuntimeError:  # the loop was stopped: shutting down
            pass
        except Exception:
            logger.exception("feishu long connection failed")
        finally:
            loop.close()

    def _on_message(self, received: P2ImMessageReceiveV1) -> None:
        assert self._main is not None
        converted = self._channel.convert(received)
        accepted = asyncio.run_coroutine_threadsafe(self._channel.accept(received, converted), self._main)
        accepted.result(timeout=30)  # raising makes the SDK answer 500: Feishu redelivers
