"""PostgreSQL restarted, Elasticsearch stopped for a minute and Triton killed under mixed
traffic: every accepted message is answered (or politely failed) once, and audited."""

from collections.abc import AsyncIterator

import pytest

from tests.chaos import mixed, outages
from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    async with mixed.running(stack, replicas=1) as started:
        yield started


@pytest.mark.timeout(900)
async def test_dependency_outages_lose_and_double_no_reply(pipeline: Pipeline) -> None:
    outcome = await outages.run(pipeline)

    assert outcome.sent > 200
    assert outcome.lost == 0, pipeline.log_tails()
    assert outcome.replies + outcome.failed_politely == outcome.sent
    assert outcome.duplicated == 0
    assert outcome.order_violations == 0
    assert outcome.audit_missing == 0
    assert len(outcome.recovery_s) == 3
