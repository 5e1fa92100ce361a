import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from switchboard.common import events, tracing
from switchboard.events.v1 import envelope_pb2, messages_pb2


def _inbound() -> messages_pb2.InboundMessage:
    return messages_pb2.InboundMessage(message_id="m-1", channel=messages_pb2.CHANNEL_HTTP, text="hello")


def test_wrap_fills_bookkeeping_and_round_trips() -> None:
    envelope = events.wrap(_inbound(), conversation_key="conv-1", source="test", tenant_id="acme")
    assert envelope.event_type == "InboundMessage"
    assert envelope.schema_version == events.SCHEMA_VERSION
    assert envelope.conversation_key == "conv-1" and envelope.tenant_id == "acme" and envelope.source == "test"
    assert envelope.produced_at.seconds > 0 and envelope.occurred_at == envelope.produced_at
    assert tracing.is_valid(envelope.trace.traceparent)

    decoded = envelope_pb2.Envelope.FromString(envelope.SerializeToString())
    assert events.unwrap(decoded) == _inbound()


def test_event_ids_are_unique() -> None:
    ids = {events.wrap(_inbound(), conversation_key="c", source="t").event_id for _ in range(100)}
    assert len(ids) == 100


def test_wrap_uses_current_trace_context() -> None:
    parent = tracing.new_traceparent()
    token = tracing.current_traceparent.set(parent)
    try:
        assert events.wrap(_inbound(), conversation_key="c", source="t").trace.traceparent == parent
    finally:
        tracing.current_traceparent.reset(token)


def test_explicit_occurred_at_is_kept() -> None:
    occurred = Timestamp(seconds=1_700_000_000)
    envelope = events.wrap(_inbound(), conversation_key="c", source="t", occurred_at=occurred)
    assert envelope.occurred_at == occurred and envelope.produced_at != occurred


def test_every_payload_type_can_be_wrapped() -> None:
    payloads = [
        messages_pb2.InboundMessage(),
        messages_pb2.ParsedIntent(),
        messages_pb2.InferenceRequest(),
        messages_pb2.InferenceChunk(),
        messages_pb2.InferenceResult(),
        messages_pb2.OutboundMessage(),
        messages_pb2.DeviceCommand(),
        messages_pb2.AuditEvent(),
    ]
    for payload in payloads:
        envelope = events.wrap(payload, conversation_key="c", source="t")
        assert envelope.WhichOneof("payload") is not None
        assert type(events.unwrap(envelope)) is type(payload)


def test_foreign_messages_and_empty_envelopes_are_rejected() -> None:
    with pytest.raises(events.UnknownPayloadError):
        events.wrap(messages_pb2.Slot(), conversation_key="c", source="t")
    with pytest.raises(ValueError, match="no payload"):
        events.unwrap(envelope_pb2.Envelope(event_id="e"))
