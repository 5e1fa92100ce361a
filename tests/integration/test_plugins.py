"""Plugins against the real broker and PostgreSQL: the catalogue, the example plugin answering
requests once, and the scheduler routing an intent to a plugin only when it is enabled, then
waiting for, resending and finally giving up on its answer."""

import asyncio
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from switchboard.common import events, plugins, postgres
from switchboard.common.config import KafkaSettings, TopicSettings
from switchboard.common.kafka import ConsumedEvent, EventProducer
from switchboard.common.kafka import headers as hdr
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.plugin_units.app import registration as units_registration
from switchboard.plugin_units.app import serve as serve_units
from switchboard.plugin_units.config import Settings as UnitsSettings
from switchboard.scheduler.app import Scheduler
from switchboard.scheduler.config import Settings as SchedulerSettings
from switchboard.scheduler.dispatcher import Dispatcher
from switchboard.scheduler.outbox import Outbox
from tests.conftest import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
async def topics(stack: Stack, unique: str) -> AsyncIterator[TopicSettings]:
    """Fresh business topics (the catalogue compacted, as in infra/kafka/topics.yaml) and a
    request topic for the units plugin, deleted afterwards."""
    names = TopicSettings(**{n: f"test.{unique}.{n}" for n in TopicSettings.model_fields})  # type: ignore[arg-type]
    created = [*names.model_dump().values(), f"test.{unique}.units"]
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(t, 1, 1, topic_configs={"cleanup.policy": "compact"}) for t in [names.plugin_catalog]]
            + [NewTopic(t, 3, 1) for t in created if t != names.plugin_catalog]
        )
        yield names
        await admin.delete_topics(created)
    finally:
        await admin.close()


@pytest.fixture
async def producer(stack: Stack) -> AsyncIterator[EventProducer]:
    async with EventProducer(KafkaSettings(bootstrap_servers=stack.kafka_bootstrap)) as started:
        yield started


def _entry(name: str, version: str, request_topic: str, *intents: str) -> m.PluginRegistration:
    return m.PluginRegistration(
        name=name, version=version, intents=list(intents), request_topic=request_topic, timeout_s=5
    )


async def _eventually(check: Any, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_the_catalogue_is_read_whole_at_start_then_followed(
    stack: Stack, topics: TopicSettings, producer: EventProducer
) -> None:
    await plugins.register(producer, topics.plugin_catalog, _entry("units", "1", "t.units", "units.convert"))
    await plugins.register(producer, topics.plugin_catalog, _entry("weather", "1", "t.weather", "weather.ask"))
    await plugins.register(producer, topics.plugin_catalog, _entry("units", "2", "t.units", "units.convert"))
    catalogue = plugins.Catalogue(KafkaSettings(bootstrap_servers=stack.kafka_bootstrap), topics.plugin_catalog)
    await catalogue.start()
    stop = asyncio.Event()
    following = asyncio.create_task(catalogue.follow(stop))
    try:
        # Loaded before start() returned: the latest registration of each plugin.
        assert {n: r.version for n, r in catalogue.plugins.items()} == {"units": "2", "weather": "1"}
        assert catalogue.plugins["units"].registered_at.seconds > 0
        # A tombstone (no value) under the plugin's name removes it; compaction later drops the entry.
        await producer.send_raw(topics.plugin_catalog, None, b"weather", [])
        await plugins.register(producer, topics.plugin_catalog, _entry("units", "3", "t.units", "units.convert"))
        await _eventually(lambda: "weather" not in catalogue.plugins and catalogue.plugins["units"].version == "3")
    finally:
        stop.set()
        await following
        await catalogue.stop()


async def _replies(stack: Stack, topic: str, wanted: int, quiet_s: float = 3.0) -> list[envelope_pb2.Envelope]:
    """Every record on ``topic`` once ``wanted`` arrived and nothing more came for ``quiet_s``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[envelope_pb2.Envelope] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        async with asyncio.timeout(60):
            while True:
                batch = await consumer.getmany(timeout_ms=int(quiet_s * 1000))
                records = [r for rs in batch.values() for r in rs]
                found += [envelope_pb2.Envelope.FromString(r.value) for r in records]
                if not records and len(found) >= wanted:
                    return found
    finally:
        await consumer.stop()


def _request(request_id: str, text: str, deadline: datetime) -> envelope_pb2.Envelope:
    intent = m.ParsedIntent(intent="units.convert", language="en", message=m.InboundMessage(text=text))
    request = m.PluginRequest(request_id=request_id, plugin="units", intent=intent)
    request.deadline.FromDatetime(deadline)
    return events.wrap(request, conversation_key="conv-1", source="test")


async def test_the_units_plugin_registers_itself_and_answers_each_request_once(
    stack: Stack, topics: TopicSettings, producer: EventProducer, unique: str
) -> None:
    settings = UnitsSettings(
        kafka=KafkaSettings(bootstrap_servers=stack.kafka_bootstrap),
        topics=topics,
        request_topic=f"test.{unique}.units",
        health_port=0,
        metrics_port=0,
    )
    stop = asyncio.Event()
    plugin = asyncio.create_task(serve_units(settings, stop))
    catalogue = plugins.Catalogue(settings.kafka, topics.plugin_catalog)
    try:
        later = datetime.now(UTC) + timedelta(minutes=5)
        await producer.send(settings.request_topic, _request("r-1", "convert 5 miles to km", later))
        await producer.send(settings.request_topic, _request("r-1", "convert 5 miles to km", later))  # again
        await producer.send(settings.request_topic, _request("r-2", "convert 70 kg to km", later))
        await producer.send(
            settings.request_topic, _request("r-3", "1 km to m", datetime.now(UTC) - timedelta(seconds=1))
        )
        replies = await _replies(stack, topics.plugin_replies, wanted=2)
        by_id = {e.plugin_reply.request_id: e for e in replies}
        assert sorted(e.plugin_reply.request_id for e in replies) == ["r-1", "r-2"]  # once each; r-3 expired
        assert by_id["r-1"].plugin_reply.ok and by_id["r-1"].plugin_reply.text == "5 miles = 8.05 km"
        assert by_id["r-1"].event_id == events.derived_id("r-1", "plugin-reply")
        assert not by_id["r-2"].plugin_reply.ok and by_id["r-2"].plugin_reply.error == "incompatible"
        await catalogue.start()  # the plugin registered itself at start
        registered = catalogue.plugins["units"]
        expected = units_registration(settings)
        assert (registered.version, list(registered.intents)) == (expected.version, ["units.convert"])
        assert (registered.request_topic, registered.reply_topic) == (settings.request_topic, topics.plugin_replies)
    finally:
        stop.set()
        await plugin
        await catalogue.stop()


# --- the scheduler's side, with its real PostgreSQL ----------------------------------------


@pytest.fixture
def schema(unique: str) -> str:
    return f"test_{unique}"


@pytest.fixture
async def pool(stack: Stack, schema: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(stack.pg_dsn, min_size=1, max_size=2, server_settings={"search_path": schema})
    async with pool.acquire() as conn:
        await postgres.migrate(conn, schema, "switchboard.scheduler")
    yield pool
    await pool.close()
    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _scheduler(
    pool: asyncpg.Pool, schema: str, topics: TopicSettings, enabled: list[str], catalogue: plugins.Catalogue
) -> tuple[Scheduler, Dispatcher, Clock]:
    settings = SchedulerSettings(topics=topics, database_schema=schema, plugins_enabled=enabled, plugin_attempts=2)
    outbox = Outbox(pool, schema)
    clock = Clock()
    dispatcher = Dispatcher(
        pool,
        outbox,
        schema=schema,
        source="scheduler",
        outbound_topic=topics.outbound,
        deadletter_topic=topics.deadletter,
        backoff_base_s=1,
        backoff_cap_s=1,
        clock=clock,
        rng=random.Random(1),
    )
    # The runtime (health, producer) is used only to relay streamed pieces, which these tests send none of.
    return Scheduler(settings, None, pool, outbox, dispatcher, catalogue), dispatcher, clock  # type: ignore[arg-type]


def _consumed(payload: Any, topic: str) -> ConsumedEvent:
    envelope = events.wrap(payload, conversation_key="conv-1", source="test")
    return ConsumedEvent(envelope=envelope, topic=topic, partition=0, offset=0, key=b"conv-1", headers=[])


def _convert_intent(text: str = "convert 5 miles to km", message_id: str = "msg-1") -> m.ParsedIntent:
    message = m.InboundMessage(message_id=message_id, channel=m.CHANNEL_HTTP, channel_chat_id="chat-1", text=text)
    message.sender.user_id = "http:alice"
    return m.ParsedIntent(message=message, intent="units.convert", language="en", time_zone="UTC")


async def _outbox(pool: asyncpg.Pool, topic: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT value, headers FROM outbox WHERE topic = $1 ORDER BY id", topic)


def _catalogue_with(entry: m.PluginRegistration) -> plugins.Catalogue:
    catalogue = plugins.Catalogue(KafkaSettings(), "unused")
    catalogue.apply(entry.name.encode(), entry.SerializeToString())
    return catalogue


async def test_a_registered_but_disabled_plugin_gets_no_traffic(
    pool: asyncpg.Pool, schema: str, topics: TopicSettings
) -> None:
    catalogue = _catalogue_with(_entry("units", "1", "t.units.requests", "units.convert"))
    scheduler, dispatcher, _ = _scheduler(pool, schema, topics, enabled=[], catalogue=catalogue)
    await scheduler.handle([_consumed(_convert_intent(), topics.intents)])
    await dispatcher.fire_due()
    assert await _outbox(pool, "t.units.requests") == []
    # The intent is a chat turn for the model instead.
    [request] = await _outbox(pool, topics.requests_routine)
    assert envelope_pb2.Envelope.FromString(request["value"]).inference_request.message_id == "msg-1"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 0


async def test_an_enabled_plugin_is_asked_its_answer_is_relayed_once_and_silence_is_given_up_on(
    pool: asyncpg.Pool, schema: str, topics: TopicSettings
) -> None:
    catalogue = _catalogue_with(_entry("units", "1", "t.units.requests", "units.convert"))
    catalogue.plugins["units"].title["en"] = "the unit converter"
    scheduler, dispatcher, clock = _scheduler(pool, schema, topics, enabled=["units"], catalogue=catalogue)
    await scheduler.handle([_consumed(_convert_intent(), topics.intents)])
    await scheduler.handle([_consumed(_convert_intent(), topics.intents)])  # the same message redelivered
    clock.now = datetime.now(UTC)
    assert await dispatcher.fire_due() == 1
    [sent] = await _outbox(pool, "t.units.requests")
    request = envelope_pb2.Envelope.FromString(sent["value"]).plugin_request
    assert (request.plugin, request.attempt, request.intent.message.text) == ("units", 1, "convert 5 miles to km")
    assert await _outbox(pool, topics.requests_routine) == []  # not a chat turn
    # The plugin answers: the user gets its text, once.
    reply = m.PluginReply(request_id=request.request_id, plugin="units", ok=True, text="5 miles = 8.05 km")
    await scheduler.handle([_consumed(reply, topics.plugin_replies)])
    await scheduler.handle([_consumed(reply, topics.plugin_replies)])
    [answer] = await _outbox(pool, topics.outbound)
    outbound = envelope_pb2.Envelope.FromString(answer["value"]).outbound_message
    assert (outbound.text, outbound.in_reply_to, outbound.channel_chat_id) == ("5 miles = 8.05 km", "msg-1", "chat-1")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM jobs WHERE id = $1", request.request_id) == "done"
        await conn.execute("DELETE FROM outbox")

    # A second message, and a plugin that stays silent: asked again (same id), then given up.
    await scheduler.handle([_consumed(_convert_intent("10 km to miles", "msg-2"), topics.intents)])
    clock.now = datetime.now(UTC)
    assert await dispatcher.fire_due() == 1
    clock.now += timedelta(seconds=6)  # past the registration's 5 s
    assert await dispatcher.fire_due() == 1  # overdue: a failed attempt, asked again after the backoff
    clock.now += timedelta(seconds=1)
    assert await dispatcher.fire_due() == 1
    asked = [
        envelope_pb2.Envelope.FromString(r["value"]).plugin_request for r in await _outbox(pool, "t.units.requests")
    ]
    assert [a.attempt for a in asked] == [1, 2] and len({a.request_id for a in asked}) == 1
    clock.now += timedelta(seconds=6)
    assert await dispatcher.fire_due() == 1
    [dead] = await _outbox(pool, topics.deadletter)
    headers = [(name, value.encode()) for name, value in json.loads(dead["headers"])]
    assert "no answer from plugin units within 5 s" in (hdr.get(headers, hdr.DLQ_CAUSE) or "")
    [notice] = await _outbox(pool, topics.outbound)
    assert envelope_pb2.Envelope.FromString(notice["value"]).outbound_message.text.startswith(
        "Sorry, the unit converter is not answering (2 tries)"
    )


async def test_a_nul_in_a_reminder_is_scrubbed_before_postgresql_sees_it(
    pool: asyncpg.Pool, schema: str, topics: TopicSettings
) -> None:
    """A record from something other than the gateway (which refuses control characters) can
    still carry a NUL, which PostgreSQL refuses in text: the scheduler scrubs it."""
    scheduler, _, _ = _scheduler(
        pool, schema, topics, enabled=[], catalogue=_catalogue_with(_entry("u", "1", "t.u", "x"))
    )
    intent = _convert_intent("remind me tomorrow at 9 to call\x00 mom", "msg-nul")
    intent.intent = "reminder.create"
    intent.slots.add(name="datetime", value=(datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds"))
    intent.slots.add(name="task", value="call\x00 mom")
    await scheduler.handle([_consumed(intent, topics.intents)])
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT title FROM jobs WHERE kind = 'reminder'") == "call mom"
