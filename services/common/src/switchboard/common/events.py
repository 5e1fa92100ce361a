"""Building and reading :class:`~switchboard.events.v1.envelope_pb2.Envelope` values.

Every Kafka value in Switchboard is a serialized Envelope whose ``payload`` oneof holds
exactly one event message. These helpers fill the envelope's bookkeeping fields the same
way in every service.
"""

from __future__ import annotations

import uuid
from typing import Final

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from switchboard.common import telemetry, tracing
from switchboard.events.v1 import envelope_pb2

SCHEMA_VERSION: Final = 1

# Payload message name -> name of its field in the Envelope's oneof.
_PAYLOAD_FIELDS: Final[dict[str, str]] = {
    field.message_type.name: field.name for field in envelope_pb2.Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields
}


class UnknownPayloadError(TypeError):
    """The message type is not one the Envelope can carry."""


def wrap(
    payload: Message,
    *,
    conversation_key: str,
    source: str,
    tenant_id: str = "default",
    traceparent: str | None = None,
    causation_id: str = "",
    occurred_at: Timestamp | None = None,
    event_id: str | None = None,
) -> envelope_pb2.Envelope:
    """Put ``payload`` in a new Envelope with a fresh event id and timestamps.

    ``event_id`` replaces the fresh id where an event must keep its id when it is produced
    again (see :func:`derived_id`).

    The trace context is, in order of preference, ``traceparent``, the current one
    (:func:`switchboard.common.telemetry.current_traceparent`: the current span's) or a new trace.
    """
    event_type = payload.DESCRIPTOR.name
    field = _PAYLOAD_FIELDS.get(event_type)
    if field is None:
        raise UnknownPayloadError(f"{event_type} cannot be carried in an Envelope")
    now = Timestamp()
    now.GetCurrentTime()
    envelope = envelope_pb2.Envelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type,
        schema_version=SCHEMA_VERSION,
        produced_at=now,
        occurred_at=occurred_at if occurred_at is not None else now,
        trace=envelope_pb2.TraceContext(
            traceparent=traceparent or telemetry.current_traceparent() or tracing.new_traceparent()
        ),
        tenant_id=tenant_id,
        conversation_key=conversation_key,
        source=source,
        causation_id=causation_id,
    )
    getattr(envelope, field).CopyFrom(payload)
    return envelope


def derived_id(cause_event_id: str, role: str) -> str:
    """A stable event id for the ``role`` event caused by ``cause_event_id``.

    A consumer that processes a record again after a crash (at-least-once) produces the
    same ids, so the consumers downstream, which dedupe on event id, see no duplicate.
    """
    return str(uuid.uuid5(uuid.UUID(int=0), f"{cause_event_id}/{role}"))


def unwrap(envelope: envelope_pb2.Envelope) -> Message:
    """The payload message carried by ``envelope``.

    Raises:
        ValueError: the envelope carries no payload.
    """
    field = envelope.WhichOneof("payload")
    if field is None:
        raise ValueError(f"envelope {envelope.event_id or '?'} has no payload")
    message: Message = getattr(envelope, field)
    return message
