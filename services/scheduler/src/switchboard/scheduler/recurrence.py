"""When a job is due next: RRULE (RFC 5545) or cron, in the owner's time zone, DST-correct.

Recurrences are computed in local wall time and converted to an instant only at the end, so
"every day at 9" is 09:00 in New York in winter and in summer (14:00 UTC, then 13:00 UTC).
A wall time that does not exist on the day the clocks go forward (02:30 in New York on
the second Sunday of March) fires at the same distance after the gap (03:30), and one that
happens twice when they go back fires at the first (fold 0), as cron and calendars do.

Missed occurrences (the scheduler was down for a day) fire once, not once per miss: the
next occurrence is the first one after both the one just fired and now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from dateutil.rrule import rrule, rrulestr

# Longest RRULE / cron text accepted (they come from chat or from configuration).
MAX_RULE_CHARS = 500


class InvalidRecurrence(ValueError):
    """A rule, time zone or start that cannot make a schedule; the message says why."""


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A repeating schedule: exactly one of ``rrule`` and ``cron``, in ``time_zone``."""

    time_zone: str
    dtstart: datetime
    rrule: str | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.rrule is None) == (self.cron is None):
            raise InvalidRecurrence("a recurrence has either an RRULE or a cron expression")
        if self.dtstart.tzinfo is None:
            raise InvalidRecurrence("dtstart must carry its UTC offset")
        zone(self.time_zone)
        rule = self.rrule or self.cron or ""
        if len(rule) > MAX_RULE_CHARS:
            raise InvalidRecurrence(f"the rule is longer than {MAX_RULE_CHARS} characters")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise InvalidRecurrence(f"not a cron expression: {self.cron!r}")
        if self.rrule is not None:
            self._rule()  # raises on a bad rule

    def _rule(self) -> rrule:
        local_start = self.dtstart.astimezone(zone(self.time_zone))
        try:
            parsed = rrulestr(self.rrule or "", dtstart=local_start.replace(tzinfo=None))
        except (ValueError, TypeError) as exc:
            raise InvalidRecurrence(f"not an RRULE: {self.rrule!r} ({exc})") from None
        if not isinstance(parsed, rrule):
            raise InvalidRecurrence("one RRULE, not a set")
        return parsed

    def after(self, moment: datetime) -> datetime | None:
        """The first occurrence strictly after ``moment`` (UTC), or None when the rule ended."""
        tz = zone(self.time_zone)
        local = moment.astimezone(tz).replace(tzinfo=None)
        # Wall-time iteration over naive local datetimes, localised one by one (croniter's
        # own time-zone arithmetic fires twice around a DST change).
        candidate = self._next_wall(local)
        while candidate is not None:
            instant = _localise(candidate, tz)
            if instant > moment:
                return instant
            candidate = self._next_wall(candidate)  # a fold: same wall time, earlier instant
        return None

    def _next_wall(self, local: datetime) -> datetime | None:
        if self.cron is not None:
            found: datetime = croniter(self.cron, local).get_next(datetime)
            return found
        return self._rule().after(local, inc=False)

    def next_due(self, fired: datetime, now: datetime) -> datetime | None:
        """The occurrence after ``fired`` that is not already in the past (misses coalesce)."""
        return self.after(max(fired, now))

    def first(self) -> datetime | None:
        """The first occurrence at or after dtstart."""
        return self.after(self.dtstart - timedelta(microseconds=1))


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or InvalidRecurrence."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRecurrence(f"unknown time zone {name!r}") from None


def _localise(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant of wall time ``wall`` in ``tz``: a time in a DST gap moves forward by the
    gap; an ambiguous one is its first occurrence."""
    # zoneinfo reads a gap time with the offset from before the gap (fold 0), which lands
    # after the jump at the same distance past it, and an ambiguous one as its first.
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


_DAYS = {"MO": ("Mon", "一"), "TU": ("Tue", "二"), "WE": ("Wed", "三"), "TH": ("Thu", "四"), "FR": ("Fri", "五")}
_DAYS |= {"SA": ("Sat", "六"), "SU": ("Sun", "日")}


def describe(recurrence: Recurrence | None, language: str) -> str:
    """A short human description of how it repeats ("every weekday", "每天"), or ""."""
    if recurrence is None:
        return ""
    if recurrence.cron is not None:
        return f"cron {recurrence.cron}" if language != "zh" else f"按 cron {recurrence.cron}"
    parts = dict(p.split("=", 1) for p in (recurrence.rrule or "").upper().split(";") if "=" in p)
    freq, interval, days = parts.get("FREQ"), int(parts.get("INTERVAL", "1")), parts.get("BYDAY")
    zh = language == "zh"
    if freq == "DAILY":
        return (
            ("每天" if interval == 1 else f"每 {interval} 天")
            if zh
            else ("every day" if interval == 1 else f"every {interval} days")
        )
    if freq == "WEEKLY" and days:
        codes = days.split(",")
        if sorted(codes) == sorted(["MO", "TU", "WE", "TH", "FR"]):
            return "每个工作日" if zh else "every weekday"
        names = [_DAYS.get(c[-2:], (c, c))[1 if zh else 0] for c in codes]
        return ("每周" + "、".join(names)) if zh else "every " + ", ".join(names)
    if freq == "WEEKLY":
        return "每周" if zh else "every week"
    if freq == "MONTHLY":
        day = parts.get("BYMONTHDAY")
        if day:
            return f"每月 {day} 号" if zh else f"every month on day {day}"
        return "每月" if zh else "every month"
    if freq == "YEARLY":
        return "每年" if zh else "every year"
    return "重复" if zh else "repeating"
