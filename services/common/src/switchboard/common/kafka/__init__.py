"""Kafka producer and consumer with Switchboard's delivery guarantees.

* :class:`EventProducer`: idempotent, ``acks=all``, every record keyed by conversation
  and carrying event headers.
* :class:`EventConsumer`: at-least-once; offsets are committed only after the handler
  returned; undecodable or repeatedly failing records go to a dead-letter topic with
  their cause, and consumption goes on.
"""

from switchboard.common.kafka.consumer import EventConsumer
from switchboard.common.kafka.events import (
    BatchHandler,
    ConsumedEvent,
    Handler,
    Rejection,
    UndecodableRecordError,
    decode,
)
from switchboard.common.kafka.headers import (
    DLQ_CAUSE,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    EVENT_ID,
    EVENT_TYPE,
    SCHEMA_VERSION,
    TRACEPARENT,
)
from switchboard.common.kafka.producer import EventProducer

__all__ = [
    "DLQ_CAUSE",
    "DLQ_SOURCE_OFFSET",
    "DLQ_SOURCE_PARTITION",
    "DLQ_SOURCE_TOPIC",
    "EVENT_ID",
    "EVENT_TYPE",
    "SCHEMA_VERSION",
    "TRACEPARENT",
    "BatchHandler",
    "ConsumedEvent",
    "EventConsumer",
    "EventProducer",
    "Handler",
    "Rejection",
    "UndecodableRecordError",
    "decode",
]
