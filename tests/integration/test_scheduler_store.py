"""The scheduler's batch SQL and outbox against the real PostgreSQL."""

import asyncio

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from switchboard.common import events
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import EventProducer
from switchboard.common.kafka import headers as hdr
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import handlers, store
from switchboard.scheduler.outbox import Outbox
from tests.conftest import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def pool(scheduler_pool: asyncpg.Pool) -> asyncpg.Pool:
    return scheduler_pool


def _dispatch(message_id: str, event_id: str) -> store.Dispatch:
    request = m.InferenceRequest(
        request_id=handlers.request_id_for(message_id),
        message_id=message_id,
        channel=m.CHANNEL_HTTP,
        channel_chat_id="chat",
        priority=m.PRIORITY_ROUTINE,
        model_profile="general",
    )
    return store.Dispatch(request=request, intent_event_id=event_id, conversation_key="c", tenant_id="t")


async def test_a_message_is_dispatched_once_within_and_across_batches(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        first = [_dispatch("m-1", "e-1"), _dispatch("m-2", "e-2"), _dispatch("m-1", "e-1-again")]
        assert await store.record_dispatches(conn, first) == {"m-1", "m-2"}
        assert await store.record_dispatches(conn, [_dispatch("m-2", "e-2-later"), _dispatch("m-3", "e-3")]) == {"m-3"}
        assert await conn.fetchval("SELECT count(*) FROM dispatches") == 3
        assert await conn.fetchval("SELECT intent_event_id FROM dispatches WHERE message_id = 'm-1'") == "e-1"


async def test_a_request_completes_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await store.record_dispatches(conn, [_dispatch("m-1", "e-1"), _dispatch("m-2", "e-2")])
        ok = m.InferenceResult(request_id=handlers.request_id_for("m-1"), model_name="echo", latency_ms=5)
        failed = m.InferenceResult(request_id=handlers.request_id_for("m-2"), finish_reason=m.FINISH_REASON_ERROR)
        unknown = m.InferenceResult(request_id=handlers.request_id_for("m-9"))
        done = await store.record_completions(conn, [ok, failed, unknown, ok])
        assert done == {ok.request_id, failed.request_id}
        assert await store.record_completions(conn, [ok]) == set()
        rows = await conn.fetch("SELECT message_id, status, model_name, latency_ms FROM dispatches ORDER BY 1")
        assert [tuple(r) for r in rows] == [("m-1", "completed", "echo", 5), ("m-2", "failed", "", 0)]


async def test_outbox_rows_keep_the_order_they_were_added_in(pool: asyncpg.Pool, unique: str) -> None:
    outbox = Outbox(pool, f"test_{unique}")
    added = [
        ("t.a", events.wrap(m.OutboundMessage(text=str(i)), conversation_key=f"c{i % 3}", source="t"))
        for i in range(50)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, added)
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT topic, key, value FROM outbox ORDER BY id")
    assert [(r["topic"], r["key"], r["value"]) for r in rows] == [
        (topic, e.conversation_key.encode(), e.SerializeToString()) for topic, e in added
    ]
    # The backlog gauges see the 50 rows waiting, the oldest a moment old.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE outbox SET created_at = now() - interval '90 seconds' WHERE id = (SELECT min(id) FROM outbox)"
        )
    await outbox.measure()
    assert REGISTRY.get_sample_value("switchboard_scheduler_outbox_rows") == 50
    assert 90 <= (REGISTRY.get_sample_value("switchboard_scheduler_outbox_oldest_seconds") or 0) < 120


async def test_a_row_kafka_will_never_take_is_dead_lettered_and_the_rows_behind_it_go_out(
    pool: asyncpg.Pool, stack: Stack, unique: str
) -> None:
    """A plugin's request topic that does not exist once stopped the relay (and, on restart,
    stopped it again on the same row): now that row goes to the dead-letter topic with its
    cause, and the others are sent and deleted."""
    sent_to, dead_to = f"test.outbox.{unique}", f"test.outbox.dead.{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(sent_to, 1, 1), NewTopic(dead_to, 1, 1)])
        outbox = Outbox(pool, f"test_{unique}", dead_to)
        added = [
            (topic, events.wrap(m.OutboundMessage(text=f"r{i}"), conversation_key="c", source="t"))
            for i, topic in enumerate([sent_to, f"test.no.such.topic.{unique}", sent_to])
        ]
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, added)
        settings = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap)
        async with EventProducer(settings, request_timeout_ms=3000) as producer:
            assert await outbox.relay_once(producer, 10) == 3
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        delivered = await _read(stack, sent_to, 2)
        assert [events.unwrap(envelope_pb2.Envelope.FromString(r.value)).text for r in delivered] == ["r0", "r2"]  # type: ignore[attr-defined]
        (dead,) = await _read(stack, dead_to, 1)
        assert events.unwrap(envelope_pb2.Envelope.FromString(dead.value)).text == "r1"  # type: ignore[attr-defined]
        cause = hdr.get(dead.headers, hdr.DLQ_CAUSE) or ""
        assert f"test.no.such.topic.{unique}" in cause and "refused" in cause
    finally:
        await admin.delete_topics([sent_to, dead_to])
        await admin.close()


async def _read(stack: Stack, topic: str, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        found: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(30):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.extend(records)
        return found
    finally:
        await consumer.stop()
