"""Audit ingest rate: the audit logger (Kafka -> documents -> Elasticsearch) against the
client's raw ``async_bulk`` of the same documents into the same cluster.

    make up && .venv/bin/python -m scripts.bench_audit --events 20000

1. ``--events`` events of a realistic mix (messages, intents, answers, replies; a few
   carrying PII) are produced to a fresh topic with 6 partitions.
2. The audit logger's service code (``app.serve``: consume, map, mask, chain, bulk-create,
   commit) indexes them into a fresh data stream; the rate is taken from its first
   document to its last.
3. The documents it stored are read back and written with ``async_bulk`` (same chunk size,
   ``op_type=create``, same client settings) into another fresh data stream with the same
   template, twice; the mean is used.

All of it runs once on ``--warmup`` events first, unmeasured, so that neither side pays
for cold JVMs and caches.

Target: logger / raw >= 0.8.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk, async_scan
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from switchboard.audit_logger import app
from switchboard.audit_logger.config import Settings
from switchboard.common import events
from switchboard.common.config import KafkaSettings, TopicSettings
from switchboard.common.kafka import EventProducer
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from tests.conftest import load_stack

console = Console()


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


async def _count(es: AsyncElasticsearch, index: str) -> int:
    if not await es.indices.exists(index=index):
        return 0
    await es.indices.refresh(index=index)
    return int((await es.count(index=index))["count"])


async def _logger_rate(settings: Settings, es: AsyncElasticsearch, total: int) -> float:
    stop = asyncio.Event()
    service = asyncio.create_task(app.serve(settings, stop))
    first_at = first_count = None
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("audit logger", total=total)
        while (n := await _count(es, settings.data_stream)) < total:
            if n and first_at is None:
                first_at, first_count = time.perf_counter(), n
            progress.update(task, completed=n)
            if service.done():
                service.result()
            await asyncio.sleep(0.1)
    done_at = time.perf_counter()
    stop.set()
    await service
    assert first_at is not None and first_count is not None
    return (total - first_count) / (done_at - first_at)


async def _raw_rate(es: AsyncElasticsearch, docs: list[dict], index: str, chunk: int) -> float:
    actions = [{"_op_type": "create", "_index": index, "_id": d["event"]["id"], "_source": d} for d in docs]
    started = time.perf_counter()
    ok, errors = await async_bulk(es, actions, chunk_size=chunk, raise_on_error=False)
    elapsed = time.perf_counter() - started
    assert ok == len(docs) and not errors, errors
    return len(docs) / elapsed


def _settings(stack_kafka: str, es_url: str, name: str, chunk: int) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=stack_kafka, max_poll_records=1000, max_in_flight=5000),
        topics=TopicSettings(**{field: f"{name}.{field}.v1" for field in TopicSettings.model_fields}),
        group_id=f"{name}-audit",
        elasticsearch_url=es_url,
        namespace=name.replace(".", ""),
        bulk_chunk_size=chunk,
        plugin_request_pattern=rf"{name}\.plugins\.[^.]+\.requests\.v1",  # none: the bench's topic only
        health_port=0,
        metrics_port=0,
        log_level="WARNING",
    )


async def _round(
    settings: Settings, es: AsyncElasticsearch, admin: AIOKafkaAdminClient, events: int
) -> tuple[float, float, list[float]]:
    """Produce ``events``, index them through the logger, then raw twice: the rates."""
    topics = settings.topics
    await admin.create_topics([NewTopic(topics.inbound, 6, 1), NewTopic(topics.deadletter, 1, 1)])
    try:
        envelopes = _envelopes(events)
        async with EventProducer(settings.kafka) as producer:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("producing", total=len(envelopes))
                for envelope in envelopes:
                    await producer.enqueue(topics.inbound, envelope)
                    progress.advance(task)
        logger_rate = await _logger_rate(settings, es, events)
        docs = [hit["_source"] async for hit in async_scan(es, index=settings.data_stream, size=5000)]
        raw_rates = []
        for attempt in range(2):
            raw = Settings(namespace=f"{settings.namespace}raw{attempt}", elasticsearch_url=settings.elasticsearch_url)
            await app.install(raw, es)
            raw_rates.append(await _raw_rate(es, docs, raw.data_stream, settings.bulk_chunk_size))
    finally:
        await admin.delete_topics([topics.inbound, topics.deadletter])
    return logger_rate, sum(raw_rates) / len(raw_rates), raw_rates


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=5000, help="events through both paths first, not measured")
    parser.add_argument("--chunk", type=int, default=1000, help="documents per bulk request, both sides")
    args = parser.parse_args()
    stack = load_stack()
    run = uuid.uuid4().hex[:8]
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    measured = _settings(stack.kafka_bootstrap, stack.es_url, f"bench.{run}", args.chunk)
    es = app.client(measured)  # the logger's own client settings, for the raw side too
    try:
        if args.warmup:  # JIT and caches of Kafka, Elasticsearch and Python warm for both paths
            warm = _settings(stack.kafka_bootstrap, stack.es_url, f"bench.{run}.warm", args.chunk)
            await _round(warm, es, admin, args.warmup)
        logger_rate, raw_rate, raw_rates = await _round(measured, es, admin, args.events)
    finally:
        await admin.close()
        await es.close()
    table = Table(title=f"Audit ingest, {args.events} events, {args.chunk} per bulk request")
    table.add_column("path")
    table.add_column("docs/s", justify="right")
    table.add_row("audit logger (Kafka -> map, mask, chain -> bulk create -> commit)", f"{logger_rate:,.0f}")
    table.add_row(
        f"raw async_bulk of the same documents ({' / '.join(f'{r:,.0f}' for r in raw_rates)})", f"{raw_rate:,.0f}"
    )
    table.add_row("[bold]logger / raw[/bold] (target >= 0.80)", f"[bold]{logger_rate / raw_rate:.2f}x[/bold]")
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
