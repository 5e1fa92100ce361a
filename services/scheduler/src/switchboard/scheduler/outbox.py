"""Transactional outbox: events are rows written with the state change, relayed to Kafka after.

Writers call :meth:`Outbox.add` inside their transaction; the row and a NOTIFY become
visible together at commit. One replica at a time relays (it holds a PostgreSQL advisory
lock; the others stand by and take over within ``poll_s`` when its session ends), so
rows leave in id order and one conversation's events keep their order on Kafka. The
relay sends a batch, waits for Kafka's acknowledgement and only then deletes the rows. A
crash before the delete sends a row again; consumers dedupe on the event id. A row Kafka
will never take (a topic that does not exist, a record too large) goes to the dead-letter
topic with its cause and the relay goes on; while Kafka is away, rows wait and nothing stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

import asyncpg
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, UnknownTopicOrPartitionError
from prometheus_client import Gauge

from switchboard.common import postgres, telemetry
from switchboard.common.kafka import EventProducer
from switchboard.common.kafka import headers as hdr
from switchboard.common.lifecycle import sleep_until_woken
from switchboard.common.metrics import DEAD_LETTERED
from switchboard.events.v1 import envelope_pb2

logger = logging.getLogger(__name__)

OUTBOX_ROWS = Gauge("switchboard_scheduler_outbox_rows", "Outbox rows waiting to be relayed to Kafka.")
OUTBOX_OLDEST = Gauge("switchboard_scheduler_outbox_oldest_seconds", "Age of the oldest outbox row (0: none).")


# What to send: (topic, envelope) for a business event (key: its conversation, headers:
# its own), or (topic, value, key, headers) for a raw record (a dead letter).
Queued = tuple[str, envelope_pb2.Envelope] | tuple[str, bytes, bytes, hdr.Headers]


def _record(queued: Queued) -> tuple[str, bytes, bytes, hdr.Headers]:
    if len(queued) == 2:
        topic, envelope = queued
        # The send's span is the queuing (the relay later sends bytes): its context goes in the row.
        with telemetry.producing(topic, envelope):
            pass
        return topic, envelope.SerializeToString(), envelope.conversation_key.encode(), hdr.for_envelope(envelope)
    return queued


class Outbox:
    def __init__(self, pool: asyncpg.Pool, schema: str, deadletter_topic: str | None = None) -> None:
        self._pool = pool
        # Where a row Kafka will never take goes (a topic that does not exist, a record too
        # large), with its cause, so that the rows behind it still go out; None: it stays.
        self._deadletter_topic = deadletter_topic
        # One NOTIFY channel per schema, so test schemas never wake production relays.
        self._channel = f"{schema}_outbox"
        self._wake = asyncio.Event()

    async def add(self, conn: asyncpg.Connection, events: Sequence[Queued]) -> None:
        """Queue records, in order; call inside the transaction that justifies them."""
        if not events:
            return
        records = [_record(queued) for queued in events]
        await conn.execute(
            # Ids follow the given order, and the relay sends in id order.
            "INSERT INTO outbox (topic, key, value, headers) SELECT t, k, v, h"
            " FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::jsonb[]) WITH ORDINALITY AS e(t, k, v, h, n)"
            " ORDER BY n",
            [topic for topic, _, _, _ in records],
            [key for _, _, key, _ in records],
            [value for _, value, _, _ in records],
            [json.dumps([[name, raw.decode()] for name, raw in headers]) for _, _, _, headers in records],
        )
        await conn.execute("SELECT pg_notify($1, '')", self._channel)

    def wake(self) -> None:
        """Relay now (after a local commit) instead of waiting for the NOTIFY round trip."""
        self._wake.set()

    async def relay(self, producer: EventProducer, stop: asyncio.Event, poll_s: float, batch: int) -> None:
        """Relay rows until ``stop`` is set; the batch in flight is finished first."""
        listener = postgres.Listener(self._pool, self._channel, self._wake.set)
        leadership = postgres.AdvisoryLock(self._pool, self._channel)
        leader = False
        try:
            while not stop.is_set():
                try:
                    await listener.ensure()
                    if not leader and (leader := await leadership.held()):
                        logger.info("this replica relays the outbox")
                    if leader:
                        while await self.relay_once(producer, batch) == batch:
                            pass
                    await self.measure()
                except postgres.TRANSIENT_ERRORS as exc:
                    # PostgreSQL restarting: the batch rolled back (sent rows are sent again,
                    # with their event ids) and the lock went with the session.
                    logger.warning("outbox relay lost PostgreSQL; retrying", extra={"error": repr(exc)})
                    leader = False
                    await leadership.lost()
                except KafkaError as exc:
                    # Kafka away (or a row it refuses that could not be dead-lettered either):
                    # the batch rolled back and stays queued; try again, never stop relaying.
                    logger.warning("outbox relay could not reach Kafka; retrying", extra={"error": repr(exc)})
                await sleep_until_woken(stop, self._wake, poll_s)
            if leader:
                await self.relay_once(producer, batch)
        except postgres.TRANSIENT_ERRORS:
            logger.warning("PostgreSQL away at stop; the rows left are relayed by the next leader")
        finally:
            await listener.close()
            await leadership.release()

    async def measure(self) -> None:
        """Set the backlog gauges: rows waiting and the age of the oldest (every replica
        measures; they agree, and one that stands by still shows a stuck leader's backlog)."""
        rows, oldest = await self._pool.fetchrow(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox"
        )
        OUTBOX_ROWS.set(rows)
        OUTBOX_OLDEST.set(float(oldest))

    async def relay_once(self, producer: EventProducer, batch: int) -> int:
        """Send up to ``batch`` rows; returns how many were sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                batch,
            )
            if not rows:
                return 0
            outcomes = await asyncio.gather(*[_send(producer, row) for row in rows], return_exceptions=True)
            refused = [(row, exc) for row, exc in zip(rows, outcomes, strict=True) if isinstance(exc, BaseException)]
            for row, exc in refused:
                if self._deadletter_topic is None or not isinstance(exc, Exception) or _may_pass_later(exc):
                    raise exc  # rolled back: the rows are sent again, in order, on the next try
                if isinstance(exc, UnknownTopicOrPartitionError) and not await producer.topic_missing(row["topic"]):
                    raise exc  # no metadata because the brokers are away, not because the topic is
            for row, exc in refused:
                await self._dead_letter(producer, row, exc)
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [row["id"] for row in rows])
        return len(rows)

    async def _dead_letter(self, producer: EventProducer, row: asyncpg.Record, exc: Exception) -> None:
        """The row Kafka refused, on the dead-letter topic with the cause (without its value
        if the value is what was too large)."""
        assert self._deadletter_topic is not None
        cause = f"outbox relay: {row['topic']} refused the record: {exc!r}"[:500]
        headers = hdr.for_dead_letter(_headers(row), cause, row["topic"], -1, row["id"])
        value = None if isinstance(exc, MessageSizeTooLargeError) else row["value"]
        await (await producer.enqueue_raw(self._deadletter_topic, value, row["key"], headers))
        DEAD_LETTERED.labels(topic=row["topic"], reason="relay_refused").inc()
        logger.error("outbox row dead-lettered", extra={"topic": row["topic"], "row": row["id"], "cause": cause})


def _headers(row: asyncpg.Record) -> hdr.Headers:
    return [(name, value.encode()) for name, value in json.loads(row["headers"])]


async def _send(producer: EventProducer, row: asyncpg.Record) -> object:
    return await (await producer.enqueue_raw(row["topic"], row["value"], row["key"], _headers(row)))


def _may_pass_later(exc: Exception) -> bool:
    """Whether a send error says Kafka is away for now (worth another try) rather than that it
    will never take the record (no such topic after the metadata wait, too large, not
    allowed). No such topic is confirmed with the cluster before a row is dead-lettered:
    aiokafka says the same when no broker answers."""
    return isinstance(exc, KafkaError) and exc.retriable and not isinstance(exc, UnknownTopicOrPartitionError)
