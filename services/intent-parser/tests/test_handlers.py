import pytest

from switchboard.events.v1 import messages_pb2 as m
from switchboard.intent_parser.handlers import parse


def _msg(text: str, **metadata: str) -> m.InboundMessage:
    return m.InboundMessage(message_id="m", text=text, metadata=metadata)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("hello there", "chat"),
        ("remind me to call mum at 5", "reminder.create"),
        ("明天上午十点提醒我开会", "reminder.create"),
        ("turn off the bedroom fan", "device.control"),
        ("把客厅灯调到50%", "device.control"),
        ("/help", "help"),
        ("", "chat"),
        ("🙂🙂🙂", "chat"),
    ],
)
def test_intents(text: str, intent: str) -> None:
    assert parse(_msg(text)).intent == intent


def test_profile_priority_language_and_reason() -> None:
    parsed = parse(_msg("URGENT: fix this python function"))
    assert parsed.model_profile == "code" and parsed.priority == m.PRIORITY_URGENT
    assert "profile=code" in parsed.routing_reason
    assert parse(_msg("写诗一首")).model_profile == "creative"
    assert parse(_msg("写诗一首")).language == "zh"
    assert parse(_msg("hi")).priority == m.PRIORITY_ROUTINE
    assert parse(_msg("hi", priority="urgent")).priority == m.PRIORITY_URGENT


def test_the_message_travels_with_the_intent() -> None:
    message = _msg("hi")
    assert parse(message).message == message
