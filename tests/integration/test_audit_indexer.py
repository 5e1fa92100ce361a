"""The audit logger against the real Elasticsearch and Kafka: mapping, exactly-once
documents, masking, the hash chain, retention, dead letters and an Elasticsearch outage."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from google.protobuf.message import Message

from switchboard.audit_logger import anchors, app, chain
from switchboard.audit_logger.anchors import Anchors
from switchboard.audit_logger.config import Settings
from switchboard.audit_logger.documents import Mapper
from switchboard.audit_logger.indexer import AuditIndexer, ElasticsearchUnavailableError
from switchboard.audit_logger.masking import Masker
from switchboard.audit_logger.replay import replay
from switchboard.audit_logger.retention import Housekeeper
from switchboard.common import events
from switchboard.common.config import KafkaSettings, TopicSettings
from switchboard.common.kafka import DLQ_CAUSE, ConsumedEvent, EventProducer
from switchboard.events.v1 import messages_pb2 as m
from tests.conftest import Stack

pytestmark = pytest.mark.integration

STACK = Path(__file__).resolve().parents[2] / "infra" / "stack.sh"
KEY = b"the integration tests' chain key"
ALICE = m.Actor(user_id="u-alice", display_name="Alice")
MESSAGE = m.InboundMessage(message_id="m-1", channel=m.CHANNEL_WEBSOCKET, sender=ALICE, text="hello")
INTENT = m.ParsedIntent(message=MESSAGE, intent="reminder.create", confidence=0.8, person_id="p-alice")
EVERY_TYPE: list[Message] = [
    MESSAGE,
    INTENT,
    m.InferenceRequest(message_id="m-1", request_id="r-1", messages=[m.ChatTurn(role=m.ROLE_USER, content="hello")]),
    m.InferenceChunk(message_id="m-1", request_id="r-1", text="Hi", sequence=0),
    m.InferenceResult(message_id="m-1", request_id="r-1", text="Hi!", model_name="smollm2", latency_ms=321),
    m.OutboundMessage(in_reply_to="m-1", text="Hi!", channel=m.CHANNEL_WEBSOCKET, final=True),
    m.DeviceCommand(in_reply_to="m-1", device_id="lamp-1", action="turn_on"),
    m.DeviceCommandResult(command_id="c-1", device_id="lamp-1", ok=True),
    m.PluginRequest(request_id="p-1", plugin="units", intent=INTENT),
    m.PluginReply(request_id="p-1", plugin="units", ok=True, text="5 km"),
    m.AuditEvent(action="output.blocked", outcome=m.OUTCOME_BLOCKED, reason="lexicon:self_harm"),
]


@pytest.fixture
async def es(stack: Stack) -> AsyncIterator[AsyncElasticsearch]:
    async with AsyncElasticsearch(stack.es_url, request_timeout=30, retry_on_timeout=True) as client:
        yield client


@pytest.fixture
async def stream(es: AsyncElasticsearch, unique: str) -> str:
    """A fresh audit data stream with the service's template (this distribution has no
    _data_stream API to delete streams with; the name is unique)."""
    settings = Settings(namespace=f"t{unique}", chain_key=KEY.decode())
    await app.install(settings, es)
    return settings.data_stream


def _event(payload: Message, offset: int, partition: int = 0, topic: str = "switchboard.inbound.v1") -> ConsumedEvent:
    envelope = events.wrap(payload, conversation_key="c-1", source="test")
    return ConsumedEvent(envelope=envelope, topic=topic, partition=partition, offset=offset, key=b"c-1", headers=[])


def _indexer(es: AsyncElasticsearch, stream: str) -> AuditIndexer:
    return AuditIndexer(es, stream, Mapper(Masker()), chain_key=KEY)


def _inbound(i: int) -> m.InboundMessage:
    return m.InboundMessage(message_id=f"m-{i}", channel=m.CHANNEL_HTTP, text=f"message {i}")


async def _docs(es: AsyncElasticsearch, stream: str, **query: object) -> list[dict]:
    await es.indices.refresh(index=stream)
    found = await es.search(index=stream, size=1000, query=query or {"match_all": {}})
    return [hit["_source"] | {"_id": hit["_id"]} for hit in found["hits"]["hits"]]


async def test_every_event_type_lands_mapped(es: AsyncElasticsearch, stream: str) -> None:
    batch = [_event(payload, offset) for offset, payload in enumerate(EVERY_TYPE)]
    assert await _indexer(es, stream).index(batch) == []
    docs = {doc["_id"]: doc for doc in await _docs(es, stream)}
    assert set(docs) == {e.envelope.event_id for e in batch}
    for event in batch:
        doc = docs[event.envelope.event_id]
        assert doc["switchboard"]["event_type"] == event.envelope.event_type
        assert doc["event"]["hash"] and doc["event"]["ingested"]
    # The analysts' questions are plain term and range queries on typed fields.
    (result,) = await _docs(es, stream, range={"switchboard.latency_ms": {"gte": 300}})
    assert result["switchboard"]["model"] == "smollm2" and result["event"]["duration"] == 321_000_000
    assert len(await _docs(es, stream, term={"user.id": "p-alice"})) == 2  # the intent and the plugin request
    (blocked,) = await _docs(es, stream, term={"switchboard.blocked_reason": "lexicon:self_harm"})
    assert blocked["event"]["action"] == "output.blocked"
    mapping = await es.indices.get_mapping(index=stream)
    (index_mapping,) = mapping.values()
    assert index_mapping["mappings"]["properties"]["switchboard"]["properties"]["latency_ms"]["type"] == "long"


async def test_a_replayed_batch_adds_no_document(es: AsyncElasticsearch, stream: str) -> None:
    batch = [_event(_inbound(i), i) for i in range(20)]
    late = _event(_inbound(20), 20)
    await _indexer(es, stream).index(batch)
    # A redelivery overlapping one new event, handled by a fresh process (no chain heads known).
    assert await _indexer(es, stream).index([*batch[5:], late]) == []
    docs = await _docs(es, stream)
    assert sorted(doc["_id"] for doc in docs) == sorted(e.envelope.event_id for e in [*batch, late])
    assert (await chain.verify(es, stream, KEY)).ok  # the replay rebuilt the same chain


async def test_batches_overlapping_and_a_retry_keep_the_chain_whole(es: AsyncElasticsearch, stream: str) -> None:
    """The service hands the next batch over while the one before is still being sent.
    Batch 2 fails (Elasticsearch away) while batch 1 is still unacknowledged and batch 3
    has been linked on top of it; the retry of batch 2 must send the very documents
    batch 3 links to, not re-link them against what happens to be stored by then."""
    indexer = _indexer(es, stream)
    batches = [
        [replace(e, prepared=indexer.prepare(e)) for e in (_event(_inbound(i), i) for i in range(start, start + 5))]
        for start in (0, 5, 10)
    ]
    first_out = asyncio.Event()
    failed_once: set[int] = set()
    create = indexer._create

    async def flaky_create(docs: list[dict]) -> dict[str, str]:
        offset = docs[0]["switchboard"]["kafka"]["offset"]
        if offset == 0:
            await first_out.wait()  # batch 1: in flight until the end
        elif offset == 5 and offset not in failed_once:
            failed_once.add(offset)
            raise ElasticsearchUnavailableError("down for a moment")
        return await create(docs)

    indexer._create = flaky_create  # type: ignore[method-assign]
    one = asyncio.create_task(indexer.index(batches[0]))
    await asyncio.sleep(0.2)
    with pytest.raises(ElasticsearchUnavailableError):
        await indexer.index(batches[1])
    assert await indexer.index(batches[2]) == []
    assert await indexer.index(batches[1]) == []  # the consumer's retry
    first_out.set()
    assert await one == []
    report = await chain.verify(es, stream, KEY)
    assert report.ok and report.checked == 15 and report.chains == 1


async def test_pii_is_masked_in_the_stored_documents(es: AsyncElasticsearch, stream: str) -> None:
    text = "我的手机13812345678, mail li.lei@example.cn, 身份证11010519491231002X, password: s3cretPass"
    await _indexer(es, stream).index([_event(m.InboundMessage(message_id="m-pii", text=text), 0)])
    (doc,) = await _docs(es, stream)
    stored = repr(doc)
    for secret in ("13812345678", "li.lei@example.cn", "11010519491231002X", "s3cretPass"):
        assert secret not in stored
    assert doc["message"] == "我的手机[phone], mail [email], 身份证[id_card], password: [token]"
    assert doc["switchboard"]["masked"] == ["email", "id_card", "phone", "token"]
    assert await _docs(es, stream, match={"message": "13812345678"}) == []
    assert len(await _docs(es, stream, term={"switchboard.masked": "phone"})) == 1


async def test_verify_finds_an_edited_and_a_deleted_document(es: AsyncElasticsearch, stream: str) -> None:
    first = [_event(_inbound(i), i) for i in range(10)]
    other_partition = [_event(_inbound(100 + i), i, partition=1) for i in range(5)]
    await _indexer(es, stream).index(first[:4])
    await _indexer(es, stream).index([*first[4:], *other_partition])  # a later batch, another process
    report = await chain.verify(es, stream, KEY)
    assert report.ok and report.checked == 15 and report.chains == 2

    # Someone rewrites what a user said...
    edited = first[3].envelope.event_id
    found = await es.search(index=stream, query={"ids": {"values": [edited]}}, seq_no_primary_term=True)
    (hit,) = found["hits"]["hits"]
    await es.index(
        index=hit["_index"],
        id=edited,
        document=hit["_source"] | {"message": "nothing to see"},
        if_seq_no=hit["_seq_no"],
        if_primary_term=hit["_primary_term"],
        refresh=True,
    )
    # ...and removes another record.
    removed = first[7].envelope.event_id
    found = await es.search(index=stream, query={"ids": {"values": [removed]}}, seq_no_primary_term=True)
    (hit,) = found["hits"]["hits"]
    await es.delete(
        index=hit["_index"], id=removed, if_seq_no=hit["_seq_no"], if_primary_term=hit["_primary_term"], refresh=True
    )

    report = await chain.verify(es, stream, KEY)
    assert not report.ok
    assert report.edited == [edited]
    assert report.broken == [first[8].envelope.event_id]  # the record after the gap
    assert report.checked == 14


async def _rewrite(es: AsyncElasticsearch, stream: str, edits: dict[str, dict[str, object]], chain_key: str) -> None:
    """Edit documents, then rechain the whole chain with the key: what someone holding the
    key and write access to Elasticsearch could do."""
    await es.indices.refresh(index=stream)
    found = await es.search(
        index=stream,
        size=1000,
        query={"term": {"switchboard.chain.key": chain_key}},
        sort=[{"switchboard.kafka.offset": "asc"}],
        seq_no_primary_term=True,
    )
    previous = ""
    for hit in found["hits"]["hits"]:
        doc = hit["_source"] | edits.get(hit["_id"], {})
        doc["switchboard"]["chain"]["prev"] = previous
        doc["event"]["hash"] = previous = chain.digest(doc, KEY)
        await es.index(
            index=hit["_index"],
            id=hit["_id"],
            document=doc,
            if_seq_no=hit["_seq_no"],
            if_primary_term=hit["_primary_term"],
            refresh=True,
        )


async def test_the_anchors_catch_a_consistent_rewrite_and_a_truncated_chain(
    stack: Stack, es: AsyncElasticsearch, stream: str, unique: str
) -> None:
    topic = f"test.anchors.{unique}"
    kafka = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap)
    admin = await _create_topics(stack, topic)
    try:
        async with EventProducer(kafka) as producer:
            indexer = _indexer(es, stream)
            indexer.anchors = Anchors(producer, topic, stream)
            rewritten = [_event(_inbound(i), i) for i in range(6)]
            truncated = [_event(_inbound(10 + i), i, partition=1) for i in range(4)]
            await indexer.index(rewritten[:3])
            await indexer.index([*rewritten[3:], *truncated])
        heads = await anchors.read(kafka, topic, stream)
        assert heads.keys() == {"switchboard.inbound.v1/0", "switchboard.inbound.v1/1"}
        assert (await chain.verify(es, stream, KEY, anchors=heads)).ok

        # Someone with the key rewrites what a user said and rechains everything after it,
        # and removes the newest document of the other chain.
        await _rewrite(
            es, stream, {rewritten[2].envelope.event_id: {"message": "nothing to see"}}, "switchboard.inbound.v1/0"
        )
        newest = truncated[-1].envelope.event_id
        found = await es.search(index=stream, query={"ids": {"values": [newest]}}, seq_no_primary_term=True)
        (hit,) = found["hits"]["hits"]
        await es.delete(
            index=hit["_index"], id=newest, if_seq_no=hit["_seq_no"], if_primary_term=hit["_primary_term"], refresh=True
        )

        blind = await chain.verify(es, stream, KEY)  # the chains alone look whole
        assert blind.ok and blind.checked == 9
        report = await chain.verify(es, stream, KEY, anchors=await anchors.read(kafka, topic, stream))
        assert not report.ok and report.anchors_checked == 2
        assert report.rewritten == ["switchboard.inbound.v1/0"] and report.truncated == ["switchboard.inbound.v1/1"]
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_a_refused_document_is_dead_lettered_and_leaves_a_stub_in_the_chain(
    es: AsyncElasticsearch, stream: str
) -> None:
    # More fields than the index allows (1 000): Elasticsearch refuses the document itself.
    flood = m.AuditEvent(action="flood", labels={f"label{i}": "x" for i in range(1200)})
    batch = [_event(_inbound(0), 0), _event(flood, 1), _event(_inbound(2), 2)]
    (rejection,) = await _indexer(es, stream).index(batch)
    assert rejection.event is batch[1] and rejection.reason == "refused"
    assert "document_parsing_exception" in rejection.cause and "Limit of total fields" in rejection.cause
    report = await chain.verify(es, stream, KEY)
    assert report.ok and report.checked == 3 and report.stubs == [batch[1].envelope.event_id]


async def test_retention_rolls_over_and_deletes_what_is_past_it(es: AsyncElasticsearch, stream: str) -> None:
    indexer = _indexer(es, stream)
    keeper = Housekeeper(es, stream, rollover_max_age="1s", retention="3s")
    await indexer.index([_event(_inbound(i), i) for i in range(5)])
    await asyncio.sleep(1.2)
    assert await keeper.run_once() == []  # rolled over; nothing old enough to delete yet
    first, second = await keeper.backing_indices()
    await indexer.index([_event(_inbound(i), i) for i in range(5, 8)])
    await asyncio.sleep(3.2)
    assert await keeper.run_once() == [first.name]  # 3 s after the rollover: past retention
    remaining = await keeper.backing_indices()
    assert remaining[0] == second and len(remaining) == 2  # the second one rolled over too
    assert sorted(doc["message"] for doc in await _docs(es, stream)) == [f"message {i}" for i in range(5, 8)]
    assert (await chain.verify(es, stream, KEY)).ok  # a chain cut by retention is not "tampered"


# --- the service, end to end on Kafka -------------------------------------------------


def _service_settings(stack: Stack, unique: str, **overrides: object) -> Settings:
    topics = TopicSettings(**{name: f"{unique}.{name}.v1" for name in TopicSettings.model_fields})
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, handler_backoff_s=0.05, max_in_flight=500),
        topics=topics,
        group_id=f"audit-{unique}",
        elasticsearch_url=stack.es_url,
        namespace=f"t{unique}",
        chain_key=KEY.decode(),
        plugin_request_pattern=rf"{unique}\.plugins\.[^.]+\.requests\.v1",
        health_port=0,
        metrics_port=0,
        **overrides,
    )


async def _create_topics(stack: Stack, *names: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(name, 3, 1) for name in names])
    return admin


async def _count(es: AsyncElasticsearch, stream: str) -> int:
    try:
        await es.indices.refresh(index=stream)
        return int((await es.count(index=stream))["count"])
    except (ApiError, TransportError):  # Elasticsearch restarting, or the stream not made yet
        return -1


async def _wait_count(es: AsyncElasticsearch, stream: str, want: int, timeout: float) -> int:
    async with asyncio.timeout(timeout):
        while (n := await _count(es, stream)) < want:
            await asyncio.sleep(0.5)
    return n


async def _dead_letters(stack: Stack, topic: str) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(tps)
        end = sum((await consumer.end_offsets(tps)).values())
        records: list = []
        async with asyncio.timeout(30):
            while len(records) < end:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records += batch
        return records
    finally:
        await consumer.stop()


async def test_the_service_reads_every_business_and_plugin_topic_and_dead_letters_the_unmappable(
    stack: Stack, es: AsyncElasticsearch, unique: str
) -> None:
    settings = _service_settings(stack, unique)
    plugin_topic, other = f"{unique}.plugins.weather.requests.v1", f"{unique}.parser.users.v1"
    names = [
        settings.topics.inbound,
        settings.topics.audit,
        settings.topics.deadletter,
        settings.topics.audit_anchors,
        plugin_topic,
        other,
    ]
    admin = await _create_topics(stack, *names)
    stop = asyncio.Event()
    service = asyncio.create_task(app.serve(settings, stop))
    try:
        bad = events.wrap(_inbound(99), conversation_key="c", source="t")
        bad.occurred_at.seconds = 10**13
        async with EventProducer(settings.kafka) as producer:
            sent = [
                (settings.topics.inbound, events.wrap(_inbound(1), conversation_key="c", source="t")),
                (settings.topics.audit, events.wrap(EVERY_TYPE[-1], conversation_key="c", source="t")),
                (plugin_topic, events.wrap(EVERY_TYPE[8], conversation_key="c", source="t")),
            ]
            for topic, envelope in sent:
                await producer.send(topic, envelope)
            await producer.send(other, events.wrap(_inbound(2), conversation_key="c", source="t"))
            await producer.send(settings.topics.inbound, bad)
        await _wait_count(es, settings.data_stream, 3, timeout=60)
        (dead,) = await _dead_letters(stack, settings.topics.deadletter)
        await asyncio.sleep(1)  # time for a wrongly read topic to show up
        docs = await _docs(es, settings.data_stream)
        stop.set()
        await service
        # Replaying the topics adds nothing: every document is there already.
        replayed = await replay(settings, app.indexer(settings, es), since_ms=int((time.time() - 3600) * 1000))
        after_replay = await _docs(es, settings.data_stream)
    finally:
        stop.set()
        await service
        await admin.delete_topics(names)
        await admin.close()
    assert replayed.topics == sorted([settings.topics.inbound, settings.topics.audit, plugin_topic])
    assert (replayed.records, replayed.created, replayed.existing, replayed.rejected) == (4, 0, 3, 1)
    assert len(after_replay) == len(docs) == 3
    assert sorted(doc["_id"] for doc in docs) == sorted(envelope.event_id for _, envelope in sent)
    assert {doc["switchboard"]["kafka"]["topic"] for doc in docs} == {
        settings.topics.inbound,
        settings.topics.audit,
        plugin_topic,
    }
    cause = dict(dead.headers)[DLQ_CAUSE].decode()
    assert "unmappable event: timestamp out of range" in cause and dead.value == bad.SerializeToString()


async def test_elasticsearch_down_under_load_loses_and_duplicates_nothing(
    stack: Stack, es: AsyncElasticsearch, unique: str
) -> None:
    settings = _service_settings(stack, unique)
    names = [settings.topics.inbound, settings.topics.deadletter, settings.topics.audit_anchors]
    admin = await _create_topics(stack, *names)
    stop = asyncio.Event()
    service = asyncio.create_task(app.serve(settings, stop))
    total, sent = 3000, []
    try:

        async def load() -> None:
            async with EventProducer(settings.kafka) as producer:
                for i in range(total):
                    envelope = events.wrap(_inbound(i), conversation_key=f"c{i % 50}", source="t")
                    await producer.enqueue(settings.topics.inbound, envelope)
                    sent.append(envelope.event_id)
                    await asyncio.sleep(0.01)  # ~100 events/s for 30 s

        producing = asyncio.create_task(load())
        await asyncio.sleep(3)
        restarted = await asyncio.to_thread(
            subprocess.run, [str(STACK), "restart", "elasticsearch"], capture_output=True, text=True, timeout=300
        )
        assert restarted.returncode == 0, restarted.stderr
        await producing
        indexed = await _wait_count(es, settings.data_stream, total, timeout=180)
        await asyncio.sleep(2)  # a duplicate would show up now
        indexed = await _count(es, settings.data_stream)
        # Every document's id (= its event id), exactly: a cardinality aggregation is an
        # estimate (HyperLogLog), which once counted 2 999 of 3 000 distinct ids.
        found = await es.search(index=settings.data_stream, size=total + 100, source=False, query={"match_all": {}})
        ids = [hit["_id"] for hit in found["hits"]["hits"]]
        report = await app.verifier(settings, es)(None)  # the chain key and the anchors the service wrote
    finally:
        stop.set()
        await service
        dead = await _dead_letters(stack, settings.topics.deadletter)
        await admin.delete_topics(names)
        await admin.close()
    assert len(sent) == total
    assert indexed == total  # none lost, none twice
    assert sorted(ids) == sorted(sent)
    assert dead == []  # an outage is waited out, never dead-lettered
    assert report.ok and report.checked == total and report.anchors_checked >= 1
