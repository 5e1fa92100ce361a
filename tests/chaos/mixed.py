"""Scenario: kill -9 of each service's replicas in turn under steady mixed traffic.

The five services (and the example plugin) run as two real replicas each on the local
stack. Conversations, one user each, keep sending at a steady pace over HTTP
(tests/e2e/traffic.py): chat (answered by the deterministic echo model), reminders
(confirmed by the scheduler) and unit conversions (answered by the plugin). Meanwhile
every replica of every service is killed with SIGKILL, one at a time, and a new one started
in its place. Afterwards every accepted message is counted by id: its reply through the
gateway, its final reply event on the outbound topic (two different ones: duplicated), the
order of finals per conversation and kind, and one audit document per event.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import defaultdict

from elasticsearch import AsyncElasticsearch

from switchboard.events.v1 import envelope_pb2
from tests.chaos.outcome import Outcome, first_order_violations, overtaken
from tests.conftest import Stack
from tests.e2e.pipeline import CORE, Pipeline, read_records
from tests.e2e.traffic import Sent, Traffic, chat


def _path(seq: int) -> str:
    """Which services answer message ``seq`` of a conversation (see _text)."""
    return {4: "reminder", 5: "conversion"}.get(seq % 6, "chat")


def _text(conversation: int, seq: int) -> str:
    """Mixed traffic: four chats, then a reminder, then a conversion, round and round."""
    path = _path(seq)
    if path == "reminder":
        return f"remind me in 3 hours to stretch {conversation}-{seq}"
    if path == "conversion":
        return f"convert {seq} miles to km"
    return chat(conversation, seq)


def _answers(sent: Sent, reply: str) -> bool:
    """Whether ``reply`` is the right one for ``sent`` (the echo model returns the text)."""
    path = _path(sent.seq)
    if path == "reminder":
        return reply.startswith("OK, I'll remind you to stretch")
    if path == "conversion":
        return reply.startswith(f"{sent.seq} miles = ")
    return reply == sent.text


def pipeline_for(stack: Stack) -> Pipeline:
    return Pipeline(
        stack,
        replicas=2,
        modules=(*CORE, "plugin_units"),
        extra_env={"scheduler": {"PLUGINS_ENABLED": json.dumps(["units"])}},
    )


async def run(pipeline: Pipeline, *, conversations: int = 12, interval_s: float = 3.0) -> Outcome:
    """Run the scenario on a started ``pipeline_for`` pipeline."""
    traffic = Traffic(pipeline, conversations, interval_s, text=_text, user="chaos-user")
    faults: list[tuple[float, float]] = []  # (killed at, replacement serving at), wall clock
    async with traffic:
        await asyncio.sleep(10)
        for module in CORE:
            for entry in pipeline.replicas_of(module):
                killed = time.time()
                await pipeline.end(entry, signal.SIGKILL)
                await pipeline.add_replica(module)
                faults.append((killed, time.time()))
                await asyncio.sleep(3)
    sent = traffic.sent
    replies = await traffic.replies()
    finals = await _finals(pipeline)
    audit_missing = await _audit_missing(pipeline)
    by_message: dict[str, set[str]] = defaultdict(set)
    for _, in_reply_to, event_id, _ in finals:
        by_message[in_reply_to].add(event_id)
    # Order is kept per path: chats (parser, inference client), reminders (scheduler) and
    # conversions (scheduler, plugin) are answered by different services, and one kind's
    # reply is not held back for another's (a slow plugin must not delay a chat answer).
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
    for killed, serving in faults:
        during = [reply_at[s.message_id] - s.at for s in sent if killed <= s.at <= serving and s.message_id in reply_at]
        if during:
            recovery.append(max(during))
    answered = {s.message_id for s in sent if _answers(s, replies.get(s.message_id, ""))}
    return Outcome(
        scenario="kill -9 of every service replica",
        sent=len(sent),
        replies=len(answered),
        lost=len(sent) - len(answered),
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
