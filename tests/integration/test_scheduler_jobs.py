"""The scheduler's jobs and dispatcher against the real PostgreSQL.

The dispatcher's clock is set by each test (the claim compares due times with it), so a
DST change months away is tested now; everything else (locking, the outbox, the
transactions) is the real thing.
"""

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from switchboard.common import postgres
from switchboard.common.kafka import headers as hdr
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import jobs, workflows
from switchboard.scheduler.dispatcher import Dispatcher
from switchboard.scheduler.jobs import Job
from switchboard.scheduler.outbox import Outbox
from tests.conftest import Stack

pytestmark = pytest.mark.integration

OUTBOUND, DEADLETTER = "t.outbound", "t.deadletter"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _pool(stack: Stack, schema: str, size: int = 2) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(stack.pg_dsn, min_size=1, max_size=size, server_settings={"search_path": schema})
    async with pool.acquire() as conn:
        await postgres.migrate(conn, schema, "switchboard.scheduler")
    return pool


@pytest.fixture
async def schema(stack: Stack, unique: str) -> AsyncIterator[str]:
    name = f"test_{unique}"
    yield name
    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def pool(stack: Stack, schema: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await _pool(stack, schema)
    yield pool
    await pool.close()


def _dispatcher(pool: asyncpg.Pool, schema: str, clock: Callable[[], datetime], **kwargs: object) -> Dispatcher:
    return Dispatcher(
        pool,
        Outbox(pool, schema),
        schema=schema,
        source="scheduler",
        outbound_topic=OUTBOUND,
        deadletter_topic=DEADLETTER,
        clock=clock,
        rng=random.Random(1),
        **kwargs,  # type: ignore[arg-type]
    )


def _reminder(occurrence: datetime, **kwargs: object) -> Job:
    values: dict[str, object] = {
        "kind": "reminder",
        "owner": "person-1",
        "title": "stretch",
        "time_zone": "America/New_York",
        "occurrence": occurrence,
        "channel": 3,
        "channel_chat_id": "chat-1",
        "conversation_key": "conv-1",
    }
    return Job(**(values | kwargs))  # type: ignore[arg-type]


async def _sent(pool: asyncpg.Pool, topic: str = OUTBOUND) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT key, value, headers FROM outbox WHERE topic = $1 ORDER BY id", topic)


async def test_a_daily_reminder_fires_once_at_nine_new_york_time_across_the_dst_change(
    pool: asyncpg.Pool, schema: str
) -> None:
    clock = Clock(datetime(2026, 3, 6, 13, 59, 59, tzinfo=UTC))
    job = _reminder(datetime(2026, 3, 6, 14, tzinfo=UTC), rrule="FREQ=DAILY;BYHOUR=9;BYMINUTE=0")
    async with pool.acquire() as conn:
        await jobs.create(conn, [job])
    dispatcher = _dispatcher(pool, schema, clock)
    fired_at = []
    # Every minute from Friday 13:59:59 UTC to Monday 15:00 UTC (DST starts Sunday 02:00 local).
    while clock.now < datetime(2026, 3, 9, 15, tzinfo=UTC):
        if await dispatcher.fire_due():
            fired_at.append(clock.now)
        clock.now += timedelta(minutes=1)
    # 09:00 local each day: 14:00 UTC in EST, 13:00 UTC in EDT; within the minute, once a day.
    assert [t.strftime("%m-%d %H:%M") for t in fired_at] == ["03-06 14:00", "03-07 14:00", "03-08 13:00", "03-09 13:00"]
    sent = [envelope_pb2.Envelope.FromString(r["value"]) for r in await _sent(pool)]
    assert [e.outbound_message.metadata["occurrence"][:16] for e in sent] == [
        "2026-03-06T14:00",
        "2026-03-07T14:00",
        "2026-03-08T13:00",
        "2026-03-09T13:00",
    ]
    assert all(e.outbound_message.text == "⏰ Reminder: stretch" for e in sent)
    assert len({e.event_id for e in sent}) == 4
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT status, fired, occurrence FROM jobs WHERE id = $1", job.id)
    assert (row["status"], row["fired"], row["occurrence"]) == ("scheduled", 4, datetime(2026, 3, 10, 13, tzinfo=UTC))


async def test_two_replicas_fire_10_000_due_jobs_exactly_once(stack: Stack, pool: asyncpg.Pool, schema: str) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        for start in range(0, 10_000, 2_000):
            batch = [_reminder(now - timedelta(seconds=i % 60), title=f"job {start + i}") for i in range(2_000)]
            await jobs.create(conn, batch)
    other = await _pool(stack, schema)
    try:
        replicas = [
            _dispatcher(pool, schema, lambda: now, batch=250),
            _dispatcher(other, schema, lambda: now, batch=250),
        ]

        async def drain(dispatcher: Dispatcher) -> int:
            total = 0
            while n := await dispatcher.fire_due():
                total += n
            return total

        counts = await asyncio.gather(*(drain(d) for d in replicas))
    finally:
        await other.close()
    assert sum(counts) == 10_000 and min(counts) > 0  # both took part
    titles = [envelope_pb2.Envelope.FromString(r["value"]).outbound_message.text for r in await _sent(pool)]
    assert len(titles) == len(set(titles)) == 10_000
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'done' AND fired = 1") == 10_000


async def test_a_replica_that_dies_mid_round_leaves_its_jobs_to_the_others(
    stack: Stack, pool: asyncpg.Pool, schema: str
) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await jobs.create(conn, [_reminder(now - timedelta(seconds=1), title=f"job {i}") for i in range(20)])
    # A replica claims the due jobs and is cut off before it commits (its connection dies).
    doomed = await asyncpg.connect(stack.pg_dsn, server_settings={"search_path": schema})
    transaction = doomed.transaction()
    await transaction.start()
    assert len(await jobs.claim_due(doomed, now, 100)) == 20
    # Meanwhile the other replica finds them locked, and fires none of them twice.
    survivor = _dispatcher(pool, schema, lambda: now)
    assert await survivor.fire_due() == 0
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_terminate_backend($1)", doomed.get_server_pid())
    await asyncio.sleep(0.2)
    assert await survivor.fire_due() == 20
    assert await survivor.fire_due() == 0
    assert len(await _sent(pool)) == 20
    doomed.terminate()


async def test_a_failing_job_is_retried_with_backoff_then_dead_lettered_with_its_cause(
    pool: asyncpg.Pool, schema: str
) -> None:
    clock = Clock(datetime(2026, 5, 1, 12, tzinfo=UTC))
    job = _reminder(clock.now, kind="webhook", max_attempts=3, title="call the hook")
    async with pool.acquire() as conn:
        await jobs.create(conn, [job])
    dispatcher = _dispatcher(pool, schema, clock, backoff_base_s=10, backoff_cap_s=60)
    waits = []
    for attempt in (1, 2):
        assert await dispatcher.fire_due() == 1
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT status, attempts, due_at, last_error FROM jobs WHERE id = $1", job.id)
        assert (row["status"], row["attempts"]) == ("scheduled", attempt)
        assert "no executor for jobs of kind 'webhook'" in row["last_error"]
        waits.append((row["due_at"] - clock.now).total_seconds())
        assert await dispatcher.fire_due() == 0  # not before its backoff is over
        clock.now = row["due_at"]
    assert 5 <= waits[0] <= 10 and 10 <= waits[1] <= 20  # base 10 s, doubling, half of it jitter
    assert await dispatcher.fire_due() == 1  # the third and last attempt
    [dead] = await _sent(pool, DEADLETTER)
    headers = [(name, value.encode()) for name, value in json.loads(dead["headers"])]
    assert "no executor for jobs of kind 'webhook'" in (hdr.get(headers, hdr.DLQ_CAUSE) or "")
    assert json.loads(dead["value"])["id"] == job.id and json.loads(dead["value"])["attempts"] == 3
    [notice] = await _sent(pool)
    text = envelope_pb2.Envelope.FromString(notice["value"]).outbound_message.text
    assert text.startswith("Sorry, I could not deliver your reminder “call the hook”")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job.id) == "failed"


async def test_finished_jobs_are_purged_after_the_retention_and_scheduled_ones_never(pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await jobs.create(conn, [_reminder(now + timedelta(days=1), title=f"job {i}") for i in range(4)])
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM jobs ORDER BY title")]
        await jobs.cancel(conn, [str(i) for i in ids[:2]])
        await conn.execute("UPDATE jobs SET updated_at = now() - interval '31 days' WHERE id = $1", ids[0])
        await jobs.first_handling(conn, "old-message", "reminder.list")
        await jobs.first_handling(conn, "new-message", "reminder.list")
        await conn.execute(
            "UPDATE handled_messages SET handled_at = now() - interval '31 days' WHERE message_id = 'old-message'"
        )
        assert await jobs.purge(conn, now - timedelta(days=30)) == 2
        assert [r["id"] for r in await conn.fetch("SELECT id FROM jobs ORDER BY title")] == ids[1:]
        assert await conn.fetchval("SELECT array_agg(message_id) FROM handled_messages") == ["new-message"]


async def test_a_device_command_waits_for_its_answer_is_resent_then_given_up(pool: asyncpg.Pool, schema: str) -> None:
    clock = Clock(datetime(2026, 5, 1, 12, tzinfo=UTC))
    payload = {"device_id": "bedroom-fan", "action": "off", "in_reply_to": "msg-1"}
    silent = _reminder(clock.now, kind="device", title="bedroom fan", max_attempts=2, payload=payload)
    answered = _reminder(clock.now, kind="device", title="bedroom fan", payload=payload)
    async with pool.acquire() as conn:
        await jobs.create(conn, [silent, answered])
    dispatcher = _dispatcher(
        pool, schema, clock, backoff_base_s=1, backoff_cap_s=1, device_topic="t.commands", device_answer_s=10
    )
    assert await dispatcher.fire_due() == 2
    commands = [envelope_pb2.Envelope.FromString(r["value"]).device_command for r in await _sent(pool, "t.commands")]
    assert sorted(c.command_id for c in commands) == sorted([silent.id, answered.id])
    assert all(c.device_id == "bedroom-fan" and c.action == "off" for c in commands)
    # One device answers: its job is done, once.
    async with pool.acquire() as conn:
        done = await jobs.finish(conn, answered.id, "device", ok=True)
        assert done is not None and done.title == "bedroom fan"
        assert await jobs.finish(conn, answered.id, "device", ok=True) is None  # a repeated answer
        assert await conn.fetchval("SELECT status FROM jobs WHERE id = $1", silent.id) == "waiting"
    clock.now += timedelta(seconds=9)
    assert await dispatcher.fire_due() == 0  # still within the answer time
    clock.now += timedelta(seconds=2)
    assert await dispatcher.fire_due() == 1  # overdue: a failed attempt, resent after the backoff
    clock.now += timedelta(seconds=1)
    assert await dispatcher.fire_due() == 1
    resent = [envelope_pb2.Envelope.FromString(r["value"]) for r in await _sent(pool, "t.commands")]
    assert [e.device_command.command_id for e in resent].count(silent.id) == 2  # the same command id
    clock.now += timedelta(seconds=11)
    assert await dispatcher.fire_due() == 1  # the second and last attempt went unanswered
    [dead] = await _sent(pool, DEADLETTER)
    headers = [(name, value.encode()) for name, value in json.loads(dead["headers"])]
    assert "no answer from bedroom-fan within 10 s" in (hdr.get(headers, hdr.DLQ_CAUSE) or "")
    [notice] = await _sent(pool)
    assert envelope_pb2.Envelope.FromString(notice["value"]).outbound_message.text.startswith(
        "The bedroom fan did not answer (2 tries)"
    )
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM jobs WHERE id = $1", silent.id) == "failed"
        assert await jobs.finish(conn, silent.id, "device", ok=True) is None  # too late


async def test_a_workflow_run_keeps_its_state_per_step_retries_a_silent_model_then_gives_up(
    pool: asyncpg.Pool, schema: str
) -> None:
    clock = Clock(datetime(2026, 5, 1, 12, tzinfo=UTC))
    flows = workflows.Workflows.load()
    message = m.InboundMessage(message_id="msg-7", channel=m.CHANNEL_HTTP, channel_chat_id="chat-7", text="")
    intent = m.ParsedIntent(message=message, intent="ticket.create", language="en", person_id="person-7")
    intent.message.text = "my parcel never came, it has been two weeks"
    intent.slots.add(name="category", value="delivery")
    answered = flows.start(flows.by_intent["ticket.create"], intent, "conv-7", "t", clock.now)
    intent.message.message_id, intent.message.text = "msg-8", "the app crashes whenever I open settings"
    silent = flows.start(flows.by_intent["ticket.create"], intent, "conv-8", "t", clock.now)
    async with pool.acquire() as conn:
        await jobs.create(conn, [answered, silent])
    dispatcher = _dispatcher(
        pool, schema, clock, backoff_base_s=1, backoff_cap_s=1, requests_topic="t.requests", workflow_set=flows
    )
    assert await dispatcher.fire_due() == 2  # step "check" of both
    assert await dispatcher.fire_due() == 2  # step "classify": each sends its request and waits
    requests = [envelope_pb2.Envelope.FromString(r["value"]).inference_request for r in await _sent(pool, "t.requests")]
    assert len(requests) == 2 and all(not r.stream and "Ticket: " in r.messages[0].content for r in requests)
    # The model answers the first run (what Scheduler.workflow_results does with the result).
    async with pool.acquire() as conn, conn.transaction():
        [run] = await jobs.waiting_for(conn, [r.request_id for r in requests if r.message_id == "msg-7"])
        step = workflows.current(flows, run)
        dispatcher.step_done(run, workflows.model_answer(step, run, "Delivery"), clock.now)
        await jobs.save_outcomes(conn, [run])
    assert await dispatcher.fire_due() == 1  # "file"
    assert await dispatcher.fire_due() == 1  # "confirm"
    [confirmation] = await _sent(pool)
    text = envelope_pb2.Envelope.FromString(confirmation["value"]).outbound_message.text
    async with pool.acquire() as conn:
        [ticket] = await conn.fetch("SELECT id, owner, category, classified_by FROM tickets")
        assert tuple(ticket)[1:] == ("person-7", "delivery", "model")
        assert text.startswith(f"Ticket #{ticket['id']} is filed under “delivery”")
        assert await conn.fetchval("SELECT status FROM jobs WHERE id = $1", answered.id) == "done"
    # The second run's model never answers: 3 tries (retries: 2), then it is dead-lettered.
    for _ in range(2):
        clock.now += timedelta(seconds=61)
        assert await dispatcher.fire_due() == 1  # overdue: a failed attempt
        clock.now += timedelta(seconds=1)
        assert await dispatcher.fire_due() == 1  # asked again
    clock.now += timedelta(seconds=61)
    assert await dispatcher.fire_due() == 1
    [dead] = await _sent(pool, DEADLETTER)
    assert json.loads(dead["value"])["id"] == silent.id
    headers = [(name, value.encode()) for name, value in json.loads(dead["headers"])]
    assert "no answer to step 'classify' within 60 s" in (hdr.get(headers, hdr.DLQ_CAUSE) or "")
    assert len(await _sent(pool, "t.requests")) == 4  # 1 + 3 for the silent run
    notices = [envelope_pb2.Envelope.FromString(r["value"]).outbound_message.text for r in await _sent(pool)]
    assert notices[-1].startswith("Sorry, I could not finish that just now")
