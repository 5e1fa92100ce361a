"""Re-index a time range from Kafka: ``python -m switchboard.audit_logger replay --since …``.

Reads every audited topic's records from ``since`` to ``until`` (by record timestamp)
without a consumer group, and indexes them exactly as the service does. Documents that
exist are 409s, so a replay over a range already indexed adds nothing, and one over a gap
(Elasticsearch restored from an older snapshot, an index deleted by mistake) fills it with
the same documents, hashes included.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from switchboard.audit_logger.config import Settings
from switchboard.audit_logger.indexer import AuditIndexer
from switchboard.common.kafka import ConsumedEvent, UndecodableRecordError, decode
from switchboard.common.kafka.positions import partitions, seek_to_time
from switchboard.common.kafka.security import connection_kwargs


@dataclass
class ReplayReport:
    records: int = 0
    created: int = 0
    existing: int = 0
    rejected: int = 0
    undecodable: int = 0
    topics: list[str] = field(default_factory=list)


async def replay(
    settings: Settings,
    indexer: AuditIndexer,
    since_ms: int,
    until_ms: int | None = None,
    *,
    on_total: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Index the records of ``[since_ms, until_ms)`` (until now by default)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        client_id=f"{settings.kafka.client_id}-replay",
        enable_auto_commit=False,
        isolation_level="read_committed",
        **connection_kwargs(settings.kafka),
    )
    await consumer.start()
    report = ReplayReport()
    try:
        pattern = re.compile(settings.topic_pattern())
        report.topics = sorted(topic for topic in await consumer.topics() if pattern.match(topic))
        connection = {"bootstrap_servers": settings.kafka.bootstrap_servers, **connection_kwargs(settings.kafka)}
        tps = [tp for topic in report.topics for tp in await partitions(connection, topic)]
        if not tps:
            return report
        consumer.assign(tps)
        await seek_to_time(consumer, tps, since_ms)
        ends = await consumer.end_offsets(tps)
        if until_ms is not None:
            after = await consumer.offsets_for_times(dict.fromkeys(tps, until_ms))
            ends = {tp: found.offset if (found := after.get(tp)) is not None else ends[tp] for tp in tps}
        left = {tp: ends[tp] - await consumer.position(tp) for tp in tps}
        if on_total:
            on_total(sum(max(0, n) for n in left.values()))
        while any(n > 0 for n in left.values()):
            polled = await consumer.getmany(*[tp for tp, n in left.items() if n > 0], timeout_ms=1000)
            batch: list[ConsumedEvent] = []
            for tp, records in polled.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    report.records += 1
                    try:
                        batch.append(decode(record))
                    except UndecodableRecordError:
                        report.undecodable += 1
                # Done with tp when its position reached the end of the range (offsets of
                # transaction markers count too).
                left[tp] = ends[tp] - await consumer.position(tp)
            if batch:
                created, existing = indexer.created, indexer.existing
                report.rejected += len(await indexer.index(batch))  # dead-lettered already, when first seen
                report.created += indexer.created - created
                report.existing += indexer.existing - existing
            if progress:
                progress(sum(len(records) for records in polled.values()))
    finally:
        await consumer.stop()
    return report
