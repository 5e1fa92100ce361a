"""Telegram through the whole pipeline: a stand-in Bot API server, the real stack, the five services."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from aiogram.types import Chat, Message, Update, User

from switchboard.channel_gateway.dedupe import UNREADABLE_REPLY
from tests.conftest import Stack
from tests.e2e.pipeline import REJECTION_WINDOW_S, Pipeline, refusals
from tests.e2e.test_pipeline import _read_all, _started
from tests.fakes.telegram_bot_api import FakeBotApi

pytestmark = pytest.mark.integration

TOKEN = "123456:test-token"
SECRET = "webhook-secret-for-tests"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotApi]:
    api = FakeBotApi(TOKEN)
    await api.start()
    yield api
    await api.stop()


async def _telegram_pipeline(
    stack: Stack, bot_api: FakeBotApi, mode: str, replicas: int = 1, inference: dict[str, str] | None = None
) -> AsyncIterator[Pipeline]:
    """The five services, the gateway(s) talking to ``bot_api`` in ``mode`` (webhook or polling)."""
    pipeline = Pipeline(stack, replicas=replicas)
    gateway = {
        "TELEGRAM_MODE": mode,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": bot_api.url,
        "TELEGRAM_GROUP_ID": f"e2e-{pipeline.run_id}-telegram",
    }
    if mode == "webhook":
        gateway["TELEGRAM_WEBHOOK_SECRET"] = SECRET
        gateway["TELEGRAM_WEBHOOK_URL"] = "https://bot.example.test/v1/channels/telegram/webhook"
    pipeline.extra_env = {"channel_gateway": gateway, "inference_client": inference or {}}
    async for started in _started(pipeline):
        yield started


@pytest.fixture
async def pipeline(stack: Stack, bot_api: FakeBotApi) -> AsyncIterator[Pipeline]:
    async for pipeline in _telegram_pipeline(stack, bot_api, "webhook"):
        yield pipeline


@pytest.fixture
async def polling_pipeline(stack: Stack, bot_api: FakeBotApi) -> AsyncIterator[Pipeline]:
    async for pipeline in _telegram_pipeline(stack, bot_api, "polling", replicas=2):
        yield pipeline


@pytest.fixture
async def streaming_pipeline(stack: Stack, bot_api: FakeBotApi) -> AsyncIterator[Pipeline]:
    # Every word its own chunk, so that there is a stream to show.
    async for pipeline in _telegram_pipeline(stack, bot_api, "webhook", inference={"STREAM_INTERVAL_MS": "0"}):
        yield pipeline


def _update(update_id: int, text: str, chat_id: int = 4242) -> str:
    """An Update as Telegram would POST it, built with aiogram's own types."""
    user = User(id=abs(chat_id), is_bot=False, first_name="Ada", language_code="en")
    chat = Chat(id=chat_id, type="private" if chat_id > 0 else "group")
    message = Message(message_id=update_id, date=datetime.now(UTC), chat=chat, from_user=user, text=text)
    return Update(update_id=update_id, message=message).model_dump_json(exclude_none=True)


async def _post(url: str, body: str, secret: str | None = SECRET) -> httpx.Response:
    headers = {"content-type": "application/json"} | ({HEADER: secret} if secret is not None else {})
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(f"{url}/v1/channels/telegram/webhook", content=body, headers=headers)


async def test_webhook_registers_rejects_forgeries_and_answers(pipeline: Pipeline, bot_api: FakeBotApi) -> None:
    url = pipeline.gateway_urls[-1]
    (registered,) = bot_api.of("setWebhook")
    assert registered.params["secret_token"] == SECRET

    # Forged or missing secret tokens: every one rejected, nothing produced.
    started = time.monotonic()
    for i in range(50):
        assert (await _post(url, _update(900 + i, "forged"), secret=f"{SECRET}{i}")).status_code == 401
    assert (await _post(url, _update(999, "no secret"), secret=None)).status_code == 401
    windows = math.ceil((time.monotonic() - started) / REJECTION_WINDOW_S) + 1  # that the 51 refusals fell in
    assert (await _post(url, "{not an update")).status_code == 422
    # Text with a NUL: acknowledged (Telegram would hold up later updates behind a refused
    # one), audited as refused, never passed on; the sender is told why in the chat.
    assert (await _post(url, _update(2, "bad\x00text", chat_id=77))).status_code == 200

    response = await _post(url, _update(1, "hello from telegram"))
    assert response.status_code == 200
    sent = await bot_api.wait_for("sendMessage", count=2)
    assert sorted((s.params["chat_id"], s.params["text"]) for s in sent) == [
        ("4242", "hello from telegram"),
        ("77", UNREADABLE_REPLY),
    ]
    assert [c.params["action"] for c in bot_api.of("sendChatAction")] == ["typing"]
    inbound = await _read_all(pipeline.stack, pipeline.topics.inbound)
    assert [e.inbound_message.text for e in inbound] == ["hello from telegram"]
    # The 53 refusals are audit events of the telegram channel.
    async with asyncio.timeout(30):
        while len(refused := refusals(audited := await _read_all(pipeline.stack, pipeline.topics.audit))) < 53:
            await asyncio.sleep(0.2)
    assert sorted(e.labels["status"] for e in refused) == ["401"] * 51 + ["422"] * 2
    assert any("U+0000" in e.reason for e in refused)
    assert {e.labels["channel"] for e in refused} == {"telegram"}
    # The 51 forgeries are at most two documents a window: the first, then a count.
    assert len([e for e in audited if e.audit_event.labels["status"] == "401"]) <= 2 * windows < 51


async def test_a_replayed_update_is_dropped_even_after_a_restart(pipeline: Pipeline, bot_api: FakeBotApi) -> None:
    body = _update(7, "only once")
    assert (await _post(pipeline.gateway_urls[-1], body)).status_code == 200
    await bot_api.wait_for("sendMessage")
    assert (await _post(pipeline.gateway_urls[-1], body)).status_code == 200
    await pipeline.restart("channel_gateway")
    await pipeline.restart("intent_parser")
    assert (await _post(pipeline.gateway_urls[-1], body)).status_code == 200
    await asyncio.sleep(3)  # time enough for a duplicate to come through
    inbound = await _read_all(pipeline.stack, pipeline.topics.inbound)
    assert [e.inbound_message.text for e in inbound] == ["only once"]
    assert len(bot_api.of("sendMessage")) == 1


async def test_429_pauses_the_bot_for_retry_after(pipeline: Pipeline, bot_api: FakeBotApi) -> None:
    bot_api.throttle_next("sendMessage", retry_after=2)
    assert (await _post(pipeline.gateway_urls[-1], _update(11, "hello again, after a pause"))).status_code == 200
    refused, delivered = await bot_api.wait_for("sendMessage", count=2)
    assert delivered.params["text"] == "hello again, after a pause"
    # Nothing was sent during the window Telegram asked for.
    assert delivered.at - refused.at >= 2.0


async def test_long_polling_by_one_replica_with_offsets(polling_pipeline: Pipeline, bot_api: FakeBotApi) -> None:
    bot_api.queue_update(json.loads(_update(21, "polled hello")))
    (sent,) = await bot_api.wait_for("sendMessage")
    assert sent.params["text"] == "polled hello"
    assert bot_api.of("deleteWebhook"), "a webhook would make getUpdates fail"
    # Telegram re-serves an update whose offset was never confirmed: it is not taken twice.
    bot_api.queue_update(json.loads(_update(21, "polled hello")))
    bot_api.queue_update(json.loads(_update(22, "second")))
    await bot_api.wait_for("sendMessage", count=2)
    await asyncio.sleep(3)
    inbound = await _read_all(polling_pipeline.stack, polling_pipeline.topics.inbound)
    assert sorted(e.inbound_message.text for e in inbound) == ["polled hello", "second"]
    # Two gateway replicas, one poller: getUpdates calls never overlapped (Telegram would 409).
    assert len(bot_api.of("getUpdates")) > 1 and bot_api.conflicts == 0


async def test_replies_stream_as_a_draft_in_private_and_an_edited_message_in_groups(
    streaming_pipeline: Pipeline, bot_api: FakeBotApi
) -> None:
    url = streaming_pipeline.gateway_urls[-1]
    # Longer than the 48 characters the inference client holds back to screen, so that it streams.
    text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
    assert (await _post(url, _update(31, text, chat_id=5151))).status_code == 200
    (final,) = await bot_api.wait_for("sendMessage")
    drafts = bot_api.of("sendMessageDraft")
    assert drafts and all(text.startswith(d.params["text"]) for d in drafts)
    assert final.params["text"] == text and final.at >= drafts[-1].at + 0.9  # one a second per chat

    # Another question (the same one would come whole from the inference client's cache).
    text = "seventeen eighteen nineteen twenty twenty-one twenty-two twenty-three twenty-four twenty-five"
    assert (await _post(url, _update(32, text, chat_id=-777))).status_code == 200
    (edited,) = await bot_api.wait_for("editMessageText")
    group_sends = [c for c in bot_api.of("sendMessage") if c.params["chat_id"] == "-777"]
    assert len(group_sends) == 1 and text.startswith(group_sends[0].params["text"])  # the partial answer
    assert edited.params["text"] == text  # completed in place, no second message
