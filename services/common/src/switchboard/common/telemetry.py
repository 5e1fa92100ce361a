"""Spans with OpenTelemetry: one per event produced and one per event processed, on every hop.

A service calls :func:`configure` once at start. With an OTLP endpoint, spans are batched
and exported over OTLP/gRPC; without one, OpenTelemetry's no-op tracer is kept and nothing
is recorded, while the W3C trace context still travels with every event as before.

The trace context rides in the envelope (``trace.traceparent``, copied into the record's
``traceparent`` header). Producing an event opens a PRODUCER span, ``send <topic>``, whose
context replaces the envelope's: so the consumer's ``process <topic>`` span (a CONSUMER
span) is the child of the send that made the record, and everything a handler produces is
the child of the processing. The parent of a send is the trace the envelope was made in
(:func:`switchboard.common.events.wrap` writes the current one, or the one of the event it
answers where a batch handler passes it), else the current span. Attribute names follow
OpenTelemetry's messaging conventions (``messaging.system``, ``messaging.destination.name``,
partition, offset, consumer group, message id) plus the conversation key.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from switchboard.common import tracing
from switchboard.events.v1 import envelope_pb2

if TYPE_CHECKING:
    from switchboard.common.kafka.events import ConsumedEvent

logger = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


def configure(
    service_name: str,
    endpoint: str | None,
    sample_ratio: float = 1.0,
    *,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """Export this process's spans to ``endpoint`` (OTLP/gRPC, e.g. ``http://jaeger:4317``),
    or to ``exporter`` (tests); neither: spans stay no-ops. New traces are sampled at
    ``sample_ratio``; a trace started elsewhere keeps its own decision (the sampled flag)."""
    global _provider
    if exporter is None and not endpoint:
        return None
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        assert endpoint  # checked above
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider = provider
    logger.info("tracing to %s", endpoint or type(exporter).__name__, extra={"sample_ratio": sample_ratio})
    return provider


def shutdown() -> None:
    """Export what is pending and stop (at the service's stop)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def _tracer() -> trace.Tracer:
    # The configured provider, else the global one (OpenTelemetry's no-op unless the
    # process set another); never global state a test would have to undo.
    return (_provider or trace.get_tracer_provider()).get_tracer("switchboard")


def _context_of(traceparent: str) -> otel_context.Context | None:
    """The context a span continues from ``traceparent``, None when it is not a valid one."""
    if not tracing.is_valid(traceparent):
        return None
    return _PROPAGATOR.extract({"traceparent": traceparent})


def _unsampled(traceparent: str) -> bool:
    """Whether ``traceparent`` says its trace is not recorded (sampled flag off). Such an
    event gets no span here at all: under it every span would be a no-op anyway (the
    decision is the trace's first service's), and skipping them saves their CPU."""
    return tracing.is_valid(traceparent) and not int(traceparent[53:55], 16) & 1


def traceparent_of(span: Span) -> str | None:
    """``span``'s W3C traceparent, None for a span without a valid context."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
    return carrier.get("traceparent")


def current_traceparent() -> str | None:
    """The traceparent of the current span (a ``process`` span, an HTTP request's), else of
    :data:`switchboard.common.tracing.current_traceparent`; None outside any trace."""
    span = trace.get_current_span()
    if span.get_span_context().is_valid:
        return traceparent_of(span)
    return tracing.current_traceparent.get()


def instrument_http(app: Any) -> None:
    """A SERVER span for every request of the FastAPI ``app`` (health and metrics paths
    left out), continuing the trace of a client's ``traceparent`` header if it sends one;
    what a request handler produces is the child of its request."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=_provider or trace.get_tracer_provider(), excluded_urls="healthz,readyz,metrics"
    )


@contextlib.contextmanager
def producing(topic: str, envelope: envelope_pb2.Envelope) -> Iterator[Span]:
    """A ``send <topic>`` span around sending ``envelope``, whose traceparent it becomes."""
    if _unsampled(envelope.trace.traceparent):
        yield trace.INVALID_SPAN
        return
    parent = _context_of(envelope.trace.traceparent)
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.destination.name": topic,
        "messaging.message.id": envelope.event_id,
        "messaging.kafka.message.key": envelope.conversation_key,
        "switchboard.event_type": envelope.event_type,
    }
    with _tracer().start_as_current_span(
        f"send {topic}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        if (traceparent := traceparent_of(span)) is not None:
            envelope.trace.traceparent = traceparent
        yield span


def _process_attributes(
    envelope: envelope_pb2.Envelope, topic: str, partition: int, offset: int, group: str
) -> dict[str, str | int]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(partition),
        "messaging.kafka.offset": offset,
        "messaging.consumer.group.name": group,
        "messaging.message.id": envelope.event_id,
        "switchboard.conversation_key": envelope.conversation_key,
        "switchboard.event_type": envelope.event_type,
    }


@contextlib.contextmanager
def consuming(envelope: envelope_pb2.Envelope, topic: str, partition: int, offset: int, group: str) -> Iterator[Span]:
    """A ``process <topic>`` span for the record at ``partition``/``offset`` holding
    ``envelope``: the child of the send that made it, current (and its traceparent
    :data:`switchboard.common.tracing.current_traceparent`) while the handler runs, so that
    what the handler logs and produces belongs to it."""
    if _unsampled(envelope.trace.traceparent):
        # No span of its own, but its context is current: a span the handler starts (a model
        # call) is an unsampled child of it, not the root of a new trace.
        parent = _context_of(envelope.trace.traceparent)
        assert parent is not None  # a valid traceparent: _unsampled checked it
        attached = otel_context.attach(parent)
        token = tracing.current_traceparent.set(envelope.trace.traceparent)
        try:
            yield trace.INVALID_SPAN
        finally:
            tracing.current_traceparent.reset(token)
            otel_context.detach(attached)
        return
    with _tracer().start_as_current_span(
        f"process {topic}",
        context=_context_of(envelope.trace.traceparent),
        kind=SpanKind.CONSUMER,
        attributes=_process_attributes(envelope, topic, partition, offset, group),
    ) as span:
        token = tracing.current_traceparent.set(traceparent_of(span) or envelope.trace.traceparent or None)
        try:
            yield span
        finally:
            tracing.current_traceparent.reset(token)


@contextlib.contextmanager
def consuming_batch(events: list[ConsumedEvent], group: str) -> Iterator[Span]:
    """One ``process batch`` span for a batch handler's call, linked to each event's send;
    when the call ends, each event also gets a ``process <topic>`` span in its own trace
    (the child of its send, as long as the call, linked to the batch span), so that every
    message's trace shows the services that handled it in batches too."""
    tracer = _tracer()
    links = []
    # The events of recorded traces (the others get no span; see _unsampled).
    recorded = [event for event in events if not _unsampled(event.envelope.trace.traceparent)]
    for event in recorded:
        parent = _context_of(event.envelope.trace.traceparent)
        if parent is not None:
            links.append(trace.Link(trace.get_current_span(parent).get_span_context()))
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.batch.message_count": len(events),
        "messaging.consumer.group.name": group,
    }
    with tracer.start_as_current_span(
        "process batch", kind=SpanKind.CONSUMER, links=links, attributes=attributes
    ) as batch:
        started = time.time_ns()
        try:
            yield batch
        finally:
            if batch.is_recording() or links:
                for event in recorded:
                    span = tracer.start_span(
                        f"process {event.topic}",
                        context=_context_of(event.envelope.trace.traceparent),
                        kind=SpanKind.CONSUMER,
                        attributes=_process_attributes(
                            event.envelope, event.topic, event.partition, event.offset, group
                        ),
                        links=[trace.Link(batch.get_span_context())],
                        start_time=started,
                    )
                    span.end()


@contextlib.contextmanager
def model_call(model: str, system: str, max_tokens: int) -> Iterator[Span]:
    """A ``chat <model>`` CLIENT span around one call of a model (OpenTelemetry's GenAI
    conventions: ``gen_ai.operation.name``, ``gen_ai.system``, ``gen_ai.request.model``,
    ``gen_ai.request.max_tokens``; the caller adds usage, finish reason and the time to the
    first chunk). A failure is recorded on the span as it leaves."""
    attributes: dict[str, str | int] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": system,
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": max_tokens,
    }
    with _tracer().start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes) as span:
        yield span
