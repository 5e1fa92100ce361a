"""Reading Recognizers-Text's results (TIMEX3 values) into :class:`~.time_conventions.Parts`.

The library gives each expression it finds a type ("date", "datetime", "set"...) and TIMEX
values ("XXXX-WXX-5T16:30", "2026-11-25TAF", "P2W", "XXXX-05-WXX-5-#1"). Its values are not
always valid dates ("2026-11-31", "2026-12-00" for "31 of next month"): such a date marks the
parts unresolved, so the user is asked, instead of raising or silently falling back to today.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from switchboard.intent_parser.time_conventions import Parts

# Words the library reads as "today" or a range that name no time for a reminder.
_VAGUE = re.compile(
    r"^(早|晚|最近|现在|目前|刚才|这周|本周|这个星期|这个月|本月|recently|now|right now|this week|this month)$", re.I
)
# "Which reminders today": the rest of the day, not an instant.
_TODAY = re.compile(r"^(今天|今日|today)$", re.I)
_NOON = re.compile(r"\bnoon\b|\bmidday\b|中午|正午", re.IGNORECASE)
# A relative expression keeps the clock time of now ("in 3 days" = same time 3 days later).
_RELATIVE = re.compile(
    r"\bin\s+\w|from now|\blater\b|[\d零一二两三四五六七八九十]\s*个?(天|周|星期|月|年)[之以]?后", re.I
)
_NEXT_YEAR = re.compile(r"明年|next year", re.IGNORECASE)
# A day named by its weekday ("this Monday", "这周一"): when it has passed, next week's.
_WEEKDAY_WORD = re.compile(
    r"\b(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\b|周[一二三四五六日天]|星期[一二三四五六日天]|礼拜[一二三四五六日天]",
    re.I,
)
# ... but not one said for the past ("last Monday", "上周一"), which is asked about.
_PAST_WORD = re.compile(r"\blast\b|\bprevious\b|\bago\b|yesterday|上个?(?:周|星期|礼拜|月)|前天|昨", re.I)
# The library's part of day, corrected by the words said (it reads 傍晚 as afternoon).
_PART_WORDS = [
    (re.compile(r"tonight|今晚|今天晚上", re.I), "TONIGHT"),
    (re.compile(r"evening|night|傍晚|晚上|晚", re.I), "EV"),
    (re.compile(r"\bnoon\b|midday|中午|正午", re.I), "NOON"),
    (re.compile(r"afternoon|下午|午后", re.I), "AF"),
    (re.compile(r"morning|上午|早上|早晨|清晨|早", re.I), "MO"),
]
# Midnight said in Chinese, which the library reads as noon.
_MIDNIGHT_ZERO = re.compile(r"(?<![\d十])(?:零|0|\u3007)点")
_NIGHT_TWELVE = re.compile(
    r"(?:晚上|今晚|夜里|夜|凌晨|午夜)(?:十二|12)点|\b12(?::[0-5]\d)?\s*(?:tonight|at\s+night)\b|\btonight\s+at\s+12\b",
    re.I,
)
# "1am tonight": the night's 1 am, which the library reads as 13:00.
_AM_TONIGHT = re.compile(
    r"\b(?P<h>[1-5])(?::[0-5]\d)?\s*a\.?m\.?\s+tonight\b|\btonight\s+at\s+(?P<h2>[1-5])(?::[0-5]\d)?\s*a\.?m\b", re.I
)
_RANGE_START = re.compile(r"^\((?P<start>[^,()]+),[^,()]+,[^,()]+\)$")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_TIMEX_DATE = re.compile(r"^(?P<y>\d{4}|XXXX)-(?P<m>\d{2}|XX)-(?P<d>\d{2}|XX)")
# "the first Friday of May": XXXX-05-WXX-5-#1 (the year is said or not).
_TIMEX_NTH_WEEKDAY = re.compile(r"^(?P<y>\d{4}|XXXX)-(?P<m>\d{2})-WXX-(?P<wd>[1-7])-#(?P<n>[1-5])")
_TIMEX_WEEKDAY = re.compile(r"^XXXX-WXX-(?P<wd>[1-7])")
_TIMEX_WEEK = re.compile(r"^(?P<y>\d{4})-W(?P<w>\d{2})(?P<weekend>-WE)?$")
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


def read_result(result: Any, text: str, now: datetime, parts: Parts, listing: bool) -> None:
    """Add what one library result says to ``parts`` (``text``: the text the library read)."""
    values = (result.resolution or {}).get("values") or []
    kind = result.type_name.rsplit(".", 1)[-1]
    span_text = text[result.start : result.end + 1]
    if not values or _VAGUE.match(span_text.strip()) or (listing and _TODAY.match(span_text.strip())):
        return
    timex = values[0].get("timex") or ""
    used = False
    if kind in ("timerange", "datetimerange") and (start := _RANGE_START.match(timex)):
        # "tomorrow 10am-11am", "下午5点-7点": a reminder for a span of time fires at its start.
        timex, kind = start["start"], "time" if start["start"].startswith("T") else "datetime"
        values = [{"timex": timex}]
    if kind == "set":
        used = _read_set(timex, parts)
    elif kind == "duration":
        return  # a bare duration ("半小时") is read by the rules when it is relative
    else:
        used = _read_timex(timex, values, kind, span_text, now, parts)
    if used:
        parts.spans.append((result.start, result.end + 1))


def _read_set(timex: str, parts: Parts) -> bool:
    duration = _TIMEX_DURATION.match(timex)
    if duration:
        freq = _FREQ_BY_UNIT.get((duration["t"] or "", duration["unit"]))
        if freq is None:
            return False
        parts.freq = parts.freq or freq
        parts.interval = max(parts.interval, int(float(duration["n"])) or 1)
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


def _read_timex(timex: str, values: list[dict[str, Any]], kind: str, span: str, now: datetime, parts: Parts) -> bool:
    if kind in ("datetime", "date") and _INSTANT.match(timex):
        # "in 45 minutes", "两小时后": already an instant.
        try:
            parts.instant = datetime.fromisoformat(timex)
        except ValueError:
            parts.unresolved = True
        return True
    used = _read_day(timex, kind, span, now, parts)
    if _read_clock(timex, values, parts, span):
        used = True
        if _MIDNIGHT_ZERO.search(span) or (parts.hour == 12 and _NIGHT_TWELVE.search(span)):
            # "零点" is 00:00; "今晚12点" / "半夜十二点" is the midnight that ends the day said.
            ends_day = parts.hour == 12 and parts.date is not None and _TIMEX_DATE.match(timex)
            parts.hour, parts.ambiguous = 0, False
            if ends_day and parts.date is not None:
                parts.date += timedelta(days=1)
        elif (night := _AM_TONIGHT.search(span)) and parts.hour == int(night["h"] or night["h2"]) + 12:
            parts.hour, parts.ambiguous = parts.hour - 12, False  # today's has passed: it rolls to the night's
    return used


def _read_day(timex: str, kind: str, span: str, now: datetime, parts: Parts) -> bool:
    nth = _TIMEX_NTH_WEEKDAY.match(timex)
    date_match = _TIMEX_DATE.match(timex)
    weekday = _TIMEX_WEEKDAY.match(timex)
    week = _TIMEX_WEEK.match(timex)
    month = _TIMEX_MONTH.match(timex)
    if weekday:
        if int(weekday["wd"]) - 1 not in parts.weekdays:
            parts.weekdays.append(int(weekday["wd"]) - 1)
    elif nth:
        parts.date = _nth_weekday(nth, now.date())
        parts.unresolved = parts.unresolved or parts.date is None
    elif date_match:
        y, m, d = date_match["y"], date_match["m"], date_match["d"]
        if y != "XXXX" and m != "XX" and d != "XX":
            parts.date = _date(int(y), int(m), int(d))
            if parts.date is None:
                parts.unresolved = True  # "2026-12-00", "2026-11-31": a day the month does not have
                return True
            parts.relative_date = bool(_RELATIVE.search(span)) and kind == "date"
            if not _PAST_WORD.search(span):
                # "this Monday" said on a Wednesday, "this morning at 3" said at 9: roll forward.
                named = _WEEKDAY_WORD.search(span) and parts.date > now.date() - timedelta(days=7)
                parts.roll_days = 7 if named else (1 if parts.date == now.date() else 0)
        else:
            parts.month = None if m == "XX" else int(m)
            parts.day = None if d == "XX" else int(d)
            if not (1 <= (parts.month or 1) <= 12 and 1 <= (parts.day or 1) <= 31):
                parts.unresolved = True
            parts.next_year = parts.next_year or bool(_NEXT_YEAR.search(span))
    elif week:
        # "next week": Monday of that ISO week; "this weekend": its Saturday.
        try:
            parts.date = date.fromisocalendar(int(week["y"]), int(week["w"]), 6 if week["weekend"] else 1)
        except ValueError:
            parts.unresolved = True
    elif month:
        parts.date = _date(int(month["y"]), int(month["m"]), 1)
        parts.unresolved = parts.unresolved or parts.date is None
    elif timex.startswith("(") and kind == "daterange" and _RELATIVE.search(span):
        # "in a week": (start,end,P1W) -> now + the duration, same clock time.
        delta = _duration(timex.rstrip(")").rsplit(",", 1)[-1])
        if delta is None:
            return False
        parts.instant = now + delta
    else:
        return False
    return True


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _nth_weekday(found: re.Match[str], today: date) -> date | None:
    """The n-th weekday of a month: this year's when it is still ahead, else next year's."""
    month, weekday, n = int(found["m"]), int(found["wd"]) - 1, int(found["n"])
    if not 1 <= month <= 12:
        return None
    years = [int(found["y"])] if found["y"] != "XXXX" else [today.year, today.year + 1]
    for year in years:
        first = date(year, month, 1)
        day = first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
        if day.month == month and (day >= today or len(years) == 1):
            return day
    return None


def _read_clock(timex: str, values: list[dict[str, Any]], parts: Parts, span: str = "") -> bool:
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
