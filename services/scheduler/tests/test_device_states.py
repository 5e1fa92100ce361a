"""device.query intents: which device a question means and what the user hears, from the
device's last known state."""

from datetime import UTC, datetime

import pytest

from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import device_states
from switchboard.scheduler.device_states import Known
from switchboard.scheduler.devices import Registry

NOW = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)  # 18:00 in New York
REGISTRY = Registry.load()  # the packaged demo set
EARLIER = datetime(2026, 11, 24, 21, 4, tzinfo=UTC)  # 16:04 in New York, 05:04 next day in Shanghai


def _question(language: str = "en", zone: str = "America/New_York", **slots: str) -> m.ParsedIntent:
    message = m.InboundMessage(message_id="msg-1", channel=m.CHANNEL_HTTP, text="?")
    return m.ParsedIntent(
        message=message,
        intent="device.query",
        slots=[m.Slot(name=k, value=v) for k, v in {"action": "query", **slots}.items()],
        language=language,
        time_zone=zone,
    )


def _answer(question: m.ParsedIntent, known: dict[str, Known]) -> str:
    found = device_states.candidates(question, REGISTRY)
    assert device_states.unanswerable(question, found) is None
    return device_states.answer(question, found, known, NOW)


@pytest.mark.parametrize(
    ("asked", "power", "said"),
    [
        ("on", "on", "Yes, the bedroom light is on (since 16:04)."),
        ("on", "OFF", "No, the bedroom light is off (since 16:04)."),
        ("off", "off", "Yes, the bedroom light is off (since 16:04)."),
        ("", "on", "The bedroom light is on (since 16:04)."),
        ("on", "dimmed", "The bedroom light is dimmed (since 16:04)."),  # neither yes nor no
    ],
)
def test_an_asked_state_is_answered_yes_or_no(asked: str, power: str, said: str) -> None:
    slots = {"device": "light", "room": "bedroom"} | ({"state": asked} if asked else {})
    known = {"bedroom-light": Known({"power": power, "brightness": "80"}, True, EARLIER)}
    assert _answer(_question(**slots), known) == said


def test_in_chinese_in_the_users_zone_with_the_date_when_not_today() -> None:
    question = _question("zh", "Asia/Shanghai", device="light", room="bedroom", state="on")
    known = {"bedroom-light": Known({"power": "on"}, None, datetime(2026, 11, 23, 13, 4, tzinfo=UTC))}
    assert _answer(question, known) == "是的，卧室灯开着（11月23日 周一 21:04起）。"


def test_a_device_not_heard_from_and_one_offline() -> None:
    question = _question(device="light", room="bedroom", state="on")
    assert _answer(question, {}) == "I have not heard from the bedroom light yet, so I cannot tell."
    offline = {"bedroom-light": Known({"power": "on"}, False, EARLIER)}
    assert _answer(question, offline) == "The bedroom light is offline (since 16:04); the last it said: on."


def test_several_devices_each_get_a_line_and_no_yes_or_no() -> None:
    known = {
        "bedroom-light": Known({"power": "on"}, True, EARLIER),
        "living-room-light": Known({"power": "off"}, True, EARLIER),
    }
    assert _answer(_question(device="light", state="on"), known) == (
        "The living room light is off (since 16:04).\nThe bedroom light is on (since 16:04)."
    )


def test_readings_without_an_on_off_state_are_read_out() -> None:
    known = {"bedroom-fan": Known({"speed": "3", "temperature": "21.5"}, None, EARLIER)}
    assert _answer(_question(room="bedroom", device="fan"), known) == (
        "The bedroom fan reads speed 3, temperature 21.5 (at 16:04)."
    )


def test_only_a_room_means_every_device_there() -> None:
    found = device_states.candidates(_question(room="bedroom"), REGISTRY)
    assert [d.id for d in found] == ["bedroom-light", "bedroom-fan"]


@pytest.mark.parametrize(
    ("slots", "said"),
    [
        ({}, "Which device do you mean?"),
        ({"device": "tv", "room": "garage"}, "I don't know a tv in the garage."),
    ],
)
def test_a_question_about_no_known_device_says_so(slots: dict[str, str], said: str) -> None:
    question = _question(**slots)
    found = device_states.candidates(question, REGISTRY)
    assert device_states.unanswerable(question, found) == said
