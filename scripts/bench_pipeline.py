"""Pipeline benchmark: Kafka hop floor vs the five-service pipeline, side by side in one run.

    make up                          # the stack (Kafka, PostgreSQL, Elasticsearch, Triton)
    .venv/bin/python scripts/bench_pipeline.py [--duration 20] [--rates 50,200,500]

1. Floor: produce -> consume round trip of one record through the broker with aiokafka
   (acks=all, idempotent producer: the same settings the services use).
2. Pipeline: the five services started fresh (as in the e2e tests: own topics, groups,
   schema), the deterministic `echo` model (or `--model echo_stream`) behind them. InboundMessages are
   produced at a fixed rate, open loop, exactly as the gateway produces them; latency is
   the time until the final OutboundMessage is read back (5 Kafka hops: inbound, intents,
   requests, results, outbound).
3. Highest sustained rate: rates rise until replies go unanswered or fall below 95 % of the rate.
4. With ``--tracing-rate R`` instead: tracing's overhead, p50/p99 at R msg/s with every span
   recorded and exported to the stack's Jaeger vs none, two pipelines taking turns.

Prints p50/p95/p99 per rate and the ratio of the pipeline's p50 to 5 x the floor's p50.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import cpu_time
from switchboard.common import events
from switchboard.common.config import KafkaSettings
from switchboard.common.tracing import new_traceparent
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from tests.conftest import Stack, load_stack
from tests.e2e.pipeline import Pipeline

HOPS = 5
console = Console(width=120)


@dataclass
class Row:
    """One offered rate's run."""

    rate: int
    latencies: list[float]  # ms, inbound produced -> final reply read
    lost: int  # unanswered after the drain
    achieved: float  # replies per second
    cpu: dict[str, float]  # CPU seconds by part of the stack (cpu_time.py)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def floor(stack: Stack, samples: int) -> list[float]:
    """Round trip of single records (ms): send, then wait until the consumer has it."""
    topic = f"bench.floor.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.kafka_bootstrap, auto_offset_reset="latest")
    await producer.start()
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=1000)  # joined and positioned
        await asyncio.sleep(1)
        latencies = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("kafka hop floor", total=samples)
            for i in range(samples):
                started = time.perf_counter()
                await producer.send_and_wait(topic, f"{i}".encode(), key=b"k")
                while True:
                    batch = await consumer.getmany(timeout_ms=1000)
                    if any(batch.values()):
                        break
                latencies.append((time.perf_counter() - started) * 1000)
                progress.advance(task)
        return latencies
    finally:
        await consumer.stop()
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()


async def load(pipeline: Pipeline, rate: int, duration_s: float, drain_s: float, sampled: float = 1.0) -> Row:
    """Offer ``rate`` msg/s for ``duration_s``: latencies (ms), unanswered after the drain, achieved
    msg/s, and the CPU seconds each part of the stack spent from the first send to the last reply.
    ``sampled``: the share of messages whose new trace is recorded, as the gateway decides for a
    trace it starts (its ``trace_sample_ratio``); the others carry an unsampled traceparent."""
    stack = pipeline.stack
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=1
    )
    consumer = AIOKafkaConsumer(  # read replies as promptly as the services read their input
        pipeline.topics.outbound,
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="latest",
        fetch_max_wait_ms=KafkaSettings().fetch_max_wait_ms,
    )
    await producer.start()
    await consumer.start()
    await consumer.getmany(timeout_ms=1000)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    total = int(rate * duration_s)
    done = asyncio.Event()
    last_reply = [time.perf_counter()]

    async def receive() -> None:
        while not done.is_set() or len(latencies) < len(sent):
            batch = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    envelope = envelope_pb2.Envelope.FromString(record.value)
                    reply = envelope.outbound_message
                    if reply.final and reply.in_reply_to in sent:
                        latencies.append((now - sent[reply.in_reply_to]) * 1000)
                        last_reply[0] = now

    receiver = asyncio.create_task(receive())
    cpu_before = cpu_time.sample()
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{rate} msg/s", total=total)
        for i in range(total):
            target = started + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            conversation = f"bench-{i % 200}"
            message_id = f"m-{uuid.uuid4().hex}"
            inbound = m.InboundMessage(
                message_id=message_id, channel=m.CHANNEL_HTTP, channel_chat_id=conversation, text=f"bench message {i}"
            )
            flags = "01" if int((i + 1) * sampled) > int(i * sampled) else "00"  # evenly spread
            traceparent = new_traceparent()[:-2] + flags
            envelope = events.wrap(inbound, conversation_key=conversation, source="bench", traceparent=traceparent)
            sent[message_id] = time.perf_counter()
            await producer.send(pipeline.topics.inbound, envelope.SerializeToString(), key=conversation.encode())
            progress.advance(task)
    done.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(receiver, drain_s)
    cpu = cpu_time.spent(cpu_before, cpu_time.sample())
    elapsed = max(last_reply[0] - started, 1e-9)
    await producer.stop()
    await consumer.stop()
    return Row(rate, latencies, total - len(latencies), len(latencies) / elapsed, cpu)


def kept(row: Row) -> bool:
    """Whether the pipeline kept up with a rate: every reply came, at >= 95 % of the rate offered."""
    return row.lost == 0 and row.achieved >= 0.95 * row.rate


def cpu_table(rows: list[Row]) -> Table:
    """CPU milliseconds per answered message, by part of the stack, per offered rate."""
    table = Table(title="CPU ms per answered message (first send to last reply)")
    table.add_column("process")
    for row in rows:
        table.add_column(f"{row.rate} msg/s", justify="right")
    groups = sorted({group for row in rows for group in row.cpu}, key=lambda g: -max(r.cpu.get(g, 0) for r in rows))
    for group in [*groups, "total"]:
        cells = []
        for row in rows:
            seconds = sum(row.cpu.values()) if group == "total" else row.cpu.get(group, 0.0)
            cells.append(f"{1000 * seconds / max(1, len(row.latencies)):.2f}")
        table.add_row(group, *cells)
    return table


def chart(path: Path, floor_p50: float, rows: list[Row]) -> None:
    """Latency percentiles per offered rate (log scale), with the 5-hop floor and the p99 target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [row.rate for row in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for q, label in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        ax.plot(rates, [pct(row.latencies, q) for row in rows], marker="o", label=label)
    ax.axhline(HOPS * floor_p50, color="grey", linestyle="--", label=f"{HOPS} x Kafka hop floor")
    ax.axhline(60, color="red", linestyle=":", label="p99 target (60 ms)")
    for row in rows:
        ax.annotate(
            f"{row.achieved:.0f}/s", (row.rate, 0.02), xycoords=("data", "axes fraction"), fontsize=8, ha="center"
        )
    ax.set(
        xlabel="offered msg/s (labels: achieved)",
        ylabel="inbound -> final reply (ms)",
        yscale="log",
        title="Switchboard pipeline latency",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


SERVICE_MODULES = ("channel_gateway", "intent_parser", "scheduler", "inference_client", "audit_logger")


async def tracing_overhead(
    stack: Stack, model: str, rate: int, duration_s: float, rounds: int, sampled: float = 1.0
) -> int:
    """Tracing's cost: two pipelines, the same but for tracing (spans exported to the stack's
    Jaeger; the traces of a ``sampled`` share of the messages recorded), loaded in turn at
    ``rate`` for ``rounds`` rounds; one runs at a time."""
    routes = {"general": {"model": model, "kind": "echo"}}
    latencies: dict[bool, list[float]] = {False: [], True: []}
    lost = {False: 0, True: 0}
    cpu: dict[bool, dict[str, float]] = {False: {}, True: {}}  # CPU seconds by part, summed over rounds
    for round_ in range(rounds):
        for tracing in (False, True) if round_ % 2 == 0 else (True, False):
            pipeline = Pipeline(stack, routes=routes, tracing=tracing)
            await pipeline.start()
            try:
                await load(pipeline, 20, 3, 30)  # warm-up
                row = await load(pipeline, rate, duration_s, 60, sampled)
            finally:
                await pipeline.stop()
            latencies[tracing] += row.latencies
            lost[tracing] += row.lost
            for group, seconds in row.cpu.items():
                cpu[tracing][group] = cpu[tracing].get(group, 0.0) + seconds
    table = Table(
        title=f"Tracing's overhead at {rate} msg/s, {sampled:.0%} of traces recorded "
        f"({rounds} rounds of {duration_s:.0f} s each)"
    )
    for col in ("tracing", "replies", "unanswered", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col, justify="right")
    for tracing in (False, True):
        lat = latencies[tracing]
        table.add_row(
            "on" if tracing else "off",
            str(len(lat)),
            str(lost[tracing]),
            f"{pct(lat, 0.5):.1f}",
            f"{pct(lat, 0.95):.1f}",
            f"{pct(lat, 0.99):.1f}",
        )
    console.print(table)
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        off, on = pct(latencies[False], q), pct(latencies[True], q)
        console.print(f"{name}: {100 * (on - off) / off:+.1f} % with tracing")
    # CPU per answered message: steadier than latency on a loaded machine, and the cost itself.
    services = sorted({g for side in cpu.values() for g in side if g in SERVICE_MODULES})
    table = Table(title="CPU ms per answered message, tracing off vs on")
    for col in ("process", "off", "on", "change"):
        table.add_column(col, justify="right")
    for group in [*services, "five services", "Jaeger"]:
        per = {}
        for tracing in (False, True):
            seconds = (
                sum(cpu[tracing].get(g, 0.0) for g in services)
                if group == "five services"
                else cpu[tracing].get(group, 0.0)
            )
            per[tracing] = 1000 * seconds / max(1, len(latencies[tracing]))
        change = f"{100 * (per[True] - per[False]) / per[False]:+.1f} %" if per[False] else "-"
        table.add_row(group, f"{per[False]:.2f}", f"{per[True]:.2f}", change)
    console.print(table)
    return 0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per rate")
    parser.add_argument("--rates", default="50,200,500", help="rates (msg/s) for the latency table")
    parser.add_argument(
        "--max-rates",
        default="250,300,400,750,1000,1500",
        help="rising rates tried for the maximum, up to the first missed",
    )
    parser.add_argument("--floor-samples", type=int, default=300)
    parser.add_argument("--chart", type=Path, help="also draw latency per offered rate into this PNG")
    parser.add_argument(
        "--model", default="echo", help="deterministic Triton model: echo (batched) or echo_stream (decoupled)"
    )
    parser.add_argument(
        "--tracing-rate",
        type=int,
        help="instead of the tables above: p50/p99 at this rate with tracing off and on (spans exported "
        "to the stack's Jaeger), two pipelines taking turns for --tracing-rounds rounds",
    )
    parser.add_argument("--tracing-rounds", type=int, default=3)
    parser.add_argument(
        "--tracing-sampled",
        type=float,
        default=1.0,
        help="share of messages whose trace is recorded (1.0: every one; the cluster's ConfigMaps use 0.1)",
    )
    args = parser.parse_args()
    stack = load_stack()
    if args.tracing_rate:
        return await tracing_overhead(
            stack, args.model, args.tracing_rate, args.duration, args.tracing_rounds, args.tracing_sampled
        )

    hop = await floor(stack, args.floor_samples)
    pipeline = Pipeline(stack, routes={"general": {"model": args.model, "kind": "echo"}})
    await pipeline.start()
    rows = []
    try:
        await load(pipeline, 20, 3, 30)  # warm-up: connections, JIT-free caches, first rebalances
        for rate in [int(r) for r in args.rates.split(",")]:
            rows.append(await load(pipeline, rate, args.duration, 60))
        for rate in [int(r) for r in args.max_rates.split(",")]:
            rows.append(await load(pipeline, rate, args.duration, 30))
            if not kept(rows[-1]):
                break  # past the limit
    finally:
        await pipeline.stop()

    rows.sort(key=lambda row: row.rate)
    sustained = max((row.rate for row in rows if kept(row)), default=0)
    floor_p50 = statistics.median(hop)
    table = Table(title=f"Switchboard pipeline ({HOPS} Kafka hops) vs Kafka hop floor")
    for col in (
        "offered msg/s",
        "achieved msg/s",
        "replies",
        "unanswered",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p50 / (5 x floor)",
    ):
        table.add_column(col, justify="right")
    table.add_row(
        "floor", "-", str(len(hop)), "0", f"{floor_p50:.2f}", f"{pct(hop, 0.95):.2f}", f"{pct(hop, 0.99):.2f}", "-"
    )
    for row in rows:
        p50 = pct(row.latencies, 0.5)
        table.add_row(
            str(row.rate),
            f"{row.achieved:.0f}",
            str(len(row.latencies)),
            str(row.lost),
            f"{p50:.1f}",
            f"{pct(row.latencies, 0.95):.1f}",
            f"{pct(row.latencies, 0.99):.1f}",
            f"{p50 / (HOPS * floor_p50):.2f}",
        )
    console.print(table)
    console.print(cpu_table(rows))
    if args.chart:
        chart(args.chart, floor_p50, rows)
        console.print(f"chart: {args.chart}")
    console.print(f"highest rate sustained with no loss: {sustained or 'none of those offered'} msg/s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
