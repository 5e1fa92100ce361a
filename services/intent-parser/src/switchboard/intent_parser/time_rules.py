"""The rule layer: time expressions Recognizers-Text misses or reads against the conventions.

Relative times ("一个半小时后", "in 90 minutes", "一刻钟后"), recurrences ("每个工作日",
"every weekday", "每隔一天", "every 30 minutes"), "2 Mondays from now" (one day, not a weekly
recurrence) and "the last Friday of May". What is read here is written into the same
:class:`~.time_conventions.Parts` as the library's values; spans read here that the library
must not read again are returned.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta

from switchboard.intent_parser import numerals
from switchboard.intent_parser.time_conventions import Parts

_N = r"(?:\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百]+)"
_ZH_RELATIVE = re.compile(
    rf"(?P<n>{_N})?\s*(?:个)?(?P<half>半)?\s*(?P<unit>分钟|分|min|mins|个?小时|个?钟头|h|hr|hrs|天|日|周|个?星期|个?月|年)"
    rf"(?P<half2>半)?\s*(?:之后|以后|后)"
)
_ZH_QUARTER = re.compile(r"(?P<n>[一二两三四五六七八九\d])?刻钟(?:之后|以后|后)")
_EN_COUNT = (
    r"\d+(?:\.\d+)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|fifteen|twenty|thirty|forty-five|ninety"
)
_EN_RELATIVE = re.compile(
    rf"(?:\b(?:in|after|within)\s+(?P<n>{_EN_COUNT})\s+(?P<unit>minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)"
    rf"(?P<half>\s+and\s+a\s+half)?\b"
    rf"|\b(?P<n2>{_EN_COUNT})\s+(?P<unit2>minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)"
    rf"(?P<half2>\s+and\s+a\s+half)?\s+(?:from\s+(?:right\s+)?now|later|hence)\b"
    rf"|\bin\s+half\s+an\s+hour\b|\bhalf\s+an\s+hour\s+from\s+now\b)",
    re.I,
)
_EN_WORDS = {"a": 1, "an": 1, **numerals.EN_WORDS}
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

_WEEKDAY_NAMES = r"(?P<wd>mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?"
# "2 Mondays from now", "in three Fridays": that many of the weekday ahead, one day.
_EN_WEEKDAYS_AHEAD = re.compile(
    rf"\b(?:(?P<in>in)\s+)?(?P<n>\d{{1,2}}|a|one|two|three|four|five|six)\s+{_WEEKDAY_NAMES}s"
    r"(?:\s+(?P<ahead>from\s+(?:now|today)|later|out|away))?\b",
    re.I,
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_LAST_WEEKDAY_OF = re.compile(
    rf"\b(?:the\s+)?last\s+{_WEEKDAY_NAMES}\s+(?:of|in)\s+(?:(?P<rel>this|next)\s+month"
    r"|(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*)\b",
    re.I,
)
# "Friday after next": the Friday of the week after the coming one.
_WEEKDAY_AFTER_NEXT = re.compile(rf"\b(?:the\s+)?{_WEEKDAY_NAMES}\s+after\s+next\b", re.I)
# "at 10 on the 15th of next month", "next month on the 15th": the library loses the day.
_DAY_OF_MONTH_AHEAD = re.compile(
    r"\b(?:the\s+)?(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+of\s+(?P<rel>next|this|the\s+following|the\s+coming)\s+month\b"
    r"|\b(?P<rel2>next|this)\s+month\s+on\s+the\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?\b",
    re.I,
)
_WEEKDAY_INDEX = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def _shift(parts: Parts, now: datetime, count: float, unit: str) -> None:
    if unit in ("minutes", "hours"):
        parts.elapsed = timedelta(**{unit: count})
    elif unit in ("months", "years"):
        parts.instant = now + relativedelta(**{unit: int(count)})
    else:
        parts.instant = now + timedelta(**{unit: count})


def _en_unit(word: str) -> str:
    word = word.lower().rstrip("s")
    return {"min": "minutes", "minute": "minutes", "hr": "hours", "hour": "hours"}.get(word, word + "s")


# "this time tomorrow", "same time next week", "明天这个时候": the clock time of now, that day.
_SAME_TIME = re.compile(
    r"\b(?:at\s+)?(?:this|the\s+same|same)\s+time\s+(?P<en>tomorrow|next\s+week)\b"
    r"|\b(?P<en2>tomorrow|next\s+week)\s+(?:at\s+)?(?:this|the\s+same|same)\s+time\b"
    r"|(?P<zh>明天|下周|下个?星期)的?(?:这个时候|这个时间|同一时间|同一个时间|此时|这时候|这会儿)",
    re.I,
)


def read_rules(text: str, now: datetime, parts: Parts) -> list[tuple[int, int]]:
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
    same_time = _SAME_TIME.search(text)
    if same_time is not None:
        day = (same_time["en"] or same_time["en2"] or same_time["zh"]).lower()
        parts.instant = now + timedelta(days=1 if day in ("tomorrow", "明天") else 7)
        reserved.append(same_time.span())
    for found in (
        _weekdays_ahead(text, now, parts),
        _last_weekday_of(text, now, parts),
        _day_of_month_ahead(text, now, parts),
        _weekday_after_next(text, now, parts),
    ):
        if found is not None:
            reserved.append(found)
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


def _weekdays_ahead(text: str, now: datetime, parts: Parts) -> tuple[int, int] | None:
    """ "2 Mondays from now": the second Monday after today (a day, not a recurrence)."""
    found = next((m for m in _EN_WEEKDAYS_AHEAD.finditer(text) if m["in"] or m["ahead"]), None)
    if found is None:
        return None
    raw = found["n"].lower()
    count = int(raw) if raw.isdigit() else _EN_WORDS[raw]
    if count < 1:
        return None
    parts.date = _weekday_ahead(now.date(), found["wd"], count)
    return found.span()


def _weekday_ahead(today: date, name: str, count: int) -> date:
    """The ``count``-th ``name`` day ("fri", "Friday") after ``today``, today excluded."""
    weekday = _WEEKDAY_INDEX[name[:3].lower()]
    return today + timedelta(days=(weekday - today.weekday()) % 7 or 7, weeks=count - 1)


def _last_weekday_of(text: str, now: datetime, parts: Parts) -> tuple[int, int] | None:
    """ "the last Friday of May": this year's when it is still ahead, else next year's."""
    found = _LAST_WEEKDAY_OF.search(text)
    if found is None:
        return None
    today = now.date()
    weekday = _WEEKDAY_INDEX[found["wd"][:3].lower()]
    if found["rel"]:
        months = [today + relativedelta(months=1 if found["rel"].lower() == "next" else 0)]
    else:
        month = _MONTHS.index(found["month"][:3].lower()) + 1
        months = [date(today.year, month, 1), date(today.year + 1, month, 1)]
    for first in months:
        last = first.replace(day=1) + relativedelta(months=1, days=-1)
        day = last - timedelta(days=(last.weekday() - weekday) % 7)
        if day >= today:
            parts.date = day
            return found.span()
    parts.unresolved = True  # "the last Friday of this month" once it has passed: ask
    return found.span()


def _day_of_month_ahead(text: str, now: datetime, parts: Parts) -> tuple[int, int] | None:
    """ "the 15th of next month": that day of that month; a day the month lacks is asked about."""
    found = _DAY_OF_MONTH_AHEAD.search(text)
    if found is None:
        return None
    rel = (found["rel"] or found["rel2"]).lower()
    first = now.date().replace(day=1) + relativedelta(months=0 if rel == "this" else 1)
    try:
        parts.date = first.replace(day=int(found["d"] or found["d2"]))
    except ValueError:
        parts.unresolved = True  # "the 31st of next month" when it has 30 days
    return found.span()


def _weekday_after_next(text: str, now: datetime, parts: Parts) -> tuple[int, int] | None:
    """ "Friday after next": a week after the coming Friday."""
    found = _WEEKDAY_AFTER_NEXT.search(text)
    if found is None:
        return None
    parts.date = _weekday_ahead(now.date(), found["wd"], 2)  # the same day as "2 Fridays from now"
    return found.span()
