"""Voice notes and pictures over HTTP through a real gateway: checked, kept in the stack's media
store (versitygw), and the inbound event on Kafka refers to them by hash (claim check)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from switchboard.cli.tokens import mint
from switchboard.common.media import MediaRef, MediaStore
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline, read_records
from tests.e2e.test_pipeline import _started
from tests.fakes.media import picture, voice

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[Pipeline]:
    async for started in _started(Pipeline(stack, modules=("channel_gateway",))):
        yield started


async def _conversation(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/conversations")
    assert response.status_code == 201, response.text
    return str(response.json()["conversation_id"])


async def _upload(
    client: httpx.AsyncClient, conversation: str, name: str, data: bytes, caption: str = ""
) -> httpx.Response:
    fields = {"conversation_id": conversation, "wait": "false", "caption": caption}
    return await client.post(
        "/v1/messages/media", data=fields, files={"file": (name, data, "application/octet-stream")}
    )


async def _inbound(pipeline: Pipeline) -> dict[str, tuple[m.InboundMessage, int]]:
    """Each inbound message by id, with the size of the record that carried it."""
    out = {}
    for record in await read_records(pipeline.stack, pipeline.topics.inbound):
        message = envelope_pb2.Envelope.FromString(record.value).inbound_message
        out[message.message_id] = (message, len(record.value))
    return out


async def test_a_voice_note_and_a_picture_are_kept_and_referred_to_by_hash(stack: Stack, gateway: Pipeline) -> None:
    note, photo = voice("ogg", 2.0), picture((320, 200), "JPEG")
    async with gateway.client(gateway.gateway_urls[0]) as client:
        conversation = await _conversation(client)
        spoken = await _upload(client, conversation, "note.ogg", note)
        shown = await _upload(client, conversation, "receipt.jpg", photo, caption="what does this say?")
    assert (spoken.status_code, shown.status_code) == (202, 202), (spoken.text, shown.text)

    inbound = await _inbound(gateway)
    voice_message, voice_record = inbound[spoken.json()["message_id"]]
    image_message, _ = inbound[shown.json()["message_id"]]
    assert voice_message.kind == m.MESSAGE_KIND_VOICE and voice_message.text == ""
    assert image_message.kind == m.MESSAGE_KIND_IMAGE and image_message.text == "what does this say?"
    (heard,) = voice_message.attachments
    (seen,) = image_message.attachments
    assert (heard.mime_type, heard.file_name, seen.mime_type) == ("audio/ogg", "note.ogg", "image/jpeg")
    assert abs(heard.duration_ms - 2000) <= 50
    assert voice_record < 2048 < len(note)  # the event carries the reference, not the bytes

    store = MediaStore(stack.media_settings())
    await store.start()
    try:
        assert await store.get(MediaRef.of(heard)) == note
        assert await store.get(MediaRef.of(seen)) == photo
    finally:
        await store.stop()


async def test_bad_media_is_refused_with_a_reason_and_costs_nobody_else(gateway: Pipeline) -> None:
    whole = voice("ogg", 3.0)
    bad = {
        "cut off": (whole[: len(whole) // 2], 422, "cut off"),
        "ten minutes": (voice("ogg", 600.0, rate=8000), 422, "longer than 120 s"),
        "picture bomb": (picture((10_000, 10_000), mode="1"), 422, "10000 x 10000 pixels"),
        "a document": (b"%PDF-1.7\n" + bytes(1000), 415, "not a voice note"),
    }
    async with gateway.client(gateway.gateway_urls[0]) as client:
        conversation = await _conversation(client)
        for name, (data, status, reason) in bad.items():
            response = await _upload(client, conversation, name, data)
            assert response.status_code == status and reason in response.json()["detail"], (name, response.text)
        # 50 MB: refused by its declared length, before the gateway reads it.
        huge = await _upload(client, conversation, "huge.ogg", b"OggS" + bytes(50 * 1024 * 1024))
        assert huge.status_code == 413 and "exceeds" in huge.json()["detail"], huge.text
        # The same user, right after: a good note and a text message are taken.
        fine = await _upload(client, conversation, "note.ogg", whole)
        text = await client.post("/v1/messages", json={"conversation_id": conversation, "text": "hi", "wait": False})
        assert (fine.status_code, text.status_code) == (202, 202), (fine.text, text.text)
    kinds = [message.kind for message, _ in (await _inbound(gateway)).values()]
    assert sorted(kinds) == [m.MESSAGE_KIND_TEXT, m.MESSAGE_KIND_VOICE]  # nothing refused reached Kafka


async def test_until_voice_can_be_heard_the_sender_is_told_so_not_a_guess(stack: Stack) -> None:
    """Through the stack's own five services (make up): no chat-model guess at an empty text."""
    token = mint(Path(stack.gateway_jwt_secret_file).read_text().strip(), "media-test", ["chat"], ttl_s=300)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=90) as client:
        conversation = await _conversation(client)
        fields = {"conversation_id": conversation, "timeout_s": "60"}
        response = await client.post(
            "/v1/messages/media", data=fields, files={"file": ("note.ogg", voice("ogg", 1.0), "audio/ogg")}
        )
    assert response.status_code == 200, response.text
    assert response.json()["reply"].startswith("I cannot listen to voice notes or read pictures yet")
