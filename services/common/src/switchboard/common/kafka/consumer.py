"""At-least-once protobuf consumer with a dead-letter topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord
from google.protobuf.message import DecodeError

from switchboard.common import tracing
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import headers as hdr
from switchboard.common.kafka.producer import EventProducer
from switchboard.common.kafka.security import connection_kwargs
from switchboard.common.metrics import DEAD_LETTERED, EVENTS_CONSUMED, HANDLER_SECONDS
from switchboard.events.v1 import envelope_pb2

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConsumedEvent:
    """A decoded record as handed to a handler."""

    envelope: envelope_pb2.Envelope
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: Sequence[tuple[str, bytes]]


Handler = Callable[[ConsumedEvent], Awaitable[None]]
BatchHandler = Callable[[list[ConsumedEvent]], Awaitable[None]]


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what was processed before partitions move to another group member."""

    def __init__(self, owner: EventConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Waits for the batch in flight, so a record is never handled here and there at once.
        async with self._owner._batch_lock:
            await self._owner._commit(only=revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        logger.info(
            "partitions assigned", extra={"partitions": sorted(f"{tp.topic}-{tp.partition}" for tp in assigned)}
        )


class EventConsumer:
    """Consumes Envelopes from ``topics`` as part of consumer group ``group_id``.

    For each record, in partition order:

    1. the value is decoded as an Envelope; if that fails (or it has no payload) the
       record goes to ``dead_letter_topic`` untouched, with a ``dlq.cause`` header;
    2. the handler is awaited with the trace context of the event set; if it raises,
       it is retried ``settings.handler_attempts`` times with exponential backoff, then
       the record is dead-lettered with the exception as cause;
    3. the offset is committed only after the handler returned (or the record was
       safely dead-lettered). A crash in between means redelivery, never loss, so
       handlers must be idempotent on ``envelope.event_id``.

    Partitions of one poll are handled concurrently, records of one partition in order,
    so one conversation (one key) is never handled out of order. With ``batch_handler``
    instead of ``handler``, each partition's records of a poll are handed over at once
    (for bulk writes); a failing batch is retried, then dead-lettered record by record.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        topics: Sequence[str],
        group_id: str,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        dead_letter_producer: EventProducer,
        dead_letter_topic: str,
        **overrides: Any,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler and batch_handler")
        self._handler = handler
        self._batch_handler = batch_handler
        self._dlq = dead_letter_producer
        self._dlq_topic = dead_letter_topic
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=settings.client_id,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **connection_kwargs(settings),
            **overrides,
        )
        self._pending: dict[TopicPartition, int] = {}
        self._batch_lock = asyncio.Lock()

    async def start(self) -> None:
        """Join the group and subscribe."""
        self._consumer.subscribe(self._topics, listener=_CommitOnRevoke(self))
        await self._consumer.start()

    async def stop(self) -> None:
        """Commit what was processed and leave the group."""
        async with self._batch_lock:
            await self._commit()
        await self._consumer.stop()

    async def __aenter__(self) -> EventConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in flight is finished and committed first."""
        while not stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=500, max_records=self._settings.max_poll_records)
            if not batches:
                continue
            async with self._batch_lock:
                await asyncio.gather(*(self._process_partition(tp, records) for tp, records in batches.items()))
                await self._commit()

    async def _process_partition(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        if tp not in self._consumer.assignment():
            # Fetched before a rebalance moved the partition away; its new owner reads
            # these records from the last commit.
            return
        if self._batch_handler is not None:
            await self._process_batch(records)
        else:
            for record in records:
                await self._process(record)
        self._pending[tp] = records[-1].offset + 1

    async def _decode(self, record: ConsumerRecord[bytes, bytes]) -> ConsumedEvent | None:
        """The record as an event, or None after dead-lettering it as undecodable."""
        envelope = envelope_pb2.Envelope()
        try:
            envelope.ParseFromString(record.value or b"")
        except DecodeError as exc:
            await self._dead_letter(record, f"undecodable value: {exc}", reason="undecodable")
            return None
        if envelope.WhichOneof("payload") is None:
            await self._dead_letter(record, "envelope carries no payload", reason="no_payload")
            return None
        return ConsumedEvent(
            envelope=envelope,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            headers=list(record.headers or ()),
        )

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        event = await self._decode(record)
        if event is None:
            return
        token = tracing.current_traceparent.set(event.envelope.trace.traceparent or None)
        try:
            await self._handle_with_retries(event, record)
        finally:
            tracing.current_traceparent.reset(token)

    async def _process_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        decoded = [(record, await self._decode(record)) for record in records]
        good = [(record, event) for record, event in decoded if event is not None]
        if not good:
            return
        assert self._batch_handler is not None
        attempts = max(1, self._settings.handler_attempts)
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            try:
                await self._batch_handler([event for _, event in good])
            except Exception as exc:  # any failure is retried, then dead-lettered
                if attempt == attempts:
                    logger.exception("batch handler failed, dead-lettering", extra={"records": len(good)})
                    cause = f"batch handler failed after {attempts} attempts: {exc!r}"
                    for record, _ in good:
                        await self._dead_letter(record, cause, reason="handler_error")
                    return
                logger.warning("batch handler failed, retrying", extra={"attempt": attempt, "error": repr(exc)})
                await asyncio.sleep(self._settings.handler_backoff_s * 2 ** (attempt - 1))
            else:
                for _, event in good:
                    EVENTS_CONSUMED.labels(topic=event.topic, event_type=event.envelope.event_type).inc()
                return
            finally:
                HANDLER_SECONDS.labels(topic=records[0].topic).observe(time.perf_counter() - started)

    async def _handle_with_retries(self, event: ConsumedEvent, record: ConsumerRecord[bytes, bytes]) -> None:
        attempts = max(1, self._settings.handler_attempts)
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            try:
                assert self._handler is not None
                await self._handler(event)
            except Exception as exc:  # any handler failure is retried, then dead-lettered
                if attempt == attempts:
                    logger.exception(
                        "handler failed, dead-lettering",
                        extra={"event_id": event.envelope.event_id, "attempts": attempts},
                    )
                    cause = f"handler failed after {attempts} attempts: {exc!r}"
                    await self._dead_letter(record, cause, reason="handler_error")
                    return
                logger.warning(
                    "handler failed, retrying",
                    extra={"event_id": event.envelope.event_id, "attempt": attempt, "error": repr(exc)},
                )
                await asyncio.sleep(self._settings.handler_backoff_s * 2 ** (attempt - 1))
            else:
                EVENTS_CONSUMED.labels(topic=event.topic, event_type=event.envelope.event_type).inc()
                return
            finally:
                HANDLER_SECONDS.labels(topic=event.topic).observe(time.perf_counter() - started)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], cause: str, reason: str) -> None:
        headers = hdr.for_dead_letter(record.headers, cause, record.topic, record.partition, record.offset)
        # If this send fails the exception propagates and the offset stays uncommitted:
        # the record is redelivered rather than lost.
        await self._dlq.send_raw(self._dlq_topic, record.value, record.key, headers)
        DEAD_LETTERED.labels(topic=record.topic, reason=reason).inc()
        logger.error(
            "record dead-lettered",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset, "cause": cause},
        )

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        chosen = {tp: off for tp, off in self._pending.items() if only is None or tp in only}
        for tp in chosen:
            self._pending.pop(tp, None)
        # Only partitions still ours can be committed; the new owner of any other one
        # re-reads from its last commit (a redelivery, never a loss).
        assigned = self._consumer.assignment()
        offsets = {tp: off for tp, off in chosen.items() if tp in assigned}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            logger.warning("commit failed after a rebalance; records will be redelivered")
