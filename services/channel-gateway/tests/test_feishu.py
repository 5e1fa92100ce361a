"""Feishu events in: decryption, signature and token checks, and what a message becomes."""

import json
import time

import pytest
from lark_oapi.api.im.v1 import P2ImMessageReceiveV1

from switchboard.channel_gateway.feishu import _check_complete, card, inbound_from_event, message_id_for, open_event
from switchboard.channel_gateway.rejections import Rejected
from switchboard.events.v1 import messages_pb2 as m
from tests.fakes.feishu_open_api import BOT_OPEN_ID, challenge_event, encrypt, message_event, signed_headers

TOKEN, KEY, APP = "verification-token-0123", "encrypt-key-0123456789", "cli_1"


def _received(text: str = "", **options: object) -> P2ImMessageReceiveV1:
    return P2ImMessageReceiveV1(json.loads(message_event(text, token=TOKEN, app_id=APP, **options)))  # type: ignore[arg-type]


def test_an_encrypted_signed_event_opens_and_forgeries_do_not() -> None:
    body = encrypt(message_event("hi", token=TOKEN, app_id=APP), KEY)
    event = open_event(body, signed_headers(body, KEY), KEY, TOKEN)
    assert event["header"]["event_type"] == "im.message.receive_v1"

    refusals = [
        (body, signed_headers(body, "other-key"), KEY, TOKEN),  # signed with another key
        (body, {}, KEY, TOKEN),  # not signed
        (body, signed_headers(body, KEY), KEY, "other-token"),  # wrong verification token
        (b"not json", {}, KEY, TOKEN),
        (b"[1, 2]", {}, KEY, TOKEN),
        (b'{"encrypt": "bm90IGNpcGhlcnRleHQ="}', {}, KEY, TOKEN),  # not decryptable
        (message_event("hi", token=TOKEN, app_id=APP).encode(), {}, KEY, TOKEN),  # not encrypted
        (body, signed_headers(body, KEY, at=time.time() - 301), KEY, TOKEN),  # signed over 5 min ago
        (body, signed_headers(body, KEY, at=time.time() + 301), KEY, TOKEN),  # or ahead
    ]
    statuses = []
    for args in refusals:
        with pytest.raises(Rejected) as refused:
            open_event(*args)
        statuses.append(refused.value.status)
    assert statuses == [401, 401, 401, 400, 400, 400, 400, 401, 401]
    # Within the window either side, a signed event opens.
    for skew in (-290, 290):
        assert open_event(body, signed_headers(body, KEY, at=time.time() + skew), KEY, TOKEN)


def test_the_url_challenge_needs_the_token_but_no_signature() -> None:
    body = encrypt(challenge_event(TOKEN, "c-1"), KEY)
    assert open_event(body, {}, KEY, TOKEN)["challenge"] == "c-1"
    with pytest.raises(Rejected):
        open_event(encrypt(challenge_event("forged", "c-1"), KEY), {}, KEY, TOKEN)
    # Without an encrypt key there is no webhook: nothing could be authenticated.
    with pytest.raises(ValueError, match="encrypt key"):
        open_event(challenge_event(TOKEN).encode(), {}, "", TOKEN)


def test_a_private_text_message_becomes_an_inbound_message() -> None:
    converted = inbound_from_event(_received("hello  there", message_id="om_1", chat_id="oc_9"), APP, BOT_OPEN_ID)
    assert converted is not None
    inbound, conversation = converted
    assert conversation == "feishu:oc_9"
    assert (inbound.channel, inbound.kind, inbound.text) == (m.CHANNEL_FEISHU, m.MESSAGE_KIND_TEXT, "hello there")
    assert (inbound.channel_message_id, inbound.channel_chat_id, inbound.sender.user_id) == (
        "om_1",
        "oc_9",
        "feishu:ou_ada",
    )
    assert inbound.message_id == message_id_for(APP, "om_1") != message_id_for(APP, "om_2")


def test_groups_need_an_at_mention_which_is_removed() -> None:
    assert inbound_from_event(_received("chatter", chat_type="group"), APP, BOT_OPEN_ID) is None
    converted = inbound_from_event(_received("/help", chat_type="group", mention_bot=True), APP, BOT_OPEN_ID)
    assert converted is not None
    assert (converted[0].text, converted[0].kind) == ("/help", m.MESSAGE_KIND_COMMAND)
    # Only "@bot" and nothing else: nothing to answer.
    assert inbound_from_event(_received("", chat_type="group", mention_bot=True), APP, BOT_OPEN_ID) is None


@pytest.mark.parametrize(
    ("message_type", "content", "kind", "text", "mime"),
    [
        ("post", {"title": "T", "content": [[{"tag": "text", "text": "a"}, {"tag": "a", "text": "b"}]]}, 1, "T a b", 0),
        ("post", {"zh_cn": {"title": "", "content": [[{"tag": "text", "text": "你好"}]]}}, 1, "你好", 0),
        ("image", {"image_key": "img_1"}, m.MESSAGE_KIND_IMAGE, "", "image/*"),
        ("audio", {"file_key": "f_1", "duration": 3}, m.MESSAGE_KIND_VOICE, "", "audio/opus"),
        ("file", {"file_key": "f_2", "file_name": "a.pdf"}, m.MESSAGE_KIND_DOCUMENT, "", "application/octet-stream"),
    ],
)
def test_content_types_are_routed_by_kind(
    message_type: str, content: dict[str, object], kind: int, text: str, mime: str | int
) -> None:
    received = _received(message_type=message_type, content=content, message_id="om_5")
    converted = inbound_from_event(received, APP, BOT_OPEN_ID)
    assert converted is not None
    inbound = converted[0]
    assert (inbound.kind, inbound.text) == (kind, text)
    if mime:
        (attachment,) = inbound.attachments
        assert attachment.mime_type == mime and attachment.uri.startswith("feishu-resource:om_5/")


def test_stickers_and_broken_content_are_left_alone() -> None:
    assert inbound_from_event(_received(message_type="sticker", content={"file_key": "s"}), APP, BOT_OPEN_ID) is None
    broken = json.loads(message_event("x", token=TOKEN, app_id=APP))
    broken["event"]["message"]["content"] = "{not json"
    assert inbound_from_event(P2ImMessageReceiveV1(broken), APP, BOT_OPEN_ID) is None


def test_a_card_shows_the_text_and_a_marker_while_streaming() -> None:
    streaming, done = json.loads(card("part", streaming=True)), json.loads(card("all", streaming=False))
    assert streaming["elements"][0]["content"] == "part" and len(streaming["elements"]) == 2
    assert done["elements"] == [{"tag": "markdown", "content": "all"}]
    assert streaming["config"]["update_multi"] is True


def test_a_header_field_of_the_wrong_type_is_refused_not_a_crash() -> None:
    event = json.loads(message_event("hi", token=TOKEN, app_id=APP))
    event["header"]["tenant_key"] = {"not": "a string"}  # the SDK does not type-check the header
    with pytest.raises(ValueError, match="not a plain string"):
        _check_complete(P2ImMessageReceiveV1(event))
