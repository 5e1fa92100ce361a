"""The consumer's dead-letter topic: where records go that cannot be handled.

A record is sent there as it was polled (value, key and headers untouched) plus headers
saying why (``dlq.cause``) and where it came from, so that it can be looked into and
replayed; consumption goes on past it.
"""

from __future__ import annotations

import logging

from aiokafka.structs import ConsumerRecord

from switchboard.common.kafka import headers as hdr
from switchboard.common.kafka.producer import EventProducer
from switchboard.common.metrics import DEAD_LETTERED

logger = logging.getLogger(__name__)


class DeadLetters:
    """Sends records to ``topic`` with ``producer``."""

    def __init__(self, producer: EventProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send(self, record: ConsumerRecord[bytes, bytes], cause: str, reason: str) -> None:
        """Dead-letter ``record`` with ``cause``; ``reason`` is its short label in the metric."""
        headers = hdr.for_dead_letter(record.headers, cause, record.topic, record.partition, record.offset)
        # If this send fails the exception propagates and the offset stays uncommitted:
        # the record is redelivered rather than lost.
        await self._producer.send_raw(self._topic, record.value, record.key, headers)
        DEAD_LETTERED.labels(topic=record.topic, reason=reason).inc()
        logger.error(
            "record dead-lettered",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset, "cause": cause},
        )
