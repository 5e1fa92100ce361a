"""The scheduler's outbox while every broker is away: a row for a topic the relay has never
seen is kept, not dead-lettered (aiokafka reports "unknown topic" both when a topic does not
exist and when no broker answers), and goes out once the brokers are back."""

import asyncio
import dataclasses

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from switchboard.common import events
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import EventProducer
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler.outbox import Outbox
from tests.chaos.cluster import KafkaCluster
from tests.conftest import Stack
from tests.e2e.pipeline import read_records

pytestmark = pytest.mark.integration


@pytest.fixture
def pool(scheduler_pool: asyncpg.Pool) -> asyncpg.Pool:
    return scheduler_pool


@pytest.mark.timeout(400)
async def test_a_row_is_kept_while_no_broker_answers(
    kafka_cluster: KafkaCluster, stack: Stack, pool: asyncpg.Pool, unique: str
) -> None:
    topic, dead = f"test.outbox.later.{unique}", f"test.outbox.dead.{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(dead, 1, 3)])
    finally:
        await admin.close()
    outbox = Outbox(pool, f"test_{unique}", dead)
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(
            conn, [(topic, events.wrap(m.OutboundMessage(text="later"), conversation_key="c", source="t"))]
        )
    settings = KafkaSettings(bootstrap_servers=kafka_cluster.bootstrap)
    async with EventProducer(settings, request_timeout_ms=3000) as producer:
        assert await producer.topic_missing(topic)  # the cluster answers: it has no such topic
        for node in (1, 2, 3):
            await asyncio.to_thread(kafka_cluster.kill, node)
        try:
            assert not await producer.topic_missing(topic)  # nobody to ask: not known to be missing
            with pytest.raises(KafkaError):  # the batch rolled back: the row stays
                await outbox.relay_once(producer, 10)
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT count(*) FROM outbox") == 1
        finally:
            # A node of three reports started only with a quorum: start them side by side.
            await asyncio.gather(*(asyncio.to_thread(kafka_cluster.restart, node) for node in (1, 2, 3)))
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 1, 3)])
        finally:
            await admin.close()
        async with asyncio.timeout(120):
            while True:
                try:
                    if await outbox.relay_once(producer, 10) == 1:
                        break
                except KafkaError:  # the producer reconnecting; try again
                    await asyncio.sleep(1)
    on_cluster = dataclasses.replace(stack, kafka_bootstrap=kafka_cluster.bootstrap)
    (sent,) = await read_records(on_cluster, topic, partitions=1)
    assert events.unwrap(envelope_pb2.Envelope.FromString(sent.value)).text == "later"  # type: ignore[attr-defined]
    assert await read_records(on_cluster, dead, partitions=1) == []
