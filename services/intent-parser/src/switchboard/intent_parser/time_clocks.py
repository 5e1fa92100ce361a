"""Clock times written in forms the library misreads, each rewritten for ``time_text``.

"16h45", "at 7.15", "at 845", "1 Dec 0710", "0730", "seven forty-five pm" become the forms the
library reads. A leading zero ("03:00", "0:10") or an "h" / "hours" after four digits ("0600h",
"1300 hours") says the clock has 24 hours: "03:00" is three in the morning, not the afternoon's
3:00 that a bare "at 3" is by the product's convention, so these are written with their am/pm.
"""

from __future__ import annotations

import re

from switchboard.intent_parser import time_dates as dates

PART_OF_DAY_AFTER = (
    r"(?:in\s+the\s+(?:morning|afternoon|evening)|at\s+night|tonight|this\s+(?:morning|afternoon|evening))"
)

# "16h45", "15h" (not "in 2h30" or "2h", durations).
H_CLOCK = re.compile(r"(?<![\w.:])(?P<h>[01]?\d|2[0-3])h(?P<m>[0-5]\d)?\b", re.I)
_CLOCK_LEAD = re.compile(r"(?:\bat|@)\s*$", re.I)

# "at 7.15", "17.30h", "08.00 am", "7.30 tomorrow": a clock time written with a dot, where nothing
# else reads as a decimal.
DOTTED_CLOCK = re.compile(
    r"(?P<lead>\b(?:at|by|until|till|from)\s+|@\s*)(?P<h>[01]?\d|2[0-3])\.(?P<m>[0-5]\d)\b(?![.,]\d)"
    r"|(?<![\d.])(?P<h2>[01]?\d|2[0-3])\.(?P<m2>[0-5]\d)(?:\s*(?:h|hrs)\b|(?=\s*[ap]\.?m\b)"
    r"|(?=\s+(?:today|tomorrow|tonight|this\s+(?:morning|afternoon|evening))\b))",
    re.I,
)

_UNIT_WORDS = r"(?:one|two|three|four|five|six|seven|eight|nine)"
# "seven forty-five pm": the library reads the hyphenated minutes as "forty" only.
HYPHENATED_MINUTES = re.compile(
    rf"\b(?P<h>{_UNIT_WORDS}|ten|eleven|twelve)\s+(?P<tens>twenty|thirty|forty|fifty)-(?P<unit>{_UNIT_WORDS})\b", re.I
)

_DURATION_BEFORE = re.compile(r"\b(?:in|for|every|within|after|takes?|lasts?)\s*$", re.I)

# "at 845", "by 1030", "845 in the evening": a clock time without its colon.
COMPACT_CLOCK = re.compile(
    r"\b(?P<lead>at|@|by|around|until|till)\s+(?P<h>[01]?\d|2[0-3])(?P<m>[0-5]\d)(?:h(?:rs)?)?\b(?![:.,/]\d|\s*%)"
    rf"|\b(?P<h2>0?[1-9]|1[0-2])(?P<m2>[0-5]\d)(?=\s+(?:{PART_OF_DAY_AFTER}|o'?clock)\b)",
    re.I,
)

# "1 Dec 0710", "on Sunday 1925", "tomorrow 2330": four digits after a day are a clock time,
# unless they could be the year ("3 Dec 2027").
CLOCK_AFTER_DAY = re.compile(
    rf"(?P<day>\b(?:{dates.WEEKDAY}|today|tomorrow|tonight"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{dates.MONTH_NAME}|{dates.MONTH_NAME}\s+\d{{1,2}}(?:st|nd|rd|th)?)\b,?\s+)"
    r"(?P<h>[01]\d|2[0-3])(?P<m>[0-5]\d)\b(?![:.,/]\d|\s*(?:%|[ap]\.?m\b|hours?\b))",
    re.I,
)

# "0730" alone: a clock time (no year or amount starts with 0).
ZERO_CLOCK = re.compile(r"(?<![\w:/.,-])0(?P<h>\d)(?P<m>[0-5]\d)\b(?![:/.,-]?\d|\s*%|\s+\d)")
# "03:00", "00:10", "0:10", "06:00 hours", "06:00h" (not "03:00 pm", a date "03.04.2027" or "10:03:00").
ZERO_LED = re.compile(
    r"(?<![\w:.,/+-])0?0(?P<h>\d)?:(?P<m>[0-5]\d)(?:\s*(?:h|hrs|hours)\b)?(?![:.]?\d)(?!\s*[ap]\.?m\b)",
    re.I,
)
# "0600h", "1300 hours", "0700 hrs": military style.
HOURS_SUFFIX = re.compile(r"(?<![\w:.,/-])(?P<h>[01]\d|2[0-3])(?P<m>[0-5]\d)\s*(?:h|hrs|hours)\b", re.I)


def twelve_hour(hour: int, minute: int) -> str:
    """``hour``:``minute`` of a 24-hour clock, as the library reads it without doubt."""
    suffix = "am" if hour < 12 else "pm"
    return f"{(hour - 1) % 12 + 1}:{minute:02d}{suffix}"


def zero_led(found: re.Match[str]) -> str:
    return twelve_hour(int(found["h"] or 0), int(found["m"]))


def hours_suffix(found: re.Match[str]) -> str:
    return twelve_hour(int(found["h"]), int(found["m"]))


def h_clock(found: re.Match[str]) -> str | None:
    before = found.string[: found.start()]
    if _DURATION_BEFORE.search(before):
        return None
    if found["m"] is None and int(found["h"]) < 13 and not _CLOCK_LEAD.search(before):
        return None  # "2h" alone is more often two hours than 2 o'clock
    return f"{found['h']}:{found['m'] or '00'}"


def clock_after_day(found: re.Match[str]) -> str | None:
    dated = re.search(r"\d", found["day"])  # a month and day, which a year could follow
    if dated and not found["h"].startswith("0") and 1900 <= int(found["h"] + found["m"]) <= 2100:
        return None  # "Dec 3 2027" is a year
    return f"{found['day']}at {int(found['h'])}:{found['m']}"


def dotted_clock(found: re.Match[str]) -> str:
    if found["lead"]:
        return f"{found['lead']}{int(found['h'])}:{found['m']}"
    return f"{int(found['h2'])}:{found['m2']}"


def compact_clock(found: re.Match[str]) -> str:
    if found["lead"]:
        morning = "am" if found["h"].startswith("0") else ""  # "at 0730" is a 24-hour clock
        return f"{found['lead']} {int(found['h'])}:{found['m']}{morning}"
    return f"{int(found['h2'])}:{found['m2']}"
