"""Scenario: one user's poison among a thousand other messages.

A hundred users send ten chat messages each over HTTP (tests/e2e/traffic.py) while one
more user sends poison, at the front door and behind it:

* over HTTP: text with a NUL, a 1 MB text, a body that is not UTF-8, a JSON object where
  the text goes. Each must be refused with a 4xx that says why.
* straight onto the inbound topic, as a producer other than the gateway might (a bug, a
  replay tool): a JSON document instead of a protobuf, a protobuf whose text is not UTF-8,
  text with a NUL and a 1 MB text. The first two cannot be read and must be
  dead-lettered with their cause; the other two are read, and may be answered (the parser
  trims what is too long, text is cleaned where it enters PostgreSQL) or dead-lettered,
  but never hold up anyone else.

Every one of the thousand others must be answered, once, and nothing of theirs may
reach the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from switchboard.common import events
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import DLQ_CAUSE, EventProducer
from switchboard.common.kafka.headers import get as header
from switchboard.events.v1 import envelope_pb2, messages_pb2
from tests.chaos.outcome import Outcome
from tests.e2e.pipeline import Pipeline, read_records
from tests.e2e.traffic import Traffic

USERS = 100
MESSAGES = 10
# Poison that cannot be read at all, and poison that can (its fate is reported).
UNREADABLE = ("json-instead-of-protobuf", "text-not-utf8")
READABLE = ("text-with-nul", "text-1mb")


@dataclass
class PoisonReport:
    http: dict[str, tuple[int, str]] = field(default_factory=dict)  # kind -> (status, detail)
    dead_lettered: dict[str, str] = field(default_factory=dict)  # kind -> cause
    answered: dict[str, str] = field(default_factory=dict)  # kind -> the start of the reply
    others_dead_lettered: int = 0


async def run(pipeline: Pipeline) -> tuple[Outcome, PoisonReport]:
    """Run the scenario on a started pipeline (one replica of each service is enough)."""
    report = PoisonReport()
    traffic = Traffic(pipeline, USERS, interval_s=2.0, messages=MESSAGES, user="bystander")
    async with traffic:
        await asyncio.sleep(5)  # poison in the middle of the traffic
        report.http = await _http_poison(pipeline)
        injected = await _kafka_poison(pipeline)
    started = time.monotonic()
    replies = await traffic.replies()
    drained_s = time.monotonic() - started
    await _fates(pipeline, injected, report)
    finals: dict[str, set[str]] = defaultdict(set)
    for record in await read_records(pipeline.stack, pipeline.topics.outbound):
        envelope = envelope_pb2.Envelope.FromString(record.value)
        if envelope.outbound_message.final:
            finals[envelope.outbound_message.in_reply_to].add(envelope.event_id)
    answered = len(traffic.sent) - len(traffic.unanswered(replies))
    outcome = Outcome(
        scenario=f"poison ({len(report.http)} at the door, {len(injected)} behind it) among {len(traffic.sent)}",
        sent=len(traffic.sent),
        replies=answered,
        lost=len(traffic.sent) - answered,
        duplicated=sum(1 for s in traffic.sent if len(finals.get(s.message_id, ())) > 1),
        redelivered=0,
        order_violations=0,
        recovery_s=[drained_s],
    )
    return outcome, report


async def _http_poison(pipeline: Pipeline) -> dict[str, tuple[int, str]]:
    out = {}
    async with pipeline.client(pipeline.gateway_urls[0], timeout=60, subject="poisoner") as client:
        conversation = (await client.post("/v1/conversations")).json()["conversation_id"]
        json_type = {"content-type": "application/json"}
        not_utf8 = b'{"conversation_id": "' + conversation.encode() + b'", "text": "caf\xe9 \xff\xfe"}'
        requests = {
            "text-with-nul": client.post("/v1/messages", json={"conversation_id": conversation, "text": "hi\u0000"}),
            "text-1mb": client.post("/v1/messages", json={"conversation_id": conversation, "text": "x" * 1_000_000}),
            "body-not-utf8": client.post("/v1/messages", content=not_utf8, headers=json_type),
            "object-as-text": client.post("/v1/messages", json={"conversation_id": conversation, "text": {"a": 1}}),
        }
        for kind, request in requests.items():
            response = await request
            out[kind] = (response.status_code, str(response.json().get("detail", ""))[:200])
    return out


async def _kafka_poison(pipeline: Pipeline) -> dict[str, str]:
    """Write the poison records onto the inbound topic; kind -> the message id it carries."""
    settings = KafkaSettings(bootstrap_servers=pipeline.stack.kafka_bootstrap)
    ids = {kind: f"poison-{kind}-{uuid.uuid4().hex[:8]}" for kind in (*UNREADABLE, *READABLE)}

    def envelope(kind: str, text: str) -> bytes:
        message = messages_pb2.InboundMessage(
            message_id=ids[kind],
            channel=messages_pb2.CHANNEL_HTTP,
            channel_chat_id="poisoner",
            sender=messages_pb2.Actor(user_id="web:poisoner"),
            text=text,
        )
        return events.wrap(message, conversation_key=f"poison-{kind}", source="chaos").SerializeToString()

    values = {
        "json-instead-of-protobuf": b'{"message_id": "'
        + ids["json-instead-of-protobuf"].encode()
        + b'", "text": {"a": 1}}',
        # Same length as the placeholder, so the length prefix still holds: only the bytes are bad.
        "text-not-utf8": envelope("text-not-utf8", "PLACEHOLDER").replace(
            b"PLACEHOLDER", b"caf\xe9\xff\xfe\xfd\xfc\xfb\xfa"
        ),
        "text-with-nul": envelope("text-with-nul", "hello\u0000world"),
        "text-1mb": envelope("text-1mb", "x" * 1_000_000),
    }
    async with EventProducer(settings, max_request_size=2 * 1024 * 1024) as producer:
        for kind, value in values.items():
            await producer.send_raw(
                pipeline.topics.inbound, value, f"poison-{kind}".encode(), [("poison", ids[kind].encode())]
            )
    return ids


async def _fates(pipeline: Pipeline, injected: dict[str, str], report: PoisonReport, timeout_s: float = 60) -> None:
    """What became of each injected record: dead-lettered (with its cause) or answered."""
    kind_of = {message_id: kind for kind, message_id in injected.items()}
    deadline = time.monotonic() + timeout_s
    while True:
        report.dead_lettered, report.others_dead_lettered = {}, 0
        for record in await read_records(pipeline.stack, pipeline.topics.deadletter):
            kind = kind_of.get(header(record.headers, "poison") or "")
            if kind is None:
                report.others_dead_lettered += 1
            else:
                report.dead_lettered[kind] = (header(record.headers, DLQ_CAUSE) or "")[:200]
        for record in await read_records(pipeline.stack, pipeline.topics.outbound):
            message = envelope_pb2.Envelope.FromString(record.value).outbound_message
            for kind, message_id in injected.items():
                if message.in_reply_to == message_id and message.final:
                    report.answered[kind] = message.text[:60]
        settled = all(kind in report.dead_lettered or kind in report.answered for kind in injected)
        if settled or time.monotonic() > deadline:
            return
        await asyncio.sleep(1)
