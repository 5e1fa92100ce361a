"""The scheduler's batch SQL and outbox against the real PostgreSQL."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from switchboard.common import events, postgres
from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import handlers, store
from switchboard.scheduler.outbox import Outbox
from tests.conftest import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(stack: Stack, unique: str) -> AsyncIterator[asyncpg.Pool]:
    schema = f"test_{unique}"
    pool = await asyncpg.create_pool(stack.pg_dsn, min_size=1, max_size=2, server_settings={"search_path": schema})
    try:
        async with pool.acquire() as conn:
            await postgres.migrate(conn, schema, "switchboard.scheduler")
        yield pool
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()


def _dispatch(message_id: str, event_id: str) -> store.Dispatch:
    request = m.InferenceRequest(
        request_id=handlers.request_id_for(message_id),
        message_id=message_id,
        channel=m.CHANNEL_HTTP,
        channel_chat_id="chat",
        priority=m.PRIORITY_ROUTINE,
        model_profile="general",
    )
    return store.Dispatch(request=request, intent_event_id=event_id, conversation_key="c", tenant_id="t")


async def test_a_message_is_dispatched_once_within_and_across_batches(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        first = [_dispatch("m-1", "e-1"), _dispatch("m-2", "e-2"), _dispatch("m-1", "e-1-again")]
        assert await store.record_dispatches(conn, first) == {"m-1", "m-2"}
        assert await store.record_dispatches(conn, [_dispatch("m-2", "e-2-later"), _dispatch("m-3", "e-3")]) == {"m-3"}
        assert await conn.fetchval("SELECT count(*) FROM dispatches") == 3
        assert await conn.fetchval("SELECT intent_event_id FROM dispatches WHERE message_id = 'm-1'") == "e-1"


async def test_a_request_completes_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await store.record_dispatches(conn, [_dispatch("m-1", "e-1"), _dispatch("m-2", "e-2")])
        ok = m.InferenceResult(request_id=handlers.request_id_for("m-1"), model_name="echo", latency_ms=5)
        failed = m.InferenceResult(request_id=handlers.request_id_for("m-2"), finish_reason=m.FINISH_REASON_ERROR)
        unknown = m.InferenceResult(request_id=handlers.request_id_for("m-9"))
        done = await store.record_completions(conn, [ok, failed, unknown, ok])
        assert done == {ok.request_id, failed.request_id}
        assert await store.record_completions(conn, [ok]) == set()
        rows = await conn.fetch("SELECT message_id, status, model_name, latency_ms FROM dispatches ORDER BY 1")
        assert [tuple(r) for r in rows] == [("m-1", "completed", "echo", 5), ("m-2", "failed", "", 0)]


async def test_outbox_rows_keep_the_order_they_were_added_in(pool: asyncpg.Pool, unique: str) -> None:
    outbox = Outbox(pool, f"test_{unique}")
    added = [
        ("t.a", events.wrap(m.OutboundMessage(text=str(i)), conversation_key=f"c{i % 3}", source="t"))
        for i in range(50)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, added)
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT topic, key, value FROM outbox ORDER BY id")
    assert [(r["topic"], r["key"], r["value"]) for r in rows] == [
        (topic, e.conversation_key.encode(), e.SerializeToString()) for topic, e in added
    ]
