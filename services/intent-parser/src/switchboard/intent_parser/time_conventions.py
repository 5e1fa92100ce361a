"""The product's time conventions (``data/README.md``): what was said -> a wall-clock instant.

:class:`Parts` collects what the expressions of one message said (filled by ``time_timex``
from the library's values and by ``time_rules``); :func:`resolve` applies the conventions in
the user's local wall-clock time (naive datetimes): a bare "at 3" is 15:00, a date without a
time is 09:00, a past time today means tomorrow, a recurrence fires first at its next
occurrence. A reminder is never set in the past: a time said for today or this week that has
gone rolls forward to its next occurrence; any other past or impossible date gives None, and
the caller asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr

# Part of day without a clock time (README: "Part of day without a clock time").
_PART_HOURS = {"MO": 9, "MI": 12, "AF": 15, "EV": 19, "NI": 19, "TONIGHT": 20, "NOON": 12}
DEFAULT_HOUR = 9
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass
class Parts:
    """What the expressions in one message said, before the conventions are applied."""

    date: date | None = None
    relative_date: bool = False
    weekdays: list[int] = field(default_factory=list)  # 0 = Monday ("Friday", "周五")
    month: int | None = None
    day: int | None = None
    next_year: bool = False
    hour: int | None = None
    minute: int = 0
    ambiguous: bool = False  # "at 3", "九点一刻": am or pm not said
    part: str | None = None
    instant: datetime | None = None  # a day and time resolved by a relative expression ("in 3 days")
    elapsed: timedelta | None = None  # "in 20 minutes": real time, across a DST change too
    freq: str | None = None
    interval: int = 1
    byday: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    alarm: bool = False  # an alarm or a wake-up: an ambiguous clock time is the morning's
    # When a date said as "today" / "this Monday" has passed: days to its next occurrence (0: ask).
    roll_days: int = 0
    unresolved: bool = False  # a date that does not exist ("the 31st" of a 30-day month): ask


def resolve(parts: Parts, now: datetime, future_only: bool = True) -> tuple[datetime, str | None] | None:
    """(first instant, RRULE or None), or None when nothing usable was said.

    With ``future_only`` (a reminder being set) an instant in the past is rolled forward when
    it was said for today or this week, and is None otherwise.
    """
    if parts.unresolved:
        return None
    if parts.freq:
        return _recurrence(parts, now)
    if parts.instant is not None:
        if parts.hour is None and parts.part is None:
            return _not_past(parts, parts.instant, now, future_only)
        parts.date = parts.instant.date()  # "三天后的早上": that day, at that part of the day
    day = _day(parts, now)
    clock = _clock(parts)
    if parts.unresolved:
        return None
    if day is None:
        if clock is None:
            return None
        return _next_clock(parts, clock, now, now.date()), None
    if clock is None:
        if parts.relative_date:
            return _not_past(parts, datetime.combine(day, now.time()), now, future_only)
        clock = time(DEFAULT_HOUR)
    return _not_past(parts, _next_clock(parts, clock, now, day, same_day_only=True), now, future_only)


def _not_past(parts: Parts, when: datetime, now: datetime, future_only: bool) -> tuple[datetime, None] | None:
    if when >= now or not future_only:
        return when, None
    # "this Monday" said on a Wednesday, "this morning at 3" said at 9: the next such day.
    step = 7 if parts.weekdays else parts.roll_days
    if step == 0:
        return None  # "yesterday", "last Monday", a date of a past year: ask
    days = (now - when).days // step * step + step
    when += timedelta(days=days)
    return (when if when >= now else when + timedelta(days=step)), None


def _day(parts: Parts, now: datetime) -> date | None:
    today = now.date()
    if parts.date is not None:
        return parts.date
    if parts.weekdays and parts.day is None:  # "Thu 16th", "9 June, Friday": the date said wins
        ahead = (parts.weekdays[0] - today.weekday()) % 7
        candidate = today + timedelta(days=ahead)
        clock = _clock(parts)
        if ahead == 0 and clock is not None and datetime.combine(today, clock) < now:
            candidate += timedelta(days=7)
        return candidate
    if parts.month is not None and parts.day is not None:
        found = _safe_date(today.year + (1 if parts.next_year else 0), parts.month, parts.day)
        if found is None or found < today:
            found = _safe_date(today.year + 1, parts.month, parts.day)
    elif parts.day is not None:  # "the 15th": this month's, or next month's when past
        found = _safe_date(today.year, today.month, parts.day)
        if found is None or found < today:
            following = today + relativedelta(months=1)
            found = _safe_date(following.year, following.month, parts.day)
    else:
        return None
    parts.unresolved = found is None  # "February 30", "the 31st" with no such day ahead: ask
    return found


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _clock(parts: Parts) -> time | None:
    if parts.hour is not None:
        hour = parts.hour
        if parts.ambiguous and 1 <= hour <= 6 and not parts.alarm:
            hour += 12  # "at 3" means 15:00, "at 2:30" 14:30
        return time(hour % 24, parts.minute % 60)
    if parts.part is not None:
        return time(_PART_HOURS.get(parts.part, DEFAULT_HOUR))
    return None


def _next_clock(parts: Parts, clock: time, now: datetime, day: date, same_day_only: bool = False) -> datetime:
    """The first of the candidate times (am and pm when ambiguous) that is still ahead."""
    candidates = [clock]
    if parts.ambiguous and not parts.alarm and clock.hour < 12 and not 1 <= clock.hour <= 6:
        candidates.append(time(clock.hour + 12, clock.minute))
    days = [day] if same_day_only else [day, day + timedelta(days=1)]
    for d in days:
        for c in sorted(candidates):
            moment = datetime.combine(d, c)
            if moment >= now or (same_day_only and d > now.date()):
                return moment
    return datetime.combine(days[-1], min(candidates))


def _recurrence(parts: Parts, now: datetime) -> tuple[datetime, str] | None:
    if parts.freq in ("HOURLY", "MINUTELY") and parts.hour is None and parts.part is None:
        step = timedelta(hours=parts.interval) if parts.freq == "HOURLY" else timedelta(minutes=parts.interval)
        rule = f"FREQ={parts.freq}" + (f";INTERVAL={parts.interval}" if parts.interval != 1 else "")
        return now + step, rule
    freq = parts.freq or "DAILY"
    if parts.byday and freq == "DAILY":
        freq = "WEEKLY"
    if parts.weekdays and not parts.byday:
        parts.byday = [WEEKDAYS[d] for d in parts.weekdays]
        freq = "WEEKLY" if freq in ("DAILY", "WEEKLY") else freq
    clock = _clock(parts) or time(DEFAULT_HOUR)
    pieces = [f"FREQ={freq}"]
    if parts.interval != 1:
        pieces.append(f"INTERVAL={parts.interval}")
    if freq == "YEARLY" and parts.month:
        pieces.append(f"BYMONTH={parts.month}")
    if freq in ("MONTHLY", "YEARLY") and parts.day:
        pieces.append(f"BYMONTHDAY={parts.day}")
    if parts.byday:
        order = sorted(set(parts.byday), key=WEEKDAYS.index)
        pieces.append("BYDAY=" + ",".join(order))
    pieces.append(f"BYHOUR={clock.hour}")
    pieces.append(f"BYMINUTE={clock.minute}")
    rule = ";".join(pieces)
    # The first occurrence is the next matching time; the interval counts from there
    # ("every other day at 6 pm" said at 15:30 fires today at 18:00, then every two days).
    every = ";".join(p for p in pieces if not p.startswith("INTERVAL="))
    first = rrulestr(every, dtstart=now.replace(second=0)).after(now, inc=True)
    if first is None:
        return None  # "every February 30th": no occurrence at all
    return first, rule
