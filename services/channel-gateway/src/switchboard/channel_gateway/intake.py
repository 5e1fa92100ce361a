"""Taking a message from an authenticated caller (HTTP or WebSocket): checks, the per-user
limit, idempotency keys, then onto Kafka. One place, so both transports behave the same."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence

from switchboard.channel_gateway.auth import Principal
from switchboard.channel_gateway.idempotency import IdempotencyKeys, KeyReused
from switchboard.channel_gateway.ids import IdSigner
from switchboard.channel_gateway.ratelimit import RateLimiter
from switchboard.channel_gateway.rejections import Rejected
from switchboard.common import text as text_rules
from switchboard.events.v1 import messages_pb2 as m

Publish = Callable[[m.InboundMessage, str], Awaitable[None]]
# Reply to an inbound message from the gateway itself (it was refused): the message, its
# conversation, the text; sent as a final OutboundMessage.
Tell = Callable[[m.InboundMessage, str, str], Awaitable[None]]


def user_id(caller: Principal) -> str:
    """The user behind a token, the same over HTTP and WebSocket."""
    return f"web:{caller.subject}"


class Intake:
    def __init__(
        self,
        signer: IdSigner,
        publish: Publish,
        limiter: RateLimiter,
        idempotency: IdempotencyKeys,
        *,
        max_text_chars: int,
        per_minute: int,
    ) -> None:
        self._signer = signer
        self._publish = publish
        self._limiter = limiter
        self._idempotency = idempotency
        self._max_text_chars = max_text_chars
        self._per_minute = per_minute

    async def submit(
        self,
        caller: Principal,
        conversation_id: str,
        text: str,
        channel: m.Channel.ValueType,
        idempotency_key: str | None = None,
        kind: m.MessageKind.ValueType = m.MESSAGE_KIND_TEXT,
        attachments: Sequence[m.Attachment] = (),
    ) -> str:
        """Put the message on Kafka and return its id; raises Rejected. With an idempotency
        key, a repeat (same caller and key) returns the first message's id instead. A voice
        note or picture (``kind``, its ``attachments`` already in the media store) may come
        without text: ``text`` is then its caption."""
        if not self._signer.valid(conversation_id, "c", caller.subject):
            raise Rejected(404, "unknown conversation; create one first")
        if not text and kind == m.MESSAGE_KIND_TEXT:
            raise Rejected(422, "text must not be empty")
        if len(text) > self._max_text_chars:
            raise Rejected(422, f"text is longer than {self._max_text_chars} characters")
        if text and (why := text_rules.refusal(text)) is not None:
            raise Rejected(422, why)
        media = "".join(f"\n{attachment.sha256}" for attachment in attachments)
        request_hash = hashlib.sha256(f"{conversation_id}\n{text}{media}".encode()).hexdigest()
        earlier = None
        if idempotency_key is not None:
            try:
                earlier = await self._idempotency.find(caller.subject, idempotency_key, request_hash)
            except KeyReused as exc:
                raise Rejected(409, "the idempotency key was used for another request") from exc
        if earlier is None and (wait_s := await self._limiter.allow(user_id(caller))) is not None:
            raise Rejected(
                429,
                f"more than {self._per_minute} messages a minute; try again in {wait_s:.0f} s",
                retry_after_s=int(wait_s) + 1,
            )
        message_id = earlier.message_id if earlier is not None else self._signer.new("m", caller.subject)
        if idempotency_key is not None and earlier is None:
            earlier = await self._idempotency.claim(
                caller.subject, idempotency_key, request_hash, message_id, conversation_id
            )
            message_id = earlier.message_id  # another request with the key may have won
        if earlier is None or not earlier.published:
            inbound = m.InboundMessage(
                message_id=message_id,
                channel=channel,
                channel_message_id=message_id,
                channel_chat_id=conversation_id,
                sender=m.Actor(user_id=user_id(caller), channel_user_id=caller.subject),
                kind=kind,
                text=text,
                attachments=attachments,
            )
            # A retry of a request that crashed before this publishes the same message id
            # again; the scheduler dispatches a message id once.
            await self._publish(inbound, conversation_id)
            if idempotency_key is not None:
                await self._idempotency.mark_published(caller.subject, idempotency_key)
        return message_id
