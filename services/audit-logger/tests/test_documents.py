from switchboard.audit_logger import documents
from switchboard.common import events
from switchboard.events.v1 import messages_pb2 as m


def _fields(mapping: dict[str, object], prefix: str = "") -> set[str]:
    out = set()
    for name, spec in mapping.items():
        assert isinstance(spec, dict)
        if "properties" in spec:
            out |= _fields(spec["properties"], f"{prefix}{name}.")  # type: ignore[arg-type]
        else:
            out.add(prefix + name)
    return out


def _doc_fields(doc: dict[str, object], prefix: str = "") -> set[str]:
    out = set()
    for name, value in doc.items():
        if isinstance(value, dict) and name != "payload":
            out |= _doc_fields(value, f"{prefix}{name}.")
        else:
            out.add(prefix + name)
    return out


def test_every_event_type_maps_onto_the_strict_template() -> None:
    mapped = _fields(documents.index_template("logs-x-*")["template"]["mappings"]["properties"])
    message = m.InboundMessage(message_id="m-1", text="hi")
    payloads = [
        message,
        m.ParsedIntent(message=message, intent="chat"),
        m.InferenceRequest(message_id="m-1"),
        m.InferenceChunk(message_id="m-1", text="h"),
        m.InferenceResult(message_id="m-1", model_name="smollm2", latency_ms=12),
        m.OutboundMessage(in_reply_to="m-1", text="hello"),
        m.DeviceCommand(in_reply_to="m-1", device_id="lamp"),
        m.AuditEvent(action="input.blocked"),
    ]
    for payload in payloads:
        envelope = events.wrap(payload, conversation_key="c-1", source="test")
        doc = documents.document(envelope)
        assert _doc_fields(doc) <= mapped, payload.DESCRIPTOR.name
        assert doc["event"]["id"] == envelope.event_id  # type: ignore[index]
        if not isinstance(payload, m.AuditEvent):
            assert doc["switchboard"]["message_id"] == "m-1", payload.DESCRIPTOR.name  # type: ignore[index]


def test_result_fields_for_analysts() -> None:
    envelope = events.wrap(
        m.InferenceResult(message_id="m", model_name="smollm2", latency_ms=42), conversation_key="c", source="t"
    )
    doc = documents.document(envelope)
    assert doc["switchboard"]["model"] == "smollm2" and doc["switchboard"]["latency_ms"] == 42  # type: ignore[index]
    assert len(doc["trace"]["id"]) == 32  # type: ignore[index]
