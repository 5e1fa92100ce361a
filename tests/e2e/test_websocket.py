"""/v1/ws through the whole pipeline, with two gateway replicas: authentication, streaming,
resuming on the other replica without loss or repeats, idempotent resends, bad frames,
heartbeats."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from switchboard.cli.tokens import mint
from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline, refusals
from tests.e2e.test_pipeline import _read_all, _started

pytestmark = pytest.mark.integration


@pytest.fixture
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    pipeline = Pipeline(stack, replicas=2)
    pipeline.extra_env = {
        "channel_gateway": {"WS_HEARTBEAT_S": "1"},
        "inference_client": {"STREAM_INTERVAL_MS": "0"},  # every word its own chunk
    }
    async for started in _started(pipeline):
        yield started


def _ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "/v1/ws"


async def _frame(socket: ClientConnection, timeout: float = 60) -> dict[str, Any]:
    """The next frame that is not a heartbeat."""
    async with asyncio.timeout(timeout):
        while (frame := json.loads(await socket.recv()))["type"] == "ping":
            pass
    return dict(frame)


async def _open(pipeline: Pipeline, replica: int, by_header: bool = True) -> ClientConnection:
    token = pipeline.token()
    url = _ws_url(pipeline.gateway_urls[replica])
    if by_header:
        socket = await connect(url, additional_headers={"Authorization": f"Bearer {token}"})
    else:  # as a browser does: the token in the first frame
        socket = await connect(url)
        await socket.send(json.dumps({"type": "auth", "token": token}))
    assert (await _frame(socket))["type"] == "ready"
    return socket


async def test_tokens_are_required_and_checked(pipeline: Pipeline) -> None:
    url = _ws_url(pipeline.gateway_urls[0])
    for first, code in [
        ({"type": "message", "text": "no auth"}, 4401),
        ({"type": "auth", "token": pipeline.token()[:-4] + "AAAA"}, 4401),
        ({"type": "auth", "token": pipeline.token(scopes=("audit",))}, 4403),
    ]:
        async with connect(url) as socket:
            await socket.send(json.dumps(first))
            refusal = json.loads(await socket.recv())
            assert refusal["type"] == "error" and refusal["detail"]
            with pytest.raises(ConnectionClosed) as closed:
                await socket.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    async with asyncio.timeout(30):
        while len(refused := refusals(await _read_all(pipeline.stack, pipeline.topics.audit))) < 3:
            await asyncio.sleep(0.2)
    assert {e.labels["channel"] for e in refused} == {"websocket"}


async def test_a_reply_streams_and_resumes_on_the_other_replica(pipeline: Pipeline) -> None:
    text = " ".join(f"word{i}" for i in range(40))
    first = await _open(pipeline, 0)
    await first.send(json.dumps({"type": "conversation"}))
    conversation = (await _frame(first))["conversation_id"]
    await first.send(json.dumps({"type": "message", "conversation_id": conversation, "text": text, "id": "k-1"}))
    accepted = await _frame(first)
    assert accepted["type"] == "accepted" and accepted["id"] == "k-1"
    message_id = accepted["message_id"]
    seen = await _frame(first)
    assert seen["type"] == "chunk" and seen["sequence"] == 0
    await first.close()  # the connection drops mid-reply

    second = await _open(pipeline, 1, by_header=False)
    await second.send(json.dumps({"type": "resume", "message_id": message_id, "after": 0}))
    chunks = [seen]
    while (frame := await _frame(second))["type"] == "chunk":
        chunks.append(frame)
    assert frame["type"] == "done" and frame["reply"] == text
    sequences = [c["sequence"] for c in chunks]
    assert sequences == list(range(len(chunks))), "a chunk was lost or repeated"
    assert "".join(c["text"] for c in chunks) == text

    # Resent with the same id (as after a lost "accepted"): the same message, not a new one.
    await second.send(json.dumps({"type": "message", "conversation_id": conversation, "text": text, "id": "k-1"}))
    again = await _frame(second)
    assert again["type"] == "accepted" and again["message_id"] == message_id
    await second.close()
    inbound = await _read_all(pipeline.stack, pipeline.topics.inbound)
    assert [e.inbound_message.text for e in inbound] == [text]


async def test_bad_frames_get_errors_and_the_socket_stays_usable(pipeline: Pipeline) -> None:
    socket = await _open(pipeline, 0)
    cases = [
        ("{not json", 400),
        ("[1, 2]", 400),
        (json.dumps({"type": "dance"}), 400),
        (json.dumps({"type": "message", "text": "no conversation"}), 422),
        (json.dumps({"type": "message", "conversation_id": "c-forged.000", "text": "hi"}), 404),
        (json.dumps({"type": "resume", "message_id": "m-forged.000"}), 404),
    ]
    for raw, expected in cases:
        await socket.send(raw)
        error = await _frame(socket)
        assert (error["type"], error["status"]) == ("error", expected), error
    # Idle: the gateway's heartbeat (every second here) keeps coming.
    async with asyncio.timeout(10):
        assert json.loads(await socket.recv())["type"] == "ping"
    await socket.send(json.dumps({"type": "conversation"}))
    assert (await _frame(socket))["type"] == "conversation"
    await socket.close()


async def test_a_socket_lives_no_longer_than_its_token_unless_renewed(pipeline: Pipeline) -> None:
    url = _ws_url(pipeline.gateway_urls[0])
    # A token valid for 3 s: at its expiry the socket is told why and closed with 4401.
    async with connect(url) as socket:
        await socket.send(
            json.dumps({"type": "auth", "token": mint(pipeline.jwt_secret, "e2e-user", ["chat"], ttl_s=3)})
        )
        ready = await _frame(socket)
        assert ready["type"] == "ready" and ready["expires_at"] <= time.time() + 3
        expired = await _frame(socket, timeout=10)
        assert expired["type"] == "error" and expired["status"] == 401 and "expired" in expired["detail"]
        with pytest.raises(ConnectionClosed) as closed:
            await _frame(socket, timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    # Renewed in time with a token of the same subject, it stays open past the first expiry;
    # a token of someone else is refused and changes nothing.
    async with connect(url) as socket:
        await socket.send(
            json.dumps({"type": "auth", "token": mint(pipeline.jwt_secret, "e2e-user", ["chat"], ttl_s=3)})
        )
        await _frame(socket)
        await socket.send(json.dumps({"type": "auth", "token": pipeline.token(subject="someone-else")}))
        assert (await _frame(socket))["status"] == 403
        await socket.send(json.dumps({"type": "auth", "token": pipeline.token()}))
        assert (await _frame(socket))["expires_at"] > time.time() + 60
        await asyncio.sleep(4)
        await socket.send(json.dumps({"type": "conversation"}))
        assert (await _frame(socket))["type"] == "conversation"
