"""Wiring: intents in, inference requests out through the outbox; results in, replies out."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from switchboard.common import events, postgres
from switchboard.common.kafka import ConsumedEvent
from switchboard.common.service import ServiceRuntime
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import handlers, store
from switchboard.scheduler.config import Settings
from switchboard.scheduler.outbox import Outbox

logger = logging.getLogger(__name__)


class Scheduler:
    """Handles one partition's poll at a time: one transaction for all of its intents or results."""

    def __init__(self, settings: Settings, runtime: ServiceRuntime, pool: asyncpg.Pool, outbox: Outbox) -> None:
        self._settings = settings
        self._runtime = runtime
        self._pool = pool
        self._outbox = outbox

    async def handle(self, batch: list[ConsumedEvent]) -> None:
        intents: list[tuple[ConsumedEvent, m.ParsedIntent]] = []
        results: list[tuple[ConsumedEvent, m.InferenceResult]] = []
        for event in batch:
            payload = events.unwrap(event.envelope)
            if isinstance(payload, m.ParsedIntent):
                intents.append((event, payload))
            elif isinstance(payload, m.InferenceChunk):
                await self.relay_chunk(event, payload)
            elif isinstance(payload, m.InferenceResult):
                results.append((event, payload))
        if intents:
            await self.dispatch(intents)
        if results:
            await self.complete(results)

    async def dispatch(self, intents: list[tuple[ConsumedEvent, m.ParsedIntent]]) -> None:
        """Chat turns become InferenceRequests, recorded and queued in one transaction."""
        s = self._settings
        dispatches = [
            store.Dispatch(
                request=handlers.inference_request(
                    intent, system_prompt=s.system_prompt, max_tokens=s.max_tokens, temperature=s.temperature
                ),
                intent_event_id=event.envelope.event_id,
                conversation_key=event.envelope.conversation_key,
                tenant_id=event.envelope.tenant_id,
            )
            for event, intent in intents
        ]
        async with self._pool.acquire() as conn, conn.transaction():
            new = await store.record_dispatches(conn, dispatches)
            queued = []
            for (event, _), dispatch in zip(intents, dispatches, strict=True):
                if dispatch.request.message_id not in new:
                    logger.info("message already dispatched", extra={"message_id": dispatch.request.message_id})
                    continue
                new.discard(dispatch.request.message_id)  # a duplicate later in the batch is skipped
                topic = handlers.topic_for(
                    dispatch.request.priority, s.topics.requests_urgent, s.topics.requests_routine
                )
                queued.append((topic, self._wrap(dispatch.request, event)))
            await self._outbox.add(conn, queued)
        self._outbox.wake()

    async def relay_chunk(self, event: ConsumedEvent, chunk: m.InferenceChunk) -> None:
        # Pieces of a stream are passed straight on, without waiting for each
        # acknowledgement: a lost piece is covered by the final reply, which goes through
        # the outbox (and one producer keeps a conversation's pieces in order).
        envelope = self._wrap(handlers.outbound_chunk(chunk), event)
        await self._runtime.producer.enqueue(self._settings.topics.outbound, envelope)

    async def complete(self, results: list[tuple[ConsumedEvent, m.InferenceResult]]) -> None:
        """Record the answers and queue the replies, once per request."""
        async with self._pool.acquire() as conn, conn.transaction():
            still_open = await store.record_completions(conn, [result for _, result in results])
            queued = []
            for event, result in results:
                if result.request_id not in still_open:
                    logger.info("result for an unknown or finished request", extra={"request_id": result.request_id})
                    continue
                still_open.discard(result.request_id)
                queued.append((self._settings.topics.outbound, self._wrap(handlers.outbound_reply(result), event)))
            await self._outbox.add(conn, queued)
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
    pool = await postgres.connect(
        settings.database_url.get_secret_value(), settings.database_schema, "switchboard.scheduler", settings.pool_size
    )
    try:
        outbox = Outbox(pool, settings.database_schema)
        async with ServiceRuntime(settings) as runtime:
            scheduler = Scheduler(settings, runtime, pool, outbox)
            consumer = runtime.consumer(
                [settings.topics.intents, settings.topics.results],
                group_id=settings.group_id,
                batch_handler=scheduler.handle,
            )
            relay = outbox.relay(runtime.producer, stop, settings.relay_poll_s, settings.relay_batch)
            await runtime.run(stop, consumer, background=[relay])
    finally:
        await pool.close()
