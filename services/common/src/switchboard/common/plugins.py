"""Plugins: processes that handle the intents the platform routes to them, and answer.

A plugin registers itself in the **catalogue**, a compacted topic keyed by plugin name whose
values are :class:`PluginRegistration` (name, version, the intents it handles, where it takes
requests and where it answers); an empty value unregisters it. The scheduler follows the
catalogue (:class:`Catalogue`) and sends a :class:`PluginRequest` for each intent that an
**enabled** plugin handles: a registration alone diverts nothing, since anyone who can write
the topic could write one. The plugin answers with a :class:`PluginReply`
(:func:`serve` does the Kafka side; a plugin writes only its ``answer`` function).

A request keeps its id on every attempt, so a plugin answers it once (:class:`Answered`),
and a request past its deadline is left alone: the caller has asked again or given up.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.message import DecodeError

from switchboard.common import events
from switchboard.common.config import KafkaSettings, ServiceSettings
from switchboard.common.kafka import ConsumedEvent, EventProducer
from switchboard.common.kafka.security import connection_kwargs
from switchboard.common.service import ServiceRuntime
from switchboard.events.v1 import messages_pb2 as m

logger = logging.getLogger(__name__)

Answer = Callable[[m.PluginRequest], m.PluginReply | Awaitable[m.PluginReply]]


async def register(producer: EventProducer, topic: str, registration: m.PluginRegistration) -> None:
    """Write ``registration`` to the catalogue (replacing the plugin's earlier one)."""
    registration.registered_at.GetCurrentTime()
    await producer.send_raw(
        topic,
        registration.SerializeToString(),
        registration.name.encode(),
        [("content-type", b"application/x-protobuf")],
    )
    logger.info("plugin registered", extra={"plugin": registration.name, "version": registration.version})


class Catalogue:
    """The catalogue's latest registration per plugin, read from the beginning and followed.

    No consumer group: every reader reads every partition, and nothing is committed.
    """

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.topic = topic
        self.plugins: dict[str, m.PluginRegistration] = {}
        self._settings = settings
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self, timeout_s: float = 30.0) -> None:
        """Read the catalogue up to its current end, so that routing starts from all of it."""
        settings = self._settings
        self._consumer = consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.client_id}-catalogue",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            **connection_kwargs(settings),
        )
        await consumer.start()
        try:
            async with asyncio.timeout(timeout_s):
                # Without a group, a subscription is every partition, read from the beginning.
                consumer.subscribe([self.topic])
                while not consumer.assignment():
                    self._apply(await consumer.getmany(timeout_ms=500))
                    if not consumer.assignment():
                        logger.warning("plugin catalogue topic not found yet", extra={"topic": self.topic})
                ends = await consumer.end_offsets(list(consumer.assignment()))
                while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                    self._apply(await consumer.getmany(timeout_ms=200))
        except BaseException:
            await self.stop()
            raise
        logger.info("plugin catalogue loaded", extra={"plugins": sorted(self.plugins)})

    async def follow(self, stop: asyncio.Event) -> None:
        """Apply registrations as they come, until ``stop``."""
        if self._consumer is None:
            raise RuntimeError("start the catalogue before following it")
        while not stop.is_set():
            self._apply(await self._consumer.getmany(timeout_ms=500))

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def _apply(self, polled: dict[TopicPartition, list[object]]) -> None:
        for records in polled.values():
            for record in records:
                self.apply(record.key, record.value)  # type: ignore[attr-defined]

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One catalogue record: a registration, or a tombstone (no value)."""
        name = (key or b"").decode(errors="replace")
        if not value:
            if self.plugins.pop(name, None) is not None:
                logger.info("plugin unregistered", extra={"plugin": name})
            return
        try:
            registration = m.PluginRegistration.FromString(value)
        except DecodeError:
            logger.warning("unreadable plugin registration skipped", extra={"plugin": name})
            return
        if registration.name != name or not registration.request_topic:
            logger.warning("plugin registration with a wrong key or no request topic skipped", extra={"plugin": name})
            return
        self.plugins[name] = registration
        logger.info("plugin registration", extra={"plugin": name, "version": registration.version})

    def route(self, intent: str, enabled: Collection[str]) -> m.PluginRegistration | None:
        """The enabled plugin that handles ``intent`` (the first enabled one, in order), if any."""
        for name in enabled:
            registration = self.plugins.get(name)
            if registration is not None and intent in registration.intents:
                return registration
        return None


class Answered:
    """Which requests were answered lately (a plugin answers a request id once)."""

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._ids

    def add(self, request_id: str) -> None:
        self._ids[request_id] = None
        self._ids.move_to_end(request_id)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)


def should_answer(request: m.PluginRequest, answered: Answered, now: datetime) -> str | None:
    """Why ``request`` is left unanswered (None: answer it)."""
    if request.request_id in answered:
        return "already answered"
    if request.HasField("deadline") and request.deadline.ToDatetime(tzinfo=UTC) < now:
        return "past its deadline"
    return None


class PluginWorker:
    """Answers the requests of one plugin: consumes its request topic, replies on its reply topic."""

    def __init__(self, registration: m.PluginRegistration, answer: Answer, producer: EventProducer, source: str):
        self.registration = registration
        self._answer = answer
        self._producer = producer
        self._source = source
        self._answered = Answered()

    async def handle(self, event: ConsumedEvent) -> None:
        request = events.unwrap(event.envelope)
        if not isinstance(request, m.PluginRequest):
            logger.warning("not a plugin request; skipped", extra={"event_type": event.envelope.event_type})
            return
        skip = should_answer(request, self._answered, datetime.now(UTC))
        if skip is not None:
            logger.info("plugin request skipped", extra={"request_id": request.request_id, "reason": skip})
            return
        outcome = self._answer(request)
        reply = await outcome if inspect.isawaitable(outcome) else outcome
        reply.request_id, reply.plugin = request.request_id, self.registration.name
        envelope = events.wrap(
            reply,
            conversation_key=event.envelope.conversation_key,
            source=self._source,
            tenant_id=event.envelope.tenant_id,
            causation_id=event.envelope.event_id,
            # Every answer to this request has this id: consumers dedupe on it.
            event_id=events.derived_id(request.request_id, "plugin-reply"),
        )
        await self._producer.send(self.registration.reply_topic, envelope)
        self._answered.add(request.request_id)


async def serve(
    settings: ServiceSettings, registration: m.PluginRegistration, answer: Answer, stop: asyncio.Event
) -> None:
    """Run a plugin until ``stop``: register it, then answer its requests (group = plugin name)."""
    async with ServiceRuntime(settings) as runtime:
        worker = PluginWorker(registration, answer, runtime.producer, settings.service_name)
        consumer = runtime.consumer(
            [registration.request_topic], group_id=f"plugin-{registration.name}", handler=worker.handle
        )
        await runtime.run(
            stop, consumer, ready=[register(runtime.producer, settings.topics.plugin_catalog, registration)]
        )
