"""The example plugin through the whole system: "convert 5 miles to km" said over HTTP is
classified units.convert by the parser, routed by the scheduler to the enabled units plugin
(found in the catalogue it registered in), answered by it and relayed to the user. With the
plugin stopped, the scheduler asks again after the backoff (the same request id), then tells
the user it is not answering and dead-letters the call."""

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import Stack
from tests.e2e.pipeline import CORE, Pipeline
from tests.e2e.test_mqtt import _read_raw
from tests.e2e.test_pipeline import _conversation, _read_all, _started
from tests.e2e.test_reminders import _say

pytestmark = pytest.mark.integration


@pytest.fixture
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    plugged = Pipeline(
        stack,
        modules=(*CORE, "plugin_units"),
        extra_env={
            "scheduler": {
                "PLUGINS_ENABLED": json.dumps(["units"]),
                "PLUGIN_ATTEMPTS": "2",
                "RETRY_BASE_S": "1",
                "RETRY_CAP_S": "1",
            },
            "plugin_units": {"TIMEOUT_S": "3"},
        },
    )
    async for started in _started(plugged):
        yield started


async def test_a_conversion_is_answered_by_the_plugin_and_a_stopped_plugin_is_reported(pipeline: Pipeline) -> None:
    async with pipeline.client(pipeline.gateway_urls[0], timeout=90) as client:
        conversation = await _conversation(client)
        assert await _say(client, conversation, "convert 5 miles to km") == "5 miles = 8.05 km"
        assert await _say(client, conversation, "100华氏度是多少摄氏度") == "100 华氏度 = 37.78 摄氏度"
        await pipeline.stop_module("plugin_units")
        silent = await _say(client, conversation, "how many pounds is 3 kg?")
        assert silent == "Sorry, the unit converter is not answering (2 tries). Please try again later.", silent

    requests = [e.plugin_request for e in await _read_all(pipeline.stack, pipeline.units_requests)]
    by_text: dict[str, list[tuple[str, int]]] = {}
    for r in requests:
        by_text.setdefault(r.intent.message.text, []).append((r.request_id, r.attempt))
    assert [a for _, a in by_text["convert 5 miles to km"]] == [1]
    unanswered = by_text["how many pounds is 3 kg?"]
    assert [a for _, a in unanswered] == [1, 2] and len({i for i, _ in unanswered}) == 1  # asked again, same id
    replies = [e.plugin_reply for e in await _read_all(pipeline.stack, pipeline.topics.plugin_replies)]
    assert sorted(r.text for r in replies) == ["100 华氏度 = 37.78 摄氏度", "5 miles = 8.05 km"]
    dead = await _read_raw(pipeline.stack, pipeline.topics.deadletter)  # JSON job rows
    assert any(json.loads(r.value)["id"] == unanswered[0][0] for r in dead)
    conn = await asyncpg.connect(pipeline.stack.pg_dsn, server_settings={"search_path": pipeline.schema})
    try:
        statuses = sorted(r["status"] for r in await conn.fetch("SELECT status FROM jobs WHERE kind = 'plugin'"))
    finally:
        await conn.close()
    assert statuses == ["done", "done", "failed"]
