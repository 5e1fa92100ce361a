"""Envelope -> Elasticsearch document (ECS field names plus Switchboard's own), and the
index template that maps them. No I/O."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict

from switchboard.common import events, tracing
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m


def message_id_of(payload: Any) -> str:
    """The inbound message an event belongs to (what analysts group by)."""
    if isinstance(payload, m.ParsedIntent):
        return str(payload.message.message_id)
    if isinstance(payload, m.OutboundMessage | m.DeviceCommand):
        return str(payload.in_reply_to)
    return str(getattr(payload, "message_id", ""))


def document(envelope: envelope_pb2.Envelope) -> dict[str, Any]:
    """The audit document of one event; its id is the event id."""
    payload = events.unwrap(envelope)
    doc: dict[str, Any] = {
        "@timestamp": envelope.occurred_at.ToJsonString(),
        "event": {
            "id": envelope.event_id,
            "action": envelope.event_type,
            "kind": "event",
            "dataset": "switchboard.audit",
            "created": envelope.produced_at.ToJsonString(),
        },
        "service": {"name": envelope.source},
        "labels": {"tenant": envelope.tenant_id, "schema_version": str(envelope.schema_version)},
        "switchboard": {
            "conversation": envelope.conversation_key,
            "message_id": message_id_of(payload),
            "causation_id": envelope.causation_id,
            "payload": MessageToDict(payload, preserving_proto_field_name=True),
        },
    }
    trace = tracing.trace_id(envelope.trace.traceparent)
    if trace:
        doc["trace"] = {"id": trace}
    text = getattr(payload, "text", "") or (payload.message.text if isinstance(payload, m.ParsedIntent) else "")
    if text:
        doc["message"] = text
    if isinstance(payload, m.ParsedIntent):
        doc["switchboard"]["intent"] = payload.intent
    if isinstance(payload, m.InferenceResult):
        doc["switchboard"]["model"] = payload.model_name
        doc["switchboard"]["latency_ms"] = payload.latency_ms
    return doc


def index_template(data_stream_pattern: str) -> dict[str, Any]:
    """Composable index template for the audit data stream."""
    keyword = {"type": "keyword"}
    return {
        "index_patterns": [data_stream_pattern],
        "data_stream": {},
        "priority": 200,
        "template": {
            "settings": {"number_of_replicas": 0},
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "@timestamp": {"type": "date"},
                    "message": {"type": "text"},
                    "event": {
                        "properties": {
                            "id": keyword,
                            "action": keyword,
                            "kind": keyword,
                            "dataset": keyword,
                            "created": {"type": "date"},
                        }
                    },
                    "service": {"properties": {"name": keyword}},
                    "trace": {"properties": {"id": keyword}},
                    "labels": {"properties": {"tenant": keyword, "schema_version": keyword}},
                    "switchboard": {
                        "properties": {
                            "conversation": keyword,
                            "message_id": keyword,
                            "causation_id": keyword,
                            "intent": keyword,
                            "model": keyword,
                            "latency_ms": {"type": "long"},
                            "payload": {"type": "flattened"},
                        }
                    },
                },
            },
        },
    }
