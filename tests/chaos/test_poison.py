"""One user's poison among a thousand messages costs only that user."""

from collections.abc import AsyncIterator

import pytest

from tests.chaos import poison
from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline
from tests.e2e.test_pipeline import _started

pytestmark = pytest.mark.integration


@pytest.fixture
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    async for started in _started(Pipeline(stack)):
        yield started


@pytest.mark.timeout(600)
async def test_one_users_poison_is_refused_or_dead_lettered_and_everyone_else_answered(pipeline: Pipeline) -> None:
    outcome, report = await poison.run(pipeline)

    for kind, (status, detail) in report.http.items():
        assert 400 <= status < 500 and detail, (kind, status, detail)
    assert set(report.dead_lettered) >= set(poison.UNREADABLE), report
    assert all(report.dead_lettered[kind] for kind in poison.UNREADABLE), "a dead letter must carry its cause"
    for kind in poison.READABLE:
        assert kind in report.dead_lettered or kind in report.answered, (kind, report)
    assert report.others_dead_lettered == 0
    assert outcome.sent == poison.USERS * poison.MESSAGES
    assert outcome.lost == 0 and outcome.replies == outcome.sent
    assert outcome.duplicated == 0
