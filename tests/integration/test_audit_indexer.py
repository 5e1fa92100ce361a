"""The audit logger's bulk indexing against the real Elasticsearch."""

from collections.abc import AsyncIterator

import pytest
from elasticsearch import AsyncElasticsearch

from switchboard.audit_logger.app import AuditIndexer, BulkIndexError
from switchboard.common import events
from switchboard.common.kafka import ConsumedEvent
from switchboard.events.v1 import messages_pb2 as m
from tests.conftest import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
async def es(stack: Stack) -> AsyncIterator[AsyncElasticsearch]:
    async with AsyncElasticsearch(stack.es_url, request_timeout=30) as client:
        yield client


def _event(text: str) -> ConsumedEvent:
    envelope = events.wrap(m.InboundMessage(message_id=f"m-{text}", text=text), conversation_key="c", source="t")
    return ConsumedEvent(envelope=envelope, topic="t", partition=0, offset=0, key=b"c", headers=[])


async def test_a_replayed_batch_adds_no_document(es: AsyncElasticsearch, unique: str) -> None:
    # (This distribution has no _data_stream API to delete the stream with; its name is unique.)
    stream = f"logs-switchboard.audit-test{unique}"
    indexer = AuditIndexer(es, stream)
    await indexer.install_template()
    batch = [_event(str(i)) for i in range(20)]
    late = _event("late")
    await indexer.index(batch)
    await indexer.index([*batch[5:], late])  # a redelivery overlapping one new event
    await es.indices.refresh(index=stream)
    found = await es.search(index=stream, size=100, source=False)
    assert sorted(hit["_id"] for hit in found["hits"]["hits"]) == sorted(e.envelope.event_id for e in [*batch, late])


async def test_a_rejected_document_fails_the_batch(es: AsyncElasticsearch, unique: str) -> None:
    indexer = AuditIndexer(es, f"Not-A-Valid-Index-{unique}")  # upper case: Elasticsearch refuses it
    with pytest.raises(BulkIndexError, match="rejected"):
        await indexer.index([_event("x")])
