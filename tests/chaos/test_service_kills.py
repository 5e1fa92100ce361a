"""kill -9 of every service replica in turn under steady mixed traffic: every accepted
message is answered once, in order, and audited."""

from collections.abc import AsyncIterator

import pytest

from tests.chaos import mixed, service_kills
from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    async with mixed.running(stack) as started:
        yield started


@pytest.mark.timeout(900)
async def test_every_replica_killed_in_turn_loses_and_doubles_no_reply(pipeline: Pipeline) -> None:
    outcome = await service_kills.run(pipeline)

    assert outcome.sent > 200
    assert outcome.lost == 0, pipeline.log_tails()
    assert outcome.failed_politely == 0
    assert outcome.duplicated == 0
    assert outcome.order_violations == 0
    assert outcome.audit_missing == 0
    assert len(outcome.recovery_s) >= 5
