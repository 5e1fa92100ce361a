"""Which platform deliveries were already accepted, in PostgreSQL (shared by all replicas),
and accepting a platform delivery once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg

from switchboard.channel_gateway.intake import Publish, Tell
from switchboard.channel_gateway.ratelimit import RateLimiter
from switchboard.channel_gateway.rejections import Record
from switchboard.channel_gateway.targets import ReplyTargets
from switchboard.common import text as text_rules
from switchboard.events.v1 import messages_pb2 as m

logger = logging.getLogger(__name__)


class SeenDeliveries:
    """Keys of accepted deliveries per channel, kept for ``keep_s`` (longer than any retry window)."""

    def __init__(self, pool: asyncpg.Pool, keep_s: float) -> None:
        self._pool = pool
        self._keep_s = keep_s

    async def seen(self, channel: str, *keys: str) -> bool:
        """Whether any of ``keys`` was accepted (Feishu may repeat a message under a new event id)."""
        if not keys:  # a delivery with nothing to know it by is never a repeat
            return False
        return bool(
            await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM seen_deliveries WHERE channel = $1 AND key = ANY($2::text[]))",
                channel,
                list(keys),
            )
        )

    async def remember(self, channel: str, *keys: str) -> None:
        if not keys:
            return
        await self._pool.execute(
            "INSERT INTO seen_deliveries (channel, key) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            channel,
            list(keys),
        )

    async def purge(self) -> int:
        """Forget deliveries older than ``keep_s``; returns how many."""
        result = await self._pool.execute(
            "DELETE FROM seen_deliveries WHERE seen_at < now() - make_interval(secs => $1)", self._keep_s
        )
        return int(result.split()[-1])


# What the sender of a refused chat message is told, in the chat (the platform itself only
# ever sees an acknowledgement).
UNREADABLE_REPLY = (
    "Sorry, I could not read that message: it contains control characters. Please send it again as plain text."
)


class Deliveries:
    """What every platform webhook or poller does with a delivery: drop it if it was accepted
    before (platforms retry for hours), hold each user to the per-minute limit (an over-limit
    message is acknowledged to the platform, remembered and audited, not passed on), refuse
    text with control characters (acknowledged, audited, and the sender told why in the
    chat), put the rest on Kafka."""

    def __init__(
        self,
        seen: SeenDeliveries,
        limiter: RateLimiter,
        targets: ReplyTargets,
        publish: Publish,
        record_rejection: Record,
        tell: Tell,
    ) -> None:
        self._seen = seen
        self._limiter = limiter
        self._targets = targets
        self._publish = publish
        self._record_rejection = record_rejection
        self._tell = tell

    async def accept(
        self,
        channel: str,
        keys: Sequence[str],
        converted: tuple[m.InboundMessage, str] | None,
        path: str,
        target: dict[str, Any] | None = None,
    ) -> bool:
        """Accept a delivery known by ``keys`` (any of them seen means seen): ``converted`` is
        its InboundMessage and conversation key (None for deliveries we leave alone), ``path``
        names it in audit records, ``target`` is where its reply goes (kept with ReplyTargets).
        True when the message went onto Kafka."""
        if await self.seen(channel, keys):
            return False
        if converted is not None:
            inbound, conversation = converted
            if (why := text_rules.refusal(inbound.text)) is not None:
                # Refused, not passed on; still acknowledged, as a webhook the platform had to
                # redeliver would hold up the bot's later updates (everyone else's messages).
                await self._record_rejection(422, "POST", path, f"{inbound.sender.user_id}: {why}")
                if target is not None:
                    await self._targets.remember(inbound.message_id, channel, target)
                # Through the outbound topic, as every reply: delivered, paced and retried
                # like one. Acknowledged by Kafka before the platform gets its answer.
                await self._tell(inbound, conversation, UNREADABLE_REPLY)
            elif await self.publish(channel, keys, inbound, conversation, target) is None:
                return True
            else:
                reason = f"{inbound.sender.user_id} over the per-minute message limit"
                await self._record_rejection(429, "POST", path, reason)
        # Left alone, refused or over the limit: acknowledged to the platform and not passed on.
        await self._seen.remember(channel, *keys)
        return False

    async def seen(self, channel: str, keys: Sequence[str]) -> bool:
        """Whether a delivery known by ``keys`` was accepted already (and is to be dropped)."""
        if await self._seen.seen(channel, *keys):
            logger.info("delivery already accepted", extra={"channel": channel, "keys": list(keys)})
            return True
        return False

    async def publish(
        self,
        channel: str,
        keys: Sequence[str],
        inbound: m.InboundMessage,
        conversation: str,
        target: dict[str, Any] | None = None,
    ) -> float | None:
        """Within the sender's per-minute limit: remember where the reply goes, put the message
        on Kafka, then remember ``keys``; None. Over the limit: the seconds until the sender
        may send again, and nothing done."""
        wait_s = await self._limiter.allow(inbound.sender.user_id)
        if wait_s is not None:
            return wait_s
        if target is not None:
            await self._targets.remember(inbound.message_id, channel, target)
        # Acknowledged by Kafka, or raises: the sender gets no acknowledgement and retries.
        await self._publish(inbound, conversation)
        # Remembered after publishing: a crash in between re-publishes the same message id,
        # which the scheduler dispatches once.
        await self._seen.remember(channel, *keys)
        return None
