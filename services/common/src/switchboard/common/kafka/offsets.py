"""Which records of each partition are in flight, and the commit of what is safe.

Records of a partition are handled concurrently, so a later one may be done before an
earlier one. A partition's offset is therefore committed only up to its oldest record
still in flight: everything below it is done, and a crash redelivers the rest (never
loses it). On a rebalance the work in flight is finished and committed before the
partitions move to another member.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord

logger = logging.getLogger(__name__)


class Progress:
    """Offsets of one partition in flight, and what is safe to commit."""

    __slots__ = ("committed", "fetched", "in_flight")

    def __init__(self) -> None:
        self.in_flight: set[int] = set()
        self.fetched: int | None = None  # next offset after the last one taken on
        self.committed: int | None = None

    def safe(self) -> int | None:
        """Everything below this offset is done (the oldest record still in flight bounds it)."""
        return min(self.in_flight) if self.in_flight else self.fetched


class Offsets:
    """The progress of each partition assigned to ``consumer``, and its commits."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self._progress: dict[TopicPartition, Progress] = {}

    def assign(self, assigned: set[TopicPartition]) -> None:
        """Start afresh with a new assignment."""
        self._progress = {tp: Progress() for tp in assigned}

    def take_on(self, polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> list[TopicPartition]:
        """Mark a poll's records in flight; the partitions whose records are to be handled."""
        taken: list[TopicPartition] = []
        assigned = self._consumer.assignment()
        for tp, batch in polled.items():
            progress = self._progress.get(tp)
            if progress is None or tp not in assigned:
                # Fetched before a rebalance moved the partition away; its new owner reads
                # these records from the last commit.
                continue
            if progress.committed is None:
                progress.committed = batch[0].offset  # where the group's last commit left it
            progress.in_flight.update(record.offset for record in batch)
            progress.fetched = batch[-1].offset + 1
            taken.append(tp)
        return taken

    def done(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        """``records`` are handled (or dead-lettered): no longer in flight."""
        offsets: dict[tuple[str, int], list[int]] = defaultdict(list)
        for record in records:
            offsets[record.topic, record.partition].append(record.offset)
        for (topic, partition), done in offsets.items():
            progress = self._progress.get(TopicPartition(topic, partition))
            if progress is not None:
                progress.in_flight.difference_update(done)

    def in_flight(self, tp: TopicPartition) -> bool:
        """Whether records of ``tp`` are taken on and not handled yet."""
        progress = self._progress.get(tp)
        return progress is not None and bool(progress.in_flight)

    async def commit(self) -> None:
        """Commit, for each partition still ours, everything below its oldest record in flight."""
        assigned = self._consumer.assignment()
        offsets = {}
        for tp, progress in self._progress.items():
            safe = progress.safe()
            if tp in assigned and safe is not None and safe != progress.committed:
                offsets[tp] = safe
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            # The group moved on; the partitions' new owners re-read from the last commit.
            logger.warning("commit failed after a rebalance; records will be redelivered")
            return
        for tp, offset in offsets.items():
            self._progress[tp].committed = offset


class CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Finishes and commits the work in flight before partitions move to another member."""

    def __init__(self, settle: Callable[[], Awaitable[None]], assigned: Callable[[set[TopicPartition]], None]) -> None:
        self._settle = settle  # waits for every record in flight, then commits
        self._assigned = assigned  # starts afresh with the new assignment

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # No record is ever handled here and on the new owner at once.
        await self._settle()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._assigned(assigned)
        logger.info(
            "partitions assigned", extra={"partitions": sorted(f"{tp.topic}-{tp.partition}" for tp in assigned)}
        )
