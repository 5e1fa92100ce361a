"""The jobs table: create, list, cancel, claim what is due and record how each firing went.

Every function runs in the caller's transaction, so a job's change of state and the outbox
rows that announce it commit together: a firing is either wholly done (state advanced,
messages queued) or not at all, and a replica that dies mid-firing leaves the job due
for another one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler.recurrence import Recurrence

URGENT, ROUTINE = 1, 2
# Every column but the timestamps; a constant, so the f-strings below carry no input (S608).
_COLUMNS = (
    "id, kind, owner, tenant_id, conversation_key, channel, channel_chat_id, language, source_message_id,"
    " title, payload, priority, time_zone, dtstart, rrule, cron, occurrence, due_at, status, attempts,"
    " max_attempts, last_error, fired"
)


@dataclass(slots=True)
class Job:
    """One row of ``jobs``."""

    kind: str
    owner: str
    title: str
    time_zone: str
    occurrence: datetime
    channel: int = 0
    channel_chat_id: str = ""
    conversation_key: str = ""
    tenant_id: str = "default"
    language: str = "en"
    source_message_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    priority: int = ROUTINE
    rrule: str | None = None
    cron: str | None = None
    dtstart: datetime | None = None
    due_at: datetime | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "scheduled"
    attempts: int = 0
    max_attempts: int = 5
    last_error: str | None = None
    fired: int = 0

    @property
    def recurrence(self) -> Recurrence | None:
        if self.rrule is None and self.cron is None:
            return None
        return Recurrence(self.time_zone, self.dtstart or self.occurrence, rrule=self.rrule, cron=self.cron)

    @classmethod
    def for_intent(
        cls,
        intent: m.ParsedIntent,
        *,
        conversation_key: str,
        tenant_id: str,
        payload: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Job:
        """A job ``intent`` asks for: owned by its person, answering in the chat it came from,
        made once per inbound message (``source_message_id``)."""
        message = intent.message
        return cls(
            owner=owner_of(intent, conversation_key),
            channel=message.channel,
            channel_chat_id=message.channel_chat_id,
            conversation_key=conversation_key,
            tenant_id=tenant_id,
            source_message_id=message.message_id,
            payload={"in_reply_to": message.message_id, **(payload or {})},
            **fields,
        )

    def message(self, text: str, message_id: str, **metadata: str) -> m.OutboundMessage:
        """A complete message to the job's owner, in the chat that asked for the job."""
        return m.OutboundMessage(
            message_id=message_id,
            in_reply_to=self.payload.get("in_reply_to", ""),
            channel=self.channel,  # type: ignore[arg-type]
            channel_chat_id=self.channel_chat_id,
            text=text,
            final=True,
            metadata={"job_id": self.id, "kind": self.kind, **metadata},
        )

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Job:
        values = dict(row)
        values["id"] = str(values["id"])
        values["payload"] = json.loads(values["payload"]) if isinstance(values["payload"], str) else values["payload"]
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        """The row as JSON (for the dead-letter topic)."""
        out: dict[str, Any] = {}
        for name in _COLUMNS.split(", "):
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def owner_of(intent: m.ParsedIntent, conversation_key: str) -> str:
    """Whose a job is: the person (identity links included), else the sender, else the conversation."""
    return intent.person_id or intent.message.sender.user_id or conversation_key


async def create(conn: asyncpg.Connection, jobs: Sequence[Job]) -> set[str]:
    """Insert ``jobs``; returns the ids inserted (one whose source message already made a
    job is skipped: the intent was delivered again)."""
    rows = await conn.fetch(
        "INSERT INTO jobs (id, kind, owner, tenant_id, conversation_key, channel, channel_chat_id, language,"
        " source_message_id, title, payload, priority, time_zone, dtstart, rrule, cron, occurrence, due_at,"
        " max_attempts)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[],"
        " $7::text[], $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::smallint[], $13::text[],"
        " $14::timestamptz[], $15::text[], $16::text[], $17::timestamptz[], $18::timestamptz[], $19::integer[])"
        " ON CONFLICT (source_message_id) DO NOTHING RETURNING id",
        [j.id for j in jobs],
        [j.kind for j in jobs],
        [j.owner for j in jobs],
        [j.tenant_id for j in jobs],
        [j.conversation_key for j in jobs],
        [j.channel for j in jobs],
        [j.channel_chat_id for j in jobs],
        [j.language for j in jobs],
        [j.source_message_id for j in jobs],
        [j.title for j in jobs],
        [json.dumps(j.payload) for j in jobs],
        [j.priority for j in jobs],
        [j.time_zone for j in jobs],
        [j.dtstart or j.occurrence for j in jobs],
        [j.rrule for j in jobs],
        [j.cron for j in jobs],
        [j.occurrence for j in jobs],
        [j.due_at or j.occurrence for j in jobs],
        [j.max_attempts for j in jobs],
    )
    return {str(row["id"]) for row in rows}


async def upcoming(conn: asyncpg.Connection, owner: str, kind: str, limit: int = 50) -> list[Job]:
    """The owner's scheduled jobs of ``kind``, soonest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM jobs WHERE owner = $1 AND kind = $2 AND status = 'scheduled'"  # noqa: S608 (constant columns)
        " ORDER BY occurrence LIMIT $3",
        owner,
        kind,
        limit,
    )
    return [Job.from_row(r) for r in rows]


async def cancel(conn: asyncpg.Connection, ids: Sequence[str]) -> list[Job]:
    """Cancel the scheduled ones among ``ids``; returns those cancelled."""
    rows = await conn.fetch(
        f"UPDATE jobs SET status = 'cancelled', updated_at = now() WHERE id = ANY($1::uuid[])"  # noqa: S608 (constant columns)
        f" AND status = 'scheduled' RETURNING {_COLUMNS}",
        list(ids),
    )
    return [Job.from_row(r) for r in rows]


async def claim_due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[Job]:
    """Lock up to ``limit`` due jobs, urgent ones first, each priority in due order.

    Rows another replica has locked are skipped (``SKIP LOCKED``): replicas share the work
    without waiting on each other, and a job is never in two firings at once.
    """
    claimed: list[Job] = []
    for priority in (URGENT, ROUTINE):  # (FOR UPDATE cannot lock through a UNION)
        if len(claimed) >= limit:
            break
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM jobs WHERE status IN ('scheduled', 'waiting') AND priority = $1 AND due_at <= $2"  # noqa: S608 (constant columns)
            " ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED",
            priority,
            now,
            limit - len(claimed),
        )
        claimed += [Job.from_row(r) for r in rows]
    return claimed


async def save_outcomes(conn: asyncpg.Connection, jobs: Sequence[Job]) -> None:
    """Write back the state of claimed jobs after firing them (one statement for all)."""
    if not jobs:
        return
    await conn.execute(
        "UPDATE jobs AS j SET status = u.status, occurrence = u.occurrence, due_at = u.due_at,"
        " attempts = u.attempts, last_error = u.last_error, fired = u.fired, payload = u.payload,"
        " max_attempts = u.max_attempts, updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::integer[], $6::text[],"
        " $7::integer[], $8::jsonb[], $9::integer[])"
        " AS u(id, status, occurrence, due_at, attempts, last_error, fired, payload, max_attempts)"
        " WHERE j.id = u.id",
        [j.id for j in jobs],
        [j.status for j in jobs],
        [j.occurrence for j in jobs],
        [j.due_at for j in jobs],
        [j.attempts for j in jobs],
        [j.last_error for j in jobs],
        [j.fired for j in jobs],
        [json.dumps(j.payload) for j in jobs],
        [j.max_attempts for j in jobs],
    )


async def waiting_for(conn: asyncpg.Connection, request_ids: Sequence[str]) -> list[Job]:
    """The workflow runs waiting for one of these inference requests, locked."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM jobs WHERE status = 'waiting'"  # noqa: S608 (constant columns)
        " AND payload ->> 'pending_request' = ANY($1::text[]) FOR UPDATE",
        list(request_ids),
    )
    return [Job.from_row(r) for r in rows]


async def next_due_at(conn: asyncpg.Connection) -> datetime | None:
    """When the soonest scheduled job is due (to sleep until then)."""
    value: datetime | None = await conn.fetchval(
        "SELECT min(d) FROM (SELECT min(due_at) AS d FROM jobs WHERE status IN ('scheduled', 'waiting')"
        " AND priority = 1 UNION ALL SELECT min(due_at) FROM jobs WHERE status IN ('scheduled', 'waiting')"
        " AND priority = 2) AS t"
    )
    return value


async def finish(conn: asyncpg.Connection, job_id: str, kind: str, ok: bool, error: str = "") -> Job | None:
    """Mark a job that was waiting for an answer done (or failed); None if it was not
    waiting any more (answered before, given up, cancelled) or is unknown."""
    try:
        uuid.UUID(job_id)
    except ValueError:
        return None
    row = await conn.fetchrow(
        f"UPDATE jobs SET status = $3, last_error = $4, fired = fired + 1, updated_at = now()"  # noqa: S608 (constant columns)
        f" WHERE id = $1 AND kind = $2 AND status IN ('waiting', 'scheduled') RETURNING {_COLUMNS}",
        job_id,
        kind,
        "done" if ok else "failed",
        error or None,
    )
    return Job.from_row(row) if row is not None else None


async def first_handling(conn: asyncpg.Connection, message_id: str, intent: str) -> bool:
    """Record that ``message_id`` is being handled; False if it already was."""
    inserted = await conn.fetchval(
        "INSERT INTO handled_messages (message_id, intent) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        message_id,
        intent,
    )
    return bool(inserted)


async def purge(conn: asyncpg.Connection, before: datetime, limit: int = 10_000) -> int:
    """Delete up to ``limit`` finished jobs and handled-message records last touched before
    ``before``; returns how many rows went."""
    jobs_gone = await conn.fetchval(
        "WITH gone AS (DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE status <> 'scheduled'"
        " AND updated_at < $1 LIMIT $2) RETURNING 1) SELECT count(*) FROM gone",
        before,
        limit,
    )
    handled_gone = await conn.fetchval(
        "WITH gone AS (DELETE FROM handled_messages WHERE message_id IN (SELECT message_id FROM handled_messages"
        " WHERE handled_at < $1 LIMIT $2) RETURNING 1) SELECT count(*) FROM gone",
        before,
        limit,
    )
    return int(jobs_gone) + int(handled_gone)
