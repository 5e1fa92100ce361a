"""How fast the consumer fetches: back-pressure and priority pausing.

Back-pressure: at most ``max_in_flight`` records are taken on and not handled yet. While
there is no room for more (e.g. a handler waits out a dependency that is down), every
partition is paused and polling goes on, so the consumer stays in its group however long
the wait (one that stops polling for ``max_poll_interval_ms`` is put out of it); fetching
resumes once there is room again.

Priority: given topics ordered most urgent first, a topic's partitions are paused while
an earlier one has work (records not fetched yet, or still in flight), so an urgent
record never queues behind a backlog.

Each kind of pause keeps its own set of partitions, so neither resumes what the other paused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from switchboard.common.config import KafkaSettings
from switchboard.common.kafka.offsets import Offsets

logger = logging.getLogger(__name__)


class FlowControl:
    """Pauses and resumes the partitions of ``consumer``; ``offsets`` tells which have records in flight."""

    def __init__(
        self, consumer: AIOKafkaConsumer, offsets: Offsets, settings: KafkaSettings, priority: Sequence[str] = ()
    ) -> None:
        self._consumer = consumer
        self._offsets = offsets
        self._settings = settings  # its max_in_flight
        self._priority = list(priority)
        self._paused: set[TopicPartition] = set()  # by priority
        self._held: set[TopicPartition] = set()  # while there is no room for more records
        self._room = asyncio.Event()  # set while fewer than max_in_flight records are in flight
        self._room.set()
        self._in_flight = 0

    def assign(self) -> None:
        """A new assignment starts unpaused."""
        self._paused = set()
        self._held = set()

    def took_on(self, count: int) -> None:
        """``count`` more records are in flight."""
        self._in_flight += count
        if self._in_flight >= self._settings.max_in_flight:
            self._room.clear()

    def finished(self, count: int) -> None:
        """``count`` records in flight are done."""
        self._in_flight -= count
        if self._in_flight < self._settings.max_in_flight:
            self._room.set()

    def has_room(self) -> bool:
        """Whether fewer than ``max_in_flight`` records are in flight."""
        return self._room.is_set()

    async def hold(self) -> None:
        """Wait for room; if there is none for a while, pause every partition but keep
        polling (a consumer that stops polling for ``max_poll_interval_ms`` is put out of
        its group)."""
        try:
            await asyncio.wait_for(self._room.wait(), timeout=1.0)
        except TimeoutError:
            hold = self._consumer.assignment() - self._paused - self._held
            if hold:
                self._consumer.pause(*hold)
                self._held |= hold
                logger.warning("consumption paused: records in flight at the limit", extra={"partitions": len(hold)})
            await self._consumer.getmany(timeout_ms=0)  # returns nothing for paused partitions

    def release(self) -> None:
        """Resume what ``hold`` paused (there is room again)."""
        if not self._held:
            return
        resume = (self._held & self._consumer.assignment()) - self._paused
        if resume:
            self._consumer.resume(*resume)
        logger.info("consumption resumed", extra={"partitions": len(resume)})
        self._held = set()

    async def yield_to_urgent(self) -> None:
        """Pause each prioritised topic's partitions while a more urgent topic has work."""
        if not self._priority:
            return
        assigned = self._consumer.assignment()
        busy = False
        for topic in self._priority:
            partitions = {tp for tp in assigned if tp.topic == topic}
            if busy:
                pause = partitions - self._paused
                if pause:
                    self._consumer.pause(*pause)
                    self._paused |= pause
            else:
                resume = partitions & self._paused
                if resume:
                    self._consumer.resume(*resume)
                    self._paused -= resume
                busy = any([await self._has_work(tp) for tp in partitions])

    async def _has_work(self, tp: TopicPartition) -> bool:
        if self._offsets.in_flight(tp):
            return True
        end = self._consumer.highwater(tp)  # known after the first fetch from tp
        return end is not None and await self._consumer.position(tp) < end
