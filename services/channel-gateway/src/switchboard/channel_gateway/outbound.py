"""Every gateway replica reads the whole outbound topic, so the replica that holds a waiting
HTTP request (or stream) sees its reply, whichever replica the partition would go to in a
consumer group. Nothing is committed: this is a view, not a work queue."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer
from google.protobuf.message import DecodeError

from switchboard.channel_gateway.replies import Replies
from switchboard.common import telemetry
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import positions
from switchboard.common.kafka.security import connection_kwargs
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m

logger = logging.getLogger(__name__)


class OutboundView:
    def __init__(self, settings: KafkaSettings, topic: str, replies: Replies, replay_s: float) -> None:
        self._topic = topic
        self._replies = replies
        self._replay_s = replay_s
        self._connection = {
            "bootstrap_servers": settings.bootstrap_servers,
            "client_id": f"{settings.client_id}-outbound-view",
            **connection_kwargs(settings),
        }
        self._consumer = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, isolation_level="read_committed", **self._connection
        )

    async def start(self) -> None:
        """Connect and position on every partition: at ``replay_s`` ago, so replies that
        completed just before a restart can still be fetched."""
        tps = await positions.partitions(self._connection, self._topic)
        await self._consumer.start()
        self._consumer.assign(tps)
        await positions.seek_to_time(self._consumer, tps, int((time.time() - self._replay_s) * 1000))
        for tp in tps:
            await self._consumer.position(tp)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    self._apply(record.value or b"", record.partition, record.offset)

    def _apply(self, value: bytes, partition: int, offset: int) -> None:
        envelope = envelope_pb2.Envelope()
        try:
            envelope.ParseFromString(value)
        except DecodeError:
            logger.warning("undecodable record on the outbound topic; skipped by the reply view")
            return
        if envelope.WhichOneof("payload") == "outbound_message":
            message: m.OutboundMessage = envelope.outbound_message
            if message.channel in (m.CHANNEL_HTTP, m.CHANNEL_WEBSOCKET):
                if not message.final:
                    self._replies.on_outbound(message)
                    return
                # The final reply leaving for its HTTP or WebSocket client ends the message's
                # trace (every replica reads it: each one that holds the client's request too).
                with telemetry.consuming(envelope, self._topic, partition, offset, "reply-view"):
                    self._replies.on_outbound(message)
