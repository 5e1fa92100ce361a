"""Idempotent, keyed protobuf producer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from switchboard.common import telemetry
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import headers as hdr
from switchboard.common.kafka.security import connection_kwargs
from switchboard.common.metrics import EVENTS_PRODUCED
from switchboard.events.v1 import envelope_pb2

logger = logging.getLogger(__name__)


class EventProducer:
    """Sends Envelopes to Kafka with ``acks=all`` and idempotence.

    The record key is the envelope's conversation key, so every event of one
    conversation lands on the same partition in order. Use as ``async with``.
    """

    def __init__(self, settings: KafkaSettings, **overrides: Any) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=settings.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.linger_ms,
            max_batch_size=settings.max_batch_bytes,
            **connection_kwargs(settings),
            **overrides,
        )

    async def start(self) -> None:
        """Connect to the cluster."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        await self._producer.stop()

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def send(self, topic: str, envelope: envelope_pb2.Envelope) -> RecordMetadata:
        """Send ``envelope`` and wait until the cluster acknowledged it."""
        metadata: RecordMetadata = await (await self.enqueue(topic, envelope))
        return metadata

    async def enqueue(self, topic: str, envelope: envelope_pb2.Envelope) -> asyncio.Future[RecordMetadata]:
        """Queue ``envelope`` for sending; await the returned future for the acknowledgement.

        Records queued one after another for the same key keep their order.
        """
        if not envelope.conversation_key:
            raise ValueError(f"event {envelope.event_id} has no conversation key to use as record key")
        with telemetry.producing(topic, envelope):  # the span's context becomes the envelope's
            future: asyncio.Future[RecordMetadata] = await self._producer.send(
                topic,
                value=envelope.SerializeToString(),
                key=envelope.conversation_key.encode(),
                headers=hdr.for_envelope(envelope),
            )
        EVENTS_PRODUCED.labels(topic=topic, event_type=envelope.event_type).inc()
        return future

    async def send_raw(
        self, topic: str, value: bytes | None, key: bytes | None, headers: hdr.Headers
    ) -> RecordMetadata:
        """Send bytes as they are and wait for the acknowledgement (dead letters, outbox relays)."""
        metadata: RecordMetadata = await (await self.enqueue_raw(topic, value, key, headers))
        return metadata

    async def enqueue_raw(
        self, topic: str, value: bytes | None, key: bytes | None, headers: hdr.Headers
    ) -> asyncio.Future[RecordMetadata]:
        """Queue bytes as they are; await the returned future for the acknowledgement."""
        future: asyncio.Future[RecordMetadata] = await self._producer.send(topic, value=value, key=key, headers=headers)
        return future

    async def topic_missing(self, topic: str) -> bool:
        """Whether the cluster answers and has no topic ``topic``. False when it cannot be
        asked: a send that gave up waiting for a topic's metadata says the same whether the
        topic does not exist or every broker is away, and only the second passes."""
        try:
            metadata = await self._producer.client.fetch_all_metadata()
        except KafkaError:
            return False
        return topic not in metadata.topics(exclude_internal_topics=False)
