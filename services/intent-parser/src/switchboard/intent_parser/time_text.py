"""A message rewritten into the forms Recognizers-Text reads, with an index back into it.

The library misreads or misses some ways of writing a time that it reads well written
otherwise, so each rewrite below turns one into the other before the library sees the text.
Clock times and days: "ten after 4pm" -> "4:10pm", "a quarter past noon" -> "12:15pm",
"around 5pm" -> "at 5pm", "half three" -> "half past three", "the 14th at 8pm" -> "on the 14th
at 8pm", "on the twentieth" -> "on the 20th", "31 of next month" -> "31st of next month", "sat"
-> "saturday", "this coming Friday" -> "this Friday", "tomorrow before 4pm" -> "tomorrow at
4pm", "alarm for 7" -> "alarm at 7", "tmrw" -> "tomorrow"; in Chinese "四点零五" -> "四点五分",
"今晚 11 点" -> "今晚11点", "3号" -> "3日", "十点差五分" -> "9点55分", traditional characters ->
simplified. Clock times in figures are rewritten by ``time_clocks`` ("16h45", "at 845", "at
7.15", "1 Dec 0710", "03:00", "0600h"), durations and timers by ``time_durations`` ("in 1/2 hour", "1 hour
and 30 minutes", "a timer for 10 minutes"...) and day-first dotted dates by ``time_dates``
("14.9. 12:10" -> "on 14 September 12:10"), in the order of ``_REWRITES`` below.
Every character of the rewritten text keeps the index of the character it came from, so
spans and source text still point into what the user wrote.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from switchboard.common.text import CJK_RANGES
from switchboard.intent_parser import numerals
from switchboard.intent_parser import time_clocks as clocks
from switchboard.intent_parser import time_dates as dates
from switchboard.intent_parser import time_durations as durations

_TRADITIONAL = str.maketrans("點週號後鐘個兩時晚", "点周号后钟个两时晚")
# Spelling the library does not know.
_SLANG = re.compile(r"\b(2morrow|2moro|tmrw|tmr|tmrrw|tomoz|tomorow|tommorow|tommorrow)\b", re.I)
# "今晚 11 点": the Chinese model wants the number against its unit.
_SPACE_IN_ZH = re.compile(rf"(?<=[{CJK_RANGES}])\s+(?=\d+\s*[点时号日月分])|(?<=\d)\s+(?=[点时号日月分])")
_HOUR_WORD_CLOCK = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s+(?:o'?clock|[ap]\.?m\b)"
# "around 5pm", "at about 8", "approximately 17.30", "in about 10 minutes": a reminder fires at
# one instant, so the approximation is dropped ("around 5pm" -> "at 5pm").
_APPROXIMATE = re.compile(
    r"(?P<at>\bat\s+)?\b(?:around|about|approximately|approx\.?|roughly|circa|ca\.|sometime\s+around)\s+"
    r"(?=(?:\d{1,2}(?:[:.][0-5]\d)?\s*(?:[ap]\.?m\b|o'?clock|h\b|ish\b)|\d{1,2}[:.][0-5]\d|\d{3,4}\b"
    rf"|noon\b|midnight\b|{_HOUR_WORD_CLOCK}|\d{{1,2}}\s+{clocks.PART_OF_DAY_AFTER}|\d{{1,2}}\s*(?:$|[,.!?;]|on\b|tomorrow\b|to\s+(?!\d))))"
    r"|(?P<lead>\b(?:in|within|after)\s+)(?:around|about|approximately|approx\.?|roughly|some|exactly|just|like)\s+"
    r"(?=\S+\s+(?:min|hour|hr|day|week)|half\s+an?\s+hour|an?\s+hour)",
    re.I,
)
# "in 20-30 minutes", "in 2 to 3 hours": the reminder fires at the first end of the range.
_AMOUNT_RANGE = re.compile(
    r"(?<=\bin\s)(?P<low>\d{1,3})\s*(?:-|\u2013|to|or)\s*\d{1,3}(?=\s*(?:min|hour|hr|day|week))", re.I
)
_ISH = re.compile(r"(?<=\d)\s*-?ish\b|(?<=[ap]m)-?ish\b", re.I)
# "the 14th at 8pm": a day of this month, as "on the 14th" (not "the 3rd floor", "by the 14th").
_MONTHS_AHEAD = r"(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
_THE_DAY = re.compile(
    r"(?<!\bon\s)(?<!\bby\s)(?<!\bof\s)(?<!\buntil\s)(?<!\bbefore\s)(?<!\bafter\s)(?<!\bfrom\s)"
    rf"\bthe\s+(?=(?:[1-9]|[12]\d|3[01])(?:st|nd|rd|th)\b(?!\s+{_MONTHS_AHEAD})"
    r"\s*(?:$|[,.!?;]|at\b|@|to\b|in\s+the\b|\d|morning|afternoon|evening|night))",
    re.I,
)
_O_CLOCK = re.compile(r"\bo\s+clock\b|\boclock\b", re.I)
# Minutes and hours in words: up to thirty ("twenty-five past", "half past") and the quarter.
_NUMBER_WORDS = {
    **{word: n for word, n in numerals.EN_WORDS.items() if n <= 30},
    "a quarter": 15,
    "quarter": 15,
    "half": 30,
}
# Minutes said without "minutes" in words: "ten after", "a quarter past", "twenty to".
_BARE_MINUTES = frozenset({"five", "ten", "quarter", "a quarter", "twenty", "twenty-five", "twenty five", "half"})
_HOUR_WORDS = "|".join(w for w, n in _NUMBER_WORDS.items() if n <= 12 and " " not in w)
_MINUTE_WORDS = "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
# "ten after 4pm", "a quarter past noon", "20 minutes to 5": minutes before or after an hour.
_MINUTES_PAST = re.compile(
    rf"\b(?P<min>{_MINUTE_WORDS}|\d{{1,2}})(?P<unit>\s+min(?:ute)?s?)?\s+(?P<dir>past|after|to|before|till|til|of)\s+"
    rf"(?P<hour>\d{{1,2}}(?!\d)|(?:noon|midnight|{_HOUR_WORDS})\b)(?![:.]\d)(?:\s*o'?clock)?(?:\s*(?P<ap>[ap])\.?m\b\.?)?"
    r"(?!\s*(?:%|(?:people|persons|guests|times|min|minutes|hours?|days?|weeks?|months?|years?|kg|km|miles|pages)\b))",
    re.I,
)
_DAY_OF_NEXT_MONTH = re.compile(
    r"\b(?P<d>[1-9]|[12]\d|3[01])(?=\s+of\s+(?:next|this|the\s+following|the\s+coming)\s+month\b)", re.I
)
_WEEKDAY_ABBREVIATION = re.compile(r"(?<!['\u2019])\b(?P<abbr>mon|tues?|wed|thu|thur|thurs|fri|sat|sun)\b\.?", re.I)
_FULL_WEEKDAY = {
    "mon": "monday",
    "tue": "tuesday",
    "wed": "wednesday",
    "thu": "thursday",
    "fri": "friday",
    "sat": "saturday",
    "sun": "sunday",
}
# "sat", "sun" and "wed" are also words: a weekday only where a day is expected.
_DAY_EXPECTED_BEFORE = re.compile(
    r"(?:^|[,;(]|\b(?:on|this|next|every|each|by|until|till|coming|from|before|after|me|reminder|alarm))\s*$", re.I
)
_DAY_EXPECTED_AFTER = re.compile(r"^\s*(?:at\b|@|\d|morning|afternoon|evening|night|noon|[,;)]|$)", re.I)
_NOT_A_DAY_BEFORE = re.compile(r"\b(?:the|a|in|to|i|we|you|he|she|they|it|was|were|had)\s*$", re.I)
_ZH_ZERO_MINUTES = re.compile(
    r"(?<=[\d零\u3007一二两三四五六七八九十]点)[零\u3007](?P<m>[1-9一二三四五六七八九])分?(?![\d零\u3007一二三四五六七八九十])"
)
# "3号下午3点": the library reads a day of the month with 日 only ("3日"), not with 号; not "3号楼".
_ZH_DAY_HAO = re.compile(
    r"(?<![月\d零一二两三四五六七八九十])(?P<d>[12]?\d|3[01]|[一二三]?十[一二三四五六七八九]?|[一二三四五六七八九])号"
    r"(?=[上下中凌傍晚早夜]|[\d零一二两三四五六七八九十]+[点时:]|提醒|叫|之前|以前|前|[,，。!?\s\uff01\uff1f]|$)"
)
# "3点过5分", "下午3点过一刻": minutes past the hour (the library stops at 过); "早晨" is "早上".
_ZH_PAST_THE_HOUR = re.compile(r"(?<=[点點])过(?=[\d一二三四五六七八九十]+分|[一三]刻)")
_ZH_EARLY_MORNING = re.compile(r"早晨")
# "午夜" alone is midnight; "十点差五分" / "差五分十点" is 09:55.
_ZH_MIDNIGHT = re.compile(r"(?:半夜|午夜)(?![\d零一二两三四五六七八九十]+点)")
_ZH_MINUTES_TO = re.compile(
    r"(?P<h>[\d零一二两三四五六七八九十]+)点差(?P<m>[\d一二三四五六七八九十]+)分?钟?"
    r"|差(?P<m2>[\d一二三四五六七八九十]+)分?钟?(?P<h2>[\d零一二两三四五六七八九十]+)点"
)
_ALARM_FOR = re.compile(
    r"\b(?P<lead>alarms?|wake[- ]?up(?:\s+call)?)\s+for\s+"
    r"(?=\d{1,2}(?::[0-5]\d)?(?:\s*(?:[ap]\.?m\.?|o'?clock))?(?![\d:]|\s*(?:min|hour|day|%)))",
    re.I,
)


# "half three" (British: 3:30), "half 7 tonight".
_HALF_HOUR_BRITISH = re.compile(
    r"(?<!\ban\s)\bhalf\s+(?P<h>one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|1[0-2]|[1-9])\b"
    r"(?!\s*(?:(?:hours?|hrs?|minutes?|mins?|days?|weeks?|of|an?|past|percent)\b|%|\.\d))",
    re.I,
)
# "midnight tonight": the midnight that ends today (the library reads it as noon).
_MIDNIGHT_TONIGHT = re.compile(r"\bmidnight\s+tonight\b|\btonight\s+at\s+midnight\b", re.I)
# "this coming Friday", "upcoming Friday": the next Friday ahead, not next week's.
_COMING_WEEKDAY = re.compile(rf"\b(?:this\s+|the\s+)?(?:up)?coming\s+(?={dates.WEEKDAY}\b)", re.I)
# "tomorrow before 4pm", "friday by noon": the library reads nothing; the reminder is at that time.
_DAY_BEFORE_CLOCK = re.compile(
    rf"(?P<day>\b(?:today|tomorrow|tonight|{dates.WEEKDAY})\s+)"
    r"(?:before|by|after|no\s+later\s+than)\s+(?=\d|noon\b|midnight\b)",
    re.I,
)
# "1pm-3", "8pm - 11": a span whose end has no am/pm, which the library cannot read; its start stays.
_SPAN_BARE_END = re.compile(r"(?<=[ap]m)\s*-\s*\d{1,2}(?::[0-5]\d)?\b(?!\s*(?:[ap]\.?m|[:/.]\d))", re.I)
# "lunchtime", "at lunch": noon.
_LUNCHTIME = re.compile(r"\blunch\s?time\b|(?:(?<=\bat\s)|(?<=\btoday\s)|(?<=\btomorrow\s))lunch\b", re.I)
# "on tuesday the 19th", "Thu 16th": the day of the month says it all (the library reads the weekday only).
_WEEKDAY_THE_DAY = re.compile(rf"\b{dates.WEEKDAY},?\s+(?=(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)\b)", re.I)
# Ordinal words for a day of the month where a day is meant ("on the twentieth at 9").
_ORDINAL_WORDS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}
_ORDINAL_DAY = re.compile(
    r"(?P<lead>\bon\s+the\s+)(?:(?P<tens>twenty|thirty)[- ])?(?P<word>"
    + "|".join(sorted(_ORDINAL_WORDS, key=len, reverse=True))
    + r")\b(?!\s+(?:time|floor|one|place|of\s+(?!jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|next|this)))",
    re.I,
)


def _weekday_the_day(found: re.Match[str]) -> str:
    """The weekday goes; a bare "16th" becomes "on the 16th", the form the library reads."""
    if re.match(r"the\b", found.string[found.end() :], re.I):
        return ""
    return "the " if re.search(r"\bon\s+$", found.string[: found.start()], re.I) else "on the "


def _ordinal_day(found: re.Match[str]) -> str | None:
    day = _ORDINAL_WORDS[found["word"].lower()] + {"twenty": 20, "thirty": 30}.get((found["tens"] or "").lower(), 0)
    if day > 31 or (found["tens"] and _ORDINAL_WORDS[found["word"].lower()] > 9):
        return None
    return f"{found['lead']}{_nth(day)}"


def normalise(text: str) -> tuple[str, list[int]]:
    """``text`` as the library reads it best, and for each of its characters (and its end)
    the index in ``text``."""
    text = text.translate(_TRADITIONAL)
    index = list(range(len(text) + 1))
    for pattern, replace in _REWRITES:
        text, index = _rewrite(text, index, pattern, replace)
    return text, index


def _rewrite(
    text: str, index: list[int], pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str | None]
) -> tuple[str, list[int]]:
    out: list[str] = []
    new_index: list[int] = []
    pos = 0
    for found in pattern.finditer(text):
        replacement = replace(found)
        start, end = found.span()
        if replacement is None or start == end:
            continue
        out.append(text[pos:start])
        new_index.extend(index[pos:start])
        out.append(replacement)
        # First character to the first, last to the last: a span over the rewrite covers the original.
        last = len(replacement) - 1
        new_index.extend(index[start + (i * (end - 1 - start)) // max(last, 1)] for i in range(len(replacement)))
        pos = end
    if not out:
        return text, index
    out.append(text[pos:])
    new_index.extend(index[pos:])
    return "".join(out), new_index


def _zh_minutes_to(found: re.Match[str]) -> str | None:
    hour = numerals.to_number(found["h"] or found["h2"])
    minutes = numerals.to_number(found["m"] or found["m2"])
    if hour is None or minutes is None or not (0 <= hour <= 24 and 1 <= minutes <= 59):
        return None
    return f"{int(hour - 1) % 24}点{60 - int(minutes)}分"


def _approximate(found: re.Match[str]) -> str:
    return found["lead"] or "at "  # "in about 10 minutes" -> "in 10 minutes"; "around 5pm" -> "at 5pm"


def _minutes_past(found: re.Match[str]) -> str | None:
    raw, word = found["min"].lower(), found["hour"].lower()
    backwards = found["dir"].lower() not in ("past", "after")
    if found["dir"].lower() == "of" and (found["unit"] or raw not in _BARE_MINUTES):
        return None  # "quarter of 5" is 4:45; "3 of 5" is not a time
    bare_digits_ok = found["dir"].lower() == "past" or word in ("noon", "midnight")
    if not found["unit"] and (raw not in _BARE_MINUTES if not raw.isdigit() else not bare_digits_ok):
        return None  # "3 to 4pm" is a range, "buy two after 5pm" counts things; "ten after 4pm" is 16:10
    minutes = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
    if not 1 <= minutes <= 59:
        return None
    if word == "noon":
        hour, said_half = 12, True
    elif word == "midnight":
        hour, said_half = 0, True
    else:
        hour = int(word) if word.isdigit() else _NUMBER_WORDS[word]
        said_half = bool(found["ap"])
        if found["ap"]:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if found["ap"].lower() == "p" else 0)
        elif hour > 23:
            return None
    total = (hour * 60 + (-minutes if backwards else minutes)) % (24 * 60)
    hour, minute = divmod(total, 60)
    if said_half:
        return f"{hour % 12 or 12}:{minute:02d}{'am' if hour < 12 else 'pm'}"
    return f"{hour}:{minute:02d}"  # am or pm still unsaid: read as any "4:10"


def _ordinal(found: re.Match[str]) -> str:
    return _nth(int(found["d"]))


def _nth(day: int) -> str:
    """ "1st", "2nd", "13th", "22nd"."""
    return f"{day}{'th' if 11 <= day <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


def _weekday(found: re.Match[str]) -> str | None:
    abbr = found["abbr"].lower()
    full = _FULL_WEEKDAY[abbr[:3]]
    if abbr[:3] not in ("sat", "sun", "wed"):
        return full
    before = found.string[: found.start()]
    after = found.string[found.end() :]
    if _DAY_EXPECTED_BEFORE.search(before) or (
        _DAY_EXPECTED_AFTER.match(after) and not _NOT_A_DAY_BEFORE.search(before)
    ):
        return full
    return None


_REWRITES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]]] = [
    (dates.DOTTED_DATE, dates.dotted_date),
    (_SLANG, lambda _: "tomorrow"),
    (_SPACE_IN_ZH, lambda _: ""),
    (_APPROXIMATE, _approximate),
    (clocks.HYPHENATED_MINUTES, lambda found: f"{found['h']} {found['tens']} {found['unit']}"),
    (_ISH, lambda _: ""),
    (_AMOUNT_RANGE, lambda found: found["low"]),
    (durations.COMPOUND, durations.compound),
    (durations.QUARTERS_OF_HOUR, lambda found: f"{durations.QUARTERS[found['n'].lower()]} minutes"),
    (durations.M_MINUTES, lambda found: f"{found['lead']}{found['n']} minutes"),
    (durations.HALF_HOUR, durations.half_hour),
    (durations.H_DURATION, durations.h_duration),
    (durations.FORTNIGHT, lambda _: "2 weeks"),
    (_COMING_WEEKDAY, lambda _: "this "),
    (_DAY_BEFORE_CLOCK, lambda found: f"{found['day']}at "),
    (_SPAN_BARE_END, lambda _: ""),
    (_LUNCHTIME, lambda _: "noon"),
    (_WEEKDAY_THE_DAY, _weekday_the_day),
    (_ORDINAL_DAY, _ordinal_day),
    (durations.AND_A_HALF, durations.and_a_half),
    (_HALF_HOUR_BRITISH, lambda found: f"half past {found['h']}"),
    (_MIDNIGHT_TONIGHT, lambda _: "at midnight"),
    (clocks.HOURS_SUFFIX, clocks.hours_suffix),
    (clocks.ZERO_LED, clocks.zero_led),
    (clocks.H_CLOCK, clocks.h_clock),
    (clocks.DOTTED_CLOCK, clocks.dotted_clock),
    (_O_CLOCK, lambda _: "o'clock"),
    (clocks.CLOCK_AFTER_DAY, clocks.clock_after_day),
    (clocks.ZERO_CLOCK, lambda found: f"at {found['h']}:{found['m']}am"),
    (_THE_DAY, lambda _: "on the "),
    (_MINUTES_PAST, _minutes_past),
    (clocks.COMPACT_CLOCK, clocks.compact_clock),
    (_DAY_OF_NEXT_MONTH, _ordinal),
    (_WEEKDAY_ABBREVIATION, _weekday),
    (_ZH_ZERO_MINUTES, lambda found: f"{found['m']}分"),
    (_ZH_DAY_HAO, lambda found: f"{found['d']}日"),
    (_ZH_PAST_THE_HOUR, lambda _: ""),
    (_ZH_EARLY_MORNING, lambda _: "早上"),
    (durations.ZH_HOUR_CLOCK, lambda _: "个小时"),
    (_ZH_MIDNIGHT, lambda _: "晚上12点"),
    (_ZH_MINUTES_TO, _zh_minutes_to),
    (durations.ZH_AFTER_WAIT, lambda found: f"{found['d']}后"),
    (_ALARM_FOR, lambda found: f"{found['lead']} at "),
    (durations.HOURS_AND_MINUTES, durations.hours_and_minutes),
    (durations.TIMER_FOR, lambda found: f"{found['lead']} in "),
    (durations.MINUTE_TIMER, durations.minute_timer),
    (durations.ZH_TIMER, lambda found: f"{found['d'] or found['d2']}后"),
]
