"""The ticket-classification workflow through all five services: a ticket said over HTTP is
checked, classified by the model (the echo model here, whose answer names every category,
so the parser's keyword category is used), filed in PostgreSQL and confirmed; too little to
file gets the check's refusal, and nothing is filed for it."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline
from tests.e2e.test_pipeline import _conversation, _started
from tests.e2e.test_reminders import _say

pytestmark = pytest.mark.integration


@pytest.fixture
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    async for started in _started(Pipeline(stack)):
        yield started


async def test_a_ticket_is_checked_classified_filed_and_confirmed(pipeline: Pipeline) -> None:
    async with pipeline.client(pipeline.gateway_urls[0], timeout=90) as client:
        conversation = await _conversation(client)
        filed = await _say(client, conversation, "I was charged twice for my subscription")
        assert filed.startswith("Ticket #") and "“billing”" in filed, filed
        refused = await _say(client, conversation, "refund")
        assert refused == "Please describe the problem in a sentence or two, and I'll file a ticket."
    conn = await asyncpg.connect(pipeline.stack.pg_dsn, server_settings={"search_path": pipeline.schema})
    try:
        tickets = [tuple(r) for r in await conn.fetch("SELECT id, owner, text, category, classified_by FROM tickets")]
        runs = await conn.fetch("SELECT status, payload FROM jobs WHERE kind = 'workflow' ORDER BY created_at")
    finally:
        await conn.close()
    [(ticket_id, owner, text, category, by)] = tickets
    assert f"Ticket #{ticket_id} " in filed
    assert (owner, text, category, by) == (
        "web:e2e-user",
        "I was charged twice for my subscription",
        "billing",
        "keywords",
    )
    assert [r["status"] for r in runs] == ["done", "failed"]  # the second was refused at the check
