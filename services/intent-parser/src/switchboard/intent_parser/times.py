"""Date and time expressions in Chinese and English -> RFC 3339 instant + RRULE.

Recognition is Microsoft Recognizers-Text's (``recognizers-text-date-time``, English and
Chinese cultures): it finds the expressions and gives each a TIMEX3 value. One message goes
through these steps, each in its own module:

1. ``time_text`` (with ``time_durations``): the text is rewritten into the forms the library
   reads ("ten after 4pm" -> "4:10pm", "16h45" -> "16:45", "in 1/2 hour" -> "in half an
   hour"...), keeping an index back into what the user wrote;
2. ``time_zones``: a zone said with the clock time ("5pm CET", "北京时间") sets where the
   expression is read; the instant is then written in the user's zone;
3. ``time_rules``: a small rule layer reads what the library misses ("每个工作日", "every
   weekday", "一个半小时后", "every 30 minutes", "2 Mondays from now"...);
4. ``time_timex``: the library's values, read into the same parts;
5. ``time_conventions``: the product's conventions written in ``data/README.md`` (a bare
   "at 3" is 15:00, a date without a time is 09:00, "next Wednesday" is next week's, a
   reminder is never set in the past...) turn the parts into an instant and a rule.

Everything is computed in local wall-clock time (naive datetimes), then given the zone's
offset at that instant. What cannot be resolved ("February 30", "last Monday" for a new
reminder) gives None, so the caller asks when; it never raises.
"""

from __future__ import annotations

import re
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from switchboard.common.text import has_cjk
from switchboard.intent_parser.time_conventions import Parts, resolve
from switchboard.intent_parser.time_rules import read_rules
from switchboard.intent_parser.time_text import normalise
from switchboard.intent_parser.time_timex import read_result
from switchboard.intent_parser.time_zones import find_zone

# Only the start of a long message is read: the library's regexes are costly on long text,
# and a reminder is asked for in a sentence, not an essay.
MAX_CHARS = 400

_LATIN = re.compile(r"[A-Za-z]")
_ALARM = re.compile(r"\balarm|\bwake\b|\bwake me|闹钟|叫醒|叫我起床", re.IGNORECASE)
_DAY_RULE = re.compile(r"BYDAY=|BYMONTHDAY=|BYMONTH=")
_RANGE_JOINER = re.compile(r"\s*(?:-|\u2013|~|\uff5e|到|至|to|until|till)\s*(?:明天?|后天|tomorrow)?\s*", re.IGNORECASE)


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
        user_zone = ZoneInfo(time_zone)
        text = text[:MAX_CHARS]
        norm, index = normalise(text)
        named = find_zone(norm, time_zone)
        zone = named.zone if named is not None else user_zone
        local_now = now.astimezone(zone).replace(tzinfo=None, microsecond=0)
        parts = Parts(alarm=bool(_ALARM.search(norm)))
        listing = intent in ("reminder.list", "reminder.cancel")
        reserved = read_rules(norm, local_now, parts)
        # A day read by the rules ("in 3 days", "the 15th of next month"): a clock time may go with it.
        days_ahead = parts.instant is not None or parts.date is not None
        for result in self._recognize(norm, local_now, reserved):
            read_result(result, norm, local_now, parts, listing)
        clockless = parts.hour is None and parts.part is None
        if (parts.freq or (days_ahead and clockless)) and parts.spans:
            # "每个月" or "every year" alone, "in 3 days at noon": read again what follows, masked of what was read.
            masked = _mask(norm, parts.spans)
            for result in self._recognize(masked, local_now, parts.spans):
                read_result(result, norm, local_now, parts, listing)
        if listing:
            if parts.freq and parts.hour is None and parts.part is None:
                return None
            parts.freq, parts.byday = None, []
        if not parts.spans:
            return None
        if named is not None:
            parts.spans.append(named.span)
        if parts.elapsed is not None and not parts.freq:
            when = (now.astimezone(UTC) + parts.elapsed).astimezone(user_zone)
            return self._slots(text, index, parts, when, None)
        # A new reminder is never set in the past; a listing may name a time gone by.
        resolved = resolve(parts, local_now, future_only=not listing)
        if resolved is None:
            return None
        local, rule = resolved
        when = _localise(local, zone).astimezone(user_zone)
        if rule is not None and named is not None:
            rule = _rule_in_zone(rule, local, when)
            if rule is None:
                return None
        return self._slots(text, index, parts, when, rule)

    @staticmethod
    def _slots(text: str, index: list[int], parts: Parts, when: datetime, rule: str | None) -> TimeSlots:
        spans = tuple(sorted({(index[s], index[e - 1] + 1) for s, e in parts.spans}))
        source = " ".join(text[s:e].strip() for s, e in _merge(spans)).strip()
        return TimeSlots(when=when, rrule=rule, source_text=source, spans=spans)

    def _recognize(self, text: str, now: datetime, taken: list[tuple[int, int]]) -> list[Any]:
        cultures = []
        if has_cjk(text):
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
        # "下午2点 - 晚上8点", "10pm to 6am" read as two times: a reminder fires at the first.
        kept.sort(key=lambda r: r.start)
        return [
            result
            for i, result in enumerate(kept)
            if not (i and _RANGE_JOINER.fullmatch(text[kept[i - 1].end + 1 : result.start]) and _clock(kept[i - 1]))
        ]


def _clock(result: Any) -> bool:
    """Whether a library result names a clock time (a range's first end, say)."""
    return result.type_name.rsplit(".", 1)[-1] in ("time", "datetime")


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


def _localise(local: datetime, zone: tzinfo) -> datetime:
    """``local`` wall-clock time in ``zone``; a time skipped by a DST change moves forward."""
    aware = local.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone)


def _rule_in_zone(rule: str, said: datetime, when: datetime) -> str | None:
    """``rule``, whose clock time was said in another zone, with the user's clock time.

    The scheduler reads an RRULE in the user's zone. "Every day at 9am PST" keeps its hour
    there; a rule on named days whose day changes between the zones ("every Monday at 9am
    JST" from New York is Sunday evening) cannot be written so, and is asked about.
    """
    if "BYHOUR=" not in rule:
        return rule
    if said.date() != when.date() and _DAY_RULE.search(rule):
        return None
    rule = re.sub(r"BYHOUR=\d+", f"BYHOUR={when.hour}", rule)
    return re.sub(r"BYMINUTE=\d+", f"BYMINUTE={when.minute}", rule)
