"""The gateway's PostgreSQL state: delivery dedupe and the per-user rate limit."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from switchboard.channel_gateway.dedupe import SeenDeliveries
from switchboard.channel_gateway.ratelimit import RateLimiter
from switchboard.channel_gateway.targets import ReplyTargets
from switchboard.common import postgres
from tests.conftest import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(stack: Stack, unique: str) -> AsyncIterator[asyncpg.Pool]:
    schema = f"test_gw_{unique}"
    pool = await postgres.connect(stack.pg_dsn, schema, "switchboard.channel_gateway", 2)
    try:
        yield pool
    finally:
        await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()


async def test_two_limiters_share_one_budget_per_user(pool: asyncpg.Pool) -> None:
    first, second = RateLimiter(pool, per_minute=3), RateLimiter(pool, per_minute=3)  # two replicas
    allowed = [await limiter.allow("telegram:1") for limiter in (first, second, first)]
    assert allowed == [None, None, None]
    wait_s = await second.allow("telegram:1")
    assert wait_s is not None and 0 <= wait_s <= 60
    assert await first.allow("telegram:2") is None
    assert await RateLimiter(pool, per_minute=0).allow("telegram:1") is None  # 0 = no limit


async def test_deliveries_are_remembered_then_forgotten(pool: asyncpg.Pool) -> None:
    seen = SeenDeliveries(pool, keep_s=3600)
    assert not await seen.seen("telegram", "1:5")
    await seen.remember("telegram", "1:5")
    await seen.remember("telegram", "1:5")
    assert await seen.seen("telegram", "1:5") and not await seen.seen("feishu", "1:5")
    await pool.execute("UPDATE seen_deliveries SET seen_at = now() - interval '2 hours'")
    assert await seen.purge() == 1 and not await seen.seen("telegram", "1:5")


async def test_any_of_several_keys_counts_as_seen(pool: asyncpg.Pool) -> None:
    seen = SeenDeliveries(pool, keep_s=3600)
    await seen.remember("feishu", "event:e1", "message:om_1")
    assert await seen.seen("feishu", "event:e2", "message:om_1")  # same message, new event id
    assert await seen.seen("feishu", "event:e1", "message:om_2")
    assert not await seen.seen("feishu", "event:e2", "message:om_2")


async def test_reply_targets_are_kept_then_purged(pool: asyncpg.Pool) -> None:
    targets = ReplyTargets(pool, keep_s=3600)
    await targets.remember("m-1", "feishu", {"message_id": "om_1", "in_thread": True})
    await targets.remember("m-1", "feishu", {"message_id": "om_other"})  # a redelivery keeps the first
    assert await targets.get("m-1") == {"message_id": "om_1", "in_thread": True}
    assert await targets.get("m-2") is None
    await pool.execute("UPDATE reply_targets SET created_at = now() - interval '2 hours'")
    assert await targets.purge() == 1 and await targets.get("m-1") is None
