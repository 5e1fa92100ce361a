"""Durations in a message, rewritten into the forms Recognizers-Text reads (part of ``time_text``).

"in 1/2 hour" -> "in half an hour", "2 and a half hours" -> "2.5 hours", "in 1h30" -> "in 90
minutes", "in 1d 2hr 5min" / "+15min" -> "in 1565 minutes" / "in 15 minutes", "1 hour and 30
minutes" -> "90 minutes", "a quarter of an hour" -> "15 minutes", "in
5m" -> "in 5 minutes", "a fortnight" -> "2 weeks", "过十分钟" -> "十分钟后"; and timers, whose
duration says when they run out (a timer is a reminder): "a timer for 10 minutes" / "a 10 minute
timer" -> "a timer in 10 minutes", "十分钟的计时器" / "倒计时十分钟" -> "十分钟后".
Each pattern here has its replacement beside it; ``time_text`` applies them in its order.
"""

from __future__ import annotations

import re

from switchboard.intent_parser import numerals

# "in 1/2 hour", "2 1/2 hours", "a half hour", "1/2个小时": the forms the library reads.
HALF_HOUR = re.compile(
    r"(?:\b(?P<n>\d+)\s+(?:and\s+(?:a\s+)?)?)?(?:\b1/2|½)\s*(?:an?\s+)?(?:hours?|hrs?)\b"
    r"|\ba\s+half[\s-]hour\b"
    r"|(?P<zh>(?:1/2|½)\s*个?(?=小时|钟头))",
    re.I,
)

# "a quarter of an hour", "three quarters of an hour": the library reads "an hour" only.
QUARTERS_OF_HOUR = re.compile(r"\b(?P<n>a|one|two|three)[\s-]+quarters?\s+(?:of\s+)?an\s+hour\b", re.I)
QUARTERS = {"a": 15, "one": 15, "two": 30, "three": 45}

# "in 5m": minutes (the library reads a bare "m" as nothing).
M_MINUTES = re.compile(r"(?P<lead>\b(?:in|within|after)\s+)(?P<n>\d{1,3})\s*m\b(?![.'\u2019])", re.I)

# "一个钟以后": an hour.
ZH_HOUR_CLOCK = re.compile(r"个钟(?=[之以]?后)")
# "过十分钟", "再过半小时": the same as "十分钟后" (not "3点过5分", a clock time).
ZH_AFTER_WAIT = re.compile(
    r"(?<![点點])再?过(?P<d>(?:[\d零一二两三四五六七八九十]+个?半?|半个?)(?:分钟|分|小时|钟头|天)|一刻钟)(?![之以]?后)"
)

# Timers: the duration says when it runs out. "timer for 10 minutes", "countdown of an hour",
# "timer 20 min"; "a 25-minute timer"; "十分钟的计时器", "倒计时五分钟", "定时器设成两分钟".
EN_AMOUNT = rf"(?:\d+(?:\.\d+)?|half\s+an?|an?|{'|'.join(sorted(numerals.EN_WORDS, key=len, reverse=True))})"
EN_UNIT = r"(?:sec(?:ond)?s?|min(?:ute)?s?|h(?:ou)?rs?|hours?)\b"
TIMER_FOR = re.compile(
    rf"\b(?P<lead>timers?|countdown)\s+(?:(?:for|of|set\s+(?:for|to))\s+)?(?={EN_AMOUNT}\s*-?\s*{EN_UNIT})", re.I
)
MINUTE_TIMER = re.compile(
    rf"\b(?P<n>{EN_AMOUNT})\s*-?\s*(?P<unit>sec(?:ond)?|min(?:ute)?|h(?:ou)?r|hour)\s+(?P<lead>timer|countdown)\b",
    re.I,
)
ZH_DURATION = r"(?:[\d零一二两三四五六七八九十百]+(?:\.\d+)?个?半?(?:秒钟?|分钟?|小时|钟头)|半个?(?:小时|钟头)|一刻钟)"
ZH_TIMER = re.compile(
    rf"(?P<d>{ZH_DURATION})的?(?:倒计时|计时器?|定时器)"
    rf"|(?:倒计时|计时器?|定时器)(?:设置?[为成到]?|定[为成]?|调到)?(?P<d2>{ZH_DURATION})"
)

# "2 and a half hours", "two and a half days": the library reads none of it.
AND_A_HALF = re.compile(rf"\b(?P<n>{EN_AMOUNT})\s+and\s+a\s+half\s+(?P<unit>minutes?|hours?|days?|weeks?)\b", re.I)

# "in 1h30", "1h30 from now": a duration ("16h45" alone is a clock time).
H_DURATION = re.compile(
    r"(?P<lead>\b(?:in|for|within|after)\s+)(?P<h>\d{1,2})\s*h\s*(?P<m>[0-5]\d)\b"
    r"|\b(?P<h2>\d{1,2})\s*h\s*(?P<m2>[0-5]\d)(?=\s+(?:from\s+now|later)\b)",
    re.I,
)

# "in 1d 2hr 5min", "in 1 day, 2 hours and 5 minutes", "+15min", "now + 40 minutes": a sum
# of days, hours and minutes after "in" (two parts or more) or "+" (one or more), as minutes.
_PART = r"(?P<{g}>\d{{1,4}})\s*(?P<{g}u>d(?:ays?)?|h(?:(?:ou)?rs?)?|m(?:in(?:ute)?s?)?)\b"
COMPOUND = re.compile(
    r"(?P<lead>\b(?:in|within|after)\s+|(?:\bnow\s*)?\+\s*)"
    + _PART.format(g="a")
    + r"(?:\s*,?\s*(?:and\s+)?"
    + _PART.format(g="b")
    + r")?(?:\s*,?\s*(?:and\s+)?"
    + _PART.format(g="c")
    + r")?",
    re.I,
)
_MINUTES_IN = {"d": 1440, "h": 60, "m": 1}


def compound(found: re.Match[str]) -> str | None:
    """``COMPOUND``'s replacement: "in <total> minutes"; None (left as it is) for a unit said
    twice, or one part after "in" the library reads itself (all but a bare "d": "in 3d")."""
    parts = [(found[g], found[f"{g}u"][0].lower()) for g in "abc" if found[g]]
    units = [unit for _, unit in parts]
    alone = len(parts) == 1 and "+" not in found["lead"] and found["au"].lower() != "d"
    if len(set(units)) < len(units) or alone:
        return None
    return f"in {sum(int(n) * _MINUTES_IN[unit] for n, unit in parts)} minutes"


# "a fortnight": two weeks.
FORTNIGHT = re.compile(r"\b(?:a|one)\s+fortnight\b", re.I)

# "1 hour and 30 minutes", "two hours 15 min": the library reads the hours only.
HOURS_AND_MINUTES = re.compile(
    rf"\b(?P<h>{EN_AMOUNT})\s*(?:hours?|hrs?)\s*,?\s*(?:and\s+)?(?P<m>{EN_AMOUNT})\s*(?:minutes?|mins?)\b", re.I
)


def amount_of(word: str) -> float | None:
    word = " ".join(word.lower().split())
    if word in ("a", "an"):
        return 1
    if word.startswith("half"):
        return 0.5
    if word in numerals.EN_WORDS:
        return numerals.EN_WORDS[word]
    try:
        return float(word)
    except ValueError:
        return None


def h_duration(found: re.Match[str]) -> str:
    hours, minutes = int(found["h"] or found["h2"]), int(found["m"] or found["m2"])
    return f"{found['lead'] or ''}{hours * 60 + minutes} minutes"


def and_a_half(found: re.Match[str]) -> str | None:
    amount = amount_of(found["n"])
    if amount is None:
        return None
    return f"{amount + 0.5:g} {found['unit'].rstrip('s').lower()}s"


def hours_and_minutes(found: re.Match[str]) -> str | None:
    hours, minutes = amount_of(found["h"]), amount_of(found["m"])
    if hours is None or minutes is None:
        return None
    return f"{round(hours * 60 + minutes):d} minutes"


def minute_timer(found: re.Match[str]) -> str:
    unit = {"sec": "second", "second": "second", "min": "minute", "minute": "minute"}.get(found["unit"].lower(), "hour")
    return f"{found['lead']} in {found['n']} {unit}s"


def half_hour(found: re.Match[str]) -> str:
    if found["zh"]:
        return "半"
    return f"{found['n']}.5 hours" if found["n"] else "half an hour"
