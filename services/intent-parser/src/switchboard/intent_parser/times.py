"""Date and time expressions in Chinese and English -> RFC 3339 instant + RRULE.

Recognition is Microsoft Recognizers-Text's (``recognizers-text-date-time``, English and
Chinese cultures): it finds the expressions and gives each a TIMEX3 value ("XXXX-WXX-5T16:30",
"2026-11-25TAF", "P2W"...). This module turns those values into the product's answer under
the conventions written in ``data/README.md`` (a bare "at 3" is 15:00, a date without a time
is 09:00, "next Wednesday" is next week's, a past time today means tomorrow...), in the
user's time zone. A few expressions the library does not resolve ("每个工作日", "every
weekday", "一个半小时后", "每隔一天", "every 30 minutes") are read by the small rule layer
at the end of this file.

Everything is computed in the user's local wall-clock time (naive datetimes), then given
the zone's offset at that instant.
"""

from __future__ import annotations

import re
import threading
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr

from switchboard.intent_parser import numerals

# Part of day without a clock time (README: "Part of day without a clock time").
_PART_HOURS = {"MO": 9, "MI": 12, "AF": 15, "EV": 19, "NI": 19, "TONIGHT": 20, "NOON": 12}
_DEFAULT_HOUR = 9
# Only the start of a long message is read: the library's regexes are costly on long text,
# and a reminder is asked for in a sentence, not an essay.
MAX_CHARS = 400
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
_NOON = re.compile(r"\bnoon\b|\bmidday\b|中午|正午", re.IGNORECASE)
# A relative expression keeps the clock time of now ("in 3 days" = same time 3 days later).
_RELATIVE = re.compile(
    r"\bin\s+\w|from now|\blater\b|[\d零一二两三四五六七八九十]\s*个?(天|周|星期|月|年)[之以]?后", re.I
)
_NEXT_YEAR = re.compile(r"明年|next year", re.IGNORECASE)
_ALARM = re.compile(r"\balarm|\bwake\b|\bwake me|闹钟|叫醒|叫我起床", re.IGNORECASE)
# Words the library reads as "today" or a range that name no time for a reminder.
_VAGUE = re.compile(
    r"^(早|晚|最近|现在|目前|刚才|这周|本周|这个星期|这个月|本月|recently|now|right now|this week|this month)$", re.I
)
# "Which reminders today": the rest of the day, not an instant.
_TODAY = re.compile(r"^(今天|今日|today)$", re.I)
# The library's part of day, corrected by the words said (it reads 傍晚 as afternoon).
_PART_WORDS = [
    (re.compile(r"tonight|今晚|今天晚上", re.I), "TONIGHT"),
    (re.compile(r"evening|night|傍晚|晚上|晚", re.I), "EV"),
    (re.compile(r"\bnoon\b|midday|中午|正午", re.I), "NOON"),
    (re.compile(r"afternoon|下午|午后", re.I), "AF"),
    (re.compile(r"morning|上午|早上|早晨|清晨|早", re.I), "MO"),
]
# Spelling the library does not know, and traditional characters it reads less well.
_SLANG = re.compile(r"\b(2morrow|2moro|tmrw|tmr|tmrrw|tomoz|tomorow|tommorow|tommorrow)\b", re.I)
_TRADITIONAL = str.maketrans("點週號後鐘個兩時晚", "点周号后钟个两时晚")
# "今晚 11 点": the Chinese model wants the number against its unit.
_SPACE_IN_ZH = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=\d+\s*[点时号日月分])|(?<=\d)\s+(?=[点时号日月分])")


def _normalise(text: str) -> tuple[str, list[int]]:
    """``text`` as the library reads it best, and for each of its characters the index in ``text``."""
    text = text.translate(_TRADITIONAL)
    out: list[str] = []
    index: list[int] = []
    pos = 0
    edits = sorted(
        [(m.start(), m.end(), "tomorrow") for m in _SLANG.finditer(text)]
        + [(m.start(), m.end(), "") for m in _SPACE_IN_ZH.finditer(text)]
    )
    for start, end, replacement in edits:
        if start < pos:
            continue
        out.append(text[pos:start])
        index.extend(range(pos, start))
        out.append(replacement)
        index.extend([start] * len(replacement))
        pos = end
    out.append(text[pos:])
    index.extend(range(pos, len(text)))
    index.append(len(text))
    return "".join(out), index


@dataclass(frozen=True)
class TimeSlots:
    """When a reminder fires (its first occurrence) and, for a recurrence, its RRULE."""

    when: datetime
    rrule: str | None
    source_text: str
    spans: tuple[tuple[int, int], ...]

    @property
    def rfc3339(self) -> str:
        return self.when.isoformat(timespec="seconds")


@dataclass
class _Parts:
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


class TimeParser:
    """Finds the date/time expressions in a message and resolves them."""

    def __init__(self) -> None:
        # Building a culture's model compiles hundreds of regexes (~0.5 s); done once, lazily.
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _model(self, culture: str) -> Any:
        model = self._models.get(culture)
        if model is None:
            with self._lock:
                model = self._models.get(culture)
                if model is None:
                    with warnings.catch_warnings():
                        # The library's sources carry a few "is 0" comparisons Python 3.8+ warns about.
                        warnings.simplefilter("ignore", SyntaxWarning)
                        from recognizers_date_time import DateTimeRecognizer

                    model = DateTimeRecognizer(culture).get_datetime_model()
                    self._models[culture] = model
        return model

    def warm_up(self) -> None:
        """Build both cultures' models now rather than on the first message."""
        self._model("zh-cn")
        self._model("en-us")

    def parse(self, text: str, time_zone: str, now: datetime, intent: str = "reminder.create") -> TimeSlots | None:
        """The time slots of ``text`` said at ``now`` (aware) by a user in ``time_zone``.

        For ``reminder.list`` / ``reminder.cancel`` only a named time counts: "cancel the
        daily one" or "这周的提醒" name a reminder or a range, not an instant.
        """
        zone = ZoneInfo(time_zone)
        text = text[:MAX_CHARS]
        local_now = now.astimezone(zone).replace(tzinfo=None, microsecond=0)
        norm, index = _normalise(text)
        parts = _Parts(alarm=bool(_ALARM.search(norm)))
        listing = intent in ("reminder.list", "reminder.cancel")
        reserved = _read_rules(norm, local_now, parts)
        for result in self._recognize(norm, local_now, reserved):
            _read_result(result, norm, local_now, parts, listing)
        if parts.freq and parts.spans:
            # "每个月" or "every year" alone: read again what follows, masked of what was read.
            masked = _mask(norm, parts.spans)
            for result in self._recognize(masked, local_now, parts.spans):
                _read_result(result, norm, local_now, parts, listing)
        if listing:
            if parts.freq and parts.hour is None and parts.part is None:
                return None
            parts.freq, parts.byday = None, []
        if not parts.spans:
            return None
        if parts.elapsed is not None and not parts.freq:
            when = (now.astimezone(ZoneInfo("UTC")) + parts.elapsed).astimezone(zone)
            return self._slots(text, index, parts, when, None)
        resolved = _resolve(parts, local_now)
        if resolved is None:
            return None
        when, rule = resolved
        return self._slots(text, index, parts, _localise(when, zone), rule)

    @staticmethod
    def _slots(text: str, index: list[int], parts: _Parts, when: datetime, rule: str | None) -> TimeSlots:
        spans = tuple(sorted({(index[s], index[e - 1] + 1) for s, e in parts.spans}))
        source = " ".join(text[s:e].strip() for s, e in _merge(spans)).strip()
        return TimeSlots(when=when, rrule=rule, source_text=source, spans=spans)

    def _recognize(self, text: str, now: datetime, taken: list[tuple[int, int]]) -> list[Any]:
        cultures = []
        if _CJK.search(text):
            cultures.append("zh-cn")
        if _LATIN.search(text) or not cultures:
            cultures.append("en-us")
        found: list[Any] = []
        for culture in cultures:
            found.extend(self._model(culture).parse(text, now))
        # Longest first; drop what overlaps an expression already taken.
        found.sort(key=lambda r: -(r.end - r.start))
        kept = []
        occupied = list(taken)
        for result in found:
            span = (result.start, result.end + 1)
            if any(span[0] < e and s < span[1] for s, e in occupied):
                continue
            occupied.append(span)
            kept.append(result)
        return kept


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        for i in range(start, min(end, len(chars))):
            chars[i] = " "
    return "".join(chars)


def _merge(spans: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _localise(local: datetime, zone: ZoneInfo) -> datetime:
    """``local`` wall-clock time in ``zone``; a time skipped by a DST change moves forward."""
    aware = local.replace(tzinfo=zone)
    return aware.astimezone(ZoneInfo("UTC")).astimezone(zone)


# --- reading the library's TIMEX values --------------------------------------------------------

_TIMEX_DATE = re.compile(r"^(?P<y>\d{4}|XXXX)-(?P<m>\d{2}|XX)-(?P<d>\d{2}|XX)")
_TIMEX_WEEKDAY = re.compile(r"^XXXX-WXX-(?P<wd>[1-7])")
_TIMEX_WEEK = re.compile(r"^(?P<y>\d{4})-W(?P<w>\d{2})$")
_TIMEX_MONTH = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{2})$")
_TIMEX_TIME = re.compile(r"T(?P<h>\d{2})(?::(?P<mi>\d{2}))?(?::\d{2})?$")
_TIMEX_PART = re.compile(r"T(?P<part>MO|MI|AF|EV|NI|DT)$")
_TIMEX_DURATION = re.compile(r"^P(?P<t>T)?(?P<n>\d+(?:\.\d+)?)(?P<unit>[YMWDHS])$")
_FREQ_BY_UNIT = {
    ("", "Y"): "YEARLY",
    ("", "M"): "MONTHLY",
    ("", "W"): "WEEKLY",
    ("", "D"): "DAILY",
    ("T", "H"): "HOURLY",
    ("T", "M"): "MINUTELY",
}


def _read_result(result: Any, text: str, now: datetime, parts: _Parts, listing: bool) -> None:
    values = (result.resolution or {}).get("values") or []
    kind = result.type_name.rsplit(".", 1)[-1]
    span_text = text[result.start : result.end + 1]
    if not values or _VAGUE.match(span_text.strip()) or (listing and _TODAY.match(span_text.strip())):
        return
    timex = values[0].get("timex", "")
    used = False
    if kind == "set":
        used = _read_set(timex, parts)
    elif kind == "duration":
        return  # a bare duration ("半小时") is read by the rules when it is relative
    else:
        used = _read_timex(timex, values, kind, span_text, now, parts)
    if used:
        parts.spans.append((result.start, result.end + 1))


def _read_set(timex: str, parts: _Parts) -> bool:
    duration = _TIMEX_DURATION.match(timex)
    if duration:
        freq = _FREQ_BY_UNIT.get((duration["t"] or "", duration["unit"]))
        if freq is None:
            return False
        parts.freq = parts.freq or freq
        parts.interval = max(parts.interval, int(float(duration["n"])))
        return True
    weekday = _TIMEX_WEEKDAY.match(timex)
    if weekday:
        parts.freq = "WEEKLY"
        if int(weekday["wd"]) - 1 not in parts.weekdays:
            parts.weekdays.append(int(weekday["wd"]) - 1)
    else:
        parts.freq = parts.freq or "DAILY"
    _read_clock(timex, [], parts)
    return True


def _read_timex(timex: str, values: list[dict[str, Any]], kind: str, span: str, now: datetime, parts: _Parts) -> bool:
    used = False
    if kind in ("datetime", "date") and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$", timex):
        # "in 45 minutes", "两小时后": already an instant.
        parts.instant = datetime.fromisoformat(timex)
        return True
    date_match = _TIMEX_DATE.match(timex)
    weekday = _TIMEX_WEEKDAY.match(timex)
    week = _TIMEX_WEEK.match(timex)
    month = _TIMEX_MONTH.match(timex)
    if weekday:
        if int(weekday["wd"]) - 1 not in parts.weekdays:
            parts.weekdays.append(int(weekday["wd"]) - 1)
        used = True
    elif date_match:
        y, m, d = date_match["y"], date_match["m"], date_match["d"]
        if y != "XXXX" and m != "XX" and d != "XX":
            parts.date = date(int(y), int(m), int(d))
            parts.relative_date = bool(_RELATIVE.search(span)) and kind == "date"
        else:
            parts.month = None if m == "XX" else int(m)
            parts.day = None if d == "XX" else int(d)
            parts.next_year = parts.next_year or bool(_NEXT_YEAR.search(span))
        used = True
    elif week:
        # "next week": Monday of that ISO week.
        parts.date = date.fromisocalendar(int(week["y"]), int(week["w"]), 1)
        used = True
    elif month:
        parts.date = date(int(month["y"]), int(month["m"]), 1)
        used = True
    elif timex.startswith("(") and kind == "daterange" and _RELATIVE.search(span):
        # "in a week": (start,end,P1W) -> now + the duration, same clock time.
        duration = timex.rstrip(")").rsplit(",", 1)[-1]
        delta = _duration(duration)
        if delta is not None:
            parts.instant = now + delta
            used = True
    if _read_clock(timex, values, parts, span):
        used = True
    return used


def _read_clock(timex: str, values: list[dict[str, Any]], parts: _Parts, span: str = "") -> bool:
    part = _TIMEX_PART.search(timex)
    if part:
        said = next((name for pattern, name in _PART_WORDS if pattern.search(span)), None)
        parts.part = said or part["part"]
        return True
    clock = _TIMEX_TIME.search(timex)
    if clock:
        parts.hour = int(clock["h"])
        parts.minute = int(clock["mi"] or 0)
        # Two values 12 h apart: the library could not tell am from pm.
        parts.ambiguous = len({v.get("timex") for v in values}) > 1
        return True
    if _NOON.search(span):
        parts.part = "NOON"
        return True
    return False


def _duration(value: str) -> timedelta | relativedelta | None:
    match = _TIMEX_DURATION.match(value)
    if not match:
        return None
    n = float(match["n"])
    unit = (match["t"] or "") + match["unit"]
    return {
        "Y": relativedelta(years=int(n)),
        "M": relativedelta(months=int(n)),
        "W": timedelta(weeks=n),
        "D": timedelta(days=n),
        "TH": timedelta(hours=n),
        "TM": timedelta(minutes=n),
        "TS": timedelta(seconds=n),
    }.get(unit)


# --- the product's conventions --------------------------------------------------------------


def _resolve(parts: _Parts, now: datetime) -> tuple[datetime, str | None] | None:
    if parts.freq:
        return _recurrence(parts, now)
    if parts.instant is not None:
        if parts.hour is None and parts.part is None:
            return parts.instant, None
        parts.date = parts.instant.date()  # "三天后的早上": that day, at that part of the day
    day = _day(parts, now)
    clock = _clock(parts)
    if day is None:
        if clock is None:
            return None
        return _next_clock(parts, clock, now, now.date()), None
    if clock is None:
        if parts.relative_date:
            return datetime.combine(day, now.time()), None
        clock = time(_DEFAULT_HOUR)
    return _next_clock(parts, clock, now, day, same_day_only=True), None


def _day(parts: _Parts, now: datetime) -> date | None:
    today = now.date()
    if parts.date is not None:
        return parts.date
    if parts.weekdays:
        ahead = (parts.weekdays[0] - today.weekday()) % 7
        candidate = today + timedelta(days=ahead)
        if ahead == 0 and _clock(parts) is not None and datetime.combine(today, _clock(parts)) < now:
            candidate += timedelta(days=7)
        return candidate
    if parts.month is not None and parts.day is not None:
        candidate = _safe_date(today.year + (1 if parts.next_year else 0), parts.month, parts.day)
        if candidate is None or candidate < today:
            candidate = _safe_date(today.year + 1, parts.month, parts.day)
        return candidate
    if parts.day is not None:  # "the 15th": this month's, or next month's when past
        candidate = _safe_date(today.year, today.month, parts.day)
        if candidate is None or candidate < today:
            following = today + relativedelta(months=1)
            candidate = _safe_date(following.year, following.month, parts.day)
        return candidate
    return None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _clock(parts: _Parts) -> time | None:
    if parts.hour is not None:
        hour = parts.hour
        if parts.ambiguous and 1 <= hour <= 6 and parts.minute == 0 and not parts.alarm:
            hour += 12  # "at 3" means 15:00
        return time(hour % 24, parts.minute)
    if parts.part is not None:
        return time(_PART_HOURS.get(parts.part, _DEFAULT_HOUR))
    return None


def _next_clock(parts: _Parts, clock: time, now: datetime, day: date, same_day_only: bool = False) -> datetime:
    """The first of the candidate times (am and pm when ambiguous) that is still ahead."""
    candidates = [clock]
    if parts.ambiguous and not parts.alarm and clock.hour < 12 and not (1 <= clock.hour <= 6 and clock.minute == 0):
        candidates.append(time(clock.hour + 12, clock.minute))
    days = [day] if same_day_only else [day, day + timedelta(days=1)]
    for d in days:
        for c in sorted(candidates):
            moment = datetime.combine(d, c)
            if moment >= now or (same_day_only and d > now.date()):
                return moment
    return datetime.combine(days[-1], min(candidates))


def _recurrence(parts: _Parts, now: datetime) -> tuple[datetime, str]:
    if parts.freq in ("HOURLY", "MINUTELY") and parts.hour is None and parts.part is None:
        step = timedelta(hours=parts.interval) if parts.freq == "HOURLY" else timedelta(minutes=parts.interval)
        rule = f"FREQ={parts.freq}" + (f";INTERVAL={parts.interval}" if parts.interval != 1 else "")
        return now + step, rule
    freq = parts.freq or "DAILY"
    if parts.byday and freq == "DAILY":
        freq = "WEEKLY"
    if parts.weekdays and not parts.byday:
        parts.byday = [_WEEKDAYS[d] for d in parts.weekdays]
        freq = "WEEKLY" if freq in ("DAILY", "WEEKLY") else freq
    clock = _clock(parts) or time(_DEFAULT_HOUR)
    pieces = [f"FREQ={freq}"]
    if parts.interval != 1:
        pieces.append(f"INTERVAL={parts.interval}")
    if freq == "YEARLY" and parts.month:
        pieces.append(f"BYMONTH={parts.month}")
    if freq in ("MONTHLY", "YEARLY") and parts.day:
        pieces.append(f"BYMONTHDAY={parts.day}")
    if parts.byday:
        order = sorted(set(parts.byday), key=_WEEKDAYS.index)
        pieces.append("BYDAY=" + ",".join(order))
    pieces.append(f"BYHOUR={clock.hour}")
    pieces.append(f"BYMINUTE={clock.minute}")
    rule = ";".join(pieces)
    # The first occurrence is the next matching time; the interval counts from there
    # ("every other day at 6 pm" said at 15:30 fires today at 18:00, then every two days).
    every = ";".join(p for p in pieces if not p.startswith("INTERVAL="))
    first = rrulestr(every, dtstart=now.replace(second=0)).after(now, inc=True)
    return first, rule


# --- what the library leaves out ------------------------------------------------------------

_N = r"(?:\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百]+)"
_ZH_RELATIVE = re.compile(
    rf"(?P<n>{_N})?\s*(?:个)?(?P<half>半)?\s*(?P<unit>分钟|分|min|mins|小时|个?钟头|h|hr|hrs|天|日|周|星期|个?月|年)"
    rf"(?P<half2>半)?\s*(?:之后|以后|后)"
)
_ZH_QUARTER = re.compile(r"(?P<n>[一二两三四五六七八九\d])?刻钟(?:之后|以后|后)")
_EN_COUNT = (
    r"\d+(?:\.\d+)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|fifteen|twenty|thirty|forty-five|ninety"
)
_EN_RELATIVE = re.compile(
    rf"(?:\bin\s+(?P<n>{_EN_COUNT})\s+(?P<unit>minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)"
    rf"(?P<half>\s+and\s+a\s+half)?\b"
    rf"|\b(?P<n2>{_EN_COUNT})\s+(?P<unit2>minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)"
    rf"(?P<half2>\s+and\s+a\s+half)?\s+(?:from\s+now|later)\b"
    rf"|\bin\s+half\s+an\s+hour\b|\bhalf\s+an\s+hour\s+from\s+now\b)",
    re.I,
)
_EN_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty-five": 45,
    "ninety": 90,
}
_EVERY_WEEKDAY = re.compile(
    r"every\s+weekday|(?:on\s+)?weekdays|monday\s+(?:through|to|-)\s+friday|工作日|周一到周五|星期一到星期五", re.I
)
_EVERY_WEEKEND = re.compile(r"every\s+weekend|(?:on\s+)?weekends|每个?周末|每个?星期六日|每逢周末", re.I)
_EVERY_ZH = re.compile(rf"每隔?(?P<n>{_N})?\s*(?:个)?(?P<unit>分钟|小时|钟头|天|日|周|星期|礼拜|月|年)")
_EVERY_EN = re.compile(
    r"\bevery\s+(?P<n>\d+|other|second|two|three|four|five|six)?\s*(?P<unit>minute|hour|day|week|month|year)s?\b", re.I
)
_EN_ORDINAL = {"other": 2, "second": 2, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_ZH_WEEKDAY = re.compile(r"(?:周|星期|礼拜)(?P<d>[一二三四五六日天1-7])")
_ZH_WEEKDAY_INDEX = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_ZH_MONTH_DAY = re.compile(rf"(?:(?P<m>{_N})月)?(?P<d>{_N})[号日]")
_UNIT = {
    "分钟": "minutes",
    "分": "minutes",
    "min": "minutes",
    "mins": "minutes",
    "小时": "hours",
    "钟头": "hours",
    "h": "hours",
    "hr": "hours",
    "hrs": "hours",
    "天": "days",
    "日": "days",
    "周": "weeks",
    "星期": "weeks",
    "月": "months",
    "年": "years",
}
_ZH_FREQ = {
    "分钟": "MINUTELY",
    "小时": "HOURLY",
    "钟头": "HOURLY",
    "天": "DAILY",
    "日": "DAILY",
    "周": "WEEKLY",
    "星期": "WEEKLY",
    "礼拜": "WEEKLY",
    "月": "MONTHLY",
    "年": "YEARLY",
}
_EN_FREQ = {
    "minute": "MINUTELY",
    "hour": "HOURLY",
    "day": "DAILY",
    "week": "WEEKLY",
    "month": "MONTHLY",
    "year": "YEARLY",
}


def _shift(parts: _Parts, now: datetime, count: float, unit: str) -> None:
    if unit in ("minutes", "hours"):
        parts.elapsed = timedelta(**{unit: count})
    elif unit in ("months", "years"):
        parts.instant = now + relativedelta(**{unit: int(count)})
    else:
        parts.instant = now + timedelta(**{unit: count})


def _en_unit(word: str) -> str:
    word = word.lower().rstrip("s")
    return {"min": "minutes", "minute": "minutes", "hr": "hours", "hour": "hours"}.get(word, word + "s")


def _read_rules(text: str, now: datetime, parts: _Parts) -> list[tuple[int, int]]:
    """Expressions the library misses or resolves against the conventions.

    Returns the spans read here that the library's own reading must not override.
    """
    reserved: list[tuple[int, int]] = []
    relative = _ZH_RELATIVE.search(text)
    quarter = _ZH_QUARTER.search(text)
    english = _EN_RELATIVE.search(text)
    if quarter is not None:
        count = numerals.to_number(quarter["n"]) if quarter["n"] else 1
        parts.elapsed = timedelta(minutes=15 * (count or 1))
        reserved.append(quarter.span())
    elif relative is not None:
        count = numerals.to_number(relative["n"]) if relative["n"] else (0 if relative["half"] else None)
        if count is not None:
            count += 0.5 if (relative["half"] or relative["half2"]) else 0
            _shift(parts, now, count, _UNIT[relative["unit"].lstrip("个")])
            reserved.append(relative.span())
    elif english is not None:
        raw, unit = english["n"] or english["n2"], english["unit"] or english["unit2"]
        if raw is None:  # "in half an hour"
            count, unit = 0.5, "hours"
        else:
            count = _EN_WORDS.get(raw.lower()) or float(raw)
            count += 0.5 if (english["half"] or english["half2"]) else 0
            unit = _en_unit(unit)
        _shift(parts, now, count, unit)
        reserved.append(english.span())
    parts.spans.extend(reserved)

    weekday = _EVERY_WEEKDAY.search(text)
    weekend = _EVERY_WEEKEND.search(text)
    if weekday:
        parts.freq, parts.byday = "WEEKLY", ["MO", "TU", "WE", "TH", "FR"]
        parts.spans.append(weekday.span())
    elif weekend:
        parts.freq, parts.byday = "WEEKLY", ["SA", "SU"]
        parts.spans.append(weekend.span())
    every = _EVERY_ZH.search(text)
    if every and not (weekday or weekend):
        n = numerals.to_number(every["n"]) if every["n"] else 1
        if n:
            spaced = text[every.start() + 1] == "隔"
            freq = _ZH_FREQ[every["unit"]]
            parts.freq = freq
            # "每隔一天" is every other day; "每隔两小时" every two hours (README).
            parts.interval = int(n) + 1 if spaced and freq in ("DAILY", "WEEKLY", "MONTHLY") else int(n)
            parts.spans.append(every.span())
            if freq == "WEEKLY":
                for m in _ZH_WEEKDAY.finditer(text, every.start()):
                    d = m["d"]
                    day = _ZH_WEEKDAY_INDEX[d] if d in _ZH_WEEKDAY_INDEX else int(d) - 1
                    if day not in parts.weekdays:
                        parts.weekdays.append(day)
            if freq in ("MONTHLY", "YEARLY"):
                md = _ZH_MONTH_DAY.search(text, every.end())
                if md:
                    parts.spans.append(md.span())
                    parts.day = int(numerals.to_number(md["d"]) or 0) or None
                    parts.month = int(numerals.to_number(md["m"]) or 0) or None if md["m"] else None
    every_en = _EVERY_EN.search(text)
    if every_en and not parts.freq:
        raw = (every_en["n"] or "").lower()
        parts.freq = _EN_FREQ[every_en["unit"].lower()]
        parts.interval = int(raw) if raw.isdigit() else _EN_ORDINAL.get(raw, 1)
        parts.spans.append(every_en.span())
    return reserved
