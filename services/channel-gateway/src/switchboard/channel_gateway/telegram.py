"""Telegram (aiogram 3): webhook in, replies out, within Telegram's limits.

In: Telegram POSTs each Update to the webhook with the secret token it was given in
``setWebhook``. A request without the right token gets 401 and produces nothing. An update
id already accepted (Telegram retries for hours when it got no 200) is acknowledged and
dropped; the record of accepted ids is in PostgreSQL, so it holds across replicas and
restarts. Accepting means "on Kafka, acknowledged": only then does Telegram get its 200,
so a crash before that makes Telegram retry instead of losing the update.

Out: replies stream into a draft (private chats, sendMessageDraft) or an edited message
(groups, editMessageText), then the final text is sent with sendMessage (plain text, so
nothing needs escaping; split at 4 096 characters on line or word boundaries). Everything
is paced to about one message a second per chat, 20 a minute per group and 30 a second
per bot; a 429 pauses the whole bot for its ``retry_after``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.enums import ChatAction
from aiogram.exceptions import AiogramError, TelegramRetryAfter
from aiogram.types import Message, Update
from fastapi import APIRouter, Header, HTTPException, Request, status
from pydantic import ValidationError

from switchboard.channel_gateway.dedupe import Deliveries
from switchboard.channel_gateway.pacing import RateGate, split_text
from switchboard.common import events
from switchboard.common.kafka import ConsumedEvent
from switchboard.common.lifecycle import sleep_unless_stopped, until_stopped
from switchboard.events.v1 import messages_pb2 as m

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_MESSAGE_CHARS = 4096
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
_IDS = uuid.UUID("0b6f3c55-3f0e-4d52-8a5e-2f3c1d7e9a41")

_T = TypeVar("_T")


def message_id_for(bot_id: int, update_id: int) -> str:
    """The same update always becomes the same message id (downstream dedupes on it too)."""
    return str(uuid.uuid5(_IDS, f"{CHANNEL}:{bot_id}:{update_id}"))


def inbound_from_update(update: Update, bot_id: int) -> tuple[m.InboundMessage, str] | None:
    """The InboundMessage and conversation key of an update, or None for updates we ignore
    (edits, reactions, members joining, …)."""
    message: Message | None = update.message
    if message is None or message.from_user is None:
        return None
    kind, attachments = _content(message)
    if kind is None:
        return None
    chat = message.chat
    conversation = f"{CHANNEL}:{chat.id}"
    metadata = {"chat_type": str(chat.type), "telegram_message_id": str(message.message_id)}
    if message.message_thread_id is not None:
        conversation += f":{message.message_thread_id}"
        metadata["message_thread_id"] = str(message.message_thread_id)
    user = message.from_user
    inbound = m.InboundMessage(
        message_id=message_id_for(bot_id, update.update_id),
        channel=m.CHANNEL_TELEGRAM,
        channel_message_id=str(update.update_id),
        channel_chat_id=str(chat.id),
        sender=m.Actor(
            user_id=f"{CHANNEL}:{user.id}",
            channel_user_id=str(user.id),
            display_name=user.full_name,
            locale=user.language_code or "",
        ),
        kind=kind,
        text=message.text or message.caption or "",
        attachments=attachments,
        reply_to=str(message.reply_to_message.message_id) if message.reply_to_message else "",
        metadata=metadata,
    )
    return inbound, conversation


def _content(message: Message) -> tuple[m.MessageKind | None, list[m.Attachment]]:
    """What kind of message this is, and references to its media (bytes stay at Telegram)."""
    if message.voice is not None:
        voice = message.voice
        return m.MESSAGE_KIND_VOICE, [
            m.Attachment(
                uri=f"tg-file:{voice.file_id}",
                mime_type=voice.mime_type or "audio/ogg",
                size_bytes=voice.file_size or 0,
            )
        ]
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return m.MESSAGE_KIND_IMAGE, [
            m.Attachment(uri=f"tg-file:{largest.file_id}", mime_type="image/jpeg", size_bytes=largest.file_size or 0)
        ]
    if message.document is not None:
        doc = message.document
        return m.MESSAGE_KIND_DOCUMENT, [
            m.Attachment(
                uri=f"tg-file:{doc.file_id}",
                mime_type=doc.mime_type or "application/octet-stream",
                size_bytes=doc.file_size or 0,
                file_name=doc.file_name or "",
            )
        ]
    if message.text:
        return (m.MESSAGE_KIND_COMMAND if message.text.startswith("/") else m.MESSAGE_KIND_TEXT), []
    return None, []


@dataclass
class _Stream:
    text: str = ""
    message_id: int | None = None  # the message edited while streaming (groups)


def _chat_interval_s(chat_id: str) -> float:
    """About one message a second in a private chat, 20 a minute in a group (negative ids)."""
    return 3.0 if chat_id.startswith("-") else 1.0


def _draft_id(reply_to: str) -> int:
    """A non-zero 31-bit draft id, the same for every update of one reply."""
    return int(uuid.uuid5(_IDS, reply_to).int % (2**31 - 1)) + 1


class TelegramChannel:
    """The Telegram side of the gateway: the webhook router and the reply sender."""

    def __init__(
        self,
        token: str,
        webhook_secret: str,
        deliveries: Deliveries,
        api_url: str | None = None,
        gate: RateGate | None = None,
    ) -> None:
        server = TelegramAPIServer.from_base(api_url) if api_url else PRODUCTION
        self.bot = Bot(token, session=AiohttpSession(api=server))
        self._secret = webhook_secret.encode()
        self._deliveries = deliveries
        self._gate = gate or RateGate(1 / 30, _chat_interval_s, CHANNEL)
        self._background: set[asyncio.Task[None]] = set()
        # Replies being streamed, by inbound message id (one conversation is always
        # delivered by one replica: its partition's consumer).
        self._streams: dict[str, _Stream] = {}

    async def start(self, webhook_url: str | None) -> None:
        """Register the webhook (with its secret) if a public URL is configured."""
        if webhook_url:
            await self.bot.set_webhook(
                webhook_url, secret_token=self._secret.decode(), allowed_updates=["message"], drop_pending_updates=False
            )
            logger.info("telegram webhook registered")

    async def poll(self, stop: asyncio.Event, leader: Callable[[], Awaitable[bool]], timeout_s: int = 25) -> None:
        """Long polling (getUpdates) instead of a webhook, by one replica at a time.

        Telegram serves getUpdates to one caller per bot, so the replica holding the
        ``leader`` lock polls and the others stand by. An update is confirmed to Telegram
        (by asking for the next offset) only once it is accepted, so a crash re-fetches it
        and the dedupe drops it if it had got through.
        """
        offset: int | None = None
        while not stop.is_set():
            if not await leader():
                await sleep_unless_stopped(stop, 5)
                continue
            if offset is None:
                await self.bot.delete_webhook(drop_pending_updates=False)  # getUpdates refuses while one is set
                logger.info("this replica polls telegram")
            try:
                updates = await _unless_stopped(
                    stop,
                    self.bot.get_updates(
                        offset=offset, timeout=timeout_s, allowed_updates=["message"], request_timeout=timeout_s + 10
                    ),
                )
                for update in updates or []:
                    await self.accept(update)
                    offset = update.update_id + 1
            except TelegramRetryAfter as exc:
                self._gate.pause(exc.retry_after)
                await sleep_unless_stopped(stop, exc.retry_after)
            except Exception:  # Telegram, Kafka or PostgreSQL unreachable: the same updates again
                logger.exception("telegram polling failed; retrying")
                await sleep_unless_stopped(stop, 2)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self.bot.session.close()

    def router(self) -> APIRouter:
        router = APIRouter(tags=["telegram"])

        @router.post(
            "/v1/channels/telegram/webhook",
            responses={401: {"description": "missing or wrong secret token"}, 422: {"description": "not an Update"}},
        )
        async def webhook(
            request: Request,
            secret: str | None = Header(default=None, alias=SECRET_HEADER),
        ) -> dict[str, bool]:
            """Telegram calls this with each Update (see ``setWebhook``)."""
            if secret is None or not hmac.compare_digest(secret.encode(), self._secret):
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong secret token")
            try:
                update = Update.model_validate_json(await request.body())
            except ValidationError as exc:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"not a Telegram Update: {exc}") from exc
            return {"ok": await self.accept(update)}

        return router

    async def accept(self, update: Update) -> bool:
        """Put the update on Kafka unless it was accepted before; True when it was new."""
        converted = inbound_from_update(update, self.bot.id)
        keys = [f"{self.bot.id}:{update.update_id}"]
        published = await self._deliveries.accept(CHANNEL, keys, converted, f"/v1/channels/{CHANNEL}/updates")
        if published and converted is not None:
            self._typing(converted[0].channel_chat_id)
        return published

    def _typing(self, chat_id: str) -> None:
        """Show "typing…" while the answer is prepared (best effort, in the background)."""

        async def send() -> None:
            try:
                await self.bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)
            except AiogramError as exc:  # a typing indicator is never worth failing for
                logger.info("typing indicator not sent", extra={"error": repr(exc)})

        task = asyncio.create_task(send())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def deliver(self, event: ConsumedEvent) -> None:
        """Stream or send a reply for a Telegram chat (other outbound events are not ours).

        While the answer streams, private chats see it grow in a draft (sendMessageDraft);
        groups see a message that is edited as it grows (editMessageText). Updates that
        would exceed the pace are skipped (the text accumulates); the final reply always
        goes out, replacing the draft or completing the edited message.
        """
        reply = events.unwrap(event.envelope)
        if not isinstance(reply, m.OutboundMessage) or reply.channel != m.CHANNEL_TELEGRAM:
            return
        chat_id = reply.channel_chat_id
        stream = self._streams.setdefault(reply.in_reply_to, _Stream())
        if not reply.final:
            stream.text += reply.text
            if len(stream.text) <= MAX_MESSAGE_CHARS and self._gate.ready(chat_id):
                await self._show_partial(chat_id, reply.in_reply_to, stream)
            return
        del self._streams[reply.in_reply_to]
        pieces = split_text(reply.text, MAX_MESSAGE_CHARS)
        if stream.message_id is not None and pieces:
            # The group message shown while streaming becomes the first piece of the answer.
            await self._call(chat_id, self._edit(chat_id, stream.message_id, pieces.pop(0)))
        for piece in pieces:
            await self._call(chat_id, partial(self.bot.send_message, chat_id=chat_id, text=piece))

    async def _show_partial(self, chat_id: str, reply_to: str, stream: _Stream) -> None:
        text = stream.text
        if not chat_id.startswith("-"):  # a private chat: a draft that grows
            draft = _draft_id(reply_to)
            await self._call(
                chat_id, lambda: self.bot.send_message_draft(chat_id=int(chat_id), draft_id=draft, text=text)
            )
        elif stream.message_id is None:
            sent = await self._call(chat_id, partial(self.bot.send_message, chat_id=chat_id, text=text))
            stream.message_id = sent.message_id
        else:
            await self._call(chat_id, self._edit(chat_id, stream.message_id, text))

    def _edit(self, chat_id: str, message_id: int, text: str) -> Callable[[], Awaitable[object]]:
        return partial(self.bot.edit_message_text, chat_id=chat_id, message_id=message_id, text=text)

    async def _call(self, chat_id: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call`` when the pace allows; after a 429, the whole bot waits and it is retried."""
        while True:
            await self._gate.wait(chat_id)
            try:
                return await call()
            except TelegramRetryAfter as exc:
                self._gate.pause(exc.retry_after)


async def _unless_stopped(stop: asyncio.Event, work: Awaitable[list[Update]]) -> list[Update] | None:
    """The result of ``work``, or None (and ``work`` cancelled) if ``stop`` is set first."""
    task = asyncio.ensure_future(work)
    await until_stopped(stop, task)
    if not task.done():
        task.cancel()
        return None
    return task.result()
