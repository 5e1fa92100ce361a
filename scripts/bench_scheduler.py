"""Scheduler benchmark: dispatch throughput and firing lateness with a million pending reminders.

    make up && .venv/bin/python scripts/bench_scheduler.py [--pending 1000000] [--backlog 100000]
        [--rate 2000] [--seconds 20] [--chart bench_scheduler.png]

On the stack's PostgreSQL and Kafka, in a schema and a topic of its own (dropped after):

1. ``--pending`` reminders due 1 to 30 days ahead are loaded (COPY): the table a busy
   install has, which every claim must search past.
2. Dispatch throughput, three figures side by side: ``--backlog`` reminders due now are
   fired by one dispatcher (claim, build the messages, advance the jobs, write the outbox:
   jobs/s); then the outbox rows are relayed to Kafka alone (records/s, acknowledged); then
   a second backlog is fired and relayed at once, as a scheduler replica does (jobs/s
   from the first claim to the last acknowledgement).
3. Lateness: reminders due at ``--rate`` per second for ``--seconds`` (evenly spaced), fired
   by the dispatcher and relay on the wall clock; lateness is the Kafka record's timestamp
   (set when the relay sends it) minus the occurrence, read back from the topic: p50, p99,
   max. ``--chart`` draws lateness over the run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from switchboard.common import postgres  # noqa: E402
from switchboard.common.config import KafkaSettings  # noqa: E402
from switchboard.common.kafka import EventProducer  # noqa: E402
from switchboard.events.v1 import envelope_pb2  # noqa: E402
from switchboard.scheduler.dispatcher import Dispatcher  # noqa: E402
from switchboard.scheduler.outbox import Outbox  # noqa: E402
from tests.conftest import load_stack  # noqa: E402

console = Console(width=120)
PARTITIONS = 6
COLUMNS = (
    "id",
    "kind",
    "owner",
    "tenant_id",
    "conversation_key",
    "channel",
    "channel_chat_id",
    "title",
    "time_zone",
    "dtstart",
    "occurrence",
    "due_at",
    "priority",
)


def reminder_rows(dues: list[datetime], tag: str) -> list[tuple[object, ...]]:
    rows = []
    for i, due in enumerate(dues):
        person = f"person-{i % 50_000}"
        priority = 1 if i % 10 == 0 else 2
        rows.append(
            (uuid.uuid4(), "reminder", person, "default", f"conv-{person}", 3, f"chat-{person}", f"{tag} {i}", "UTC")
        )
        rows[-1] = (*rows[-1], due, due, due, priority)
    return rows


async def load(pool: asyncpg.Pool, dues: list[datetime], tag: str, progress: Progress | None = None) -> None:
    task = progress.add_task(f"loading {len(dues):,} {tag}", total=len(dues)) if progress else None
    chunk = 50_000
    for start in range(0, len(dues), chunk):
        rows = reminder_rows(dues[start : start + chunk], tag)
        async with pool.acquire() as conn:
            await conn.copy_records_to_table("jobs", records=rows, columns=COLUMNS)
        if progress is not None and task is not None:
            progress.advance(task, len(rows))
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE jobs")


async def fire_all(dispatcher: Dispatcher, total: int, label: str) -> float:
    started = time.perf_counter()
    done = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        while n := await dispatcher.fire_due():
            done += n
            progress.advance(task, n)
    assert done == total, f"fired {done} of {total}"
    return time.perf_counter() - started


async def relay_all(outbox: Outbox, producer: EventProducer, total: int, batch: int, label: str) -> float:
    started = time.perf_counter()
    sent = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        while n := await outbox.relay_once(producer, batch):
            sent += n
            progress.advance(task, n)
    assert sent == total, f"relayed {sent} of {total}"
    return time.perf_counter() - started


async def fire_and_relay(
    pool: asyncpg.Pool, dispatcher: Dispatcher, outbox: Outbox, producer: EventProducer, total: int, batch: int
) -> float:
    """Fire ``total`` due jobs while the relay runs beside, as in a replica; seconds until
    the last one is acknowledged by Kafka."""
    stop = asyncio.Event()
    started = time.perf_counter()
    relay = asyncio.create_task(outbox.relay(producer, stop, 0.05, batch))
    await fire_all(dispatcher, total, "firing and relaying")
    async with pool.acquire() as conn:
        while await conn.fetchval("SELECT count(*) FROM outbox"):  # noqa: ASYNC110 (polling the table)
            await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await relay
    return elapsed


async def lateness(
    pool: asyncpg.Pool,
    dispatcher: Dispatcher,
    outbox: Outbox,
    producer: EventProducer,
    bootstrap: str,
    topic: str,
    rate: int,
    seconds: int,
    batch: int,
) -> list[tuple[float, float]]:
    """(seconds into the run, lateness in seconds) per fired reminder."""
    start = datetime.now(UTC) + timedelta(seconds=3)
    count = rate * seconds
    dues = [start + timedelta(seconds=i / rate) for i in range(count)]
    await load(pool, dues, "steady")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    stop = asyncio.Event()
    runners = [
        asyncio.create_task(dispatcher.run(stop)),
        asyncio.create_task(outbox.relay(producer, stop, 0.05, batch)),
    ]
    out: list[tuple[float, float]] = []
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{rate}/s for {seconds} s", total=count)
            async with asyncio.timeout(seconds + 120):
                while len(out) < count:
                    batches = await consumer.getmany(timeout_ms=500)
                    for records in batches.values():
                        for record in records:
                            envelope = envelope_pb2.Envelope.FromString(record.value)
                            occurrence = datetime.fromisoformat(envelope.outbound_message.metadata["occurrence"])
                            sent = record.timestamp / 1000
                            out.append((occurrence.timestamp() - start.timestamp(), sent - occurrence.timestamp()))
                            progress.advance(task)
    finally:
        stop.set()
        await asyncio.gather(*runners)
        await consumer.stop()
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=1_000_000, help="reminders due 1-30 days ahead")
    parser.add_argument("--backlog", type=int, default=100_000, help="reminders due now, for throughput")
    parser.add_argument("--rate", type=int, default=2000, help="reminders due per second, for lateness")
    parser.add_argument("--seconds", type=int, default=20, help="how long reminders keep coming due")
    parser.add_argument("--batch", type=int, default=1000, help="jobs per dispatch round, rows per relay batch")
    parser.add_argument("--chart", type=Path, help="PNG of lateness over the run")
    args = parser.parse_args()

    stack = load_stack()
    rng = random.Random(1)  # noqa: S311 (spreading due times, not secrets)
    run = uuid.uuid4().hex[:8]
    schema, topic = f"bench_{run}", f"bench.{run}.outbound"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    pool = await asyncpg.create_pool(
        stack.pg_dsn, min_size=4, max_size=4, server_settings={"search_path": schema}, timeout=10
    )
    try:
        async with pool.acquire() as conn:
            await postgres.migrate(conn, schema, "switchboard.scheduler")
        outbox = Outbox(pool, schema)
        dispatcher = Dispatcher(
            pool,
            outbox,
            schema=schema,
            source="bench",
            outbound_topic=topic,
            deadletter_topic=f"{topic}.dead",
            batch=args.batch,
            poll_s=0.2,
            rng=rng,
        )
        now = datetime.now(UTC)
        with Progress(console=console, transient=True) as progress:
            spread = [now + timedelta(days=1, seconds=rng.uniform(0, 29 * 86400)) for _ in range(args.pending)]
            await load(pool, spread, "pending", progress)
            backlog = [now - timedelta(seconds=rng.uniform(0, 60)) for _ in range(args.backlog)]
            await load(pool, backlog, "backlog", progress)
        async with EventProducer(KafkaSettings(bootstrap_servers=stack.kafka_bootstrap)) as producer:
            fire_s = await fire_all(dispatcher, args.backlog, "firing (database side)")
            relay_s = await relay_all(outbox, producer, args.backlog, args.batch, "relaying to Kafka")
            async with pool.acquire() as conn:
                await conn.execute(
                    "UPDATE jobs SET due_at = now() - interval '1 s', occurrence = now() - interval '1 s', "
                    "status = 'scheduled', fired = 0 WHERE status = 'done'"
                )
            both_s = await fire_and_relay(pool, dispatcher, outbox, producer, args.backlog, args.batch)
            late = await lateness(
                pool, dispatcher, outbox, producer, stack.kafka_bootstrap, topic, args.rate, args.seconds, args.batch
            )
        async with pool.acquire() as conn:
            pending = await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'scheduled'")
            doubles = await conn.fetchval("SELECT count(*) FROM jobs WHERE fired > 1")
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()
        await admin.delete_topics([topic])
        await admin.close()

    table = Table(title=f"Scheduler, {args.pending:,} reminders pending ({pending:,} still pending after the run)")
    table.add_column("measure")
    table.add_column("result", justify="right")
    table.add_column("target", justify="right")
    table.add_row("fire (claim + advance + outbox), 1 dispatcher", f"{args.backlog / fire_s:,.0f} jobs/s", "")
    table.add_row("relay outbox -> Kafka (acks=all)", f"{args.backlog / relay_s:,.0f} records/s", "")
    table.add_row("fire and relay together (one replica)", f"{args.backlog / both_s:,.0f} jobs/s", ">= 5,000 jobs/s")
    delays = [d for _, d in late]
    table.add_row(
        f"lateness at {args.rate:,}/s for {args.seconds} s, p50 / p99 / max",
        f"{pct(delays, 50) * 1000:,.0f} / {pct(delays, 99) * 1000:,.0f} / {max(delays) * 1000:,.0f} ms",
        "p99 <= 1,000 ms",
    )
    table.add_row("jobs fired more than once", f"{doubles}", "0")
    console.print(table)
    console.print(
        f"fired {len(late):,} steady reminders; lateness mean {statistics.mean(delays) * 1000:,.0f} ms, "
        f"ratio fire-only / fire-and-relay throughput {(args.backlog / fire_s) / (args.backlog / both_s):.2f}"
    )
    if args.chart:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 4))
        ax.scatter([t for t, _ in late], [d * 1000 for _, d in late], s=2)
        ax.axhline(1000, color="red", linewidth=0.8, label="p99 target (1 s)")
        ax.set_xlabel("occurrence, seconds into the run")
        ax.set_ylabel("lateness on Kafka (ms)")
        ax.set_title(f"Reminder lateness, {args.rate:,}/s due, {args.pending:,} pending")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.chart, dpi=120)
        console.print(f"chart: {args.chart}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
