"""One batch of events -> documents in Elasticsearch, each exactly once.

Documents are written with the client's async bulk helper, ``op_type=create`` and the
event id as document id, so a redelivered or replayed event is a 409 (counted as done),
never a second document. The batch handler returns only once Elasticsearch acknowledged
every document, so the consumer commits offsets only for what is stored. While
Elasticsearch is unreachable or overloaded it raises :class:`ElasticsearchUnavailableError`,
which the consumer waits out (pausing its partitions) instead of dead-lettering anything.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from elasticsearch.helpers import async_streaming_bulk

from switchboard.audit_logger import metrics
from switchboard.audit_logger.anchors import Anchors
from switchboard.audit_logger.chain import STUB_KIND, Chain
from switchboard.audit_logger.documents import Mapper, UnmappableEventError, ingested
from switchboard.common.kafka import ConsumedEvent, Rejection

logger = logging.getLogger(__name__)

# Item statuses that say "not now" rather than "never": retried by the helper, then waited out.
RETRYABLE: Final = (429, 502, 503, 504)
# Errors that say Elasticsearch (or the way to it) is away, not that the batch is bad.
UNAVAILABLE: Final = (TransportError,)


class ElasticsearchUnavailableError(RuntimeError):
    """Elasticsearch did not take the batch for now (down, overloaded, blocked writes)."""


class AuditIndexer:
    """Maps, chains and bulk-creates the documents of a batch of events."""

    def __init__(
        self,
        es: AsyncElasticsearch,
        data_stream: str,
        mapper: Mapper,
        *,
        chain_key: bytes,
        chunk_size: int = 1000,
        max_retries: int = 3,
        requests_in_flight: int = 2,
    ) -> None:
        self._es = es
        self._stream = data_stream
        self._mapper = mapper
        self.chain = Chain(es, data_stream, chain_key)
        # Where each stored batch's chain heads are anchored (set by the service; a replay
        # or a test may go without).
        self.anchors: Anchors | None = None
        self._chunk_size = chunk_size
        self._max_retries = max_retries
        self._linking = asyncio.Lock()  # FIFO: batches link in the order they came
        self._requests = asyncio.Semaphore(max(1, requests_in_flight))
        self.created = 0  # documents created, and events found already indexed, so far
        self.existing = 0

    def prepare(self, event: ConsumedEvent) -> dict[str, Any] | UnmappableEventError:
        """The document of ``event`` (or why there is none), built as soon as the consumer
        polled it, while the batch before it is being indexed: the consumer's ``prepare``
        hook. Documents depend on their event only; the chain is linked in :meth:`index`."""
        try:
            return self._mapper.document(event)
        except UnmappableEventError as exc:
            return exc

    async def index(self, batch: list[ConsumedEvent]) -> list[Rejection]:
        """Store the documents of ``batch``; return the events that cannot be stored, to be
        dead-lettered with their cause.

        The batch's documents (built by :meth:`prepare`, or here) are linked into their
        chains first, all of them, under a lock taken on entry: batches are linked in the
        order the consumer hands them over, even with the next batch already handed over
        while this one's bulk requests are out (``batch_concurrency``). Then they go out
        in bulk requests of ``chunk_size``, at most ``requests_in_flight`` at once across
        batches, so that Elasticsearch has the next request while it works on one.

        The chain heads move on once a batch is linked, before it is stored: a later batch
        links on top of it, and a retry of this batch sends the same documents again.
        Should the batch be dead-lettered instead (it failed for good), the chain shows
        a break where it is missing, which :func:`~switchboard.audit_logger.chain.verify`
        reports.
        """
        rejections: list[Rejection] = []
        mapped: dict[str, tuple[ConsumedEvent, dict[str, Any]]] = {}
        async with self._linking:
            docs = []
            for n, event in enumerate(batch, 1):
                doc = event.prepared
                if doc is None:
                    doc = self.prepare(event)
                    if n % 50 == 0:
                        await asyncio.sleep(0)  # let requests in flight and Kafka fetches go on
                if isinstance(doc, UnmappableEventError):
                    rejections.append(Rejection(event, f"unmappable event: {doc}", "unmappable"))
                    continue
                mapped[event.envelope.event_id] = (event, doc)
                docs.append(doc)
            # A retried batch whose documents were linked the first time keeps those links:
            # they were made in batch order, which a retry (maybe after later batches were
            # linked, and before earlier ones are stored) could not see again.
            if not all("hash" in doc["event"] for doc in docs):
                self.chain.advance(await self.chain.link(docs))
        refused: dict[str, str] = {}
        sending = [
            asyncio.create_task(self._send(docs[start : start + self._chunk_size]))
            for start in range(0, len(docs), self._chunk_size)
        ]
        try:
            for task in sending:
                refused |= await task
        finally:
            for task in sending:
                task.cancel()
            await asyncio.gather(*sending, return_exceptions=True)
        if refused:
            stubs = []
            for event_id, error in refused.items():
                event, doc = mapped[event_id]
                cause = f"refused by Elasticsearch: {error}"
                rejections.append(Rejection(event, cause, "refused"))
                stubs.append(_stub(doc, cause))
            if await self._create(stubs):
                raise ElasticsearchUnavailableError("Elasticsearch refused the stubs of refused documents")
        if self.anchors is not None:
            await self.anchors.write(docs)  # stored, stubs included: the newest of each chain
        for rejection in rejections:
            metrics.DOCUMENTS.labels(result=rejection.reason).inc()
        return rejections

    async def _send(self, docs: list[dict[str, Any]]) -> dict[str, str]:
        """One bulk request, when there is room for it."""
        async with self._requests:
            return await self._create(ingested(docs))

    async def _create(self, docs: list[dict[str, Any]]) -> dict[str, str]:
        """Bulk-create ``docs``; return the ids Elasticsearch refused for good, with why."""
        actions = (
            {"_op_type": "create", "_index": self._stream, "_id": doc["event"]["id"], "_source": doc} for doc in docs
        )
        refused: dict[str, str] = {}
        created = duplicates = 0
        try:
            async for ok, item in async_streaming_bulk(
                self._es,
                actions,
                chunk_size=self._chunk_size,
                raise_on_error=False,
                max_retries=self._max_retries,
                initial_backoff=0.5,
                max_backoff=5,
                retry_on_status=RETRYABLE,
            ):
                result = item["create"]
                status = result.get("status", 0)
                if ok:
                    created += 1
                elif status == 409:  # indexed before: a replay or redelivery
                    duplicates += 1
                elif status in RETRYABLE or status >= 500 or _blocked(result):
                    raise ElasticsearchUnavailableError(f"status {status}: {result.get('error')}")
                else:
                    refused[result["_id"]] = _reason(result.get("error"))
        except UNAVAILABLE as exc:
            raise ElasticsearchUnavailableError(f"Elasticsearch unreachable: {exc}") from exc
        except ApiError as exc:  # the bulk request as a whole failed
            if exc.meta.status in RETRYABLE or exc.meta.status >= 500:
                raise ElasticsearchUnavailableError(f"Elasticsearch answered {exc.meta.status}") from exc
            raise
        self.created += created
        self.existing += duplicates
        metrics.DOCUMENTS.labels(result="created").inc(created)
        metrics.DOCUMENTS.labels(result="duplicate").inc(duplicates)
        return refused


def _blocked(result: dict[str, Any]) -> bool:
    """Writes blocked cluster-wide (e.g. the disk flood stage): wait, do not dead-letter."""
    error = result.get("error")
    return isinstance(error, dict) and error.get("type") == "cluster_block_exception"


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type')}: {error.get('reason')}"
    return str(error)


def _stub(doc: dict[str, Any], cause: str) -> dict[str, Any]:
    """What is stored in place of a refused document: its id, time, position and hash."""
    sb = doc["switchboard"]
    (stub,) = ingested(
        [
            {
                "@timestamp": doc["@timestamp"],
                "event": {
                    "id": doc["event"]["id"],
                    "kind": STUB_KIND,
                    "dataset": doc["event"]["dataset"],
                    "action": doc["event"].get("action", ""),
                    "hash": doc["event"]["hash"],
                },
                "error": {"message": cause[:2000]},
                "switchboard": {
                    "event_type": sb["event_type"],
                    "conversation": sb["conversation"],
                    "kafka": sb["kafka"],
                    "chain": sb["chain"],
                },
            }
        ]
    )
    return stub
