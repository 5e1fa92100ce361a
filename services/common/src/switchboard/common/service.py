"""The parts every service runs: health, metrics, a producer, consumers, and their order.

    async def serve(settings: Settings, stop: asyncio.Event) -> None:
        async with ServiceRuntime(settings) as runtime:
            consumer = runtime.consumer([settings.topics.intents], group_id="scheduler", handler=...)
            await runtime.run(stop, consumer)

``run`` reports SERVING once every consumer has joined its group, and on ``stop``
reports NOT_SERVING, lets each consumer finish and commit its batch in flight, then
stops everything in reverse order of start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from types import TracebackType
from typing import Any

from switchboard.common.config import ServiceSettings
from switchboard.common.health import HealthServer
from switchboard.common.kafka import BatchHandler, EventConsumer, EventProducer, Handler
from switchboard.common.lifecycle import drain, until_stopped
from switchboard.common.metrics import MetricsServer

logger = logging.getLogger(__name__)


class ServiceRuntime:
    """Health server, metrics endpoint and Kafka producer of one service process."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.health = HealthServer(settings.health_host, settings.health_port, services=(settings.service_name,))
        self.metrics = MetricsServer(settings.metrics_host, settings.metrics_port) if settings.metrics_port else None
        self.producer = EventProducer(settings.kafka)

    async def __aenter__(self) -> ServiceRuntime:
        if self.metrics:
            self.metrics.start()
        await self.health.start()
        await self.producer.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.health.set_not_serving()
        # Bounded: with Kafka unreachable a flush would wait for ever; unsent records are
        # the ones whose offsets were never committed, so they are redelivered.
        await drain(self.producer.stop(), self.settings.drain_timeout_s)
        await self.health.stop()
        if self.metrics:
            self.metrics.stop()

    def consumer(
        self,
        topics: Sequence[str],
        *,
        group_id: str,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        **overrides: Any,
    ) -> EventConsumer:
        """A consumer in ``group_id`` that dead-letters to the service's dead-letter topic."""
        return EventConsumer(
            self.settings.kafka,
            topics=topics,
            group_id=group_id,
            handler=handler,
            batch_handler=batch_handler,
            dead_letter_producer=self.producer,
            dead_letter_topic=self.settings.topics.deadletter,
            **overrides,
        )

    async def run(
        self,
        stop: asyncio.Event,
        *consumers: EventConsumer,
        background: Sequence[Awaitable[None]] = (),
        ready: Sequence[Awaitable[object]] = (),
    ) -> None:
        """Run ``consumers`` (and ``background`` work) until ``stop`` is set, then drain.

        The service reports SERVING once every one of ``ready`` is done (e.g. the MQTT
        subscription is up), so nothing is sent to it before it can take it.
        """
        for consumer in consumers:
            await consumer.start()
        tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
        tasks += [asyncio.ensure_future(work) for work in background]
        if ready:
            # Not before ``ready``, but neither past a stop nor past a task that ended early.
            all_ready: asyncio.Future[Any] = asyncio.gather(*ready)
            await until_stopped(stop, all_ready, *tasks)
            all_ready.cancel()
        await self.health.set_serving()
        logger.info("serving", extra={"service": self.settings.service_name})
        done = await until_stopped(stop, *tasks)
        failed = [t for t in done if t.exception() is not None]
        stop.set()
        await self.health.set_not_serving()
        await drain(asyncio.gather(*tasks, return_exceptions=True), self.settings.drain_timeout_s)
        for consumer in reversed(consumers):
            await drain(consumer.stop(), self.settings.drain_timeout_s)
        if failed:
            raise RuntimeError(f"{self.settings.service_name} stopped on an error") from failed[0].exception()
