"""The HTTP API (FastAPI; OpenAPI at /openapi.json, docs at /docs). Every route needs a
bearer token (``chat`` scope; ``admin`` for /v1/admin); ids are bound to the token's subject."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from switchboard.channel_gateway.auth import SCOPE_ADMIN, SCOPE_CHAT, Authenticator, Principal, requires
from switchboard.channel_gateway.config import Settings
from switchboard.channel_gateway.idempotency import IdempotencyKeys, KeyReused
from switchboard.channel_gateway.ids import IdSigner
from switchboard.channel_gateway.limits import BodySizeLimit
from switchboard.channel_gateway.ratelimit import RateLimiter
from switchboard.channel_gateway.rejections import AuditRejections, Record
from switchboard.channel_gateway.replies import Replies
from switchboard.events.v1 import messages_pb2 as m

Publish = Callable[[m.InboundMessage, str], Awaitable[None]]


class ConversationOut(BaseModel):
    conversation_id: str


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str = Field(min_length=1, max_length=128, description="From POST /v1/conversations")
    text: str = Field(min_length=1, description="What the user says")
    wait: bool = Field(default=True, description="Wait for the reply (up to timeout_s) instead of answering 202")
    timeout_s: float | None = Field(default=None, gt=0, description="How long to wait for the reply")


class MessageOut(BaseModel):
    message_id: str
    conversation_id: str | None = None
    status: Literal["pending", "completed"]
    reply: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    links: dict[str, str] = Field(default_factory=dict)


class StatusOut(BaseModel):
    channels: dict[str, str] = Field(description="Each channel and its mode (off when not listed)")
    replies_cached: int


def create_api(
    settings: Settings,
    signer: IdSigner,
    replies: Replies,
    publish: Publish,
    auth: Authenticator,
    limiter: RateLimiter,
    idempotency: IdempotencyKeys,
    channels: Sequence[APIRouter] = (),
    record_rejection: Record | None = None,
    channel_modes: dict[str, str] | None = None,
) -> FastAPI:
    """The FastAPI app; ``publish`` puts an InboundMessage on Kafka (and raises if it cannot);
    ``channels`` are the platform webhooks that are switched on (they authenticate their
    platform's way, not with bearer tokens); ``record_rejection`` audits every 4xx."""
    api = FastAPI(title="Switchboard channel gateway", version="1", docs_url="/docs")
    chat = Depends(requires(auth, SCOPE_CHAT))
    admin = Depends(requires(auth, SCOPE_ADMIN))
    api.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if record_rejection is not None:
        api.add_middleware(AuditRejections, record=record_rejection)  # outermost: sees the 413s too
    for router in channels:
        api.include_router(router)

    def links(message_id: str) -> dict[str, str]:
        return {"self": f"/v1/messages/{message_id}", "events": f"/v1/messages/{message_id}/events"}

    def completed(message_id: str, final: m.OutboundMessage, conversation_id: str | None = None) -> MessageOut:
        return MessageOut(
            message_id=message_id,
            conversation_id=conversation_id,
            status="completed",
            reply=final.text,
            model=final.metadata.get("model"),
            finish_reason=final.metadata.get("finish_reason"),
            links=links(message_id),
        )

    def known_message(message_id: str, caller: Principal) -> str:
        if not signer.valid(message_id, "m", caller.subject):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown message id")
        return message_id

    unauthorized = {
        401: {"description": "no or invalid bearer token"},
        403: {"description": "the token lacks the scope"},
    }

    @api.post(
        "/v1/conversations", status_code=status.HTTP_201_CREATED, response_model=ConversationOut, responses=unauthorized
    )
    async def create_conversation(caller: Principal = chat) -> ConversationOut:
        """Start a conversation; send messages to it with its id."""
        return ConversationOut(conversation_id=signer.new("c", caller.subject))

    @api.post(
        "/v1/messages",
        response_model=MessageOut,
        responses={
            **unauthorized,
            202: {"model": MessageOut},
            404: {"description": "unknown conversation"},
            409: {"description": "the Idempotency-Key was used for a different request"},
            429: {"description": "too many messages from this user (see Retry-After)"},
        },
    )
    async def post_message(
        body: MessageIn,
        caller: Principal = chat,
        idempotency_key: str | None = Header(
            default=None,
            min_length=1,
            max_length=255,
            description="Repeat a request safely: the same key (per caller, 24 h) gets the first request's message",
        ),
    ) -> MessageOut | JSONResponse:
        """Send a message. With ``wait`` (default) the reply comes in the response; otherwise, or
        when it takes longer than ``timeout_s``, 202 with links to poll or stream it."""
        if not signer.valid(body.conversation_id, "c", caller.subject):
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, "unknown conversation; create one with POST /v1/conversations"
            )
        if len(body.text) > settings.max_text_chars:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY, f"text is longer than {settings.max_text_chars} characters"
            )
        timeout_s = body.timeout_s if body.timeout_s is not None else settings.default_wait_s
        if timeout_s > settings.max_wait_s:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY, f"timeout_s must be at most {settings.max_wait_s}"
            )
        request_hash = hashlib.sha256(f"{body.conversation_id}\n{body.text}".encode()).hexdigest()
        earlier = None
        if idempotency_key is not None:
            try:
                earlier = await idempotency.find(caller.subject, idempotency_key, request_hash)
            except KeyReused as exc:
                raise HTTPException(status.HTTP_409_CONFLICT, "Idempotency-Key was used for another request") from exc
        if earlier is None and (wait_s := await limiter.allow(f"http:{caller.subject}")) is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"more than {settings.rate_limit_per_minute} messages a minute; try again in {wait_s:.0f} s",
                headers={"Retry-After": str(int(wait_s) + 1)},
            )
        message_id = earlier.message_id if earlier is not None else signer.new("m", caller.subject)
        if idempotency_key is not None and earlier is None:
            earlier = await idempotency.claim(
                caller.subject, idempotency_key, request_hash, message_id, body.conversation_id
            )
            message_id = earlier.message_id  # another request with the key may have won
        if earlier is None or not earlier.published:
            inbound = m.InboundMessage(
                message_id=message_id,
                channel=m.CHANNEL_HTTP,
                channel_message_id=message_id,
                channel_chat_id=body.conversation_id,
                sender=m.Actor(user_id=f"http:{caller.subject}", channel_user_id=caller.subject),
                kind=m.MESSAGE_KIND_TEXT,
                text=body.text,
            )
            # A retry of a request that crashed before this publishes the same message id
            # again; the scheduler dispatches a message id once.
            await publish(inbound, body.conversation_id)
            if idempotency_key is not None:
                await idempotency.mark_published(caller.subject, idempotency_key)
        if body.wait:
            final = await replies.wait_final(message_id, timeout_s)
            if final is not None:
                return completed(message_id, final, body.conversation_id)
        pending = MessageOut(
            message_id=message_id, conversation_id=body.conversation_id, status="pending", links=links(message_id)
        )
        return JSONResponse(pending.model_dump(), status_code=status.HTTP_202_ACCEPTED)

    @api.get(
        "/v1/messages/{message_id}",
        response_model=MessageOut,
        responses={**unauthorized, 404: {"description": "unknown id"}},
    )
    async def get_message(message_id: Annotated[str, Path(max_length=128)], caller: Principal = chat) -> MessageOut:
        """The reply, once it is complete (kept for ``reply_ttl_s``)."""
        known_message(message_id, caller)
        entry = replies.get(message_id)
        if entry is not None and entry.final is not None:
            return completed(message_id, entry.final)
        return MessageOut(message_id=message_id, status="pending", links=links(message_id))

    @api.get("/v1/messages/{message_id}/events", responses={**unauthorized, 404: {"description": "unknown id"}})
    async def stream_message(
        message_id: Annotated[str, Path(max_length=128)], caller: Principal = chat
    ) -> EventSourceResponse:
        """Server-sent events: ``chunk`` events as the reply is generated, then one ``done``."""
        known_message(message_id, caller)

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                async for item in replies.follow(message_id, settings.max_wait_s):
                    if isinstance(item, tuple):
                        yield {"event": "chunk", "data": json.dumps({"sequence": item[0], "text": item[1]})}
                    else:
                        yield {"event": "done", "data": completed(message_id, item).model_dump_json()}
            except TimeoutError:
                yield {"event": "timeout", "data": json.dumps({"detail": "no complete reply in time"})}

        return EventSourceResponse(events(), ping=15)

    @api.get("/v1/admin/status", response_model=StatusOut, responses=unauthorized)
    async def admin_status(caller: Principal = admin) -> StatusOut:
        """Which channels are on, and how many replies this replica holds (admin scope)."""
        return StatusOut(channels=dict(channel_modes or {}), replies_cached=len(replies))

    return api
