"""The HTTP API (FastAPI; OpenAPI at /openapi.json, docs at /docs). Every route needs a
bearer token (``chat`` scope; ``admin`` for /v1/admin); ids are bound to the token's subject.
A voice note or picture is a multipart upload to /v1/messages/media (when media are on)."""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Form, Header, HTTPException, Path, UploadFile, status
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_fastapi_instrumentator import Instrumentator
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from switchboard.channel_gateway.auth import SCOPE_ADMIN, SCOPE_CHAT, Authenticator, Principal, requires
from switchboard.channel_gateway.body_limit import BodySizeLimit
from switchboard.channel_gateway.config import Settings
from switchboard.channel_gateway.ids import IdSigner
from switchboard.channel_gateway.intake import Intake
from switchboard.channel_gateway.media_uploads import MediaUploads
from switchboard.channel_gateway.rejections import AuditRejections, Record, Rejected
from switchboard.channel_gateway.replies import Replies
from switchboard.common import telemetry
from switchboard.events.v1 import messages_pb2 as m

CHAT_PAGE = (pathlib.Path(__file__).parent / "static" / "chat.html").read_text()
_script = CHAT_PAGE.split("<script>", 1)[1].split("</script>", 1)[0]
_script_hash = base64.b64encode(hashlib.sha256(_script.encode()).digest()).decode()
CHAT_PAGE_HEADERS = {
    # Only this page's own script and styles, talking to this gateway.
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'sha256-{_script_hash}'; "
        "style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


MEDIA_PATH = "/v1/messages/media"
IdempotencyKey = Header(
    default=None,
    min_length=1,
    max_length=255,
    pattern=r"^[\x21-\x7e]+$",
    description="Repeat a request safely: the same key (per caller, 24 h) gets the first request's message",
)


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
    auth: Authenticator,
    intake: Intake,
    channels: Sequence[APIRouter] = (),
    record_rejection: Record | None = None,
    channel_modes: dict[str, str] | None = None,
    media: MediaUploads | None = None,
) -> FastAPI:
    """The FastAPI app. ``intake`` takes messages (checks, limits, onto Kafka); ``channels``
    are the routers of the channels that are on (platform webhooks authenticate their
    platform's way, not with bearer tokens); ``record_rejection`` audits every 4xx."""
    api = FastAPI(title="Switchboard channel gateway", version="1", docs_url="/docs")
    telemetry.instrument_http(api)
    chat = Depends(requires(auth, SCOPE_CHAT))
    admin = Depends(requires(auth, SCOPE_ADMIN))
    # An upload's multipart framing and caption come on top of the file itself.
    media_route = {MEDIA_PATH: settings.max_media_bytes + settings.max_body_bytes}
    api.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, routes=media_route)
    if record_rejection is not None:
        api.add_middleware(AuditRejections, record=record_rejection)  # sees the 413s too
    # Request counts by route template, method and status class, and durations, on the
    # service's metrics port (the alert rules' latency and error rate: deploy/prometheus). A
    # streamed reply counts until its headers; WebSockets are not HTTP requests here.
    Instrumentator(should_exclude_streaming_duration=True).instrument(api)
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

    unauthorized: dict[int | str, dict[str, Any]] = {
        400: {"description": "a malformed request (e.g. a body that is not JSON)"},
        401: {"description": "no or invalid bearer token"},
        403: {"description": "the token lacks the scope"},
        413: {"description": "the body is larger than max_body_bytes"},
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
        body: MessageIn, caller: Principal = chat, idempotency_key: str | None = IdempotencyKey
    ) -> MessageOut | JSONResponse:
        """Send a message. With ``wait`` (default) the reply comes in the response; otherwise, or
        when it takes longer than ``timeout_s``, 202 with links to poll or stream it."""
        timeout_s = wait_limit(body.timeout_s)
        try:
            message_id = await intake.submit(
                caller, body.conversation_id, body.text, m.CHANNEL_HTTP, idempotency_key=idempotency_key
            )
        except Rejected as exc:
            raise refused(exc) from exc
        return await answer(message_id, body.conversation_id, body.wait, timeout_s)

    @api.post(
        MEDIA_PATH,
        response_model=MessageOut,
        responses={
            **unauthorized,
            202: {"model": MessageOut},
            404: {"description": "unknown conversation"},
            413: {"description": "the file is larger than max_media_bytes"},
            415: {"description": "neither a voice note nor a picture the gateway reads"},
            422: {"description": "damaged, cut off, too long (voice) or too many pixels (picture)"},
            429: {"description": "too many messages from this user (see Retry-After)"},
            503: {"description": "voice notes and pictures are off on this gateway"},
        },
    )
    async def post_media(
        conversation_id: Annotated[str, Form(min_length=1, max_length=128)],
        file: Annotated[UploadFile, File(description="OGG/Opus, WebM/Opus, WAV, MP3, M4A; PNG, JPEG, WebP, GIF")],
        caption: Annotated[str, Form(description="Text sent with it")] = "",
        wait: Annotated[bool, Form()] = True,
        timeout_s: Annotated[float | None, Form(gt=0)] = None,
        caller: Principal = chat,
        idempotency_key: str | None = IdempotencyKey,
    ) -> MessageOut | JSONResponse:
        """Send a voice note or a picture (multipart/form-data), with an optional caption. The
        type is read from the bytes; the file is kept in the media store and the message refers
        to it. Answered like POST /v1/messages."""
        if media is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "voice notes and pictures are off on this gateway")
        limit = wait_limit(timeout_s)
        data = await file.read(settings.max_media_bytes + 1)
        try:
            kind, attachment = await media.take(data, file.filename or "")
            message_id = await intake.submit(
                caller,
                conversation_id,
                caption,
                m.CHANNEL_HTTP,
                idempotency_key=idempotency_key,
                kind=kind,
                attachments=[attachment],
            )
        except Rejected as exc:
            raise refused(exc) from exc
        return await answer(message_id, conversation_id, wait, limit)

    def wait_limit(timeout_s: float | None) -> float:
        limit = timeout_s if timeout_s is not None else settings.default_wait_s
        if limit > settings.max_wait_s:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY, f"timeout_s must be at most {settings.max_wait_s}"
            )
        return limit

    def refused(exc: Rejected) -> HTTPException:
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
        return HTTPException(exc.status, exc.detail, headers=headers)

    async def answer(message_id: str, conversation_id: str, wait: bool, timeout_s: float) -> MessageOut | JSONResponse:
        """The reply when it comes within ``timeout_s`` (and ``wait``), else 202 with links."""
        if wait:
            final = await replies.wait_final(message_id, timeout_s)
            if final is not None:
                return completed(message_id, final, conversation_id)
        pending = MessageOut(
            message_id=message_id, conversation_id=conversation_id, status="pending", links=links(message_id)
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

    @api.get("/chat", include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        """The web chat page (talks to /v1/ws; the user brings a token)."""
        return HTMLResponse(CHAT_PAGE, headers=CHAT_PAGE_HEADERS)

    @api.get("/v1/admin/status", response_model=StatusOut, responses=unauthorized)
    async def admin_status(caller: Principal = admin) -> StatusOut:
        """Which channels are on, and how many replies this replica holds (admin scope)."""
        return StatusOut(channels=dict(channel_modes or {}), replies_cached=len(replies))

    return api
