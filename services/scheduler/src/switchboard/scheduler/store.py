"""The scheduler's SQL: a whole batch of dispatches or completions per statement.

Each function runs inside the caller's transaction, together with the outbox rows it
justifies, so a batch is recorded and announced all at once or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from switchboard.events.v1 import messages_pb2 as m


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One chat turn about to become an InferenceRequest."""

    request: m.InferenceRequest
    intent_event_id: str
    conversation_key: str
    tenant_id: str


async def record_dispatches(conn: asyncpg.Connection, dispatches: Sequence[Dispatch]) -> set[str]:
    """Insert what is new; returns the message ids inserted (a message seen before is skipped,
    however often it appears in ``dispatches`` or was dispatched earlier)."""
    rows = await conn.fetch(
        "INSERT INTO dispatches (request_id, intent_event_id, message_id, conversation_key, tenant_id,"
        " channel, channel_chat_id, priority, model_profile)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],"
        " $6::smallint[], $7::text[], $8::smallint[], $9::text[])"
        " ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        [d.request.request_id for d in dispatches],
        [d.intent_event_id for d in dispatches],
        [d.request.message_id for d in dispatches],
        [d.conversation_key for d in dispatches],
        [d.tenant_id for d in dispatches],
        [d.request.channel for d in dispatches],
        [d.request.channel_chat_id for d in dispatches],
        [d.request.priority for d in dispatches],
        [d.request.model_profile for d in dispatches],
    )
    return {row["message_id"] for row in rows}


def status_of(result: m.InferenceResult) -> str:
    return "failed" if result.finish_reason == m.FINISH_REASON_ERROR else "completed"


async def record_completions(conn: asyncpg.Connection, results: Sequence[m.InferenceResult]) -> set[str]:
    """Mark open dispatches done; returns the request ids that were still open (a result
    for an unknown or already finished request changes nothing)."""
    rows = await conn.fetch(
        "UPDATE dispatches AS d SET status = r.status, completed_at = now(), model_name = r.model_name,"
        " latency_ms = r.latency_ms"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::integer[])"
        " AS r(request_id, status, model_name, latency_ms)"
        " WHERE d.request_id = r.request_id AND d.status = 'dispatched' RETURNING d.request_id",
        [r.request_id for r in results],
        [status_of(r) for r in results],
        [r.model_name for r in results],
        [r.latency_ms for r in results],
    )
    return {str(row["request_id"]) for row in rows}
