"""What a consumer makes of a polled record, and what it hands to a service's handler.

:func:`decode` turns a record into a :class:`ConsumedEvent`, or raises
:class:`UndecodableRecordError` saying why it is not one; a batch handler may answer with
:class:`Rejection` s. Also the shapes of the handlers a service gives the consumer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.structs import ConsumerRecord
from google.protobuf.message import DecodeError

from switchboard.events.v1 import envelope_pb2


@dataclass(frozen=True, slots=True)
class ConsumedEvent:
    """A decoded record as handed to a handler."""

    envelope: envelope_pb2.Envelope
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: Sequence[tuple[str, bytes]]
    # What the consumer's ``prepare`` hook made of the event as soon as it was polled
    # (e.g. the audit logger's document), or None.
    prepared: Any = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event of a batch its handler could not take (e.g. it cannot be mapped): it is
    dead-lettered with ``cause`` while the rest of the batch counts as handled."""

    event: ConsumedEvent
    cause: str
    reason: str = "rejected"


class UndecodableRecordError(ValueError):
    """A record whose value is not an Envelope carrying a payload."""

    def __init__(self, cause: str, reason: str) -> None:
        super().__init__(cause)
        self.cause = cause
        self.reason = reason  # short label for metrics: undecodable, no_payload


def decode(record: ConsumerRecord[bytes, bytes]) -> ConsumedEvent:
    """The record as an event; UndecodableRecordError says why it is not one."""
    envelope = envelope_pb2.Envelope()
    try:
        envelope.ParseFromString(record.value or b"")
    except DecodeError as exc:
        raise UndecodableRecordError(f"undecodable value: {exc}", "undecodable") from exc
    if envelope.WhichOneof("payload") is None:
        raise UndecodableRecordError("envelope carries no payload", "no_payload")
    return ConsumedEvent(
        envelope=envelope,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        headers=list(record.headers or ()),
    )


Handler = Callable[[ConsumedEvent], Awaitable[None]]
BatchHandler = Callable[[list[ConsumedEvent]], Awaitable[Sequence[Rejection] | None]]
# Work done on each event of a batch handler's as soon as it is polled, while the batch
# before it is still being handled (CPU work, e.g. building a document); must not raise.
Prepare = Callable[[ConsumedEvent], Any]
# A polled record, and the event it decodes to (or why it does not).
Decoded = tuple[ConsumerRecord[bytes, bytes], "ConsumedEvent | UndecodableRecordError"]
