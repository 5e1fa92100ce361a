"""Dates as written (part of ``time_text``): the weekday and month-name patterns the rewrites
share, and numeric dates written day first with dots: "26.9.", "14.9. 12:10",
"9.10 23:00", "01.09.2018", as Europe and much of the world write them. Recognizers-Text reads
them as nothing, a clock time or month-first; they are rewritten "on 26 September" (with the
year when one is written). A dotted pair is a date only when it ends with a dot ("26.9.") or a
clock time follows it ("9.10 23:00", "on 04.09 at 9h15"); after "at", "by" or "@" it stays a
clock time ("at 7.15").
"""

from __future__ import annotations

import calendar
import re

# A weekday, whole or abbreviated ("fri", "thurs", "saturday"); a month name ("sept", "December").
WEEKDAY = r"(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?"
MONTH_NAME = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"

DOTTED_DATE = re.compile(
    r"(?<![\d.:@])(?<!\bat\s)(?<!\bby\s)"
    r"(?P<d>0?[1-9]|[12]\d|3[01])\.(?P<m>0?[1-9]|1[0-2])"
    r"(?:\.(?P<y>(?:19|20)?\d\d)(?!\d)|\.(?![\d\w])"
    r"|(?=\s+(?:at\s+)?(?:[01]?\d|2[0-3])(?:[:.h][0-5]\d|\s*[ap]\.?m)\b))",
    re.I,
)


def dotted_date(found: re.Match[str]) -> str | None:
    """``DOTTED_DATE``'s replacement; None (left as it is) for a day the month does not have."""
    day, month = int(found["d"]), int(found["m"])
    written = found["y"]
    year = (2000 + int(written) if len(written) == 2 else int(written)) if written else None
    if day > calendar.monthrange(year or 2024, month)[1]:  # no year written: a leap year allows 29.2.
        return None
    return f"on {day} {calendar.month_name[month]}" + (f" {year}" if year else "")
