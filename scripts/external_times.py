"""Duckling's time corpora (facebook/duckling, Haskell source) as examples with gold instants,
and which of them the external evaluation can compare with the product's conventions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

# ---------------------------------------------------------------------------------------------
# Duckling's time corpora (Haskell source): examples (datetime (y, m, d, h, mi, s) Grain) [ "..." ]
# ---------------------------------------------------------------------------------------------
# Duckling's tests say everything at Tuesday 2013-02-12 04:30 local time, UTC-02:00
# (Duckling/Testing/Types.hs: refTime (2013, 2, 12, 4, 30, 0) (-2); fromUTC keeps the wall clock).
TIME_ZONE = "Etc/GMT+2"  # POSIX sign: UTC-02:00, a fixed offset
REFERENCE = datetime(2013, 2, 12, 4, 30, tzinfo=ZoneInfo(TIME_ZONE))
WRAP = {"en": "remind me {} to do it", "zh": "{}提醒我做事"}
DUCKLING_FILES = {"en": "Duckling/Time/EN/Corpus.hs", "zh": "Duckling/Time/ZH/Corpus.hs"}


@dataclass(frozen=True)
class TimeExample:
    text: str
    lang: str
    kind: str  # datetime, datetimeInterval, datetimeHoliday, ...
    value: tuple[int, ...] | None  # year, month, day, hour, minute, second
    grain: str | None


_EXAMPLES = re.compile(r"\bexamples\s*\(")
_DATETIME = re.compile(r"\s*datetime\s*\(" + r"\s*,".join([r"\s*(\d+)"] * 6) + r"\s*\)\s*(\w+)\s*")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "'": "'", "&": ""}


def _haskell_string(source: str, i: int) -> tuple[str, int]:
    """The string literal opening at ``source[i]`` (a double quote) and the index after it."""
    out, i = [], i + 1
    while source[i] != '"':
        if source[i] != "\\":
            out.append(source[i])
            i += 1
            continue
        if source[i + 1] in _ESCAPES:
            out.append(_ESCAPES[source[i + 1]])
            i += 2
        elif digits := re.match(r"\d+", source[i + 1 :]):
            out.append(chr(int(digits.group())))
            i += 1 + len(digits.group())
        else:
            raise ValueError(f"unsupported escape {source[i : i + 4]!r}")
    return "".join(out), i + 1


def _skip_blank(source: str, i: int) -> int:
    while i < len(source):
        if source[i].isspace() or source[i] == ",":
            i += 1
        elif source.startswith("--", i):
            i = source.find("\n", i) if "\n" in source[i:] else len(source)
        else:
            return i
    return i


def _closing_paren(source: str, i: int) -> int:
    depth = 0
    while True:
        if source[i] == '"':
            i = _haskell_string(source, i)[1]
            continue
        depth += {"(": 1, ")": -1}.get(source[i], 0)
        if depth == 0:
            return i
        i += 1


def duckling_examples(source: str, lang: str) -> list[TimeExample]:
    """Every example of the corpus's ``allExamples`` (not the latent, negative or custom ones)."""
    start = source.find("\nallExamples =")
    if start < 0:
        raise ValueError("no allExamples in this corpus")
    out, i = [], start
    while match := _EXAMPLES.search(source, i):
        close = _closing_paren(source, match.end() - 1)
        head = source[match.end() : close]
        i = _skip_blank(source, close + 1)
        if source[i] != "[":
            raise ValueError(f"expected a list of strings at {source[i : i + 30]!r}")
        texts, i = [], _skip_blank(source, i + 1)
        while source[i] != "]":
            text, i = _haskell_string(source, i)
            texts.append(text)
            i = _skip_blank(source, i)
        kind = head.split("(", 1)[0].split()[0]
        value = _DATETIME.fullmatch(head)
        numbers = tuple(int(g) for g in value.groups()[:6]) if value else None
        grain = value.group(7) if value else None
        out += [TimeExample(t, lang, kind, numbers, grain) for t in texts]
    return out


# Characters only traditional script or Cantonese time words use (a heuristic: no converter is at hand).
_NOT_MANDARIN = re.compile("[點時號後個鐘兩聽尋噚晏晝禮週鍾]|而家|宜家|依家|琴日|今朝|聽朝|朝早")


def select(example: TimeExample) -> tuple[datetime | None, str]:
    """(gold instant, "selected") or (None, why it is skipped). The first rule that applies wins."""
    if example.kind in ("datetimeInterval", "datetimeOpenInterval", "datetimeIntervalHoliday"):
        return None, "an interval or open interval"
    if example.kind == "datetimeHoliday":
        return None, "a holiday (a whole day)"
    if example.kind != "datetime" or example.value is None:
        return None, "not a plain instant"
    if example.grain not in ("Second", "Minute", "Hour"):
        return None, "grain coarser than an hour"
    if example.lang == "zh" and _NOT_MANDARIN.search(example.text):
        return None, "Cantonese or traditional script"
    gold = datetime(*example.value, tzinfo=REFERENCE.tzinfo)
    if example.grain == "Second" and gold.second:
        return None, "precise to the second"
    if gold < REFERENCE:
        return None, "in the past (the product asks instead)"
    if gold == REFERENCE:
        return None, "the reference time itself (now)"
    return gold, "selected"


_AMPM = re.compile(r"(?i)(?<![a-z])[ap]\.?\s?m\.?(?![a-z])|\d\s*[ap]\b")
_DAY_PART_EN = re.compile(r"(?i)\b(morning|afternoon|evening|tonight|night|noon|midnight|midday|mid day|lunch)\b")
_DAY_PART_ZH = re.compile(r"(?i)上午|早上|早晨|凌晨|清晨|下午|中午|晚上|今晚|傍晚|夜|明早|am|pm")
_H_NOTATION = re.compile(r"\d\s*h\s*\d*\b|\b0\d:\d\d")
_RELATIVE = re.compile(r"(?i)\b(in|from (right )?now|hence|later|ago)\b|后|後")
_RELATIVE_DAYS = re.compile(
    r"(?i)\bin\s+(a|an|one|a couple of|\d+|\w+)\s+(days?|weeks?|fortnights?)\b"
    r"|\b(days?|weeks?|fortnights?)\s+(hence|from (right )?now)\b"
)
_ZONE = re.compile(r"\b(UTC|GMT|CET|CEST|BST|IST|EST|EDT|CST|CDT|MST|MDT|PST|PDT|EET|EEST)\b", re.I)
_SEASONAL_ZONE = re.compile(r"\b(BST|IST|CST|CDT|EDT|MDT|PDT|CEST|EEST)\b", re.I)
DIVERGENCES = {
    "bare hour": "a clock hour 1-6 with no am/pm or part of day: the product reads p.m., Duckling the next one",
    "relative days": "'in N days/weeks', no clock time: Duckling truncates to the hour, the product keeps the minutes",
    "relative months": "'in N months/years': Duckling truncates to the 1st of the month, the product keeps the date",
    "part of day vs hour": "a part of day (morning, afternoon, evening, tonight) Duckling's gold hour lies outside",
    "vague amount": "'a few': the product has no convention for it",
    "seasonal zone": "a summer-time or ambiguous zone name: Duckling a fixed offset, the product the clock in force",
    "unit marks": "minute/second marks or a bare number as a duration",
}
# The hours (of Duckling's gold) a part of day can name, as the product reads parts of day.
_PARTS_OF_DAY = {
    re.compile(r"(?i)\bmorning\b|上午|早上|早晨|清晨"): range(1, 12),
    re.compile(r"(?i)\bafternoon\b|下午"): range(12, 19),
    re.compile(r"(?i)\b(evening|tonight)\b|晚上|今晚|傍晚"): range(17, 24),
}


def divergence(example: TimeExample, gold: datetime) -> str | None:
    """Why the product's conventions (data/README.md) may legitimately differ from Duckling's gold
    for this example, judged from the text and the gold value only (never from what the parser
    says); None where, as far as these rules tell, they agree. The first rule that applies wins."""
    text = example.text
    if _SEASONAL_ZONE.search(text):
        return "seasonal zone"
    if re.search(r"(?i)\bfew\b", text):
        return "vague amount"
    if re.search(r"\d\s*['\"]|^in \d+$", text):
        return "unit marks"
    if re.search(r"(?i)\bin\s+(a|an|one|\d+|\w+)\s+(months?|years?)\b", text):
        return "relative months"
    truncated = example.grain == "Hour" and (gold.hour, gold.minute) == (REFERENCE.hour, 0)
    if _RELATIVE_DAYS.search(text) and truncated:
        return "relative days"
    if any(part.search(text) and gold.hour not in hours for part, hours in _PARTS_OF_DAY.items()):
        return "part of day vs hour"
    day_part = _DAY_PART_ZH if example.lang == "zh" else _DAY_PART_EN
    explicit = _AMPM.search(text) or day_part.search(text) or _H_NOTATION.search(text) or _ZONE.search(text)
    if not explicit and not _RELATIVE.search(text) and 1 <= gold.hour <= 6:
        return "bare hour"
    return None
