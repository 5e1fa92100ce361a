import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from switchboard.intent_parser.numerals import to_number
from switchboard.intent_parser.times import TimeParser

DATA = Path(__file__).resolve().parents[1] / "data"
REMINDERS = ("reminder.create", "reminder.list", "reminder.cancel")


@pytest.fixture(scope="module")
def parser() -> TimeParser:
    parser = TimeParser()
    parser.warm_up()
    return parser


def _at(tz: str, *when: int) -> datetime:
    return datetime(*when, tzinfo=ZoneInfo(tz))


def _said(
    parser: TimeParser,
    text: str,
    tz: str = "Asia/Shanghai",
    now: datetime | None = None,
    intent: str = "reminder.create",
) -> tuple[str | None, str | None]:
    got = parser.parse(text, tz, now or _at(tz, 2026, 11, 24, 15, 30), intent)
    return (got.rfc3339, got.rrule) if got else (None, None)


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("明天上午十点提醒我开会", "Asia/Shanghai", ("2026-11-25T10:00:00+08:00", None)),
        ("下周三下午三点提醒我交报告", "Asia/Shanghai", ("2026-12-02T15:00:00+08:00", None)),
        ("remind me in 20 minutes", "America/New_York", ("2026-11-24T15:50:00-05:00", None)),
        ("一个半小时后提醒我", "Asia/Shanghai", ("2026-11-24T17:00:00+08:00", None)),
        ("remind me at 4 to call mum", "Europe/Berlin", ("2026-11-24T16:00:00+01:00", None)),  # "at 4" is 16:00
        ("remind me at 9 to call mum", "Europe/Berlin", ("2026-11-24T21:00:00+01:00", None)),  # next 9 o'clock
        ("wake me up at 6:30", "Europe/Berlin", ("2026-11-25T06:30:00+01:00", None)),  # an alarm: the morning
        (
            "every weekday at 9 remind me to stand up",
            "America/New_York",
            ("2026-11-25T09:00:00-05:00", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0"),
        ),
        (
            "每月1号提醒我交房租",
            "Asia/Shanghai",
            ("2026-12-01T09:00:00+08:00", "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0"),
        ),
        (
            "每隔一天晚上九点提醒我",
            "Asia/Shanghai",
            ("2026-11-24T21:00:00+08:00", "FREQ=DAILY;INTERVAL=2;BYHOUR=21;BYMINUTE=0"),
        ),
        ("remind me every 30 minutes", "Asia/Tokyo", ("2026-11-24T16:00:00+09:00", "FREQ=MINUTELY;INTERVAL=30")),
        # A month-day already past this year is next year's, with that date's DST offset.
        ("remind me on March 9", "America/New_York", ("2027-03-09T09:00:00-05:00", None)),
        ("remind me on March 20", "America/New_York", ("2027-03-20T09:00:00-04:00", None)),
        ("明日早上八點提醒我", "Asia/Shanghai", ("2026-11-25T08:00:00+08:00", None)),  # traditional characters
        ("set reminder tmrw 7pm gym", "America/New_York", ("2026-11-25T19:00:00-05:00", None)),
    ],
)
def test_expressions(parser: TimeParser, text: str, tz: str, expected: tuple[str | None, str | None]) -> None:
    assert _said(parser, text, tz) == expected


def test_relative_time_crossing_a_dst_change_keeps_the_elapsed_time(parser: TimeParser) -> None:
    # 2027-03-14 02:00 New York jumps to 03:00: two hours after 01:30 EST is 04:30 EDT.
    now = _at("America/New_York", 2027, 3, 14, 1, 30)
    when, _ = _said(parser, "remind me in 2 hours", "America/New_York", now)
    assert when is not None
    assert (datetime.fromisoformat(when) - now).total_seconds() == 7200


def test_a_wall_clock_time_skipped_by_dst_moves_forward(parser: TimeParser) -> None:
    now = _at("America/New_York", 2027, 3, 13, 20, 0)
    assert _said(parser, "remind me tomorrow at 2:30 am", "America/New_York", now)[0] == "2027-03-14T03:30:00-04:00"


def test_listing_names_only_a_time(parser: TimeParser) -> None:
    assert _said(parser, "turn off the daily water reminder", intent="reminder.cancel") == (None, None)
    assert _said(parser, "cancel the 5 pm one", "America/New_York", intent="reminder.cancel") == (
        "2026-11-24T17:00:00-05:00",
        None,
    )


def test_source_text_and_spans_point_into_the_original_text(parser: TimeParser) -> None:
    text = "今晚 11 点提醒我早点睡觉"
    got = parser.parse(text, "Asia/Shanghai", _at("Asia/Shanghai", 2026, 11, 24, 15, 30))
    assert got is not None and got.rfc3339 == "2026-11-24T23:00:00+08:00"
    assert got.source_text == "今晚 11 点"
    assert [text[s:e] for s, e in got.spans] == ["今晚 11 点"]


@pytest.mark.parametrize(
    "text", ["", "   ", "😀😀😀", "\x00\x01\ufffd", "asdfghjkl qwerty", "提醒" * 200_000, "x" * 1_000_000]
)
def test_garbage_has_no_time(parser: TimeParser, text: str) -> None:
    assert _said(parser, text) == (None, None)


def test_dev_split_exact_match(parser: TimeParser) -> None:
    """Every reminder row of the dev split: datetime and rrule both exactly right (≥ 95 %)."""
    right = total = 0
    wrong = []
    for name in ("utterances.en.jsonl", "utterances.zh.jsonl"):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["split"] != "dev" or row["intent"] not in REMINDERS:
                continue
            gold = (row["slots"].get("datetime"), row["slots"].get("rrule"))
            got = _said(parser, row["text"], row["tz"], intent=row["intent"])
            total += 1
            right += got == gold
            if got != gold:
                wrong.append((row["id"], row["text"], gold, got))
    assert total >= 100
    assert right / total >= 0.95, wrong


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("两", 2),
        ("十", 10),
        ("十二", 12),
        ("二十五", 25),
        ("一百零五", 105),
        ("3", 3),
        ("1.5", 1.5),
        ("三点", None),
        ("", None),
    ],
)
def test_numerals(text: str, value: float | None) -> None:
    assert to_number(text) == value
