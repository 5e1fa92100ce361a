"""Mixed traffic for the fault scenarios that run the services, and how it is counted.

Conversations, one user each, keep sending at a steady pace over HTTP
(tests/e2e/traffic.py): chat (answered by the deterministic echo model), orders for the
bedroom light (the scheduler commands it over MQTT through the gateway; the light, a real
MQTT client, does it and answers), reminders (confirmed by the scheduler) and unit
conversions (answered by the example plugin), round and round. Afterwards every accepted
message is counted by id: its reply through the gateway (the right one, a polite failure,
or none), its final reply events on the outbound topic (two different ones: duplicated),
the order of finals per conversation and kind, and one audit document per event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from elasticsearch import AsyncElasticsearch

from switchboard.events.v1 import envelope_pb2
from tests.chaos.outcome import Outcome, first_order_violations, overtaken
from tests.conftest import Stack
from tests.e2e import home
from tests.e2e.pipeline import CORE, Pipeline, read_records
from tests.e2e.traffic import Sent, Traffic, chat


def _path(seq: int) -> str:
    """Which services answer message ``seq`` of a conversation (see text)."""
    return {3: "device", 4: "reminder", 5: "conversion"}.get(seq % 6, "chat")


def _power(seq: int) -> str:
    return "on" if seq // 6 % 2 else "off"


def text(conversation: int, seq: int) -> str:
    """Mixed traffic: three chats, an order for the light (off, then on next time), a
    reminder and a conversion, round and round."""
    path = _path(seq)
    if path == "device":
        return f"turn {_power(seq)} the {home.LIGHT}"
    if path == "reminder":
        return f"remind me in 3 hours to stretch {conversation}-{seq}"
    if path == "conversion":
        return f"convert {seq} miles to km"
    return chat(conversation, seq)


def _answers(sent: Sent, reply: str) -> bool:
    """Whether ``reply`` is the right one for ``sent`` (the echo model returns the text)."""
    path = _path(sent.seq)
    if path == "device":
        return reply == f"Done: {home.LIGHT}, {_power(sent.seq)}."
    if path == "reminder":
        return reply.startswith("OK, I'll remind you to stretch")
    if path == "conversion":
        return reply.startswith(f"{sent.seq} miles = ")
    return reply == sent.text


def pipeline_for(stack: Stack, replicas: int = 2, replication: int = 1) -> Pipeline:
    """The five services and the example plugin, ``replicas`` of each, the plugin enabled,
    the gateway on MQTT and the bedroom light registered; topics with ``replication`` replicas."""
    # 420 s to start: beside the chaos cluster's brokers, or two replicas of each.
    pipeline = Pipeline(
        stack, replicas=replicas, replication=replication, modules=(*CORE, "plugin_units"), start_timeout_s=420
    )
    pipeline.log_dir.mkdir(parents=True, exist_ok=True)
    devices = home.registry(stack, pipeline.log_dir / f"{pipeline.run_id}-devices.yaml")
    pipeline.extra_env = {
        "channel_gateway": home.mqtt_env(pipeline),
        "scheduler": {"PLUGINS_ENABLED": json.dumps(["units"]), "DEVICES_FILE": str(devices)},
    }
    return pipeline


@asynccontextmanager
async def running(stack: Stack, replicas: int = 2, replication: int = 1) -> AsyncIterator[Pipeline]:
    """A started ``pipeline_for`` pipeline with the light obeying, stopped (its topics and
    schemas dropped) afterwards."""
    pipeline = pipeline_for(stack, replicas, replication)
    await pipeline.start()
    try:
        async with home.Light(pipeline):
            yield pipeline
    finally:
        await pipeline.stop()


def mixed_traffic(pipeline: Pipeline, conversations: int = 12, interval_s: float = 3.0) -> Traffic:
    """Steady mixed traffic (see the module): ``conversations`` users, one message every ``interval_s`` each."""
    return Traffic(pipeline, conversations, interval_s, text=text, user="chaos-user")


async def count(scenario: str, pipeline: Pipeline, traffic: Traffic, faults: list[tuple[float, float]]) -> Outcome:
    """The outcome of ``traffic`` through ``pipeline`` after ``faults`` (each: from when,
    until when, wall clock); a fault's recovery is the slowest reply to a message it could
    delay: one sent while it lasted, or sent before and still unanswered when it began (a
    short fault, e.g. PostgreSQL's restart, may hold the requests in flight and see no new
    one start)."""
    sent = traffic.sent
    replies = await traffic.replies()
    finals = await _finals(pipeline)
    audit_missing = await _audit_missing(pipeline)
    by_message: dict[str, set[str]] = defaultdict(set)
    for _, in_reply_to, event_id, _ in finals:
        by_message[in_reply_to].add(event_id)
    # Order is kept per path: chats (parser, inference client), light orders (scheduler,
    # gateway, the light), reminders (scheduler) and conversions (scheduler, plugin) are
    # answered by different services, and one kind's reply is not held back for another's
    # (a slow plugin must not delay a chat answer).
    first: dict[tuple[str, str], list[int]] = defaultdict(list)
    every: dict[str, list[int]] = defaultdict(list)
    seq_of = {s.message_id: s for s in sent}
    reply_at: dict[str, float] = {}
    for conversation_key, in_reply_to, _, timestamp in sorted(finals, key=lambda f: f[3]):
        if in_reply_to in seq_of and in_reply_to not in reply_at:
            reply_at[in_reply_to] = timestamp
            seq = seq_of[in_reply_to].seq
            first[conversation_key, _path(seq)].append(seq)
            every[conversation_key].append(seq)
    recovery = []
    for began, ended in faults:
        during = [
            reply_at[s.message_id] - s.at
            for s in sent
            if s.message_id in reply_at and s.at <= ended and reply_at[s.message_id] >= began
        ]
        if during:
            recovery.append(max(during))
    answered = {s.message_id for s in sent if _answers(s, replies.get(s.message_id, ""))}
    polite = {s.message_id for s in sent if s.message_id in replies and s.message_id not in answered}
    return Outcome(
        scenario=scenario,
        sent=len(sent),
        replies=len(answered),
        failed_politely=len(polite),
        lost=len(sent) - len(answered) - len(polite),
        duplicated=sum(1 for ids in by_message.values() if len(ids) > 1),
        redelivered=0,
        order_violations=first_order_violations(first),
        overtaken=overtaken(every),
        recovery_s=recovery,
        audit_missing=audit_missing,
    )


async def _finals(pipeline: Pipeline) -> list[tuple[str, str, str, float]]:
    """Every final reply event on the outbound topic: (conversation key, in reply to, event
    id, when it was written)."""
    out = []
    for record in await read_records(pipeline.stack, pipeline.topics.outbound):
        envelope = envelope_pb2.Envelope.FromString(record.value)
        message = envelope.outbound_message
        if envelope.WhichOneof("payload") == "outbound_message" and message.final and message.in_reply_to:
            out.append((envelope.conversation_key, message.in_reply_to, envelope.event_id, record.timestamp / 1000))
    return out


async def _audit_missing(pipeline: Pipeline, timeout_s: float = 120) -> int:
    """How many events of the run's business topics have no audit document."""
    event_ids: set[str] = set()
    for topic in pipeline.topics.business():
        event_ids |= {
            envelope_pb2.Envelope.FromString(r.value).event_id for r in await read_records(pipeline.stack, topic)
        }
    ids = sorted(event_ids)
    async with AsyncElasticsearch(pipeline.stack.es_url, request_timeout=30) as es:
        deadline = time.monotonic() + timeout_s
        while True:
            await es.indices.refresh(index=pipeline.data_stream)
            found = 0
            for i in range(0, len(ids), 1000):
                chunk = ids[i : i + 1000]
                hits = await es.search(
                    index=pipeline.data_stream, query={"ids": {"values": chunk}}, size=len(chunk), source=False
                )
                found += len(hits["hits"]["hits"])
            if found == len(ids) or time.monotonic() > deadline:
                return len(ids) - found
            await asyncio.sleep(2)
