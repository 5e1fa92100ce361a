"""The common producer and consumer against the real broker."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from switchboard.common import events, tracing
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import (
    DLQ_CAUSE,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_TOPIC,
    EVENT_ID,
    EVENT_TYPE,
    TRACEPARENT,
    ConsumedEvent,
    EventConsumer,
    EventProducer,
)
from switchboard.common.kafka.headers import get as header
from switchboard.events.v1 import envelope_pb2, messages_pb2
from tests.conftest import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
async def topics(stack: Stack, unique: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh (events topic, dead-letter topic) pair, deleted afterwards."""
    names = (f"test.events.{unique}", f"test.deadletter.{unique}")
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 3, 1) for name in names])
        yield names
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


def _settings(stack: Stack, **overrides: object) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, handler_backoff_s=0.01, **overrides)  # type: ignore[arg-type]


def _inbound(text: str) -> messages_pb2.InboundMessage:
    return messages_pb2.InboundMessage(message_id=f"m-{text}", channel=messages_pb2.CHANNEL_HTTP, text=text)


@asynccontextmanager
async def _consuming(
    settings: KafkaSettings,
    producer: EventProducer,
    topic: str,
    dlq: str,
    group: str,
    handler: Callable[[ConsumedEvent], Awaitable[None]] | None = None,
    **options: Any,
) -> AsyncIterator[EventConsumer]:
    """A running consumer of ``topic``; ``options``: the consumer's other arguments
    (``batch_handler``, ``prepare``, ``transient``, ...)."""
    consumer = EventConsumer(
        settings,
        topics=[topic],
        group_id=group,
        handler=handler,
        dead_letter_producer=producer,
        dead_letter_topic=dlq,
        **options,
    )
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield consumer
    finally:
        stop.set()
        await task
        await consumer.stop()


async def _wait_for(predicate: Callable[[], bool], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def _committed(stack: Stack, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


async def test_round_trip_keeps_payload_key_headers_and_trace(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    topic, dlq = topics
    settings = _settings(stack)
    traceparent = tracing.new_traceparent()
    sent = events.wrap(_inbound("hello"), conversation_key=f"conv-{unique}", source="test", traceparent=traceparent)
    received: list[tuple[ConsumedEvent, str | None]] = []

    async def handler(event: ConsumedEvent) -> None:
        received.append((event, tracing.current_traceparent.get()))

    async with EventProducer(settings) as producer:
        metadata = await producer.send(topic, sent)
        async with _consuming(settings, producer, topic, dlq, f"g-{unique}", handler):
            await _wait_for(lambda: len(received) == 1)

    event, trace_in_handler = received[0]
    assert event.envelope == sent
    assert events.unwrap(event.envelope) == _inbound("hello")
    assert event.key == f"conv-{unique}".encode()
    assert (event.partition, event.offset) == (metadata.partition, metadata.offset)
    assert header(event.headers, EVENT_ID) == sent.event_id
    assert header(event.headers, EVENT_TYPE) == "InboundMessage"
    assert header(event.headers, TRACEPARENT) == traceparent
    # The handler runs inside the event's trace, so its logs and events carry it.
    assert trace_in_handler == traceparent


async def test_one_conversation_stays_in_order_on_one_partition(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    topic, dlq = topics
    settings = _settings(stack)
    received: list[ConsumedEvent] = []

    async def handler(event: ConsumedEvent) -> None:
        received.append(event)

    async with EventProducer(settings) as producer:
        for i in range(20):
            await producer.send(topic, events.wrap(_inbound(str(i)), conversation_key=f"c-{unique}", source="t"))
        async with _consuming(settings, producer, topic, dlq, f"g-{unique}", handler):
            await _wait_for(lambda: len(received) == 20)
    assert len({e.partition for e in received}) == 1
    assert [events.unwrap(e.envelope).text for e in received] == [str(i) for i in range(20)]  # type: ignore[attr-defined]


async def test_conversations_sharing_a_partition_do_not_wait_for_each_other(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    topic, dlq = topics
    settings = _settings(stack)
    handled: list[str] = []
    slow_started, fast_done = asyncio.Event(), asyncio.Event()

    async def handler(event: ConsumedEvent) -> None:
        text = events.unwrap(event.envelope).text  # type: ignore[attr-defined]
        if text == "slow-1":
            slow_started.set()
            # Finishes only once the other conversation got through: a handler that took
            # the partition's records one by one would never get there.
            await asyncio.wait_for(fast_done.wait(), 20)
        handled.append(text)
        if text == "fast":
            fast_done.set()

    async with EventProducer(settings) as producer:
        slow = f"slow-{unique}"
        first = await producer.send(topic, events.wrap(_inbound("slow-1"), conversation_key=slow, source="t"))
        await producer.send(topic, events.wrap(_inbound("slow-2"), conversation_key=slow, source="t"))
        partitions = [0, 1, 2]
        fast = next(  # another conversation that hashes to the same partition
            key
            for key in (f"fast-{unique}-{i}" for i in range(1000))
            if DefaultPartitioner()(key.encode(), partitions, partitions) == first.partition
        )
        assert (
            await producer.send(topic, events.wrap(_inbound("fast"), conversation_key=fast, source="t"))
        ).partition == first.partition
        async with _consuming(settings, producer, topic, dlq, f"g-{unique}", handler):
            await _wait_for(lambda: "slow-2" in handled and "fast" in handled)
    # The other conversation overtook; within one conversation the order held.
    assert handled == ["fast", "slow-1", "slow-2"]


async def test_offset_is_committed_only_after_the_handler_returns(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    topic, dlq = topics
    settings = _settings(stack)
    group = f"g-{unique}"
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_handler(event: ConsumedEvent) -> None:
        entered.set()
        await release.wait()

    async with EventProducer(settings) as producer:
        metadata = await producer.send(topic, events.wrap(_inbound("slow"), conversation_key="k", source="t"))
        async with _consuming(settings, producer, topic, dlq, group, slow_handler):
            await asyncio.wait_for(entered.wait(), 30)
            await asyncio.sleep(1.0)  # ample time for any eager or periodic commit to happen
            assert await _committed(stack, group, topic) == {}
            release.set()
            async with asyncio.timeout(30):
                while await _committed(stack, group, topic) != {metadata.partition: metadata.offset + 1}:
                    await asyncio.sleep(0.1)


async def test_unfinished_work_is_redelivered_to_the_next_consumer(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    # A consumer that dies mid-handler commits nothing; the group's next member gets the record.
    topic, dlq = topics
    settings = _settings(stack)
    group = f"g-{unique}"
    entered = asyncio.Event()
    redelivered: list[str] = []

    async def dying_handler(event: ConsumedEvent) -> None:
        entered.set()
        await asyncio.Event().wait()  # never returns; the task is cancelled below

    async def handler(event: ConsumedEvent) -> None:
        redelivered.append(event.envelope.event_id)

    async with EventProducer(settings) as producer:
        sent = events.wrap(_inbound("crash"), conversation_key="k", source="t")
        await producer.send(topic, sent)
        first = EventConsumer(
            settings,
            topics=[topic],
            group_id=group,
            handler=dying_handler,
            dead_letter_producer=producer,
            dead_letter_topic=dlq,
        )
        await first.start()
        task = asyncio.create_task(first.run(asyncio.Event()))
        await asyncio.wait_for(entered.wait(), 30)
        task.cancel()  # the "crash": no commit happens
        with pytest.raises(asyncio.CancelledError):
            await task
        await first._consumer.stop()  # leave the group without committing
        async with _consuming(settings, producer, topic, dlq, group, handler):
            await _wait_for(lambda: redelivered == [sent.event_id])


async def test_poison_record_goes_to_dead_letter_and_consumption_goes_on(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    topic, dlq = topics
    settings = _settings(stack)
    handled: list[str] = []

    async def handler(event: ConsumedEvent) -> None:
        handled.append(events.unwrap(event.envelope).text)  # type: ignore[attr-defined]

    async with EventProducer(settings) as producer:
        poison = await producer.send_raw(topic, b"\xff\xfenot a protobuf", b"k", [("origin", b"fuzzer")])
        await producer.send(topic, events.wrap(_inbound("after"), conversation_key="k", source="t"))
        async with _consuming(settings, producer, topic, dlq, f"g-{unique}", handler):
            await _wait_for(lambda: handled == ["after"])

    dead = await _read_one(stack, dlq)
    assert dead.value == b"\xff\xfenot a protobuf"
    assert dead.key == b"k"
    assert "undecodable" in (header(dead.headers, DLQ_CAUSE) or "")
    assert header(dead.headers, DLQ_SOURCE_TOPIC) == topic
    assert header(dead.headers, DLQ_SOURCE_OFFSET) == str(poison.offset)
    assert header(dead.headers, "origin") == "fuzzer"  # original headers are kept


async def test_batches_arrive_prepared_in_partition_order_and_poison_is_dead_lettered(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    """Batch mode decodes and prepares records as they are polled: every event reaches
    the batch handler with what ``prepare`` made of it, each partition in offset order,
    while an undecodable record still goes to the dead-letter topic alone."""
    topic, dlq = topics
    settings = _settings(stack, max_poll_records=7)  # several polls, so several batches
    group = f"g-{unique}"
    prepared: list[str] = []
    batches: list[list[ConsumedEvent]] = []

    def prepare(event: ConsumedEvent) -> str:
        prepared.append(event.envelope.event_id)
        return f"doc of {event.envelope.event_id}"

    async def handle(batch: list[ConsumedEvent]) -> None:
        batches.append(batch)
        await asyncio.sleep(0.05)  # the next polls gather meanwhile

    async with EventProducer(settings) as producer:
        poison = await producer.send_raw(topic, b"\xffnot a protobuf", b"k0", [])
        sent = [events.wrap(_inbound(f"t{i}"), conversation_key=f"k{i % 3}", source="t") for i in range(30)]
        for envelope in sent:
            await producer.send(topic, envelope)
        async with _consuming(settings, producer, topic, dlq, group, batch_handler=handle, prepare=prepare):
            await _wait_for(lambda: sum(len(b) for b in batches) == 30)
    handled = [event for batch in batches for event in batch]
    assert sorted(e.envelope.event_id for e in handled) == sorted(s.event_id for s in sent)
    assert all(e.prepared == f"doc of {e.envelope.event_id}" for e in handled)
    assert sorted(prepared) == sorted(s.event_id for s in sent)  # once each, the poison not at all
    assert len(batches) > 1
    for partition in {e.partition for e in handled}:
        offsets = [e.offset for e in handled if e.partition == partition]
        assert offsets == sorted(offsets)
    dead = await _read_one(stack, dlq)
    assert dead.value == b"\xffnot a protobuf" and "undecodable" in (header(dead.headers, DLQ_CAUSE) or "")
    assert header(dead.headers, DLQ_SOURCE_OFFSET) == str(poison.offset)


async def test_one_failing_event_in_a_batch_is_dead_lettered_alone(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    """A batch handler that fails whenever one poison event is in its batch (as PostgreSQL
    refuses a NUL in text): the batch is retried, then split until the poison is alone;
    only it is dead-lettered, every other event of the batch is handled."""
    topic, dlq = topics
    settings = _settings(stack, handler_attempts=2)
    handled: set[str] = set()
    calls: list[int] = []

    async def handle(batch: list[ConsumedEvent]) -> None:
        calls.append(len(batch))
        texts = [events.unwrap(event.envelope).text for event in batch]  # type: ignore[attr-defined]
        if any("\x00" in text for text in texts):
            raise ValueError("invalid byte sequence for encoding UTF8: 0x00")
        handled.update(texts)

    async with EventProducer(settings) as producer:
        texts = [f"m{i}" for i in range(40)]
        texts[17] = "poi\x00son"
        for i, text in enumerate(texts):
            await producer.send(topic, events.wrap(_inbound(text), conversation_key=f"k{i % 4}", source="t"))
        async with _consuming(settings, producer, topic, dlq, f"g-{unique}", batch_handler=handle):
            await _wait_for(lambda: len(handled) == 39)
            dead = await _read_one(stack, dlq)
    assert handled == {text for text in texts if "\x00" not in text}
    assert max(calls) > 1  # the poison did arrive in a batch with others
    poison = events.unwrap(envelope_pb2.Envelope.FromString(dead.value))
    assert poison.text == "poi\x00son"  # type: ignore[attr-defined]
    cause = header(dead.headers, DLQ_CAUSE) or ""
    assert "after 2 attempts" in cause and "0x00" in cause


async def test_concurrent_batches_start_in_order_and_overlap(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    """With batch_concurrency=2 a batch starts while the one before is still handled, never
    more than two at once, and the handlers start in poll order: each partition's
    offsets rise across batches in the order they started."""
    topic, dlq = topics
    settings = _settings(stack, max_poll_records=4)
    started: list[list[ConsumedEvent]] = []
    running = peak = 0

    async def handle(batch: list[ConsumedEvent]) -> None:
        nonlocal running, peak
        started.append(batch)
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.1)
        running -= 1

    async with EventProducer(settings) as producer:
        for i in range(60):
            await producer.send(topic, events.wrap(_inbound(f"c{i}"), conversation_key=f"k{i % 5}", source="t"))
        async with _consuming(settings, producer, topic, dlq, f"g-{unique}", batch_handler=handle, batch_concurrency=2):
            await _wait_for(lambda: sum(len(b) for b in started) == 60)
    assert peak == 2
    in_start_order = [event for batch in started for event in batch]
    assert len({e.envelope.event_id for e in in_start_order}) == 60
    for partition in {e.partition for e in in_start_order}:
        offsets = [e.offset for e in in_start_order if e.partition == partition]
        assert offsets == sorted(offsets)


async def test_failing_handler_is_retried_then_dead_lettered(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    topic, dlq = topics
    settings = _settings(stack, handler_attempts=3)
    attempts: list[str] = []
    handled: list[str] = []

    async def handler(event: ConsumedEvent) -> None:
        text = events.unwrap(event.envelope).text  # type: ignore[attr-defined]
        if text == "bad":
            attempts.append(text)
            raise ValueError("cannot handle 'bad'")
        handled.append(text)

    async with EventProducer(settings) as producer:
        await producer.send(topic, events.wrap(_inbound("bad"), conversation_key="k", source="t"))
        await producer.send(topic, events.wrap(_inbound("good"), conversation_key="k", source="t"))
        async with _consuming(settings, producer, topic, dlq, f"g-{unique}", handler):
            await _wait_for(lambda: handled == ["good"])

    assert attempts == ["bad", "bad", "bad"]
    dead = await _read_one(stack, dlq)
    cause = header(dead.headers, DLQ_CAUSE) or ""
    assert "after 3 attempts" in cause and "cannot handle 'bad'" in cause
    assert header(dead.headers, EVENT_TYPE) == "InboundMessage"


async def test_a_dependency_outage_is_waited_out_not_dead_lettered(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    topic, dlq = topics
    settings = _settings(stack, handler_attempts=2)
    failures: list[str] = []
    handled: list[str] = []

    async def handler(event: ConsumedEvent) -> None:
        text = events.unwrap(event.envelope).text  # type: ignore[attr-defined]
        if len(failures) < 6:  # the database is away for six tries: more than handler_attempts
            failures.append(text)
            raise ConnectionRefusedError("database restarting")
        handled.append(text)

    async with EventProducer(settings) as producer:
        await producer.send(topic, events.wrap(_inbound("kept"), conversation_key="k", source="t"))
        async with _consuming(settings, producer, topic, dlq, f"g-{unique}", handler, transient=(OSError,)):
            await _wait_for(lambda: handled == ["kept"])
    assert failures == ["kept"] * 6
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(dlq, p) for p in range(3)]
        consumer.assign(tps)
        assert sum((await consumer.end_offsets(tps)).values()) == 0  # nothing dead-lettered
    finally:
        await consumer.stop()


async def test_a_record_that_cannot_be_dead_lettered_stops_the_consumer_uncommitted(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    topic, dlq = topics
    settings = _settings(stack, handler_attempts=1)
    group = f"g-{unique}"

    async def handler(event: ConsumedEvent) -> None:
        raise ValueError("cannot handle it")

    # The dead-letter topic does not exist (and the broker creates none): the send fails.
    async with EventProducer(settings, request_timeout_ms=2000) as producer:
        await producer.send(topic, events.wrap(_inbound("bad"), conversation_key="k", source="t"))
        consumer = EventConsumer(
            settings,
            topics=[topic],
            group_id=group,
            handler=handler,
            dead_letter_producer=producer,
            dead_letter_topic=f"{dlq}.missing",
        )
        await consumer.start()
        try:
            with pytest.raises(RuntimeError, match="failed"):
                await asyncio.wait_for(consumer.run(asyncio.Event()), 30)
            # Nothing was committed: the record is redelivered once the topic is back.
            assert await _committed(stack, group, topic) == {}
        finally:
            await consumer.stop()


async def _read_one(stack: Stack, topic: str) -> ConsumerRecord[bytes, bytes]:
    """The first record found on any of the topic's 3 partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        async with asyncio.timeout(30):
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    if records:
                        return records[0]
    finally:
        await consumer.stop()


async def test_urgent_records_overtake_a_routine_backlog(stack: Stack, topics: tuple[str, str], unique: str) -> None:
    """With ``priority``, routine partitions pause while the urgent topic has work: urgent
    records wait only for the routine ones already in hand, not for the fetched backlog."""
    routine, dlq = topics
    urgent = f"test.urgent.{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(urgent, 3, 1)])
        settings = _settings(stack, max_in_flight=4, max_poll_records=4)
        handled: list[str] = []

        async def handler(event: ConsumedEvent) -> None:
            await asyncio.sleep(0.01)
            handled.append(events.unwrap(event.envelope).text)  # type: ignore[attr-defined]

        async with EventProducer(settings) as producer:
            acks = [
                await producer.enqueue(routine, events.wrap(_inbound(f"r{i}"), conversation_key=f"r{i}", source="t"))
                for i in range(600)
            ]
            await asyncio.gather(*acks)
            consumer = EventConsumer(
                settings,
                topics=[urgent, routine],
                group_id=f"g-{unique}",
                handler=handler,
                dead_letter_producer=producer,
                dead_letter_topic=dlq,
                priority=[urgent, routine],
            )
            await consumer.start()
            stop = asyncio.Event()
            task = asyncio.create_task(consumer.run(stop))
            try:
                await _wait_for(lambda: len(handled) >= 50)
                before = len(handled)
                for i in range(10):
                    await producer.send(urgent, events.wrap(_inbound(f"u{i}"), conversation_key=f"u{i}", source="t"))
                await _wait_for(lambda: sum(t.startswith("u") for t in handled) == 10)
                last_urgent = max(i for i, t in enumerate(handled) if t.startswith("u"))
                overtaken = [t for t in handled[before:last_urgent] if t.startswith("r")]
                # At most what was in hand when the urgent records came: the 4 in flight, and a
                # poll of 4 taken on before the pause.
                assert len(overtaken) <= 12, (len(overtaken), len(handled) - before)
                assert len(handled) < 600  # the backlog was still there
            finally:
                stop.set()
                await task
                await consumer.stop()
    finally:
        await admin.delete_topics([urgent])
        await admin.close()


async def test_a_long_outage_pauses_fetching_but_keeps_the_consumer_in_its_group(
    stack: Stack, topics: tuple[str, str], unique: str
) -> None:
    """Records in flight at the limit while a dependency is away for longer than
    ``max_poll_interval_ms``: the consumer pauses its partitions and keeps polling, so it
    is not put out of its group (no second assignment) and handles everything once."""
    topic, dlq = topics
    settings = _settings(stack, max_in_flight=2)
    back_at = asyncio.get_running_loop().time() + 8  # the dependency is away for 8 s
    handled: list[str] = []
    assignments: list[int] = []

    async def handler(event: ConsumedEvent) -> None:
        if asyncio.get_running_loop().time() < back_at:
            raise ConnectionRefusedError("search cluster restarting")
        handled.append(events.unwrap(event.envelope).text)  # type: ignore[attr-defined]

    async with EventProducer(settings) as producer:
        for i in range(6):
            await producer.send(topic, events.wrap(_inbound(str(i)), conversation_key=f"k{i}", source="t"))
        consumer = EventConsumer(
            settings,
            topics=[topic],
            group_id=f"g-{unique}",
            handler=handler,
            dead_letter_producer=producer,
            dead_letter_topic=dlq,
            transient=(OSError,),
            on_assigned=lambda: assignments.append(1),
            max_poll_interval_ms=3000,
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
        )
        await consumer.start()
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        try:
            await _wait_for(lambda: len(handled) == 6, timeout=40)
        finally:
            stop.set()
            await task
            await consumer.stop()
    assert sorted(handled) == [str(i) for i in range(6)]
    assert len(assignments) == 1  # never rebalanced out of the group
