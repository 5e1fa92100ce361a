"""Handing records to a service's handler once their turn comes.

:class:`EventHandling` hands over one event at a time, inside its ``process`` span
(:mod:`switchboard.common.telemetry`);
:class:`BatchHandling` hands over a whole batch and, when it keeps failing, splits it in
halves so that only the events that fail alone are dead-lettered (each call inside a
``process batch`` span linked to its events' sends). Both retry failures
with the one :class:`~switchboard.common.kafka.retries.RetryPolicy`, dead-letter what
does not decode or still fails, and count what was consumed. When a record's turn comes
(key order, batch order) is the consumer's business.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from switchboard.common import telemetry
from switchboard.common.kafka.dead_letter import DeadLetters
from switchboard.common.kafka.events import (
    BatchHandler,
    ConsumedEvent,
    Decoded,
    Handler,
    Prepare,
    UndecodableRecordError,
    decode,
)
from switchboard.common.kafka.retries import RetryPolicy
from switchboard.common.metrics import EVENTS_CONSUMED

logger = logging.getLogger(__name__)


class EventHandling:
    """Hands events to ``handler`` one by one."""

    def __init__(self, handler: Handler, retries: RetryPolicy, dead_letters: DeadLetters, group: str = "") -> None:
        self._handler = handler
        self._retries = retries
        self._dead_letters = dead_letters
        self._group = group

    async def in_order(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Handle ``records`` one after another."""
        for record in records:
            await self._process(record)

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = decode(record)
        except UndecodableRecordError as exc:
            await self._dead_letters.send(record, exc.cause, reason=exc.reason)
            return
        with telemetry.consuming(event.envelope, event.topic, event.partition, event.offset, self._group):
            await self._handle_with_retries(event, record)

    async def _handle_with_retries(self, event: ConsumedEvent, record: ConsumerRecord[bytes, bytes]) -> None:
        handler = self._handler
        attempts = self._retries.attempts
        done, _, failure = await self._retries.run(lambda: handler(event), attempts, event.topic, _ids(event))
        if not done:
            logger.error("handler failed, dead-lettering", extra={**_ids(event), "attempts": attempts})
            await self._dead_letters.send(
                record, f"handler failed after {attempts} attempts: {failure!r}", "handler_error"
            )
            return
        EVENTS_CONSUMED.labels(topic=event.topic, event_type=event.envelope.event_type).inc()


class BatchHandling:
    """Hands batches of events to ``handler``; ``prepare`` (if given) is applied to each
    event as it is decoded (its result is ``event.prepared``)."""

    def __init__(
        self,
        handler: BatchHandler,
        retries: RetryPolicy,
        dead_letters: DeadLetters,
        prepare: Prepare | None = None,
        group: str = "",
    ) -> None:
        self._handler = handler
        self._retries = retries
        self._dead_letters = dead_letters
        self._prepare = prepare
        self._group = group

    async def decode(
        self, polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> dict[TopicPartition, list[Decoded]]:
        """Each record of a poll with its event (prepared), or why it has none."""
        out: dict[TopicPartition, list[Decoded]] = {}
        done = 0
        for tp, records in polled.items():
            decoded: list[Decoded] = []
            for record in records:
                try:
                    event = decode(record)
                except UndecodableRecordError as exc:
                    decoded.append((record, exc))
                    continue
                if self._prepare is not None:
                    prepared = self._prepare(event)
                    event = ConsumedEvent(
                        event.envelope, event.topic, event.partition, event.offset, event.key, event.headers, prepared
                    )
                    done += 1
                    if done % 50 == 0:  # let the batch being handled go on meanwhile
                        await asyncio.sleep(0)
                decoded.append((record, event))
            out[tp] = decoded
        return out

    async def handle(self, items: list[Decoded]) -> None:
        """Handle a batch: its events at once, then dead-letter its undecodable records."""
        good = [(record, event) for record, event in items if not isinstance(event, UndecodableRecordError)]
        if good:
            await self._handle(good)
        # After the handler was called: nothing may come between a batch's start and its
        # handler's, so that handlers start in batch order (see batch_concurrency).
        for record, event in items:
            if isinstance(event, UndecodableRecordError):
                await self._dead_letters.send(record, event.cause, reason=event.reason)

    async def _handle(
        self, good: list[tuple[ConsumerRecord[bytes, bytes], ConsumedEvent]], attempts: int | None = None
    ) -> None:
        """Hand ``good`` to the batch handler. A batch that still fails after its attempts is
        split in two and each half handled again (one attempt each, a single event all of
        them), so only the events that fail alone are dead-lettered: one poison event costs
        the others in its batch a few retries, never their delivery. The handler must leave
        nothing behind when it raises (one transaction per call), as a retry redoes it all."""
        handler = self._handler
        tries = attempts or self._retries.attempts
        events = [event for _, event in good]
        with telemetry.consuming_batch(events, self._group):
            done, rejected, failure = await self._retries.run(
                lambda: handler(events), tries, "(batch)", {"records": len(good)}
            )
        if not done:
            if len(good) == 1:
                record, event = good[0]
                logger.error("batch handler failed on one event, dead-lettering it", extra=_ids(event))
                await self._dead_letters.send(
                    record, f"handler failed after {tries} attempts: {failure!r}", "handler_error"
                )
                return
            logger.warning("batch handler failed; handling each half alone", extra={"records": len(good)})
            half = len(good) // 2
            for part in (good[:half], good[half:]):
                await self._handle(part, None if len(part) == 1 else 1)
            return
        by_position = {(e.topic, e.partition, e.offset): record for record, e in good} if rejected else {}
        for rejection in rejected or ():
            event = rejection.event
            record = by_position[event.topic, event.partition, event.offset]
            await self._dead_letters.send(record, rejection.cause, rejection.reason)
        consumed: dict[tuple[str, str], int] = defaultdict(int)
        for _, event in good:
            consumed[event.topic, event.envelope.event_type] += 1
        for (topic, event_type), count in consumed.items():
            EVENTS_CONSUMED.labels(topic=topic, event_type=event_type).inc(count)


def _ids(event: ConsumedEvent) -> dict[str, Any]:
    return {"event_id": event.envelope.event_id, "topic": event.topic, "offset": event.offset}
