"""Recurrences in the owner's time zone: wall time kept across DST, gaps and folds, misses coalesced."""

from datetime import UTC, datetime, timedelta

import pytest

from switchboard.scheduler.recurrence import InvalidRecurrence, Recurrence, describe

NY = "America/New_York"


def _series(rule: Recurrence, count: int) -> list[str]:
    moment = rule.first()
    out = []
    for _ in range(count):
        assert moment is not None
        out.append(moment.isoformat())
        moment = rule.after(moment)
    return out


@pytest.mark.parametrize(
    "rule",
    [
        Recurrence(NY, datetime(2026, 3, 6, 14, tzinfo=UTC), rrule="FREQ=DAILY;BYHOUR=9;BYMINUTE=0"),
        Recurrence(NY, datetime(2026, 3, 6, 14, tzinfo=UTC), cron="0 9 * * *"),
    ],
)
def test_nine_every_morning_stays_nine_when_the_clocks_go_forward(rule: Recurrence) -> None:
    # DST starts in New York on Sunday 8 March 2026: 09:00 is 14:00 UTC before, 13:00 UTC after.
    assert _series(rule, 4) == [
        "2026-03-06T14:00:00+00:00",
        "2026-03-07T14:00:00+00:00",
        "2026-03-08T13:00:00+00:00",
        "2026-03-09T13:00:00+00:00",
    ]


def test_and_when_they_go_back() -> None:
    rule = Recurrence("Europe/Berlin", datetime(2026, 10, 24, 7, tzinfo=UTC), rrule="FREQ=DAILY;BYHOUR=9;BYMINUTE=0")
    assert _series(rule, 3) == ["2026-10-24T07:00:00+00:00", "2026-10-25T08:00:00+00:00", "2026-10-26T08:00:00+00:00"]


def test_a_time_in_the_gap_fires_after_it_and_a_repeated_time_fires_once() -> None:
    gap = Recurrence(NY, datetime(2026, 3, 7, 7, 30, tzinfo=UTC), rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30")
    # 02:30 does not exist on 8 March: 03:30 EDT (07:30 UTC); then 02:30 EDT (06:30 UTC).
    assert _series(gap, 3) == ["2026-03-07T07:30:00+00:00", "2026-03-08T07:30:00+00:00", "2026-03-09T06:30:00+00:00"]
    fold = Recurrence(NY, datetime(2026, 10, 31, 5, 30, tzinfo=UTC), rrule="FREQ=DAILY;BYHOUR=1;BYMINUTE=30")
    # 01:30 happens twice on 1 November: it fires at the first (EDT, 05:30 UTC), once.
    assert _series(fold, 3) == ["2026-10-31T05:30:00+00:00", "2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00"]


def test_weekdays_only_and_the_end_of_a_rule() -> None:
    weekdays = Recurrence(
        "Asia/Shanghai", datetime(2026, 11, 27, 1, tzinfo=UTC), rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9"
    )
    assert [d[:10] for d in _series(weekdays, 3)] == ["2026-11-27", "2026-11-30", "2026-12-01"]
    twice = Recurrence(NY, datetime(2026, 1, 1, 14, tzinfo=UTC), rrule="FREQ=DAILY;COUNT=2")
    second = twice.after(datetime(2026, 1, 1, 14, tzinfo=UTC))
    assert second == datetime(2026, 1, 2, 14, tzinfo=UTC) and twice.after(second) is None


def test_missed_occurrences_fire_once_then_the_schedule_resumes() -> None:
    daily = Recurrence(NY, datetime(2026, 1, 1, 14, tzinfo=UTC), rrule="FREQ=DAILY")
    fired = datetime(2026, 1, 1, 14, tzinfo=UTC)
    back_up = datetime(2026, 1, 5, 20, tzinfo=UTC)  # down for four days
    assert daily.next_due(fired, back_up) == datetime(2026, 1, 6, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rrule": "FREQ=SOMETIMES"}, "not an RRULE"),
        ({"cron": "every day"}, "not a cron"),
        ({"rrule": "FREQ=DAILY", "cron": "0 9 * * *"}, "either"),
        ({}, "either"),
        ({"rrule": "FREQ=DAILY;" * 100}, "longer than"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(kwargs: dict[str, str], error: str) -> None:
    with pytest.raises(InvalidRecurrence, match=error):
        Recurrence(NY, datetime(2026, 1, 1, tzinfo=UTC), **kwargs)
    with pytest.raises(InvalidRecurrence, match="unknown time zone"):
        Recurrence("Mars/Olympus", datetime(2026, 1, 1, tzinfo=UTC), rrule="FREQ=DAILY")


def test_descriptions() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    weekdays = Recurrence(NY, start, rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9")
    assert (describe(weekdays, "en"), describe(weekdays, "zh")) == ("every weekday", "每个工作日")
    monthly = Recurrence(NY, start, rrule="FREQ=MONTHLY;BYMONTHDAY=1")
    assert describe(monthly, "en") == "every month on day 1" and describe(None, "en") == ""
    assert describe(Recurrence(NY, start, rrule="FREQ=WEEKLY;BYDAY=SA,SU"), "en") == "every Sat, Sun"
    assert describe(Recurrence(NY, start + timedelta(days=1), rrule="FREQ=DAILY;INTERVAL=2"), "zh") == "每 2 天"
