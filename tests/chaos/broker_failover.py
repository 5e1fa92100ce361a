"""Scenario: the partition leader's broker is killed (SIGKILL) under steady load.

Steady keyed traffic from many conversations goes through the common producer
(idempotent, ``acks=all``) to a topic at replication 3 and ``min.insync.replicas`` 2, and
is handled by a group of two common consumers (two replicas of a service). Each round
kills the broker leading partition 0 (a controller of the quorum too), restarts it after
a while, and waits until it is back in every partition's in-sync replicas. Every event is
counted by id: acknowledged, written to the log, handled.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from switchboard.common import events
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import ConsumedEvent, EventConsumer, EventProducer
from switchboard.events.v1 import envelope_pb2, messages_pb2
from tests.chaos.outcome import Outcome, first_order_violations

# A node number -> run in a thread (the stack script blocks).
NodeAction = Callable[[int], None]


@dataclass
class _Ledger:
    sent_at: dict[str, float] = field(default_factory=dict)  # event id -> when it was queued
    partition: dict[str, int] = field(default_factory=dict)  # event id -> partition, once acknowledged
    seq: dict[str, tuple[str, int]] = field(default_factory=dict)  # event id -> (conversation, n)
    handled: dict[str, float] = field(default_factory=dict)  # event id -> first handled
    calls: int = 0
    first_order: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def handle(self, event: ConsumedEvent) -> None:
        self.calls += 1
        event_id = event.envelope.event_id
        if event_id not in self.handled:
            self.handled[event_id] = time.monotonic()
            conversation, n = self.seq[event_id]
            self.first_order[conversation].append(n)


async def run(
    bootstrap: str,
    kill: NodeAction,
    restart: NodeAction,
    *,
    rounds: int = 1,
    rate: float = 100.0,
    conversations: int = 50,
    down_s: float = 8.0,
) -> Outcome:
    """Run the scenario on the cluster at ``bootstrap``; ``kill``/``restart`` act on a node."""
    suffix = uuid.uuid4().hex[:8]
    topic, dlq = f"chaos.failover.{suffix}", f"chaos.deadletter.{suffix}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, 6, 3, topic_configs={"min.insync.replicas": "2"}) for name in (topic, dlq)]
        )
        settings = KafkaSettings(bootstrap_servers=bootstrap, handler_backoff_s=0.05)
        ledger = _Ledger()
        stop_sending = asyncio.Event()
        async with EventProducer(settings) as producer:
            consumers = [_consumer(settings, producer, topic, dlq, suffix, ledger) for _ in range(2)]
            stop_consuming = asyncio.Event()
            for consumer in consumers:
                await consumer.start()
            consuming = [asyncio.create_task(c.run(stop_consuming)) for c in consumers]
            sending = asyncio.create_task(_send(producer, topic, ledger, stop_sending, rate, conversations))
            faults = []  # (when, the partitions the killed node led)
            await asyncio.sleep(3)
            for _ in range(rounds):
                leader_of = await leaders(admin, topic)
                node = leader_of[0]
                led = {p for p, leader in leader_of.items() if leader == node}
                killed_at = time.monotonic()
                await asyncio.to_thread(kill, node)
                await asyncio.sleep(down_s)
                await asyncio.to_thread(restart, node)
                await wait_in_sync(admin, topic)
                await asyncio.sleep(2)
                faults.append((killed_at, led))
            stop_sending.set()
            await sending
            await _drain(ledger, timeout_s=90)
            stop_consuming.set()
            await asyncio.gather(*consuming)
            for consumer in consumers:
                await consumer.stop()
        copies = await _copies_in_log(bootstrap, topic)
        await admin.delete_topics([topic, dlq])
    finally:
        await admin.close()
    sent = set(ledger.partition)  # acknowledged
    recovery = [_recovery(ledger, led, killed_at) for killed_at, led in faults]
    return Outcome(
        scenario=f"broker leader killed (x{rounds})",
        sent=len(sent),
        replies=len(sent & set(ledger.handled)),
        lost=len(sent - set(ledger.handled)),
        duplicated=sum(1 for n in copies.values() if n > 1),
        redelivered=ledger.calls - len(ledger.handled),
        order_violations=first_order_violations(ledger.first_order),
        recovery_s=[r for r in recovery if r is not None],
    )


def _consumer(
    settings: KafkaSettings, producer: EventProducer, topic: str, dlq: str, suffix: str, ledger: _Ledger
) -> EventConsumer:
    async def handler(event: ConsumedEvent) -> None:
        ledger.handle(event)

    return EventConsumer(
        settings,
        topics=[topic],
        group_id=f"chaos-{suffix}",
        handler=handler,
        dead_letter_producer=producer,
        dead_letter_topic=dlq,
    )


async def _send(
    producer: EventProducer, topic: str, ledger: _Ledger, stop: asyncio.Event, rate: float, conversations: int
) -> None:
    """``rate`` events a second, round-robin over the conversations, until ``stop``; every
    acknowledgement awaited (a send that fails raises: the scenario fails loudly)."""
    acks: list[asyncio.Task[None]] = []
    counters = [0] * conversations
    n = 0
    started = time.monotonic()
    while not stop.is_set():
        conversation = n % conversations
        key = f"chaos-conv-{conversation}"
        counters[conversation] += 1
        envelope = events.wrap(
            messages_pb2.InboundMessage(message_id=f"{key}:{counters[conversation]}", text="ping"),
            conversation_key=key,
            source="chaos",
        )
        ledger.seq[envelope.event_id] = (key, counters[conversation])
        ledger.sent_at[envelope.event_id] = time.monotonic()
        future = await producer.enqueue(topic, envelope)
        acks.append(asyncio.create_task(_acknowledged(future, envelope.event_id, ledger)))
        n += 1
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
    await asyncio.gather(*acks)


async def _acknowledged(future: Awaitable[object], event_id: str, ledger: _Ledger) -> None:
    metadata = await future
    ledger.partition[event_id] = metadata.partition  # type: ignore[attr-defined]


async def leaders(admin: AIOKafkaAdminClient, topic: str) -> dict[int, int]:
    """Partition -> the node id of its leader (the stack numbers its nodes 1 to 3)."""
    (described,) = await admin.describe_topics([topic])
    return {p["partition"]: p["leader"] for p in described["partitions"]}


async def wait_in_sync(admin: AIOKafkaAdminClient, topic: str, timeout_s: float = 90) -> None:
    """Until every partition has its three replicas in sync again."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        (described,) = await admin.describe_topics([topic])
        if all(len(p["isr"]) == 3 for p in described["partitions"]):
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{topic}: replicas not back in sync after {timeout_s:.0f} s")


def _recovery(ledger: _Ledger, partitions: set[int], killed_at: float) -> float | None:
    """Seconds from the kill until the first event sent after it to a partition the killed
    broker led was handled (None: no such event was handled)."""
    handled = [
        ledger.handled[e]
        for e, sent in ledger.sent_at.items()
        if sent >= killed_at and ledger.partition.get(e) in partitions and e in ledger.handled
    ]
    return min(handled) - killed_at if handled else None


async def _drain(ledger: _Ledger, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not set(ledger.partition) <= set(ledger.handled):
        await asyncio.sleep(0.2)


async def _copies_in_log(bootstrap: str, topic: str) -> dict[str, int]:
    """How many times each event id was written to ``topic`` (committed records only)."""
    reader = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await reader.start()
    copies: dict[str, int] = defaultdict(int)
    try:
        idle = 0
        while idle < 5:
            polled = await reader.getmany(timeout_ms=500)
            idle = 0 if polled else idle + 1
            for records in polled.values():
                for record in records:
                    event = envelope_pb2.Envelope.FromString(record.value)
                    copies[event.event_id] += 1
    finally:
        await reader.stop()
    return copies
