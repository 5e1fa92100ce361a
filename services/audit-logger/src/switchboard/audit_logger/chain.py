"""Tamper evidence: every document is hashed, with a key, together with the hash of the one
before it, and the newest hash of each chain is kept outside Elasticsearch.

Chains run per Kafka partition (``switchboard.chain.key`` = ``topic/partition``), in offset
order, because that is the order one consumer indexes them in, and a replay of the same
records rebuilds the same chain: a document's content depends only on its event, so its
hash does too, and a re-sent document that already exists (409) is identical.

    event.hash = HMAC-SHA256(chain key, the document as JSON with sorted keys, compact,
                             UTF-8 (orjson); it includes switchboard.chain.prev)

``event.ingested`` (the indexing time) is left out of the hash. :func:`verify` recomputes
every hash and follows the links: an edited document no longer matches its hash, and a
deleted one leaves the next document pointing at a hash that is not there. The key
(``SB_AUDIT_CHAIN_KEY``) is the audit logger's, not Elasticsearch's: whoever can write to
Elasticsearch but does not hold it cannot make an edited document's hash, nor rechain the
documents after it. Against a rewrite by someone who does hold it, and against deleting a
chain's newest documents (which leaves no broken link), the logger anchors each chain's
newest (offset, hash) in a compacted Kafka topic after every batch (:mod:`anchors`), and
:func:`verify` checks that the anchored documents are there unchanged.

A document Elasticsearch refused is replaced by a stub with the same id and hash
(``event.kind: pipeline_error``; the event itself went to the dead-letter topic), so the
chain stays whole; :func:`verify` reports stubs separately.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan

STUB_KIND = "pipeline_error"


def digest(doc: dict[str, Any], key: bytes) -> str:
    """The keyed hash of ``doc``: its canonical JSON without ``event.hash`` and ``event.ingested``."""
    content = copy.copy(doc)
    content["event"] = {k: v for k, v in doc["event"].items() if k not in ("hash", "ingested")}
    return hmac.new(key, orjson.dumps(content, option=orjson.OPT_SORT_KEYS), hashlib.sha256).hexdigest()


def position(doc: dict[str, Any]) -> tuple[str, int]:
    """A document's chain and its offset there."""
    sb = doc["switchboard"]
    return sb["chain"]["key"], sb["kafka"]["offset"]


class Chain:
    """Links documents to the head of their chain (the document before them)."""

    def __init__(self, es: AsyncElasticsearch, index: str, key: bytes) -> None:
        self._es = es
        self._index = index
        self._key = key
        self._heads: dict[str, tuple[int, str]] = {}  # chain key -> (offset, hash) of its last document

    def forget(self) -> None:
        """Drop the heads known (partitions moved: another replica may have gone on)."""
        self._heads.clear()

    async def link(
        self, docs: Iterable[dict[str, Any]], carried: dict[str, tuple[int, str]] | None = None
    ) -> dict[str, tuple[int, str]]:
        """Set ``switchboard.chain.prev`` and ``event.hash`` on ``docs`` (each chain's in
        offset order) and return the new heads, to :meth:`advance` to once they are stored.
        ``carried``: heads of documents linked just before these, not stored yet."""
        heads: dict[str, tuple[int, str]] = dict(carried or {})
        refreshed = False
        for doc in docs:
            key, offset = position(doc)
            head = heads.get(key) or self._heads.get(key)
            if head is None or head[0] >= offset:  # not known, or a redelivery from further back
                if not refreshed:
                    await self._es.indices.refresh(index=self._index, ignore_unavailable=True, allow_no_indices=True)
                    refreshed = True
                head = await self._stored_head(key, offset)
            doc["switchboard"]["chain"]["prev"] = head[1] if head else ""
            doc["event"]["hash"] = digest(doc, self._key)
            heads[key] = (offset, doc["event"]["hash"])
        return heads

    def advance(self, heads: dict[str, tuple[int, str]]) -> None:
        self._heads.update(heads)

    async def _stored_head(self, key: str, before: int) -> tuple[int, str] | None:
        """The stored document of chain ``key`` just before offset ``before``."""
        found = await self._es.search(
            index=self._index,
            size=1,
            query={
                "bool": {
                    "filter": [
                        {"term": {"switchboard.chain.key": key}},
                        {"range": {"switchboard.kafka.offset": {"lt": before}}},
                    ]
                }
            },
            sort=[{"switchboard.kafka.offset": "desc"}],
            source=["event.hash", "switchboard.kafka.offset"],
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        hits = found["hits"]["hits"]
        if not hits:
            return None
        source = hits[0]["_source"]
        return source["switchboard"]["kafka"]["offset"], source["event"]["hash"]


@dataclass
class Report:
    """What :func:`verify` found."""

    checked: int = 0
    chains: int = 0
    edited: list[str] = field(default_factory=list)  # ids whose content no longer matches their hash
    broken: list[str] = field(default_factory=list)  # ids whose predecessor is missing or changed
    stubs: list[str] = field(default_factory=list)  # refused at indexing (event dead-lettered)
    heads: dict[str, str] = field(default_factory=dict)  # chain key -> hash of its newest document
    # Chains whose anchored document is missing (truncated) or has another hash (rewritten).
    truncated: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    anchors_checked: int = 0

    @property
    def ok(self) -> bool:
        return not (self.edited or self.broken or self.truncated or self.rewritten)


async def chain_starts(es: AsyncElasticsearch, index: str, since: str | None) -> dict[str, int]:
    """Each chain's first offset at or after ``since`` (an Elasticsearch date or date math)."""
    query: dict[str, Any] = {"range": {"@timestamp": {"gte": since}}} if since else {"match_all": {}}
    starts: dict[str, int] = {}
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {"size": 1000, "sources": [{"key": {"terms": {"field": "switchboard.chain.key"}}}]}
        if after:
            composite["after"] = after
        found = await es.search(
            index=index,
            size=0,
            query=query,
            aggs={
                "chains": {"composite": composite, "aggs": {"first": {"min": {"field": "switchboard.kafka.offset"}}}}
            },
        )
        agg = found["aggregations"]["chains"]
        for bucket in agg["buckets"]:
            starts[bucket["key"]["key"]] = int(bucket["first"]["value"])
        after = agg.get("after_key")
        if not agg["buckets"] or after is None:
            return starts


async def _chain_docs(es: AsyncElasticsearch, index: str, key: str, start: int) -> AsyncIterator[dict[str, Any]]:
    query = {
        "bool": {
            "filter": [
                {"term": {"switchboard.chain.key": key}},
                {"range": {"switchboard.kafka.offset": {"gte": start}}},
            ]
        }
    }
    async for hit in async_scan(
        es, index=index, query={"query": query, "sort": [{"switchboard.kafka.offset": "asc"}]}, preserve_order=True
    ):
        yield hit


async def verify(
    es: AsyncElasticsearch,
    index: str,
    key: bytes,
    since: str | None = None,
    progress: Any = None,
    anchors: dict[str, tuple[int, str]] | None = None,
) -> Report:
    """Check every chain with documents since ``since`` (all by default), from its first
    such document on, and that each of ``anchors`` (chain key -> offset, hash of a document
    anchored outside Elasticsearch; those past retention left out by the caller) is there
    unchanged. ``progress(n)`` is called as documents are checked."""
    await es.indices.refresh(index=index)
    report = Report()
    anchors = anchors or {}
    starts = await chain_starts(es, index, since)
    for chain_key, start in sorted(starts.items()):
        report.chains += 1
        previous: str | None = None
        anchor = anchors.get(chain_key)
        anchored_found = False
        async for hit in _chain_docs(es, index, chain_key, start):
            doc = hit["_source"]
            report.checked += 1
            stub = doc["event"].get("kind") == STUB_KIND
            if stub:
                report.stubs.append(hit["_id"])
            elif digest(doc, key) != doc["event"].get("hash"):
                report.edited.append(hit["_id"])
            if previous is not None and doc["switchboard"]["chain"].get("prev") != previous:
                report.broken.append(hit["_id"])
            previous = doc["event"].get("hash")
            if anchor is not None and position(doc)[1] == anchor[0]:
                anchored_found = True
                if previous != anchor[1]:
                    report.rewritten.append(chain_key)
            if progress is not None:
                progress(1)
        if previous is not None:
            report.heads[chain_key] = previous
        if anchor is not None:
            report.anchors_checked += 1
            if not anchored_found and anchor[0] >= start:
                report.truncated.append(chain_key)
    # A chain anchored but with no document left at all: deleted (with ``since``, it may
    # just have had none since then).
    if since is None:
        for chain_key in sorted(set(anchors) - set(starts)):
            report.anchors_checked += 1
            report.truncated.append(chain_key)
    return report
