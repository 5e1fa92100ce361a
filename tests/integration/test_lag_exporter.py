"""Consumer-group lag read from the real brokers (infra/lag-exporter), and the lag alert it
feeds: with the stack's scheduler killed while intents keep coming, the local Prometheus
raises SwitchboardConsumerLagHigh for the scheduler's group within the rule's `for` window,
and the lag drains once the scheduler is back."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from switchboard.common import events
from switchboard.common.kafka import headers as hdr
from switchboard.events.v1 import messages_pb2 as m
from switchboard.lag_exporter.lag import read
from tests.conftest import Stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
INTENTS = "switchboard.intents.v1"  # the stack's (TopicSettings' default)


async def test_a_groups_lag_is_the_end_minus_its_committed_offset(stack: Stack) -> None:
    topic, group = f"test.lag.{uuid.uuid4().hex[:8]}", f"lag-test-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    deleted = False
    try:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, b"x", partition=0 if i < 7 else 1)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
            await consumer.commit(
                {TopicPartition(topic, 0): OffsetAndMetadata(2, ""), TopicPartition(topic, 1): OffsetAndMetadata(3, "")}
            )
        finally:
            await consumer.stop()
        connection = {"bootstrap_servers": stack.kafka_bootstrap}
        snapshot = await read(connection, re.compile(re.escape(group)))
        assert snapshot.lag(group) == {(topic, 0): 5, (topic, 1): 0}
        assert group not in (await read(connection, re.compile("(?!lag-test-).*"))).committed
        # The group outlives its topic (an e2e run's, say): the snapshot leaves the topic out
        # and comes at once (asking for its end offsets stalled every snapshot for 40 s).
        await admin.delete_topics([topic])
        deleted = True
        async with asyncio.timeout(15):
            while topic in await admin.list_topics():
                await asyncio.sleep(0.2)
            snapshot = await read(connection, re.compile(re.escape(group)))
        assert snapshot.committed[group] == {} and snapshot.lag(group) == {}
    finally:
        if not deleted:
            await admin.delete_topics([topic])
        await admin.close()


def _stack(*args: str) -> None:
    subprocess.run([str(ROOT / "infra" / "stack.sh"), *args], check=True, capture_output=True, timeout=300)


async def _alert(client: httpx.AsyncClient, name: str, group: str) -> dict[str, Any] | None:
    response = await client.get("/api/v1/alerts")
    response.raise_for_status()
    for alert in response.json()["data"]["alerts"]:
        if alert["labels"].get("alertname") == name and alert["labels"].get("consumergroup") == group:
            return alert
    return None


async def _value(client: httpx.AsyncClient, query: str) -> float:
    """The value of an instant PromQL query of one series (0 when there is none)."""
    response = await client.get("/api/v1/query", params={"query": query})
    response.raise_for_status()
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


async def _lag(client: httpx.AsyncClient, group: str) -> float:
    return await _value(client, f'sum(kafka_consumergroup_lag{{consumergroup="{group}", topic="{INTENTS}"}})')


async def _send_intent(producer: AIOKafkaProducer, person: str, partition: int | None = None) -> None:
    """An intent the scheduler answers without the model: "what are my reminders?"."""
    message = m.InboundMessage(message_id=str(uuid.uuid4()), channel=m.CHANNEL_HTTP, text="list my reminders")
    intent = m.ParsedIntent(message=message, intent="reminder.list", person_id=person)
    envelope = events.wrap(intent, conversation_key=f"conv-{person}", source="lag-test")
    await producer.send(
        INTENTS,
        envelope.SerializeToString(),
        key=envelope.conversation_key.encode(),
        partition=partition,
        headers=hdr.for_envelope(envelope),
    )


async def _committed_partitions(client: httpx.AsyncClient, group: str) -> int:
    query = f'count(kafka_consumergroup_current_offset{{consumergroup="{group}", topic="{INTENTS}"}})'
    return int(await _value(client, query))


async def test_the_scheduler_killed_under_load_raises_the_lag_alert(stack: Stack) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    await producer.start()
    # Lag is measured from committed offsets, so first the scheduler commits on every
    # partition (on a fresh stack it may not have yet), and Prometheus has scraped that.
    partitions = sorted(await producer.partitions_for(INTENTS))
    for partition in partitions:
        await _send_intent(producer, "lag-test-warm-up", partition)
    await producer.flush()
    async with httpx.AsyncClient(base_url=stack.prometheus_url, timeout=10) as client:
        async with asyncio.timeout(120):
            while await _committed_partitions(client, "scheduler") < len(partitions):
                await asyncio.sleep(2)
    _stack("kill", "scheduler")
    try:
        for i in range(300):
            await _send_intent(producer, f"lag-test-{i % 30}")
            await asyncio.sleep(0.05)  # load over 15 s, not one burst
        await producer.flush()
        async with httpx.AsyncClient(base_url=stack.prometheus_url, timeout=10) as client:
            states: list[str] = []
            async with asyncio.timeout(240):  # the rule's for (2 min), plus scrapes and evaluations
                while "firing" not in states:
                    alert = await _alert(client, "SwitchboardConsumerLagHigh", "scheduler")
                    if alert is not None and (not states or states[-1] != alert["state"]):
                        states.append(alert["state"])
                    await asyncio.sleep(2)
            assert states == ["pending", "firing"], states
            assert float(alert["value"]) > 100
    finally:
        await producer.stop()
        _stack("up", "scheduler")
    # Back up, it works the backlog off from its committed offsets.
    async with httpx.AsyncClient(base_url=stack.prometheus_url, timeout=10) as client:
        async with asyncio.timeout(180):
            while await _lag(client, "scheduler") > 0:
                await asyncio.sleep(2)
