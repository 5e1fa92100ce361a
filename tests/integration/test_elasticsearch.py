import pytest
from elasticsearch import AsyncElasticsearch, ConflictError

from tests.conftest import Stack

pytestmark = pytest.mark.integration


async def test_index_and_search_back(stack: Stack, unique: str) -> None:
    index = f"switchboard-test-{unique}"
    async with AsyncElasticsearch(stack.es_url, request_timeout=30) as es:
        try:
            await es.index(index=index, id="evt-1", document={"message": "turn on the kitchen light", "n": 1})
            await es.index(index=index, id="evt-2", document={"message": "remind me tomorrow", "n": 2})
            await es.indices.refresh(index=index)
            found = await es.search(index=index, query={"match": {"message": "kitchen"}})
            hits = found["hits"]["hits"]
            assert [hit["_id"] for hit in hits] == ["evt-1"]
            assert hits[0]["_source"]["n"] == 1
        finally:
            await es.indices.delete(index=index, ignore_unavailable=True)


async def test_create_with_same_id_is_a_conflict(stack: Stack, unique: str) -> None:
    # op_type=create with the event id as document id is how a replay stays duplicate-free.
    index = f"switchboard-test-{unique}"
    async with AsyncElasticsearch(stack.es_url, request_timeout=30) as es:
        try:
            doc = {"@timestamp": "2026-11-23T10:00:00Z", "message": "hello"}
            await es.create(index=index, id="evt-1", document=doc, refresh=True)
            with pytest.raises(ConflictError):
                await es.create(index=index, id="evt-1", document=doc, refresh=True)
            assert (await es.count(index=index))["count"] == 1
        finally:
            await es.indices.delete(index=index, ignore_unavailable=True)
