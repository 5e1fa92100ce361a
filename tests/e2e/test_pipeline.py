"""One message through all five services, every hop on Kafka, against the real stack."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import httpx
import pytest
from elasticsearch import AsyncElasticsearch

from switchboard.events.v1 import envelope_pb2
from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline, read_records, refusals

pytestmark = pytest.mark.integration

# Sent in a field the gateway refuses: it must not reach the audit trail.
RAW = "raw-input-9f2c41 call me at alice@example.com"

CONVERSATIONS = 20
MESSAGES_PER_CONVERSATION = 10


async def _started(pipeline: Pipeline) -> AsyncIterator[Pipeline]:
    await pipeline.start()
    try:
        yield pipeline
    finally:
        codes = await pipeline.stop()
        assert all(code == 0 for code in codes.values()), f"unclean exits: {codes}"


@pytest.fixture
async def echo_pipeline(stack: Stack, request: pytest.FixtureRequest) -> AsyncIterator[Pipeline]:
    async for pipeline in _started(Pipeline(stack, replicas=getattr(request, "param", 1))):
        yield pipeline


async def _read_all(stack: Stack, topic: str) -> list[envelope_pb2.Envelope]:
    """Every record on ``topic`` now, in partition order."""
    return [envelope_pb2.Envelope.FromString(r.value) for r in await read_records(stack, topic)]


async def _conversation(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/conversations")
    assert response.status_code == 201
    return str(response.json()["conversation_id"])


async def _send_conversation(client: httpx.AsyncClient, index: int) -> list[tuple[str, str]]:
    """Post every message of one conversation without waiting; (message id, text) in send order."""
    conversation = await _conversation(client)
    sent = []
    for i in range(MESSAGES_PER_CONVERSATION):
        text = f"conversation {index} message {i} hello"
        response = await client.post(
            "/v1/messages", json={"conversation_id": conversation, "text": text, "wait": False}
        )
        assert response.status_code == 202, response.text
        sent.append((response.json()["message_id"], text))
    return sent


async def _reply(client: httpx.AsyncClient, message_id: str, timeout: float = 120) -> dict[str, str]:
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get(f"/v1/messages/{message_id}")
            assert response.status_code == 200
            body = response.json()
            if body["status"] == "completed":
                return dict(body)
            await asyncio.sleep(0.1)


async def _audit_ids(stack: Stack, data_stream: str, expected: int, timeout: float = 90) -> list[str]:
    async with AsyncElasticsearch(stack.es_url, request_timeout=30) as es:
        async with asyncio.timeout(timeout):
            while True:
                await es.indices.refresh(index=data_stream)
                count = (await es.count(index=data_stream))["count"]
                if count >= expected:
                    break
                await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # anything extra (a duplicate) would show up now
        await es.indices.refresh(index=data_stream)
        found = await es.search(index=data_stream, size=10_000, source=False, query={"match_all": {}})
        return [hit["_id"] for hit in found["hits"]["hits"]]


def _message_id(envelope: envelope_pb2.Envelope) -> str:
    payload = getattr(envelope, envelope.WhichOneof("payload") or "")
    if envelope.WhichOneof("payload") == "parsed_intent":
        return str(payload.message.message_id)
    if envelope.WhichOneof("payload") == "outbound_message":
        return str(payload.in_reply_to) + (":final" if payload.final else "")
    return str(getattr(payload, "message_id", ""))


async def _where_stuck(pipeline: Pipeline, message_ids: list[str]) -> str:
    """For a failure message: how far each unanswered message got through the topics."""
    seen: dict[str, set[str]] = defaultdict(set)
    for name, topic in pipeline.topics.model_dump().items():
        if topic != pipeline.topics.deadletter:
            for envelope in await _read_all(pipeline.stack, topic):
                seen[_message_id(envelope)].add(name)
    finals = {mid for mid in message_ids if "outbound" in seen.get(f"{mid}:final", set())}
    stuck = {mid: sorted(seen.get(mid, set())) for mid in message_ids if mid not in finals}
    return f"{len(stuck)} of {len(message_ids)} messages got no reply; topics each reached: {stuck}"


async def _run_conversations(pipeline: Pipeline) -> None:
    urls = pipeline.gateway_urls
    # One user per conversation (each within the per-user limit), spread over the gateway
    # replicas; replies are fetched from another replica than the one sent to.
    n = len(urls)
    senders = [pipeline.client(urls[i % n], timeout=60, subject=f"user-{i}") for i in range(CONVERSATIONS)]
    readers = [pipeline.client(urls[(i + 1) % n], timeout=60, subject=f"user-{i}") for i in range(CONVERSATIONS)]
    clients = senders + readers
    try:
        sent = await asyncio.gather(*(_send_conversation(senders[i], i) for i in range(CONVERSATIONS)))
        try:
            replies = await asyncio.gather(*(_reply(readers[i], mid) for i, conv in enumerate(sent) for mid, _ in conv))
        except TimeoutError:
            pytest.fail(await _where_stuck(pipeline, [mid for conv in sent for mid, _ in conv]))
    finally:
        for client in clients:
            await client.aclose()

    flat = [item for conv in sent for item in conv]
    assert len(replies) == CONVERSATIONS * MESSAGES_PER_CONVERSATION
    for (message_id, text), reply in zip(flat, replies, strict=True):
        # The deterministic model streams the words back: the reply proves which message it answers.
        assert reply["reply"] == text, (message_id, reply)
        assert reply["model"] == "echo_stream"

    stack = pipeline.stack
    outbound = await _read_all(stack, pipeline.topics.outbound)
    finals = [e for e in outbound if e.outbound_message.final]
    assert len(finals) == len(flat), "a reply was lost or doubled"
    order: dict[str, list[str]] = defaultdict(list)
    for envelope in finals:
        order[envelope.conversation_key].append(envelope.outbound_message.in_reply_to)
    assert sorted(order.values()) == sorted([mid for mid, _ in conv] for conv in sent), "replies out of order"

    # Exactly one audit document per event of every message.
    events = []
    for topic in pipeline.topics.business():
        events += await _read_all(stack, topic)
    event_ids = [e.event_id for e in events]
    assert len(set(event_ids)) == len(event_ids)
    per_message = defaultdict(set)
    for e in events:
        if e.WhichOneof("payload") == "inbound_message":
            per_message[e.inbound_message.message_id].add(e.event_type)
    assert len(per_message) == len(flat)
    audited = await _audit_ids(stack, pipeline.data_stream, expected=len(event_ids))
    assert sorted(audited) == sorted(event_ids)


async def test_200_messages_20_conversations(echo_pipeline: Pipeline) -> None:
    await _run_conversations(echo_pipeline)


@pytest.mark.parametrize("echo_pipeline", [2], indirect=True)
async def test_200_messages_with_two_replicas_of_each_service(echo_pipeline: Pipeline) -> None:
    assert len(echo_pipeline.processes) == 10
    await _run_conversations(echo_pipeline)


async def test_real_model_answers_and_streams(stack: Stack) -> None:
    async for pipeline in _started(Pipeline(stack, routes={"general": {"model": stack.chat_model, "kind": "chat"}})):
        async with pipeline.client(pipeline.gateway_urls[0], timeout=120) as client:
            conversation = await _conversation(client)
            body = {"conversation_id": conversation, "text": "Name one colour of the rainbow.", "timeout_s": 90}
            response = await client.post("/v1/messages", json=body)
            assert response.status_code == 200, response.text
            reply = response.json()
            assert reply["model"] == stack.chat_model and reply["reply"].strip()

            # A long answer, so that it streams in several chunks (pieces are sent every 50 ms).
            body = {"conversation_id": conversation, "text": "Write three sentences about the sea.", "wait": False}
            message_id = (await client.post("/v1/messages", json=body)).json()["message_id"]
            chunks, done = [], None
            async with client.stream("GET", f"/v1/messages/{message_id}/events") as stream:
                event = None
                async for line in stream.aiter_lines():
                    if line.startswith("event:"):
                        event = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and event == "chunk":
                        chunks.append(json.loads(line[5:]))
                    elif line.startswith("data:") and event == "done":
                        done = json.loads(line[5:])
                        break
            assert done is not None and done["model"] == stack.chat_model
            assert [c["sequence"] for c in chunks] == list(range(len(chunks))) and len(chunks) >= 2, chunks
            assert "".join(c["text"] for c in chunks) == done["reply"]


async def test_bad_input_gets_4xx_and_reaches_no_topic(echo_pipeline: Pipeline) -> None:
    url = echo_pipeline.gateway_urls[0]
    async with (
        echo_pipeline.client(url, timeout=30) as client,
        echo_pipeline.client(url, timeout=30, subject="someone-else") as other,
        httpx.AsyncClient(base_url=url, timeout=30) as anonymous,
    ):
        conversation = await _conversation(client)
        theirs = await _conversation(other)
        no_chat = {"Authorization": f"Bearer {echo_pipeline.token(scopes=('audit',))}"}
        forged = {"Authorization": "Bearer " + echo_pipeline.token()[:-4] + "AAAA"}
        hello = {"conversation_id": conversation, "text": "hi"}
        cases = [
            (anonymous.post("/v1/conversations"), 401),
            (anonymous.post("/v1/messages", json=hello), 401),
            (anonymous.post("/v1/messages", json=hello, headers=forged), 401),
            (anonymous.post("/v1/messages", json=hello, headers=no_chat), 403),
            (anonymous.get("/v1/messages/m-x.0000", headers={"Authorization": "Basic dXNlcjpwdw=="}), 401),
            (client.get("/v1/admin/status"), 403),
            (client.post("/v1/messages", json={"conversation_id": theirs, "text": "hi"}), 404),
            (client.post("/v1/messages", content=b"{not json", headers={"content-type": "application/json"}), 422),
            (client.post("/v1/messages", json={"text": "no conversation"}), 422),
            (client.post("/v1/messages", json={"conversation_id": conversation}), 422),
            (client.post("/v1/messages", json={"conversation_id": conversation, "text": ""}), 422),
            (client.post("/v1/messages", json={"conversation_id": conversation, "text": "x" * 1_000_000}), 413),
            (client.post("/v1/messages", json={"conversation_id": conversation, "text": "hi\u0000there"}), 422),
            (client.post("/v1/messages", json={"conversation_id": "c-forged.0000", "text": "hi"}), 404),
            (client.post("/v1/messages", json={"conversation_id": conversation, "text": "x", "timeout_s": 9999}), 422),
            (client.post("/v1/messages", json={"conversation_id": conversation, "text": {"x": RAW}}), 422),
            (client.get("/v1/messages/m-forged.0000"), 404),
        ]
        for request, expected in cases:
            response = await request
            assert response.status_code == expected, response.text
            assert response.json()["detail"], "a 4xx must say why"
        openapi = (await client.get("/openapi.json")).json()
        assert "/v1/messages" in openapi["paths"] and "/v1/conversations" in openapi["paths"]
    assert await _read_all(echo_pipeline.stack, echo_pipeline.topics.inbound) == []
    # Every refusal is on record for analysts, with its status and reason.
    async with asyncio.timeout(30):
        while len(refused := refusals(await _read_all(echo_pipeline.stack, echo_pipeline.topics.audit))) < len(cases):
            await asyncio.sleep(0.2)
    assert sorted(int(e.labels["status"]) for e in refused) == sorted(code for _, code in cases)
    assert all(e.reason for e in refused)
    # A 422's reason says which field and why, never what was sent in it.
    assert not [e for e in refused if RAW in e.reason], "the refused input was audited"


@pytest.mark.parametrize("echo_pipeline", [2], indirect=True)
async def test_the_per_user_rate_limit_holds_across_replicas(echo_pipeline: Pipeline) -> None:
    # (30 a minute by default; the window is a calendar minute, so start well inside one.)
    if (seconds := time.time() % 60) > 40:
        await asyncio.sleep(61 - seconds)
    clients = [echo_pipeline.client(url, timeout=30, subject="eager") for url in echo_pipeline.gateway_urls]
    patient = echo_pipeline.client(echo_pipeline.gateway_urls[0], timeout=30, subject="patient")
    clients.append(patient)
    try:
        conversation = await _conversation(clients[0])
        body = {"conversation_id": conversation, "text": "hi", "wait": False}
        codes = [(await clients[i % 2].post("/v1/messages", json=body)).status_code for i in range(30)]
        assert codes == [202] * 30  # 15 on each replica: together, exactly the limit
        refused = await clients[1].post("/v1/messages", json=body)
        assert refused.status_code == 429 and "30 messages a minute" in refused.json()["detail"]
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        other = {**body, "conversation_id": await _conversation(patient)}
        assert (await patient.post("/v1/messages", json=other)).status_code == 202  # per user
    finally:
        for client in clients:
            await client.aclose()


async def test_an_idempotency_key_sends_a_message_once(echo_pipeline: Pipeline) -> None:
    async with echo_pipeline.client(echo_pipeline.gateway_urls[0], timeout=30) as client:
        conversation = await _conversation(client)
        body = {"conversation_id": conversation, "text": "what a lovely day", "wait": False}
        key = {"Idempotency-Key": "retry-me-1"}
        first = await client.post("/v1/messages", json=body, headers=key)
        again = await client.post("/v1/messages", json={**body, "wait": True}, headers=key)
        assert first.status_code == 202 and again.status_code == 200, again.text
        assert again.json()["message_id"] == first.json()["message_id"] and again.json()["reply"] == "what a lovely day"
        changed = await client.post("/v1/messages", json={**body, "text": "what a rainy day"}, headers=key)
        assert changed.status_code == 409
        # Admin routes need the admin scope.
        admin = {"Authorization": f"Bearer {echo_pipeline.token(scopes=('admin',))}"}
        status = await client.get("/v1/admin/status", headers=admin)
        assert status.status_code == 200 and status.json()["channels"]["http"] == "on"
    inbound = await _read_all(echo_pipeline.stack, echo_pipeline.topics.inbound)
    assert [e.inbound_message.text for e in inbound] == ["what a lovely day"]
    assert inbound[0].inbound_message.sender.user_id == "web:e2e-user"
