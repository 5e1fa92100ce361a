"""The unit converter: finding the conversion in a message (English, Chinese, mixed), the
figures, and the answers it gives to a plugin request."""

from datetime import UTC, datetime, timedelta

import pytest

from switchboard.common.plugins import Answered, should_answer
from switchboard.events.v1 import messages_pb2 as m
from switchboard.plugin_units.app import answer, registration
from switchboard.plugin_units.config import Settings
from switchboard.plugin_units.convert import ConversionError, Request, convert, find, number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("convert 5 miles to km", "5 miles = 8.05 km"),
        ("How many km is 5 miles?", "5 miles = 8.05 km"),
        ("how many ounces are there in 2 pounds", "2 pounds = 32 ounces"),
        ("what is 100 degrees fahrenheit in celsius", "100 degrees fahrenheit = 37.78 celsius"),
        ("100 °F in °C", "100 °F = 37.78 °C"),
        ("-40 C to F", "-40 °C = -40 °F"),
        ("3.5 lbs to kg please", "3.5 lbs = 1.59 kg"),
        ("10 sq ft to square meters", "10 sq ft = 0.929 square meters"),
        ("60 mph in km/h", "60 mph = 96.56 km/h"),
        ("1,000 m to miles", "1,000 m = 0.621 miles"),
        ("ＣＯＮＶＥＲＴ　５ ＭＩＬＥＳ ＴＯ ＫＭ", "5 miles = 8.05 km"),  # full width  # noqa: RUF001
        ("100华氏度是多少摄氏度", "100 华氏度 = 37.78 摄氏度"),
        ("5公里等于多少英里", "5 公里 = 3.11 英里"),
        ("把3磅换算成公斤", "3 磅 = 1.36 公斤"),
        ("2斤是多少克", "2 斤 = 1,000 克"),
        ("5 miles是多少公里", "5 miles = 8.05 公里"),
    ],
)
def test_conversions_as_people_ask_for_them(text: str, expected: str) -> None:
    asked = find(text)
    assert asked is not None, text
    assert convert(asked).text() == expected


@pytest.mark.parametrize("text", ["hello", "remind me in 5 minutes", "turn the fan to 3", "", "我今天走了5公里"])
def test_messages_that_ask_for_no_conversion(text: str) -> None:
    assert find(text) is None


def test_units_that_measure_different_things_or_do_not_exist_are_refused_with_the_reason() -> None:
    with pytest.raises(ConversionError) as refused:
        convert(Request(70, "kg", "km"))
    assert refused.value.reason == "incompatible"
    with pytest.raises(ConversionError) as unknown:
        convert(Request(5, "blargs", "km"))
    assert unknown.value.reason == "unknown_unit" and unknown.value.values == {"unit": "blargs"}


@pytest.mark.parametrize(
    ("value", "shown"), [(8.04672, "8.05"), (1609.344, "1,609.34"), (0.0254, "0.0254"), (5.0, "5"), (0, "0")]
)
def test_figures_are_rounded_as_people_write_them(value: float, shown: str) -> None:
    assert number(value) == shown


def _request(text: str, language: str = "en") -> m.PluginRequest:
    return m.PluginRequest(
        request_id="r-1",
        intent=m.ParsedIntent(intent="units.convert", language=language, message=m.InboundMessage(text=text)),
    )


def test_the_answer_carries_the_text_and_the_figure() -> None:
    reply = answer(_request("convert 5 miles to km"))
    assert reply.ok and reply.text == "5 miles = 8.05 km"
    assert float(reply.data["value"]) == pytest.approx(8.04672) and reply.data["unit"] == "kilometer"


def test_what_cannot_be_done_is_said_in_the_users_language() -> None:
    refused = answer(_request("70公斤是多少公里", "zh"))
    assert not refused.ok and refused.error == "incompatible" and "无法换算" in refused.text
    unclear = answer(_request("what's the weather"))
    assert not unclear.ok and "convert 5 miles to km" in unclear.text


def test_the_registration_names_the_intent_and_the_topics() -> None:
    settings = Settings(request_topic="t.units", topics={"plugin_replies": "t.replies"})  # type: ignore[arg-type]
    entry = registration(settings)
    assert entry.name == "units" and list(entry.intents) == ["units.convert"]
    assert (entry.request_topic, entry.reply_topic, entry.timeout_s) == ("t.units", "t.replies", 10.0)
    assert entry.version == "0.1.0" and entry.title["en"] == "the unit converter"


def test_a_request_is_answered_once_and_not_after_its_deadline() -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    answered = Answered(size=2)
    request = _request("5 km to m")
    request.deadline.FromDatetime(now + timedelta(seconds=5))
    assert should_answer(request, answered, now) is None
    answered.add(request.request_id)
    assert should_answer(request, answered, now) == "already answered"
    request.request_id = "r-2"
    assert should_answer(request, answered, now + timedelta(seconds=6)) == "past its deadline"
    answered.add("r-3")
    answered.add("r-4")  # the oldest id is forgotten past the size
    assert "r-1" not in answered and "r-4" in answered
