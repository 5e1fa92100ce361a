"""At-least-once protobuf consumer with a dead-letter topic: :class:`EventConsumer`.

This module is the orchestration: polling, and when each record's turn comes (records of
one key one after another, batches in order). The rest is in modules of its own:
``events`` (decoded records and handler types), ``handling`` (handing records to the
handler), ``retries`` (the retry policy), ``dead_letter`` (the dead-letter topic),
``offsets`` (what is in flight, and the commits) and ``flow`` (back-pressure and priority).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from switchboard.common.config import KafkaSettings
from switchboard.common.kafka.dead_letter import DeadLetters
from switchboard.common.kafka.events import BatchHandler, Decoded, Handler, Prepare
from switchboard.common.kafka.flow import FlowControl
from switchboard.common.kafka.handling import BatchHandling, EventHandling
from switchboard.common.kafka.offsets import CommitOnRevoke, Offsets
from switchboard.common.kafka.producer import EventProducer
from switchboard.common.kafka.retries import RetryPolicy
from switchboard.common.kafka.security import connection_kwargs

logger = logging.getLogger(__name__)


class EventConsumer:
    """Consumes Envelopes from ``topics`` as part of consumer group ``group_id``.

    For each record, in partition order:

    1. the value is decoded as an Envelope; if that fails (or it has no payload) the
       record goes to ``dead_letter_topic`` untouched, with a ``dlq.cause`` header;
    2. the handler is awaited with the trace context of the event set; if it raises,
       it is retried ``settings.handler_attempts`` times with exponential backoff, then
       the record is dead-lettered with the exception as cause; an exception of a
       ``transient`` type (a dependency away) is retried for as long as it lasts instead;
    3. the offset is committed only after the handler returned (or the record was
       safely dead-lettered). A crash in between means redelivery, never loss, so
       handlers must be idempotent on ``envelope.event_id``.

    Polling goes on while handlers run (up to ``settings.max_in_flight`` records at once).
    Records are handled concurrently, except those with the same key (one conversation),
    which are handled one after another in offset order; so a slow model answer holds up
    its own conversation only, not its partition or the next poll. A partition's offset is
    committed (every ``settings.commit_interval_ms``, on a rebalance and on stop) up to its
    oldest record still in flight. With ``batch_handler`` instead of ``handler``, each
    poll is handed over at once (each partition's records in offset order), one poll after
    the other, for bulk writes; the handler may return :class:`Rejection` s, which are
    dead-lettered one by one; a batch that still fails after its retries is split in
    halves, each handled alone, down to single events, so only the events that fail by
    themselves are dead-lettered (one poison event never sends its batch-mates there).
    Batch records are decoded as they are polled, and ``prepare`` (if given) is
    applied to each event then (its result is ``event.prepared``), so that this work
    overlaps the handling of the batch before. With ``batch_concurrency`` n > 1, a batch
    may start while the n - 1 before it are still being handled (e.g. waiting for a bulk
    request to be acknowledged); the handler calls still begin in batch order, with no
    suspension in between, so a handler that orders its work with a lock taken on entry
    keeps that order.

    While ``max_in_flight`` records are in flight (e.g. a handler waits out a dependency
    that is down) every partition is paused and polling goes on, so the consumer stays in
    its group however long the wait; fetching resumes once there is room again.

    ``pattern`` (a regular expression) subscribes to every topic whose name matches it,
    including topics created later (found within the ``metadata_max_age_ms`` override),
    instead of ``topics``.

    ``priority`` orders some of ``topics``, most urgent first: a topic's partitions are
    paused while an earlier one has work, i.e. records not fetched yet (behind its high
    watermark) or still in flight, so an urgent record never queues behind a backlog.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        topics: Sequence[str],
        group_id: str,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        dead_letter_producer: EventProducer,
        dead_letter_topic: str,
        transient: tuple[type[BaseException], ...] = (),
        priority: Sequence[str] = (),
        pattern: str | None = None,
        on_assigned: Callable[[], None] | None = None,
        prepare: Prepare | None = None,
        batch_concurrency: int = 1,
        **overrides: Any,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._pattern = pattern
        # Called when partitions are assigned (state kept per partition may be stale).
        self.on_assigned = on_assigned
        if (pattern is None) == (not self._topics):
            raise ValueError("give either topics or a pattern")
        if not set(priority) <= set(topics):
            raise ValueError("priority names topics the consumer does not read")
        # ``transient``: failures that say a dependency is away (PostgreSQL restarting), not
        # that the record is bad: retried until they stop, never dead-lettered.
        retries = RetryPolicy(settings, transient)
        dead_letters = DeadLetters(dead_letter_producer, dead_letter_topic)
        self._handling: EventHandling | BatchHandling
        if handler is not None and batch_handler is None:
            if prepare is not None:
                raise ValueError("prepare is for batch handlers")
            self._handling = EventHandling(handler, retries, dead_letters, group_id)
        elif batch_handler is not None and handler is None:
            self._handling = BatchHandling(batch_handler, retries, dead_letters, prepare, group_id)
        else:
            raise ValueError("give exactly one of handler and batch_handler")
        self._batch_concurrency = max(1, batch_concurrency)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=settings.client_id,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            **connection_kwargs(settings),
            **overrides,
        )
        self._offsets = Offsets(self._consumer)
        self._flow = FlowControl(self._consumer, self._offsets, settings, priority)
        self._tasks: set[asyncio.Task[None]] = set()
        # The last task of each key; batches are keyed ("batch", n % batch_concurrency).
        self._tails: dict[object, asyncio.Task[None]] = {}
        self._batches = 0  # batches started so far
        self._starting = asyncio.Lock()  # held while taking records on, and while settling
        self._failure: Exception | None = None
        self._next_batch: list[Decoded] | None = None

    async def start(self) -> None:
        """Join the group and subscribe."""
        listener = CommitOnRevoke(self._settle, self._assigned)
        if self._pattern is not None:
            self._consumer.subscribe(pattern=self._pattern, listener=listener)
        else:
            self._consumer.subscribe(self._topics, listener=listener)
        await self._consumer.start()

    async def stop(self) -> None:
        """Finish the records in flight, commit, and leave the group."""
        await self._settle()
        await self._consumer.stop()

    async def __aenter__(self) -> EventConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the records in flight are finished and committed first."""
        committer = asyncio.create_task(self._commit_periodically(stop))
        try:
            while not stop.is_set() and self._failure is None:
                if not self._flow.has_room():
                    await self._flow.hold()
                    continue
                self._flow.release()
                await self._flow.yield_to_urgent()
                polled = await self._consumer.getmany(timeout_ms=200, max_records=self._settings.max_poll_records)
                if polled:
                    handling = self._handling
                    decoded = await handling.decode(polled) if isinstance(handling, BatchHandling) else None
                    async with self._starting:
                        self._take_on(polled, decoded)
                    # Let the handlers start on these before the next poll (with records
                    # already fetched, getmany returns without ever giving way).
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            # Cancelled, not stopped: drop the work in flight uncommitted (it is redelivered).
            for task in self._tasks:
                task.cancel()
            raise
        finally:
            committer.cancel()
        await self._settle()
        if self._failure is not None:
            raise RuntimeError(f"consuming {self._pattern or ', '.join(self._topics)} failed") from self._failure

    def _assigned(self, assigned: set[TopicPartition]) -> None:
        self._offsets.assign(assigned)
        self._flow.assign()
        if self.on_assigned is not None:
            self.on_assigned()

    def _take_on(
        self,
        polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        decoded: dict[TopicPartition, list[Decoded]] | None,
    ) -> None:
        """Start handling a poll's records (``decoded``: for a batch handler)."""
        taken = self._offsets.take_on(polled)
        records = [record for tp in taken for record in polled[tp]]
        if not records:
            return
        self._flow.took_on(len(records))
        if isinstance(self._handling, BatchHandling):
            items = [item for tp in taken for item in decoded[tp]] if decoded is not None else []
            if self._next_batch is not None:
                self._next_batch.extend(items)  # joins the batch waiting for the one being handled
            else:
                self._next_batch = items
                # Batch n waits for batch n - batch_concurrency; batches start in order all
                # the same, as the next one is formed only once this one has started.
                turn = ("batch", self._batches % self._batch_concurrency)
                self._chain(turn, items, self._run_batch(self._handling, items))
                self._batches += 1
        else:
            for key, same_key in _by_key(records).items():
                self._chain(key, same_key, self._handling.in_order(same_key))

    async def _run_batch(self, batches: BatchHandling, items: list[Decoded]) -> None:
        # Once a batch starts, records polled meanwhile gather into the next one: one
        # handler call (one transaction, one bulk request) per round, however small the polls.
        if self._next_batch is items:
            self._next_batch = None
        await batches.handle(items)

    def _chain(
        self,
        key: object,
        records: Sequence[ConsumerRecord[bytes, bytes]] | Sequence[Decoded],
        work: Awaitable[None],
    ) -> None:
        """Run ``work`` after the work already queued for ``key``; then mark ``records`` done."""
        before = self._tails.get(key)

        async def run() -> None:
            try:
                if before is not None:
                    await asyncio.wait([before])
                    if before.cancelled() or self._failure is not None:
                        return  # the key's earlier work did not finish: neither does this
                await work
                self._done(records)
            except Exception as exc:  # e.g. the dead-letter topic unreachable: stop consuming
                # The records stay "in flight", so nothing from them on is committed.
                logger.exception("handling records failed; the consumer stops")
                self._failure = self._failure or exc
            finally:
                if self._tails.get(key) is task:
                    del self._tails[key]

        task = asyncio.create_task(run())
        self._tails[key] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _done(self, records: Sequence[ConsumerRecord[bytes, bytes]] | Sequence[Decoded]) -> None:
        # A batch's records are (record, event) pairs.
        self._offsets.done(item[0] if isinstance(item, tuple) else item for item in records)
        self._flow.finished(len(records))

    async def _commit_periodically(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self._settings.commit_interval_ms / 1000)
            await self._offsets.commit()

    async def _settle(self) -> None:
        """Wait for every record in flight, then commit."""
        async with self._starting:
            while self._tasks:
                await asyncio.wait(list(self._tasks))
            await self._offsets.commit()


def _by_key(records: list[ConsumerRecord[bytes, bytes]]) -> dict[bytes | None, list[ConsumerRecord[bytes, bytes]]]:
    """``records`` grouped by key, each group in offset order."""
    groups: dict[bytes | None, list[ConsumerRecord[bytes, bytes]]] = {}
    for record in records:
        groups.setdefault(record.key, []).append(record)
    return groups
