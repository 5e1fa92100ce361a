"""Wiring: intents in, inference requests out through the outbox; results in, replies out."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from switchboard.common import events
from switchboard.common.kafka import ConsumedEvent
from switchboard.common.service import ServiceRuntime
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import handlers, migrations
from switchboard.scheduler.config import Settings
from switchboard.scheduler.outbox import Outbox

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, settings: Settings, runtime: ServiceRuntime, pool: asyncpg.Pool, outbox: Outbox) -> None:
        self._settings = settings
        self._runtime = runtime
        self._pool = pool
        self._outbox = outbox

    async def handle(self, event: ConsumedEvent) -> None:
        payload = events.unwrap(event.envelope)
        if isinstance(payload, m.ParsedIntent):
            await self.dispatch(event, payload)
        elif isinstance(payload, m.InferenceChunk):
            await self.relay_chunk(event, payload)
        elif isinstance(payload, m.InferenceResult):
            await self.complete(event, payload)

    async def dispatch(self, event: ConsumedEvent, intent: m.ParsedIntent) -> None:
        """A chat turn becomes an InferenceRequest, recorded and queued in one transaction."""
        s = self._settings
        request = handlers.inference_request(
            intent,
            system_prompt=s.system_prompt,
            max_tokens=s.max_tokens,
            temperature=s.temperature,
        )
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO dispatches (request_id, intent_event_id, message_id, conversation_key, tenant_id,"
                " channel, channel_chat_id, priority, model_profile)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                " ON CONFLICT (message_id) DO NOTHING RETURNING request_id",
                request.request_id,
                event.envelope.event_id,
                request.message_id,
                event.envelope.conversation_key,
                event.envelope.tenant_id,
                request.channel,
                request.channel_chat_id,
                request.priority,
                request.model_profile,
            )
            if inserted is None:
                logger.info("message already dispatched", extra={"message_id": request.message_id})
                return
            topic = handlers.topic_for(request.priority, s.topics.requests_urgent, s.topics.requests_routine)
            await self._outbox.add(conn, topic, self._wrap(request, event))
        self._outbox.wake()

    async def relay_chunk(self, event: ConsumedEvent, chunk: m.InferenceChunk) -> None:
        # Pieces of a stream are passed straight on, without waiting for each
        # acknowledgement: a lost piece is covered by the final reply, which goes through
        # the outbox (and one producer keeps a conversation's pieces in order).
        envelope = self._wrap(handlers.outbound_chunk(chunk), event)
        await self._runtime.producer.enqueue(self._settings.topics.outbound, envelope)

    async def complete(self, event: ConsumedEvent, result: m.InferenceResult) -> None:
        """Record the answer and queue the reply, once per request."""
        status = "failed" if result.finish_reason == m.FINISH_REASON_ERROR else "completed"
        async with self._pool.acquire() as conn, conn.transaction():
            updated = await conn.fetchval(
                "UPDATE dispatches SET status = $2, completed_at = now(), model_name = $3, latency_ms = $4"
                " WHERE request_id = $1 AND status = 'dispatched' RETURNING request_id",
                result.request_id,
                status,
                result.model_name,
                result.latency_ms,
            )
            if updated is None:
                logger.info("result for an unknown or finished request", extra={"request_id": result.request_id})
                return
            await self._outbox.add(
                conn, self._settings.topics.outbound, self._wrap(handlers.outbound_reply(result), event)
            )
        self._outbox.wake()

    def _wrap(self, payload: m.InferenceRequest | m.OutboundMessage, cause: ConsumedEvent) -> envelope_pb2.Envelope:
        return events.wrap(
            payload,
            conversation_key=cause.envelope.conversation_key,
            source=self._settings.service_name,
            tenant_id=cause.envelope.tenant_id,
            causation_id=cause.envelope.event_id,
        )


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=2,
        max_size=settings.pool_size,
        timeout=10,
        server_settings={"search_path": settings.database_schema},
    )
    try:
        async with pool.acquire() as conn:
            await migrations.apply(conn, settings.database_schema)
        outbox = Outbox(pool, settings.database_schema)
        async with ServiceRuntime(settings) as runtime:
            scheduler = Scheduler(settings, runtime, pool, outbox)
            consumer = runtime.consumer(
                [settings.topics.intents, settings.topics.results], group_id=settings.group_id, handler=scheduler.handle
            )
            relay = outbox.relay(runtime.producer, stop, settings.relay_poll_s, settings.relay_batch)
            await runtime.run(stop, consumer, background=[relay])
    finally:
        await pool.close()
