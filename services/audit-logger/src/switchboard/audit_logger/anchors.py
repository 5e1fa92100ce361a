"""Each audit chain's newest (offset, hash), anchored outside Elasticsearch.

After every batch it stored, the audit logger writes the newest document of each chain in
it to a compacted Kafka topic (``switchboard.audit.anchors.v1``, keyed by data stream and
chain, ``<data stream>|<chain>``; JSON ``{"offset", "hash", "at"}``, not an Envelope).
Kafka keeps the latest per chain. Someone who rewrites a chain consistently in
Elasticsearch (edits a document and recomputes every hash after it, which takes the chain
key) or deletes its newest documents changes or removes the anchored document;
:func:`switchboard.audit_logger.chain.verify` compares the two. An anchor is never moved
back to an older offset by this process.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from switchboard.audit_logger.chain import position
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import EventProducer
from switchboard.common.kafka.positions import partitions, to_end
from switchboard.common.kafka.security import connection_kwargs

Heads = dict[str, tuple[int, str]]


def newest(docs: Iterable[dict[str, Any]]) -> Heads:
    """Each chain's newest (offset, hash) among ``docs`` (linked documents)."""
    heads: Heads = {}
    for doc in docs:
        key, offset = position(doc)
        if key not in heads or heads[key][0] < offset:
            heads[key] = (offset, doc["event"]["hash"])
    return heads


class Anchors:
    """Writes chain heads to the anchor topic and waits for Kafka to have them."""

    def __init__(self, producer: EventProducer, topic: str, data_stream: str, clock: Any = time.time) -> None:
        self._producer = producer
        self._topic = topic
        self._stream = data_stream
        self._clock = clock
        self._written: dict[str, int] = {}  # chain -> offset anchored by this process

    async def write(self, docs: Iterable[dict[str, Any]]) -> None:
        heads = {k: v for k, v in newest(docs).items() if v[0] > self._written.get(k, -1)}
        acks = [
            await self._producer.enqueue_raw(
                self._topic,
                json.dumps({"offset": offset, "hash": digest, "at": self._clock()}).encode(),
                f"{self._stream}|{key}".encode(),
                [],
            )
            for key, (offset, digest) in sorted(heads.items())
        ]
        await asyncio.gather(*acks)
        for key, (offset, _) in heads.items():
            self._written[key] = max(offset, self._written.get(key, -1))


async def read(kafka: KafkaSettings, topic: str, data_stream: str, not_before: float | None = None) -> Heads:
    """The latest anchor of every chain of ``data_stream``, leaving out those written before
    ``not_before`` (epoch seconds: their documents may be past retention)."""
    prefix = f"{data_stream}|"
    connection = {"bootstrap_servers": kafka.bootstrap_servers, **connection_kwargs(kafka)}
    tps: list[TopicPartition] = await partitions(connection, topic)
    consumer = AIOKafkaConsumer(**connection, enable_auto_commit=False)
    await consumer.start()
    heads: Heads = {}
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async for record in to_end(consumer, tps):
            key = (record.key or b"").decode()
            if record.value is None or not key.startswith(prefix):
                continue
            value = json.loads(record.value)
            if not_before is None or float(value["at"]) >= not_before:
                heads[key[len(prefix) :]] = (int(value["offset"]), str(value["hash"]))
            else:
                heads.pop(key[len(prefix) :], None)
    finally:
        await consumer.stop()
    return heads
