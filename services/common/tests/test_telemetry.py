"""Spans per produce and per process, and the trace context they hand on (telemetry.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from switchboard.common import events, telemetry, tracing
from switchboard.common.kafka.events import ConsumedEvent
from switchboard.events.v1 import messages_pb2 as m


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = telemetry.configure("test-service", None, exporter=exporter)
    assert provider is not None
    yield exporter
    telemetry.shutdown()


def _finished(exporter: InMemorySpanExporter) -> list:  # type: ignore[type-arg]
    telemetry._provider.force_flush()  # type: ignore[union-attr]
    return list(exporter.get_finished_spans())


def _message(traceparent: str | None = None) -> events.envelope_pb2.Envelope:
    inbound = m.InboundMessage(message_id="m-1", channel=m.CHANNEL_HTTP, channel_chat_id="c-1", text="hi")
    return events.wrap(inbound, conversation_key="c-1", source="test", traceparent=traceparent)


def _span_id(traceparent: str) -> str:
    return traceparent[36:52]


def test_without_an_endpoint_nothing_is_recorded_and_the_context_travels_as_it_was() -> None:
    assert telemetry.configure("test-service", None) is None
    envelope = _message()
    before = envelope.trace.traceparent
    with telemetry.producing("t", envelope):
        pass
    assert envelope.trace.traceparent == before
    with telemetry.consuming(envelope, "t", 0, 7, "group"):
        assert tracing.current_traceparent.get() == before
    assert tracing.current_traceparent.get() is None


def test_a_send_is_a_producer_span_in_the_envelopes_trace_and_becomes_its_context(
    spans: InMemorySpanExporter,
) -> None:
    envelope = _message()
    upstream = envelope.trace.traceparent
    with telemetry.producing("switchboard.inbound.v1", envelope):
        pass
    (send,) = _finished(spans)
    assert send.name == "send switchboard.inbound.v1" and send.kind is SpanKind.PRODUCER
    assert send.attributes["messaging.system"] == "kafka"
    assert send.attributes["messaging.destination.name"] == "switchboard.inbound.v1"
    assert send.attributes["messaging.message.id"] == envelope.event_id
    assert f"{send.context.trace_id:032x}" == tracing.trace_id(upstream)
    assert f"{send.parent.span_id:016x}" == _span_id(upstream)  # the trace it was made in
    assert envelope.trace.traceparent == f"00-{send.context.trace_id:032x}-{send.context.span_id:016x}-01"


def test_processing_is_the_child_of_the_send_and_what_it_produces_the_child_of_the_processing(
    spans: InMemorySpanExporter,
) -> None:
    envelope = _message()
    with telemetry.producing("in", envelope):
        pass
    with telemetry.consuming(envelope, "in", 3, 42, "scheduler"):
        inside = tracing.current_traceparent.get()
        answer = events.wrap(m.InboundMessage(text="reply"), conversation_key="c-1", source="test")
        with telemetry.producing("out", answer):
            pass
    finished = {span.name: span for span in _finished(spans)}
    send_in, process, send_out = finished["send in"], finished["process in"], finished["send out"]
    assert process.name == "process in" and process.kind is SpanKind.CONSUMER
    assert process.attributes["messaging.destination.partition.id"] == "3"
    assert process.attributes["messaging.kafka.offset"] == 42
    assert process.attributes["messaging.consumer.group.name"] == "scheduler"
    assert process.attributes["switchboard.conversation_key"] == "c-1"
    assert process.parent.span_id == send_in.context.span_id
    assert inside is not None and _span_id(inside) == f"{process.context.span_id:016x}"
    assert send_out.name == "send out" and send_out.parent.span_id == process.context.span_id
    assert len({s.context.trace_id for s in (send_in, process, send_out)}) == 1
    assert tracing.current_traceparent.get() is None


def test_a_batch_is_one_span_linked_to_each_events_send(spans: InMemorySpanExporter) -> None:
    envelopes = [_message(), _message()]
    for envelope in envelopes:
        with telemetry.producing("intents", envelope):
            pass
    consumed = [ConsumedEvent(e, "intents", 0, i, None, []) for i, e in enumerate(envelopes)]
    with telemetry.consuming_batch(consumed, "scheduler"):
        pass
    finished = _finished(spans)
    sends = [s for s in finished if s.kind is SpanKind.PRODUCER]
    (batch,) = [s for s in finished if s.name == "process batch"]
    assert batch.attributes["messaging.batch.message_count"] == 2
    assert {link.context.span_id for link in batch.links} == {s.context.span_id for s in sends}
    # Each event's own trace shows its processing too: a child of its send, linked to the batch.
    each = [s for s in finished if s.name == "process intents"]
    assert sorted((s.parent.span_id, s.context.trace_id) for s in each) == sorted(
        (s.context.span_id, s.context.trace_id) for s in sends
    )
    assert all(s.links[0].context.span_id == batch.context.span_id for s in each)
    assert sorted(s.attributes["messaging.kafka.offset"] for s in each) == [0, 1]


def test_new_traces_are_sampled_at_the_ratio_and_upstream_decisions_are_kept() -> None:
    exporter = InMemorySpanExporter()
    telemetry.configure("test-service", None, 0.0, exporter=exporter)
    try:
        fresh = _message("00-" + "1" * 32 + "-" + "2" * 16 + "-00")  # upstream: not sampled
        sampled = _message("00-" + "3" * 32 + "-" + "4" * 16 + "-01")  # upstream: sampled
        for envelope in (fresh, sampled):
            with telemetry.producing("t", envelope):
                pass
        recorded = _finished(exporter)
        assert [f"{s.context.trace_id:032x}" for s in recorded] == ["3" * 32]
        assert fresh.trace.traceparent.endswith("-00")  # the decision travels on
    finally:
        telemetry.shutdown()


def test_an_unsampled_event_gets_no_span_and_hands_its_context_on_unchanged(spans: InMemorySpanExporter) -> None:
    unsampled = "00-" + "5" * 32 + "-" + "6" * 16 + "-00"
    envelope = _message(unsampled)
    with telemetry.consuming(envelope, "t", 0, 7, "group") as span:
        assert not span.get_span_context().is_valid
        assert telemetry.current_traceparent() == unsampled  # what it logs and produces carries it
        produced = _message()
        assert produced.trace.traceparent == unsampled
        with telemetry.producing("t", produced):
            pass
        assert produced.trace.traceparent == unsampled
        with telemetry.model_call("m", "triton", 8) as call:  # a span the handler starts
            assert not call.is_recording()  # an unsampled child, not a new trace's root
    sampled = _message("00-" + "7" * 32 + "-" + "8" * 16 + "-01")
    batch = [ConsumedEvent(e, "t", 0, i, b"c", []) for i, e in enumerate((_message(unsampled), sampled))]
    with telemetry.consuming_batch(batch, "group"):
        pass
    recorded = _finished(spans)
    assert "5" * 32 not in {f"{s.context.trace_id:032x}" for s in recorded}  # nothing of the unsampled trace
    (batch_span,) = [s for s in recorded if s.name == "process batch"]
    assert [f"{link.context.trace_id:032x}" for link in batch_span.links] == ["7" * 32]
    assert batch_span.attributes["messaging.batch.message_count"] == 2


def test_an_http_request_is_a_server_span_continuing_the_clients_trace(spans: InMemorySpanExporter) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    api = FastAPI()
    telemetry.instrument_http(api)

    @api.post("/v1/messages")
    async def post() -> dict[str, str]:
        return {"traceparent": _message().trace.traceparent}

    client_trace = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    made = TestClient(api).post("/v1/messages", headers={"traceparent": client_trace}).json()["traceparent"]
    (server,) = [s for s in _finished(spans) if s.kind is SpanKind.SERVER]
    assert f"{server.context.trace_id:032x}" == "a" * 32 and f"{server.parent.span_id:016x}" == "b" * 16
    assert made == f"00-{'a' * 32}-{server.context.span_id:016x}-01"  # the event is the request's child


def test_a_model_call_is_a_client_span_with_the_genai_attributes_and_its_failure(spans: InMemorySpanExporter) -> None:
    with telemetry.model_call("smollm2", "triton", 200) as span:
        span.set_attribute("gen_ai.usage.output_tokens", 12)
    with pytest.raises(TimeoutError), telemetry.model_call("smollm2", "triton", 200):
        raise TimeoutError
    ok, failed = sorted(_finished(spans), key=lambda s: s.start_time)
    assert ok.name == "chat smollm2" and ok.kind is SpanKind.CLIENT
    assert ok.attributes["gen_ai.request.model"] == "smollm2" and ok.attributes["gen_ai.system"] == "triton"
    assert ok.attributes["gen_ai.request.max_tokens"] == 200 and ok.attributes["gen_ai.usage.output_tokens"] == 12
    assert not failed.status.is_ok and failed.events[0].name == "exception"
