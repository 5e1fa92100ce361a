"""Names of the Kafka record headers Switchboard sets, and conversions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from switchboard.events.v1 import envelope_pb2

EVENT_ID: Final = "event_id"
EVENT_TYPE: Final = "event_type"
SCHEMA_VERSION: Final = "schema_version"
TRACEPARENT: Final = "traceparent"

# Set on dead-letter records, next to the original headers.
DLQ_CAUSE: Final = "dlq.cause"
DLQ_SOURCE_TOPIC: Final = "dlq.source.topic"
DLQ_SOURCE_PARTITION: Final = "dlq.source.partition"
DLQ_SOURCE_OFFSET: Final = "dlq.source.offset"

Headers = list[tuple[str, bytes]]


def for_envelope(envelope: envelope_pb2.Envelope) -> Headers:
    """Headers that repeat the envelope's routing and tracing fields."""
    return [
        (EVENT_ID, envelope.event_id.encode()),
        (EVENT_TYPE, envelope.event_type.encode()),
        (SCHEMA_VERSION, str(envelope.schema_version).encode()),
        (TRACEPARENT, envelope.trace.traceparent.encode()),
    ]


def get(headers: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    """The value of header ``name`` decoded as UTF-8 (the last one wins), or None."""
    value = None
    for key, raw in headers or ():
        if key == name:
            value = raw.decode("utf-8", errors="replace")
    return value


def for_dead_letter(
    original: Sequence[tuple[str, bytes]] | None, cause: str, topic: str, partition: int, offset: int
) -> Headers:
    """The original record's headers plus why it was dead-lettered and where it came from."""
    return [
        *(original or ()),
        (DLQ_CAUSE, cause.encode()),
        (DLQ_SOURCE_TOPIC, topic.encode()),
        (DLQ_SOURCE_PARTITION, str(partition).encode()),
        (DLQ_SOURCE_OFFSET, str(offset).encode()),
    ]
