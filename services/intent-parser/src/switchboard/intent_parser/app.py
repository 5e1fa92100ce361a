"""The Faust app: inbound topic -> parse -> intents topic, keyed by conversation."""

from __future__ import annotations

import logging
from typing import Any

import faust
import mode
from google.protobuf.message import DecodeError

from switchboard.common import events, tracing
from switchboard.common.health import HealthServer
from switchboard.common.kafka import headers as hdr
from switchboard.common.metrics import DEAD_LETTERED, EVENTS_CONSUMED, EVENTS_PRODUCED, MetricsServer
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.intent_parser import handlers
from switchboard.intent_parser.config import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    """A Faust app wired to the topics in ``settings``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka.bootstrap_servers.split(",")],
        value_serializer="raw",
        key_serializer="raw",
        producer_acks=-1,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        store="memory://",
        datadir=str(settings.data_dir / settings.app_id),
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    inbound = app.topic(settings.topics.inbound, **raw)
    intents = app.topic(settings.topics.intents, **raw)
    deadletter = app.topic(settings.topics.deadletter, **raw)

    @app.agent(inbound)
    async def parse(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await _handle(event, settings, intents, deadletter)

    return app


async def _handle(event: Any, settings: Settings, intents: faust.TopicT, deadletter: faust.TopicT) -> None:
    headers = list(event.headers.items()) if isinstance(event.headers, dict) else list(event.headers or [])
    envelope = envelope_pb2.Envelope()
    try:
        envelope.ParseFromString(event.value or b"")
        message = events.unwrap(envelope)
        if not isinstance(message, m.InboundMessage):
            raise ValueError(f"expected InboundMessage, got {envelope.event_type}")
    except (DecodeError, ValueError) as exc:
        cause = f"undecodable or unexpected value: {exc}"
        logger.error("record dead-lettered", extra={"cause": cause, "offset": event.message.offset})
        await deadletter.send(
            key=event.key,
            value=event.value,
            headers=hdr.for_dead_letter(
                headers, cause, event.message.topic, event.message.partition, event.message.offset
            ),
        )
        DEAD_LETTERED.labels(topic=event.message.topic, reason="undecodable").inc()
        return
    token = tracing.current_traceparent.set(envelope.trace.traceparent or None)
    try:
        parsed = handlers.parse(message)
        out = events.wrap(
            parsed,
            conversation_key=envelope.conversation_key,
            source=settings.service_name,
            tenant_id=envelope.tenant_id,
            causation_id=envelope.event_id,
        )
        await intents.send(
            key=out.conversation_key.encode(), value=out.SerializeToString(), headers=hdr.for_envelope(out)
        )
        EVENTS_CONSUMED.labels(topic=event.message.topic, event_type=envelope.event_type).inc()
        EVENTS_PRODUCED.labels(topic=settings.topics.intents, event_type=out.event_type).inc()
    finally:
        tracing.current_traceparent.reset(token)


class Probes(mode.Service):
    """grpc.health.v1 and /metrics, started and stopped with the Faust worker.

    Ready (SERVING) only once the worker has been through its first rebalance and holds
    its partitions: faust-streaming can skip records fetched while a rebalance is in
    progress (faust-streaming#216/#221), so load is best sent to a settled group.
    """

    def __init__(self, app: faust.App, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._app = app
        self._health = HealthServer(settings.health_host, settings.health_port, services=(settings.service_name,))
        self._metrics = MetricsServer(settings.metrics_host, settings.metrics_port) if settings.metrics_port else None

    async def on_start(self) -> None:
        if self._metrics:
            self._metrics.start()
        await self._health.start()

    @mode.Service.task
    async def _report_ready(self) -> None:
        while self._app.rebalancing or self._app.rebalancing_count == 0:
            await self.sleep(0.1)
        await self._health.set_serving()

    async def on_stop(self) -> None:
        await self._health.set_not_serving()
        await self._health.stop()
        if self._metrics:
            self._metrics.stop()
