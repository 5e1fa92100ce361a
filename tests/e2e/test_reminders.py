"""Reminders through all five services: said over HTTP, confirmed, listed, fired on time,
cancelled; the firing arrives on the outbound topic once."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from switchboard.events.v1 import envelope_pb2
from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline
from tests.e2e.test_pipeline import _conversation, _read_all, _started

pytestmark = pytest.mark.integration


@pytest.fixture
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    async for started in _started(Pipeline(stack)):
        yield started


async def _say(client: httpx.AsyncClient, conversation: str, text: str) -> str:
    response = await client.post("/v1/messages", json={"conversation_id": conversation, "text": text, "wait": True})
    assert response.status_code == 200, response.text
    return str(response.json()["reply"])


async def _firings(pipeline: Pipeline) -> list[envelope_pb2.Envelope]:
    return [
        e
        for e in await _read_all(pipeline.stack, pipeline.topics.outbound)
        if e.outbound_message.metadata.get("kind") == "reminder" and e.outbound_message.text.startswith("⏰")
    ]


async def test_a_reminder_is_confirmed_listed_fired_once_on_time_and_another_cancelled(pipeline: Pipeline) -> None:
    async with pipeline.client(pipeline.gateway_urls[0], timeout=60) as client:
        conversation = await _conversation(client)
        asked = time.time()
        confirmed = await _say(client, conversation, "remind me in 30 seconds to stretch")
        assert confirmed.startswith("OK, I'll remind you to stretch"), confirmed
        later = await _say(client, conversation, "remind me tomorrow at 9am to water the plants")
        assert "water the plants" in later and "09:00" in later
        listing = await _say(client, conversation, "show me my reminders")
        assert listing.startswith("Your reminders:") and "stretch" in listing and "water the plants" in listing
        cancelled = await _say(client, conversation, "cancel the water the plants reminder")
        assert cancelled.startswith("Cancelled: water the plants"), cancelled

        async with asyncio.timeout(90):
            while not (fired := await _firings(pipeline)):
                await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # a second firing would show up by now
        fired = await _firings(pipeline)
        assert [e.outbound_message.text for e in fired] == ["⏰ Reminder: stretch"]
        occurrence = datetime.fromisoformat(fired[0].outbound_message.metadata["occurrence"]).timestamp()
        assert 25 <= occurrence - asked <= 40  # "in 30 seconds" from when it was said
        assert fired[0].produced_at.ToDatetime(tzinfo=UTC).timestamp() >= occurrence - 0.5  # not early
        assert await _say(client, conversation, "show me my reminders") == "You have no reminders."


async def test_a_wake_up_is_a_reminder_in_the_users_zone_and_an_impossible_date_gets_an_answer(
    pipeline: Pipeline,
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    async with pipeline.client(pipeline.gateway_urls[0], timeout=60) as client:
        conversation = await _conversation(client)
        await _say(client, conversation, "/timezone Europe/Berlin")
        before = datetime.now(berlin)
        woken = await _say(client, conversation, "wake me at 6:40 tomorrow")
        after = datetime.now(berlin)
        assert "06:40" in woken, woken
        # A day of the month that the library once turned into a crash: an answer, either way.
        assert await _say(client, conversation, "remind me 31 of next month to call mom")

    conn = await asyncpg.connect(pipeline.stack.pg_dsn)
    try:
        jobs = await conn.fetch(
            f'SELECT occurrence, time_zone FROM "{pipeline.schema}".jobs WHERE kind = $1 ORDER BY created_at',
            "reminder",
        )
    finally:
        await conn.close()
    tomorrow = {
        (said + timedelta(days=1)).replace(hour=6, minute=40, second=0, microsecond=0) for said in (before, after)
    }
    assert jobs[0]["time_zone"] == "Europe/Berlin"
    assert jobs[0]["occurrence"] in tomorrow, (jobs[0]["occurrence"], tomorrow)
