"""Wiring: consume every business topic, bulk-index each poll, commit after Elasticsearch acked."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from elasticsearch import AsyncElasticsearch

from switchboard.audit_logger import documents
from switchboard.audit_logger.config import Settings
from switchboard.common.kafka import ConsumedEvent
from switchboard.common.service import ServiceRuntime

logger = logging.getLogger(__name__)


class BulkIndexError(RuntimeError):
    """Elasticsearch rejected documents for a reason other than "already indexed"."""


class AuditIndexer:
    def __init__(self, es: AsyncElasticsearch, data_stream: str) -> None:
        self._es = es
        self._data_stream = data_stream

    async def install_template(self) -> None:
        name = self._data_stream.rsplit("-", 1)[0]  # logs-<dataset>
        await self._es.indices.put_index_template(name=name, **documents.index_template(f"{name}-*"))

    async def index(self, batch: list[ConsumedEvent]) -> None:
        """Create one document per event in one bulk request; an event already indexed
        (409, a replay) counts as done."""
        operations: list[dict[str, Any]] = []
        for event in batch:
            operations.append({"create": {"_index": self._data_stream, "_id": event.envelope.event_id}})
            operations.append(documents.document(event.envelope))
        reply = await self._es.bulk(operations=operations)
        if not reply["errors"]:
            return
        failed = [item["create"] for item in reply["items"] if item["create"].get("status") not in (201, 409)]
        if failed:
            raise BulkIndexError(f"{len(failed)} of {len(batch)} documents rejected, first: {failed[0]}")


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    api_key = settings.elasticsearch_api_key.get_secret_value() if settings.elasticsearch_api_key else None
    es = AsyncElasticsearch(settings.elasticsearch_url, api_key=api_key, request_timeout=30)
    try:
        indexer = AuditIndexer(es, settings.data_stream)
        await indexer.install_template()
        async with ServiceRuntime(settings) as runtime:
            consumer = runtime.consumer(
                settings.topics.business(),
                group_id=settings.group_id,
                batch_handler=indexer.index,
            )
            await runtime.run(stop, consumer)
    finally:
        await es.close()
