"""Feishu through the whole pipeline: a stand-in open platform, the real stack, the five services.

Events are built with lark-oapi's types, encrypted and signed the way Feishu does it; the
gateway's replies are read back from the stand-in's records.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from switchboard.channel_gateway.dedupe import UNREADABLE_REPLY
from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline, refusals
from tests.e2e.test_pipeline import _read_all, _started
from tests.fakes.feishu_open_api import (
    FakeFeishu,
    challenge_event,
    encrypt,
    message_event,
    signed_headers,
)

pytestmark = pytest.mark.integration

APP_ID = "cli_switchboard_test"
APP_SECRET = "app-secret-for-tests"
TOKEN = "verification-token-for-tests"
KEY = "encrypt-key-for-tests"


@pytest.fixture
async def feishu() -> AsyncIterator[FakeFeishu]:
    platform = FakeFeishu(APP_ID, APP_SECRET)
    await platform.start()
    yield platform
    await platform.stop()


async def _feishu_pipeline(stack: Stack, feishu: FakeFeishu, mode: str) -> AsyncIterator[Pipeline]:
    pipeline = Pipeline(stack)
    gateway = {
        "FEISHU_MODE": mode,
        "FEISHU_APP_ID": APP_ID,
        "FEISHU_APP_SECRET": APP_SECRET,
        "FEISHU_VERIFICATION_TOKEN": TOKEN,
        "FEISHU_ENCRYPT_KEY": KEY,
        "FEISHU_API_URL": feishu.url,
        "FEISHU_GROUP_ID": f"e2e-{pipeline.run_id}-feishu",
        "FEISHU_CARD_INTERVAL_S": "0.3",
    }
    # Every word its own chunk, so that there is a stream to show in the card.
    pipeline.extra_env = {"channel_gateway": gateway, "inference_client": {"STREAM_INTERVAL_MS": "0"}}
    async for started in _started(pipeline):
        yield started


@pytest.fixture
async def pipeline(stack: Stack, feishu: FakeFeishu) -> AsyncIterator[Pipeline]:
    async for started in _feishu_pipeline(stack, feishu, "webhook"):
        yield started


@pytest.fixture
async def long_connection_pipeline(stack: Stack, feishu: FakeFeishu) -> AsyncIterator[Pipeline]:
    async for started in _feishu_pipeline(stack, feishu, "long_connection"):
        yield started


async def _post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(f"{url}/v1/channels/feishu/events", content=body, headers=headers)


async def _send(url: str, event: str, key: str = KEY) -> httpx.Response:
    """POST ``event`` as Feishu would: encrypted with ``key`` and signed."""
    body = encrypt(event, key)
    return await _post(url, body, signed_headers(body, key))


def _card_text(call_body: dict[str, object]) -> tuple[str, bool]:
    """The markdown a card shows, and whether it still shows the "…" of a stream."""
    elements = json.loads(str(call_body["content"]))["elements"]
    return elements[0]["content"], len(elements) > 1


async def test_webhook_verifies_and_answers_in_a_streamed_card(pipeline: Pipeline, feishu: FakeFeishu) -> None:
    url = pipeline.gateway_urls[-1]
    started = time.monotonic()
    challenge = await _send(url, challenge_event(TOKEN, "abc123"))
    assert challenge.status_code == 200 and challenge.json() == {"challenge": "abc123"}
    assert time.monotonic() - started < 1.0

    # Forgeries: 100 % rejected, nothing produced.
    event = message_event("forged", token=TOKEN, app_id=APP_ID)
    body = encrypt(event, KEY)
    for i in range(40):  # wrong signature (as if signed with another key)
        assert (await _post(url, body, signed_headers(body, f"{KEY}{i}"))).status_code == 401
    for i in range(40):  # signed and encrypted right, wrong verification token
        assert (await _send(url, message_event("forged", token=f"{TOKEN}{i}", app_id=APP_ID))).status_code == 401
    assert (await _send(url, event, key="another-key")).status_code == 400  # cannot decrypt
    plain = event.encode()
    assert (await _post(url, plain, signed_headers(plain, KEY))).status_code == 400  # not encrypted
    broken = json.loads(message_event("x", token=TOKEN, app_id=APP_ID))
    broken["event"]["message"] = "not a message"
    assert (await _send(url, json.dumps(broken))).status_code == 422

    # Longer than the 48 characters the inference client holds back to screen, so that it streams.
    text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
    started = time.monotonic()
    accepted = await _send(url, message_event(text, token=TOKEN, app_id=APP_ID, message_id="om_first"))
    assert accepted.status_code == 200 and time.monotonic() - started < 3.0

    # The answer: a card replying to the message (quoted, not a thread, in a one-to-one
    # chat), streamed, then completed in place.
    (card,) = await feishu.wait_for("reply")
    assert card.message_id == "om_first" and card.body["msg_type"] == "interactive"
    assert card.body["reply_in_thread"] is False
    shown, streaming = _card_text(card.body)
    assert text.startswith(shown) and streaming
    async with asyncio.timeout(30):
        while not feishu.of("patch") or _card_text(feishu.of("patch")[-1].body) != (text, False):
            await asyncio.sleep(0.1)
    patches = feishu.of("patch")
    assert {p.message_id for p in patches} == {"om_reply_1"}  # always the card just sent
    # Stream updates at most every 0.3 s; the final one may come sooner, but never more than
    # Feishu's 5 edits a second of one message.
    shows = [card, *patches]
    assert all(b.at - a.at >= 0.28 for a, b in itertools.pairwise(shows[:-1]))
    assert all(b.at - a.at >= 0.2 for a, b in itertools.pairwise(patches))
    assert len(feishu.of("token")) == 1  # one tenant token, cached, for every call

    inbound = await _read_all(pipeline.stack, pipeline.topics.inbound)
    assert [e.inbound_message.text for e in inbound] == [text]
    async with asyncio.timeout(30):
        while len(refused := refusals(await _read_all(pipeline.stack, pipeline.topics.audit))) < 83:
            await asyncio.sleep(0.2)
    assert sorted(e.labels["status"] for e in refused) == ["400"] * 2 + ["401"] * 80 + ["422"]
    assert {e.labels["channel"] for e in refused} == {"feishu"}

    # Text with a NUL: acknowledged, audited, not passed on, and the sender told why.
    nul = message_event("bad\u0000text", token=TOKEN, app_id=APP_ID, message_id="om_nul")
    assert (await _send(url, nul)).status_code == 200
    _, told = await feishu.wait_for("reply", count=2)
    assert told.message_id == "om_nul" and told.body["msg_type"] == "text"
    assert json.loads(str(told.body["content"])) == {"text": UNREADABLE_REPLY}
    assert [e.inbound_message.text for e in await _read_all(pipeline.stack, pipeline.topics.inbound)] == [text]


async def test_groups_answer_mentions_only_in_a_thread(pipeline: Pipeline, feishu: FakeFeishu) -> None:
    url = pipeline.gateway_urls[-1]
    chatter = message_event("just chatting", token=TOKEN, app_id=APP_ID, chat_type="group", chat_id="oc_group")
    assert (await _send(url, chatter)).status_code == 200
    asked = message_event(
        "what time is it", token=TOKEN, app_id=APP_ID, chat_type="group", chat_id="oc_group", mention_bot=True
    )
    assert (await _send(url, asked)).status_code == 200
    (card,) = await feishu.wait_for("reply")
    assert card.body["reply_in_thread"] is True
    inbound = await _read_all(pipeline.stack, pipeline.topics.inbound)
    assert [e.inbound_message.text for e in inbound] == ["what time is it"]  # the @-mention removed
    assert inbound[0].inbound_message.metadata["chat_type"] == "group"


async def test_a_repeated_event_is_dropped_even_after_restarts(pipeline: Pipeline, feishu: FakeFeishu) -> None:
    url = pipeline.gateway_urls[-1]
    event = message_event("only once", token=TOKEN, app_id=APP_ID, message_id="om_once", event_id="ev-once")
    assert (await _send(url, event)).status_code == 200
    await feishu.wait_for("reply")
    assert (await _send(url, event)).status_code == 200
    await pipeline.restart("channel_gateway")
    await pipeline.restart("intent_parser")
    url = pipeline.gateway_urls[-1]  # the restarted gateway's
    assert (await _send(url, event)).status_code == 200
    # Feishu may also deliver the same message under a new event id.
    again = message_event("only once", token=TOKEN, app_id=APP_ID, message_id="om_once", event_id="ev-other")
    assert (await _send(url, again)).status_code == 200
    await asyncio.sleep(3)  # time enough for a duplicate to come through
    inbound = await _read_all(pipeline.stack, pipeline.topics.inbound)
    assert [e.inbound_message.text for e in inbound] == ["only once"]
    assert len(feishu.of("reply")) == 1


async def test_a_rejected_token_is_renewed_and_429_pauses_the_app(pipeline: Pipeline, feishu: FakeFeishu) -> None:
    url = pipeline.gateway_urls[-1]
    feishu.revoke_tokens()  # as if Feishu had invalidated the cached token early
    feishu.throttle_next("reply", reset_s=2)
    assert (await _send(url, message_event("slow", token=TOKEN, app_id=APP_ID))).status_code == 200
    refused, delivered = await feishu.wait_for("reply", count=2)
    assert delivered.at - refused.at >= 2.0  # nothing during the window Feishu gave
    assert len(feishu.of("token")) == 2  # the cached one, then a fresh one after the rejection


async def test_long_connection_receives_and_acknowledges(
    long_connection_pipeline: Pipeline, feishu: FakeFeishu
) -> None:
    await feishu.wait_connected()
    event = message_event("over the long connection", token=TOKEN, app_id=APP_ID, message_id="om_ws")
    await feishu.push(event)
    await feishu.push(event)  # delivered twice: accepted once
    (card,) = await feishu.wait_for("reply")
    assert card.message_id == "om_ws"
    async with asyncio.timeout(30):
        while len(feishu.acks) < 2:
            await asyncio.sleep(0.1)
    assert [ack["code"] for ack in feishu.acks] == [200, 200]
    await asyncio.sleep(2)
    inbound = await _read_all(long_connection_pipeline.stack, long_connection_pipeline.topics.inbound)
    assert [e.inbound_message.text for e in inbound] == ["over the long connection"]
