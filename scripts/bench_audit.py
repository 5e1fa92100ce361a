"""Audit ingest rate: the audit logger (Kafka -> documents -> Elasticsearch) against the
client's raw ``async_bulk`` of the same documents into the same cluster.

    make up && .venv/bin/python -m scripts.bench_audit --events 20000

1. ``--events`` events of a realistic mix (messages, intents, answers, replies; a few
   carrying PII) are produced to a fresh topic with 6 partitions.
2. The audit logger's service code (``app.serve``: consume, map, mask, chain, bulk-create,
   commit) indexes them into a fresh data stream; the rate is taken from its first
   acknowledged bulk request to its last (read from its own metrics counter).
3. The documents it stored are read back and written with the client's bulk helper
   (``async_bulk``'s loop; same chunk size, ``op_type=create``, same client settings) into
   another fresh data stream with the same template, timed the same way.

That is one round; ``--rounds`` rounds (3) are measured and the medians reported, as
single runs on a small shared machine vary by 10-20 %.

All of it runs once on ``--warmup`` events first, unmeasured, so that neither side pays
for cold JVMs and caches. The process sets up garbage collection as the service's entry
point does (``app.tune_gc``), for both sides.

Target: logger / raw >= 0.8.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan, async_streaming_bulk
from prometheus_client import REGISTRY
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from switchboard.audit_logger import app
from switchboard.audit_logger.config import Settings
from switchboard.common import events
from switchboard.common.config import TopicSettings
from switchboard.common.kafka import EventProducer
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from tests.conftest import load_stack

console = Console()
CHAIN_KEY = "the benchmark's chain key, 32 bytes"


def _envelopes(n: int) -> list[envelope_pb2.Envelope]:
    out = []
    for i in range(n):
        conversation = f"c{i % 500}"
        sender = m.Actor(user_id=f"u{i % 200}", display_name=f"user {i % 200}")
        text = f"remind me to call 138{i % 10**8:08d} at 5" if i % 10 == 0 else f"what is the weather like today #{i}"
        message = m.InboundMessage(message_id=f"m{i}", channel=m.CHANNEL_TELEGRAM, sender=sender, text=text)
        kind = i % 4
        if kind == 0:
            payload: object = message
        elif kind == 1:
            payload = m.ParsedIntent(message=message, intent="chat", confidence=0.7, person_id=f"p{i % 200}")
        elif kind == 2:
            payload = m.InferenceResult(message_id=f"m{i}", text="It is sunny.", model_name="smollm2", latency_ms=300)
        else:
            payload = m.OutboundMessage(
                in_reply_to=f"m{i}", text="It is sunny.", channel=m.CHANNEL_TELEGRAM, final=True
            )
        out.append(events.wrap(payload, conversation_key=conversation, source="bench"))  # type: ignore[arg-type]
    return out


def _acknowledged() -> int:
    """Documents Elasticsearch acknowledged to the logger so far (its own counter)."""
    return int(REGISTRY.get_sample_value("switchboard_audit_documents_total", {"result": "created"}) or 0)


async def _logger_rate(settings: Settings, total: int) -> float:
    """Run the service until it has ``total`` documents acknowledged; documents per second
    from the first acknowledged bulk request to the last.

    Progress is read from the service's own counter, not by counting documents in the
    index: a count needs a refresh, and refreshing ten times a second would load the
    logger's side of the comparison with work (small segments, merges) the raw side does
    not do.
    """
    stop = asyncio.Event()
    start = _acknowledged()
    service = asyncio.create_task(app.serve(settings, stop))
    first_at = first_count = None
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("audit logger", total=total)
        while (n := _acknowledged() - start) < total:
            if n and first_at is None:
                first_at, first_count = time.perf_counter(), n
            progress.update(task, completed=n)
            if service.done():
                service.result()
            await asyncio.sleep(0.01)
    done_at = time.perf_counter()
    stop.set()
    await service
    assert first_at is not None and first_count is not None
    return (total - first_count) / (done_at - first_at)


async def _raw_rate(es: AsyncElasticsearch, docs: list[dict], index: str, chunk: int) -> float:
    """The client's bulk helper on ``docs`` (``async_bulk`` is this loop over
    ``async_streaming_bulk``), timed as the logger is: from the first acknowledged bulk
    request to the last, so that neither side counts creating its data stream."""
    actions = [{"_op_type": "create", "_index": index, "_id": d["event"]["id"], "_source": d} for d in docs]
    first_at = None
    ok = 0
    async for success, item in async_streaming_bulk(es, actions, chunk_size=chunk, raise_on_error=False):
        assert success, item
        ok += 1
        if first_at is None:
            first_at = time.perf_counter()
    done_at = time.perf_counter()
    assert ok == len(docs) and first_at is not None
    return (len(docs) - min(chunk, len(docs))) / (done_at - first_at)


def _settings(stack_kafka: str, es_url: str, name: str, chunk: int) -> Settings:
    return Settings(
        kafka=Settings(chain_key=CHAIN_KEY).kafka.model_copy(update={"bootstrap_servers": stack_kafka}),  # defaults
        topics=TopicSettings(**{field: f"{name}.{field}.v1" for field in TopicSettings.model_fields}),
        group_id=f"{name}-audit",
        elasticsearch_url=es_url,
        namespace=name.replace(".", ""),
        chain_key=CHAIN_KEY,
        bulk_chunk_size=chunk,
        plugin_request_pattern=rf"{name}\.plugins\.[^.]+\.requests\.v1",  # none: the bench's topic only
        health_port=0,
        metrics_port=0,
        log_level="WARNING",
    )


async def _round(
    settings: Settings, es: AsyncElasticsearch, admin: AIOKafkaAdminClient, events: int
) -> tuple[float, float]:
    """Produce ``events``, index them through the logger, then raw: the two rates."""
    topics = settings.topics
    raw = Settings(
        namespace=f"{settings.namespace}raw", elasticsearch_url=settings.elasticsearch_url, chain_key=CHAIN_KEY
    )
    created = [NewTopic(topics.inbound, 6, 1), NewTopic(topics.deadletter, 1, 1), NewTopic(topics.audit_anchors, 1, 1)]
    await admin.create_topics(created)
    try:
        envelopes = _envelopes(events)
        async with EventProducer(settings.kafka) as producer:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("producing", total=len(envelopes))
                for envelope in envelopes:
                    await producer.enqueue(topics.inbound, envelope)
                    progress.advance(task)
        logger_rate = await _logger_rate(settings, events)
        await es.indices.refresh(index=settings.data_stream)
        docs = [hit["_source"] async for hit in async_scan(es, index=settings.data_stream, size=5000)]
        assert len(docs) == events, f"{len(docs)} documents stored of {events}"
        raw_rate = await _raw_rate(es, docs, raw.data_stream, settings.bulk_chunk_size)
    finally:
        await admin.delete_topics([topic.name for topic in created])
    return logger_rate, raw_rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds; the medians are the result")
    parser.add_argument("--warmup", type=int, default=5000, help="events through both paths first, not measured")
    parser.add_argument("--chunk", type=int, default=1000, help="documents per bulk request, both sides")
    args = parser.parse_args()
    app.tune_gc()  # as the service's entry point does (this process runs both sides)
    stack = load_stack()
    run = uuid.uuid4().hex[:8]
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    es = app.client(_settings(stack.kafka_bootstrap, stack.es_url, f"bench.{run}", args.chunk))
    rounds: list[tuple[float, float]] = []
    try:
        await app.install(
            Settings(elasticsearch_url=stack.es_url, chain_key=CHAIN_KEY), es
        )  # the template, for every namespace
        if args.warmup:  # JIT and caches of Kafka, Elasticsearch and Python warm for both paths
            warm = _settings(stack.kafka_bootstrap, stack.es_url, f"bench.{run}.warm", args.chunk)
            await _round(warm, es, admin, args.warmup)
        for n in range(args.rounds):
            measured = _settings(stack.kafka_bootstrap, stack.es_url, f"bench.{run}.r{n}", args.chunk)
            rounds.append(await _round(measured, es, admin, args.events))
    finally:
        await admin.close()
        await es.close()
    table = Table(
        title=f"Audit ingest, {args.events} events a round, {args.chunk} per bulk request (target: logger/raw >= 0.80)"
    )
    for column in ("round", "audit logger docs/s", "raw async_bulk docs/s", "logger / raw"):
        table.add_column(column, justify="right")
    for n, (logger_rate, raw_rate) in enumerate(rounds, 1):
        table.add_row(str(n), f"{logger_rate:,.0f}", f"{raw_rate:,.0f}", f"{logger_rate / raw_rate:.2f}x")
    table.add_row(
        "[bold]median[/bold]",
        f"{statistics.median(r[0] for r in rounds):,.0f}",
        f"{statistics.median(r[1] for r in rounds):,.0f}",
        f"[bold]{statistics.median(r[0] / r[1] for r in rounds):.2f}x[/bold]",
    )
    console.print(table)
    console.print(
        "audit logger: Kafka -> decode, map, mask, chain -> bulk create -> commit; "
        "raw: async_bulk of the documents it stored, into a fresh data stream of the same template"
    )


if __name__ == "__main__":
    asyncio.run(main())
