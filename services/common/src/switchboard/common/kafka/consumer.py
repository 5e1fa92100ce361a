"""At-least-once protobuf consumer with a dead-letter topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord
from google.protobuf.message import DecodeError

from switchboard.common import tracing
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import headers as hdr
from switchboard.common.kafka.producer import EventProducer
from switchboard.common.kafka.security import connection_kwargs
from switchboard.common.metrics import DEAD_LETTERED, EVENTS_CONSUMED, HANDLER_SECONDS
from switchboard.events.v1 import envelope_pb2

_T = TypeVar("_T")
logger = logging.getLogger(__name__)


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


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Finishes and commits the work in flight before partitions move to another member."""

    def __init__(self, owner: EventConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # No record is ever handled here and on the new owner at once.
        await self._owner._settle()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._owner._progress = {tp: _Progress() for tp in assigned}
        self._owner._paused = set()  # a new assignment starts unpaused
        self._owner._held = set()
        if self._owner.on_assigned is not None:
            self._owner.on_assigned()
        logger.info(
            "partitions assigned", extra={"partitions": sorted(f"{tp.topic}-{tp.partition}" for tp in assigned)}
        )


class _Progress:
    """Offsets of one partition in flight, and what is safe to commit."""

    __slots__ = ("committed", "fetched", "in_flight")

    def __init__(self) -> None:
        self.in_flight: set[int] = set()
        self.fetched: int | None = None  # next offset after the last one taken on
        self.committed: int | None = None

    def safe(self) -> int | None:
        """Everything below this offset is done (the oldest record still in flight bounds it)."""
        return min(self.in_flight) if self.in_flight else self.fetched


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
        # Failures that say a dependency is away (PostgreSQL restarting), not that the
        # record is bad: retried until they stop, never dead-lettered.
        self._transient = transient
        self._topics = list(topics)
        self._pattern = pattern
        # Called when partitions are assigned (state kept per partition may be stale).
        self.on_assigned = on_assigned
        if (pattern is None) == (not self._topics):
            raise ValueError("give either topics or a pattern")
        if not set(priority) <= set(topics):
            raise ValueError("priority names topics the consumer does not read")
        self._priority = list(priority)
        self._paused: set[TopicPartition] = set()  # by priority
        self._held: set[TopicPartition] = set()  # while there is no room for more records
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler and batch_handler")
        self._handler = handler
        self._batch_handler = batch_handler
        if prepare is not None and batch_handler is None:
            raise ValueError("prepare is for batch handlers")
        self._prepare = prepare
        self._batch_concurrency = max(1, batch_concurrency)
        self._dlq = dead_letter_producer
        self._dlq_topic = dead_letter_topic
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
        self._progress: dict[TopicPartition, _Progress] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # The last task of each key; batches are keyed ("batch", n % batch_concurrency).
        self._tails: dict[object, asyncio.Task[None]] = {}
        self._batches = 0  # batches started so far
        self._room = asyncio.Event()  # set while fewer than max_in_flight records are in flight
        self._room.set()
        self._in_flight = 0
        self._starting = asyncio.Lock()  # held while taking records on, and while settling
        self._failure: Exception | None = None
        self._next_batch: list[Decoded] | None = None

    async def start(self) -> None:
        """Join the group and subscribe."""
        if self._pattern is not None:
            self._consumer.subscribe(pattern=self._pattern, listener=_CommitOnRevoke(self))
        else:
            self._consumer.subscribe(self._topics, listener=_CommitOnRevoke(self))
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
                if not self._room.is_set():
                    await self._hold()
                    continue
                self._release()
                if self._priority:
                    await self._yield_to_urgent()
                polled = await self._consumer.getmany(timeout_ms=200, max_records=self._settings.max_poll_records)
                if polled:
                    decoded = await self._decode_polled(polled) if self._batch_handler is not None else None
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

    async def _hold(self) -> None:
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

    def _release(self) -> None:
        if not self._held:
            return
        resume = (self._held & self._consumer.assignment()) - self._paused
        if resume:
            self._consumer.resume(*resume)
        logger.info("consumption resumed", extra={"partitions": len(resume)})
        self._held = set()

    async def _has_work(self, tp: TopicPartition) -> bool:
        progress = self._progress.get(tp)
        if progress is not None and progress.in_flight:
            return True
        end = self._consumer.highwater(tp)  # known after the first fetch from tp
        return end is not None and await self._consumer.position(tp) < end

    async def _yield_to_urgent(self) -> None:
        """Pause each prioritised topic's partitions while a more urgent topic has work."""
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

    async def _decode_polled(
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

    def _take_on(
        self,
        polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        decoded: dict[TopicPartition, list[Decoded]] | None,
    ) -> None:
        """Start handling a poll's records (``decoded``: for a batch handler)."""
        records: list[ConsumerRecord[bytes, bytes]] = []
        items: list[Decoded] = []
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
            records += batch
            if decoded is not None:
                items += decoded[tp]
        if not records:
            return
        self._in_flight += len(records)
        if self._in_flight >= self._settings.max_in_flight:
            self._room.clear()
        if self._batch_handler is not None:
            if self._next_batch is not None:
                self._next_batch.extend(items)  # joins the batch waiting for the one being handled
            else:
                self._next_batch = items
                # Batch n waits for batch n - batch_concurrency; batches start in order all
                # the same, as the next one is formed only once this one has started.
                self._chain(("batch", self._batches % self._batch_concurrency), items, self._run_batch(items))
                self._batches += 1
        else:
            for key, same_key in _by_key(records).items():
                self._chain(key, same_key, self._process_in_order(same_key))

    async def _run_batch(self, items: list[Decoded]) -> None:
        # Once a batch starts, records polled meanwhile gather into the next one: one
        # handler call (one transaction, one bulk request) per round, however small the polls.
        if self._next_batch is items:
            self._next_batch = None
        await self._process_batch(items)

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
        offsets: dict[tuple[str, int], list[int]] = defaultdict(list)
        for item in records:
            record = item[0] if isinstance(item, tuple) else item  # a batch's are (record, event)
            offsets[record.topic, record.partition].append(record.offset)
        for (topic, partition), done in offsets.items():
            progress = self._progress.get(TopicPartition(topic, partition))
            if progress is not None:
                progress.in_flight.difference_update(done)
        self._in_flight -= len(records)
        if self._in_flight < self._settings.max_in_flight:
            self._room.set()

    async def _settle(self) -> None:
        """Wait for every record in flight, then commit."""
        async with self._starting:
            while self._tasks:
                await asyncio.wait(list(self._tasks))
            await self._commit()

    async def _commit_periodically(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self._settings.commit_interval_ms / 1000)
            await self._commit()

    async def _process_in_order(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            await self._process(record)

    async def _decode(self, record: ConsumerRecord[bytes, bytes]) -> ConsumedEvent | None:
        """The record as an event, or None after dead-lettering it as undecodable."""
        try:
            return decode(record)
        except UndecodableRecordError as exc:
            await self._dead_letter(record, exc.cause, reason=exc.reason)
            return None

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        event = await self._decode(record)
        if event is None:
            return
        token = tracing.current_traceparent.set(event.envelope.trace.traceparent or None)
        try:
            await self._handle_with_retries(event, record)
        finally:
            tracing.current_traceparent.reset(token)

    async def _process_batch(self, items: list[Decoded]) -> None:
        good = [(record, event) for record, event in items if not isinstance(event, UndecodableRecordError)]
        if good:
            await self._handle_batch(good)
        # After the handler was called: nothing may come between a batch's start and its
        # handler's, so that handlers start in batch order (see batch_concurrency).
        for record, event in items:
            if isinstance(event, UndecodableRecordError):
                await self._dead_letter(record, event.cause, reason=event.reason)

    async def _handle_batch(
        self, good: list[tuple[ConsumerRecord[bytes, bytes], ConsumedEvent]], attempts: int | None = None
    ) -> None:
        """Hand ``good`` to the batch handler. A batch that still fails after its attempts is
        split in two and each half handled again (one attempt each, a single event all of
        them), so only the events that fail alone are dead-lettered: one poison event costs
        the others in its batch a few retries, never their delivery. The handler must leave
        nothing behind when it raises (one transaction per call), as a retry redoes it all."""
        assert self._batch_handler is not None
        handler = self._batch_handler
        tries = attempts or max(1, self._settings.handler_attempts)
        done, rejected, failure = await self._with_retries(
            lambda: handler([event for _, event in good]), tries, "(batch)", {"records": len(good)}
        )
        if not done:
            if len(good) == 1:
                record, event = good[0]
                logger.error("batch handler failed on one event, dead-lettering it", extra=_ids(event))
                await self._dead_letter(record, f"handler failed after {tries} attempts: {failure!r}", "handler_error")
                return
            logger.warning("batch handler failed; handling each half alone", extra={"records": len(good)})
            half = len(good) // 2
            for part in (good[:half], good[half:]):
                await self._handle_batch(part, None if len(part) == 1 else 1)
            return
        by_position = {(e.topic, e.partition, e.offset): record for record, e in good} if rejected else {}
        for rejection in rejected or ():
            event = rejection.event
            record = by_position[event.topic, event.partition, event.offset]
            await self._dead_letter(record, rejection.cause, rejection.reason)
        consumed: dict[tuple[str, str], int] = defaultdict(int)
        for _, event in good:
            consumed[event.topic, event.envelope.event_type] += 1
        for (topic, event_type), count in consumed.items():
            EVENTS_CONSUMED.labels(topic=topic, event_type=event_type).inc(count)

    async def _handle_with_retries(self, event: ConsumedEvent, record: ConsumerRecord[bytes, bytes]) -> None:
        assert self._handler is not None
        handler = self._handler
        attempts = max(1, self._settings.handler_attempts)
        done, _, failure = await self._with_retries(lambda: handler(event), attempts, event.topic, _ids(event))
        if not done:
            logger.error("handler failed, dead-lettering", extra={**_ids(event), "attempts": attempts})
            await self._dead_letter(record, f"handler failed after {attempts} attempts: {failure!r}", "handler_error")
            return
        EVENTS_CONSUMED.labels(topic=event.topic, event_type=event.envelope.event_type).inc()

    async def _with_retries(
        self, call: Callable[[], Awaitable[_T]], attempts: int, timed_as: str, context: dict[str, Any]
    ) -> tuple[bool, _T | None, BaseException | None]:
        """The one retry policy: (True, result, None) once ``call`` succeeds; (False, None, the
        last error) after ``attempts`` failures, with exponential backoff in between. An
        error of a ``transient`` type (a dependency away) is waited out and not counted."""
        attempt = outage = 0
        failure: BaseException | None = None
        while attempt < attempts:
            attempt += 1
            started = time.perf_counter()
            try:
                return True, await call(), None
            except self._transient as exc:
                outage += 1
                attempt -= 1
                await self._wait_out(exc, outage)
            except Exception as exc:  # noqa: BLE001 -- retried, then the caller dead-letters the record(s)
                failure = exc
                if attempt < attempts:
                    retry = {**context, "attempt": attempt, "error": repr(exc)}
                    logger.warning("handler failed, retrying", extra=retry)
                    await asyncio.sleep(self._settings.handler_backoff_s * 2 ** (attempt - 1))
            finally:
                HANDLER_SECONDS.labels(topic=timed_as).observe(time.perf_counter() - started)
        logger.warning("handler failed on every attempt", extra={**context, "error": repr(failure)}, exc_info=failure)
        return False, None, failure

    async def _wait_out(self, exc: BaseException, outage: int) -> None:
        """Back off while a dependency is away (exponential, at most 10 s between tries)."""
        delay = min(10.0, self._settings.handler_backoff_s * 2 ** min(outage - 1, 10))
        logger.warning("a dependency is unavailable; retrying", extra={"error": repr(exc), "retry_in_s": delay})
        await asyncio.sleep(delay)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], cause: str, reason: str) -> None:
        headers = hdr.for_dead_letter(record.headers, cause, record.topic, record.partition, record.offset)
        # If this send fails the exception propagates and the offset stays uncommitted:
        # the record is redelivered rather than lost.
        await self._dlq.send_raw(self._dlq_topic, record.value, record.key, headers)
        DEAD_LETTERED.labels(topic=record.topic, reason=reason).inc()
        logger.error(
            "record dead-lettered",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset, "cause": cause},
        )

    async def _commit(self) -> None:
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


def _ids(event: ConsumedEvent) -> dict[str, Any]:
    return {"event_id": event.envelope.event_id, "topic": event.topic, "offset": event.offset}


def _by_key(records: list[ConsumerRecord[bytes, bytes]]) -> dict[bytes | None, list[ConsumerRecord[bytes, bytes]]]:
    """``records`` grouped by key, each group in offset order."""
    groups: dict[bytes | None, list[ConsumerRecord[bytes, bytes]]] = {}
    for record in records:
        groups.setdefault(record.key, []).append(record)
    return groups
