"""Intent parser benchmark: how well it understands, and how fast, in one run.

    .venv/bin/python scripts/bench_intent.py --quality-only      # no stack needed
    make up && .venv/bin/python scripts/bench_intent.py [--messages 3000] [--workers 1,2]

1. Quality on the dev split of services/intent-parser/data (the classifier trained on the
   train split only, as at start-up but without the dev rows): intent accuracy, per-intent
   precision / recall / F1, time-slot exact match (datetime and RRULE both exactly right) on
   every reminder row, given the gold intent and end to end (the predicted one), and exact
   match of the device, room, action, value, category and task slots.
2. Handler throughput: ``Parser.understand`` (classify, slots, routing) on the dev texts in
   one process, one core: messages/s, overall and for reminder rows (which run the time
   expression library) and the rest.
3. End to end through Kafka: N messages (the dev texts, 1 000 senders) produced to a fresh
   inbound topic, read back as ParsedIntents from the intents topic, for each worker count
   in ``--workers`` (separate processes, the real Faust app with its tables and
   changelogs): messages/s from first send to last intent, and latency p50/p99 (intent
   record time minus inbound record time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from switchboard.events.v1 import messages_pb2 as m  # noqa: E402
from switchboard.intent_parser.handlers import Parser, language_of  # noqa: E402

SERVICE = ROOT / "services" / "intent-parser"
REMINDERS = ("reminder.create", "reminder.list", "reminder.cancel")
# Enough senders that none reaches the per-person limit (30 a minute) in a run.
SENDERS = 1000
ENTITY_SLOTS = ("device", "room", "action", "value", "category", "task")
console = Console(width=120)


def rows(split: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted((SERVICE / "data").glob("utterances.*.jsonl")):
        out += [row for row in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if row["split"] == split]
    return out


def said_at(row: dict[str, Any]) -> datetime:
    return datetime(2026, 11, 24, 15, 30, tzinfo=ZoneInfo(row["tz"]))  # the dataset's reference time


def message(text: str) -> m.InboundMessage:
    return m.InboundMessage(message_id="bench", text=text, kind=m.MESSAGE_KIND_TEXT)


def quality(parser: Parser, dev: list[dict[str, Any]]) -> dict[str, float]:
    from sklearn.metrics import classification_report

    gold, predicted, time_gold, time_e2e, entity = [], [], [0, 0], [0, 0], Counter()
    entity_total: Counter[str] = Counter()
    for row in dev:
        parsed = parser.understand(message(row["text"]), said_at(row), row["tz"], language_of(row["text"], "en"))
        gold.append(row["intent"])
        predicted.append(parsed.intent)
        slots = {s.name: s.value for s in parsed.slots}
        if row["intent"] in REMINDERS:
            want = (row["slots"].get("datetime"), row["slots"].get("rrule"))
            found = parser.times.parse(row["text"], row["tz"], said_at(row), row["intent"])
            time_gold[0] += want == ((found.rfc3339, found.rrule) if found else (None, None))
            time_gold[1] += 1
            time_e2e[0] += want == (slots.get("datetime"), slots.get("rrule"))
            time_e2e[1] += 1
        spans = ()
        found_time = parser.times.parse(row["text"], row["tz"], said_at(row), row["intent"])
        if row["intent"] in REMINDERS and found_time is not None:
            spans = found_time.spans
        extracted = {e.name: e.value for e in parser.entities.extract(row["text"], row["intent"], spans)}
        for name in ENTITY_SLOTS:
            if name in row["slots"] or name in extracted:
                entity_total[name] += 1
                entity[name] += row["slots"].get(name) == extracted.get(name)

    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    table = Table(title=f"Intents on the dev split ({len(dev)} rows; trained on train only)")
    for column in ("intent", "precision", "recall", "F1", "rows"):
        table.add_column(column, justify="left" if column == "intent" else "right")
    for name in sorted(set(gold)):
        r = report[name]
        table.add_row(name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1-score']:.3f}", str(r["support"]))
    macro = report["macro avg"]
    table.add_row("macro avg", f"{macro['precision']:.3f}", f"{macro['recall']:.3f}", f"{macro['f1-score']:.3f}", "")
    console.print(table)
    accuracy = report["accuracy"]
    slots = Table(title="Slots on the dev split (exact match)")
    for column in ("slot", "right", "of", "exact match"):
        slots.add_column(column, justify="left" if column == "slot" else "right")
    slots.add_row(
        "datetime + rrule (gold intent)", str(time_gold[0]), str(time_gold[1]), f"{time_gold[0] / time_gold[1]:.1%}"
    )
    slots.add_row(
        "datetime + rrule (end to end)", str(time_e2e[0]), str(time_e2e[1]), f"{time_e2e[0] / time_e2e[1]:.1%}"
    )
    for name in ENTITY_SLOTS:
        slots.add_row(
            name, str(entity[name]), str(entity_total[name]), f"{entity[name] / max(1, entity_total[name]):.1%}"
        )
    console.print(slots)
    wrong = [(r["id"], r["intent"], p, r["text"][:60]) for r, p in zip(dev, predicted, strict=True) if r["intent"] != p]
    console.print(
        f"intent accuracy {accuracy:.1%} (target ≥ 95 %); time-slot exact match {time_gold[0] / time_gold[1]:.1%}"
        f" (target ≥ 95 %); misclassified: {len(wrong)}"
    )
    for row_id, want, got, text in wrong:
        console.print(f"  {row_id}: {want} -> {got}  {text!r}")
    return {
        "accuracy": accuracy,
        "time_exact": time_gold[0] / time_gold[1],
        "time_exact_e2e": time_e2e[0] / time_e2e[1],
    }


def cross_validated(all_rows: list[dict[str, Any]]) -> float:
    """Accuracy of 5-fold stratified cross-validation over every labelled row (train and dev)."""
    from switchboard.intent_parser.classifier import ClassifierConfig, out_of_fold

    config = ClassifierConfig.load(SERVICE / "config" / "intents.yaml")
    predictions = out_of_fold(all_rows, config=config, folds=5, seed=0)
    right = sum(p.intent == r["intent"] for p, r in zip(predictions, all_rows, strict=True))
    console.print(
        f"intent accuracy, 5-fold cross-validation over all {len(all_rows)} labelled rows: {right / len(all_rows):.1%}"
    )
    return right / len(all_rows)


def throughput(parser: Parser, texts: list[tuple[str, str, bool]], seconds: float) -> dict[str, float]:
    """Messages/s of ``Parser.understand`` over ``texts`` (text, zone, is-reminder), cycled."""
    now = datetime(2026, 11, 24, 7, 30, tzinfo=ZoneInfo("UTC"))
    spent = {True: 0.0, False: 0.0}
    count = {True: 0, False: 0}
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("handler throughput", total=seconds)
        while (elapsed := time.perf_counter() - started) < seconds:
            for text, zone, reminder in texts:
                t0 = time.perf_counter()
                parser.understand(message(text), now, zone, language_of(text, "en"))
                spent[reminder] += time.perf_counter() - t0
                count[reminder] += 1
            progress.update(task, completed=min(seconds, elapsed))
    total = sum(count.values()) / sum(spent.values())
    table = Table(title="Handler throughput (Parser.understand, one process, one core)")
    for column in ("messages", "handled", "msg/s", "ms each"):
        table.add_column(column, justify="left" if column == "messages" else "right")
    for label, key in (("reminder rows", True), ("other rows", False)):
        rate = count[key] / spent[key]
        table.add_row(label, str(count[key]), f"{rate:,.0f}", f"{1000 / rate:.2f}")
    table.add_row("all (dev mix)", str(sum(count.values())), f"{total:,.0f}", f"{1000 / total:.2f}")
    console.print(table)
    return {"handler_msgs_per_s": total}


async def end_to_end(workers: int, texts: list[str], total: int, rate: float) -> dict[str, float]:
    """A burst of ``total`` messages (throughput), then ``total`` more paced at ``rate`` (latency)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from tests.conftest import load_stack
    from tests.e2e.pipeline import Pipeline

    pipeline = Pipeline(load_stack(), replicas=workers, modules=("intent_parser",))
    pipeline.extra_env = {"intent_parser": {"LOG_LEVEL": "WARNING"}}
    await pipeline.start()
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.stack.kafka_bootstrap, acks="all", linger_ms=5)
    consumer = AIOKafkaConsumer(
        pipeline.topics.intents, bootstrap_servers=pipeline.stack.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await producer.start()
    await consumer.start()
    try:
        burst, _ = await _run(pipeline, producer, consumer, texts, total, None, f"{workers} worker(s), burst")
        _, latencies = await _run(pipeline, producer, consumer, texts, total, rate, f"{workers} worker(s), {rate:g}/s")
    finally:
        await consumer.stop()
        await producer.stop()
        await pipeline.stop()
    latencies.sort()
    return {
        "workers": workers,
        "msgs_per_s": burst,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
    }


async def _run(
    pipeline: Any, producer: Any, consumer: Any, texts: list[str], total: int, rate: float | None, label: str
) -> tuple[float, list[float]]:
    """(messages/s from first send to last intent, latencies ms) of ``total`` messages."""
    from switchboard.common import events
    from switchboard.events.v1 import envelope_pb2

    sent_at: dict[str, int] = {}
    latencies: list[float] = []
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        sending = progress.add_task(f"{label}: send", total=total)
        for i in range(total):
            if rate is not None and (delay := started + i / rate - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            user = f"telegram:bench-{i % SENDERS}"
            inbound = m.InboundMessage(
                message_id=uuid.uuid4().hex,
                channel=m.CHANNEL_TELEGRAM,
                channel_message_id=uuid.uuid4().hex,
                channel_chat_id=user,
                sender=m.Actor(user_id=user, time_zone="Asia/Shanghai"),
                kind=m.MESSAGE_KIND_TEXT,
                text=texts[i % len(texts)],
            )
            envelope = events.wrap(inbound, conversation_key=user, source="bench")
            sent_at[envelope.event_id] = 0
            record = await producer.send(pipeline.topics.inbound, envelope.SerializeToString(), key=user.encode())
            record.add_done_callback(lambda f, eid=envelope.event_id: sent_at.__setitem__(eid, f.result().timestamp))
            progress.advance(sending)
        await producer.flush()
        receiving = progress.add_task(f"{label}: intents", total=total)
        async with asyncio.timeout(600):
            while len(latencies) < total:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        cause = envelope_pb2.Envelope.FromString(r.value).causation_id
                        if cause in sent_at:
                            latencies.append(r.timestamp - sent_at[cause])
                            progress.advance(receiving)
    return total / (time.perf_counter() - started), latencies


def main() -> int:
    parser_args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser_args.add_argument("--quality-only", action="store_true", help="parts 1 and 2 only (no stack needed)")
    parser_args.add_argument("--seconds", type=float, default=10, help="handler throughput duration")
    parser_args.add_argument("--messages", type=int, default=3000, help="messages per end-to-end run")
    parser_args.add_argument("--workers", default="1,2", help="worker counts for the end-to-end runs")
    parser_args.add_argument("--rate", type=float, default=100, help="offered msg/s of the latency run")
    args = parser_args.parse_args()

    started = time.perf_counter()
    parser = Parser.from_config(SERVICE / "config", SERVICE / "data", ("train",))
    console.print(f"parser ready in {time.perf_counter() - started:.1f} s (trained on the train split)")
    dev = rows("dev")
    quality(parser, dev)
    cross_validated(rows("train") + dev)
    mix = [(r["text"], r["tz"], r["intent"] in REMINDERS) for r in dev]
    throughput(parser, mix, args.seconds)
    if args.quality_only:
        return 0
    table = Table(title=f"End to end through Kafka ({args.messages} messages per run, 1 000 senders, dev texts)")
    for column in ("workers", "burst msg/s", f"p50 ms at {args.rate:g}/s", f"p99 ms at {args.rate:g}/s"):
        table.add_column(column, justify="right")
    for workers in (int(w) for w in args.workers.split(",")):
        result = asyncio.run(end_to_end(workers, [r["text"] for r in dev], args.messages, args.rate))
        table.add_row(
            str(workers), f"{result['msgs_per_s']:,.0f}", f"{result['p50_ms']:,.0f}", f"{result['p99_ms']:,.0f}"
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
