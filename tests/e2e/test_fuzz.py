"""Garbage at every door of one gateway: 10 000 generated malformed inputs per channel (HTTP
through schemathesis and mutated bodies, Telegram and Feishu webhooks, WebSocket frames; MQTT
has its own in test_mqtt.py). The gateway must answer each with a 4xx (or 200 where the
platform's protocol wants an acknowledgement), never a 5xx, and never die (the pipeline
checks every process exits cleanly). Meanwhile other users chat as usual: every one of their
messages must be answered, and nothing may reach the dead-letter topic (what the gateway
lets through must be fit for every service behind it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import hypothesis
import pytest
import pytest_asyncio
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from websockets.asyncio.client import connect

from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline, read_records
from tests.e2e.test_feishu import APP_ID, APP_SECRET, KEY, TOKEN
from tests.e2e.test_pipeline import _started
from tests.e2e.test_telegram import SECRET as TELEGRAM_SECRET
from tests.e2e.test_telegram import TOKEN as BOT_TOKEN
from tests.e2e.test_telegram import _update
from tests.e2e.traffic import Traffic
from tests.fakes.feishu_open_api import FakeFeishu, encrypt, message_event, signed_headers
from tests.fakes.telegram_bot_api import FakeBotApi

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

PER_CHANNEL = 10_000
CONCURRENCY = 16


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    telegram, feishu = FakeBotApi(BOT_TOKEN), FakeFeishu(APP_ID, APP_SECRET)
    await telegram.start()
    await feishu.start()
    pipeline = Pipeline(stack)
    pipeline.extra_env = {
        "channel_gateway": {
            "TELEGRAM_MODE": "webhook",
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
            "TELEGRAM_API_URL": telegram.url,
            "FEISHU_MODE": "webhook",
            "FEISHU_APP_ID": APP_ID,
            "FEISHU_APP_SECRET": APP_SECRET,
            "FEISHU_VERIFICATION_TOKEN": TOKEN,
            "FEISHU_ENCRYPT_KEY": KEY,
            "FEISHU_API_URL": feishu.url,
        }
    }
    try:
        async for started in _started(pipeline):
            yield started
    finally:
        await telegram.stop()
        await feishu.stop()


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def bystanders(pipeline: Pipeline, request: pytest.FixtureRequest) -> AsyncIterator[Traffic]:
    """Five users chatting (one message every 3 s each) while a test fuzzes; afterwards all
    their messages are answered and the dead-letter topic is still empty."""
    traffic = Traffic(pipeline, conversations=5, interval_s=3.0, user=f"bystander-{request.node.name}")
    async with traffic:
        yield traffic
    replies = await traffic.replies(timeout_s=120)
    assert traffic.sent and not traffic.unanswered(replies), f"{len(traffic.unanswered(replies))} unanswered"
    dead = await read_records(pipeline.stack, pipeline.topics.deadletter)
    assert not dead, [dict(r.headers) for r in dead[:5]]


def _value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value (nested a few levels)."""
    kinds = ["null", "bool", "int", "float", "str"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 2**31, 2**63, -(2**70), rng.randrange(-1000, 1000)])
    if kind == "float":
        return rng.choice([0.5, -1e308, 1e-300, rng.random()])
    if kind == "str":
        return rng.choice(["", "x" * rng.randrange(1, 5000), "\u0000", "😀" * 20, "@_user_1", "/start", "../../etc"])
    if kind == "list":
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(["text", "type", "id", "a", ""]): _value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def _mutate(document: Any, rng: random.Random) -> Any:
    """``document`` with one random field replaced, removed or added, somewhere inside."""
    if isinstance(document, dict) and document:
        key = rng.choice(list(document))
        copy = dict(document)
        action = rng.randrange(4)
        if action == 0:
            del copy[key]
        elif action == 1:
            copy[key] = _value(rng)
        elif action == 2:
            copy[rng.choice(["extra", key + "_", ""])] = _value(rng)
        else:
            copy[key] = _mutate(copy[key], rng)
        return copy
    if isinstance(document, list) and document:
        index = rng.randrange(len(document))
        return [*document[:index], _mutate(document[index], rng), *document[index + 1 :]]
    return _value(rng)


def _garbage(valid: dict[str, Any], rng: random.Random) -> bytes:
    """Mostly mutations of a valid body (to get past the first checks), some plain junk."""
    roll = rng.random()
    if roll < 0.7:
        mutated = valid
        for _ in range(rng.randrange(1, 4)):
            mutated = _mutate(mutated, rng)
        return json.dumps(mutated).encode()
    if roll < 0.8:
        return rng.randbytes(rng.randrange(0, 300))
    if roll < 0.9:
        return json.dumps(valid).encode()[: rng.randrange(0, 200)]  # truncated
    return json.dumps(_value(rng)).encode()


async def _flood(send: Callable[[int], Any], count: int = PER_CHANNEL) -> list[int]:
    """``send(i)`` for i in range(count), CONCURRENCY at a time; the statuses."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> int:
        async with gate:
            return int(await send(i))

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def _assert_no_5xx(statuses: list[int]) -> None:
    errors = [s for s in statuses if s >= 500]
    assert len(statuses) >= PER_CHANNEL and not errors, f"{len(errors)} server errors: {sorted(set(errors))}"


async def test_telegram_webhook_survives_malformed_updates(pipeline: Pipeline) -> None:
    rng = random.Random(1)
    valid = json.loads(_update(1, "hello"))
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=pipeline.gateway_urls[0], timeout=60) as client:

        async def send(i: int) -> int:
            body = _garbage({**valid, "update_id": 10_000 + i}, rng)
            return (await client.post("/v1/channels/telegram/webhook", content=body, headers=headers)).status_code

        _assert_no_5xx(await _flood(send))
        ok = await client.post("/v1/channels/telegram/webhook", content=_update(99_999, "still here"), headers=headers)
        assert ok.status_code == 200


async def test_feishu_webhook_survives_malformed_events(pipeline: Pipeline) -> None:
    rng = random.Random(2)
    valid = json.loads(message_event("hello", token=TOKEN, app_id=APP_ID))
    async with httpx.AsyncClient(base_url=pipeline.gateway_urls[0], timeout=60) as client:

        async def send(i: int) -> int:
            plain = _garbage(valid, rng)
            # Most are sealed properly (so decryption and parsing are exercised), some not.
            body = encrypt(plain.decode(errors="replace"), KEY) if rng.random() < 0.8 else plain
            headers = signed_headers(body, KEY)
            return (await client.post("/v1/channels/feishu/events", content=body, headers=headers)).status_code

        _assert_no_5xx(await _flood(send))


async def test_websocket_survives_malformed_frames(pipeline: Pipeline) -> None:
    rng = random.Random(3)
    url = pipeline.gateway_urls[0].replace("http://", "ws://") + "/v1/ws"
    valid = {"type": "message", "conversation_id": "c-x.0", "text": "hi", "id": "k"}
    statuses: list[int] = []
    async with connect(url, additional_headers={"Authorization": f"Bearer {pipeline.token()}"}) as socket:
        assert json.loads(await socket.recv())["type"] == "ready"
        for _ in range(PER_CHANNEL):
            frame = _garbage(valid, rng)
            await socket.send(frame.decode(errors="replace"))
            answer = json.loads(await socket.recv())
            while answer["type"] == "ping":
                answer = json.loads(await socket.recv())
            statuses.append(int(answer.get("status", 200)))
        await socket.send(json.dumps({"type": "conversation"}))
        assert json.loads(await socket.recv())["type"] == "conversation"
    _assert_no_5xx(statuses)


async def test_http_api_holds_up_under_schemathesis(pipeline: Pipeline) -> None:
    """Every operation of the OpenAPI document, fuzzed (valid and invalid inputs) with a
    valid token: no 5xx, and answers that match the document."""
    url = pipeline.gateway_urls[0]
    headers = {"Authorization": f"Bearer {pipeline.token(scopes=('chat', 'admin'))}"}
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    statuses: list[int] = []

    def fuzz_all() -> None:
        for result, mode in itertools.product(schema.get_all_operations(), schemathesis.GenerationMode):
            operation = result.ok()

            @hypothesis.settings(
                max_examples=200,
                deadline=None,
                database=None,
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode, headers=headers))
            def fuzz(case: Any) -> None:
                if isinstance(case.body, dict) and "timeout_s" in case.body:
                    case.body["timeout_s"] = 0.1  # do not wait for replies to random text
                response = case.call(headers=headers, timeout=30)
                statuses.append(response.status_code)
                checks = [not_a_server_error, status_code_conformance, content_type_conformance]
                checks.append(response_schema_conformance)
                case.validate_response(response, checks=checks)

            try:
                fuzz()
            except hypothesis.errors.Unsatisfiable:
                # No parameters and no body: nothing can be made invalid.
                assert mode is schemathesis.GenerationMode.NEGATIVE

    await asyncio.to_thread(fuzz_all)
    assert statuses and all(s < 500 for s in statuses)

    # And 10 000 mangled message bodies.
    rng = random.Random(4)
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:
        conversation = (await client.post("/v1/conversations")).json()["conversation_id"]
        valid = {"conversation_id": conversation, "text": "hi", "wait": False}

        async def send(_: int) -> int:
            body = _garbage(valid, rng)
            content = {"content": body, "headers": {"content-type": "application/json"}}
            return (await client.post("/v1/messages", **content)).status_code  # type: ignore[arg-type]

        _assert_no_5xx(await _flood(send))
