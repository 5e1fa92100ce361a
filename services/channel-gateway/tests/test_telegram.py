from datetime import UTC, datetime

import pytest
from aiogram.types import Chat, Document, Message, PhotoSize, Update, User, Voice

from switchboard.channel_gateway.pacing import split_text
from switchboard.channel_gateway.telegram import MAX_MESSAGE_CHARS, inbound_from_update, message_id_for
from switchboard.events.v1 import messages_pb2 as m

USER = User(id=7, is_bot=False, first_name="Ada", last_name="L", language_code="en")


def _update(**content: object) -> Update:
    chat = Chat(id=-100, type="supergroup")
    message = Message(message_id=3, date=datetime.now(UTC), chat=chat, from_user=USER, **content)
    return Update(update_id=41, message=message)


def test_a_text_message_becomes_an_inbound_message() -> None:
    inbound, conversation = inbound_from_update(_update(text="hi there", message_thread_id=9), bot_id=1) or (None, "")
    assert inbound is not None
    assert conversation == "telegram:-100:9"
    assert (inbound.channel, inbound.kind, inbound.text) == (m.CHANNEL_TELEGRAM, m.MESSAGE_KIND_TEXT, "hi there")
    assert (inbound.channel_chat_id, inbound.channel_message_id) == ("-100", "41")
    assert (inbound.sender.user_id, inbound.sender.display_name, inbound.sender.locale) == ("telegram:7", "Ada L", "en")
    assert inbound.metadata["message_thread_id"] == "9"
    # The same update always gets the same id, another update or bot another one.
    assert inbound.message_id == message_id_for(1, 41) != message_id_for(1, 42) != message_id_for(2, 41)


@pytest.mark.parametrize(
    ("content", "kind", "mime"),
    [
        ({"voice": Voice(file_id="v", file_unique_id="vu", duration=2)}, m.MESSAGE_KIND_VOICE, "audio/ogg"),
        (
            {
                "photo": [
                    PhotoSize(file_id="small", file_unique_id="s", width=90, height=90),
                    PhotoSize(file_id="large", file_unique_id="l", width=800, height=600),
                ],
                "caption": "look",
            },
            m.MESSAGE_KIND_IMAGE,
            "image/jpeg",
        ),
        (
            {"document": Document(file_id="d", file_unique_id="du", file_name="a.pdf", mime_type="application/pdf")},
            m.MESSAGE_KIND_DOCUMENT,
            "application/pdf",
        ),
    ],
)
def test_media_messages_are_routed_by_type(content: dict[str, object], kind: int, mime: str) -> None:
    converted = inbound_from_update(_update(**content), bot_id=1)
    assert converted is not None
    inbound, _ = converted
    assert inbound.kind == kind
    (attachment,) = inbound.attachments
    assert attachment.mime_type == mime and attachment.uri.startswith("tg-file:")
    if kind == m.MESSAGE_KIND_IMAGE:
        assert attachment.uri == "tg-file:large" and inbound.text == "look"


def test_commands_are_marked_and_other_updates_ignored() -> None:
    converted = inbound_from_update(_update(text="/start"), bot_id=1)
    assert converted is not None and converted[0].kind == m.MESSAGE_KIND_COMMAND
    assert inbound_from_update(Update(update_id=1), bot_id=1) is None
    assert inbound_from_update(_update(), bot_id=1) is None  # no text, no media


def test_long_replies_are_split_at_boundaries_and_lose_nothing() -> None:
    text = ("word " * 1000) + "\n" + ("x" * 5000)
    pieces = split_text(text, MAX_MESSAGE_CHARS)
    assert "".join(pieces) == text
    assert all(0 < len(p) <= MAX_MESSAGE_CHARS for p in pieces)
    assert pieces[0].endswith("word ") or pieces[0].endswith("word")  # cut at a space, not mid-word
    assert split_text("short", 10) == ["short"] and split_text("", 10) == []


def test_a_rejection_names_its_channel_status_and_reason() -> None:
    from switchboard.channel_gateway.rejections import audit_event

    event = audit_event(401, "POST", "/v1/channels/telegram/webhook", "missing or wrong secret token")
    assert (event.action, event.outcome, event.reason) == (
        "request.rejected",
        m.OUTCOME_BLOCKED,
        "missing or wrong secret token",
    )
    assert event.labels["channel"] == "telegram" and event.labels["status"] == "401"
    assert audit_event(413, "POST", "/v1/messages", "too big").labels["channel"] == "http"
