"""Slot extraction other than time: device, room, action, value (device.control / device.query;
"state", the state a device.query asks about: "is the light on?" -> on),
category (ticket.create) and task (reminder.create), from a gazetteer (config/entities.yaml).

All gazetteer terms go into one Aho-Corasick automaton, so a message is read once whatever the
size of the gazetteer. English terms match whole words, Chinese ones anywhere. The text is
normalised (NFKC, case folded, Traditional folded to Simplified) with a map back to the original
characters, so every entity keeps the span it came from.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from switchboard.intent_parser import numerals

_MASK = "\x00"  # stands for a removed time expression in the normalised text
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")
_QUOTES = str.maketrans("\u2018\u2019\u201b\u2032\u00b4`", "''''''")
_WORD = re.compile(r"[a-z0-9]")

_CN_NUM = "[零\u3007一二两三四五六七八九十百千]"
# A whole number, never a part of one (lookbehind, possessive: no backtracking into digits).
_NUM = rf"(?:(?<![\d.])(\d++(?:\.\d++)?+)|(?<!{_CN_NUM})({_CN_NUM}++))"
# After a number, these make it a time or a date, never a device value.
_TIME_UNIT = (
    r"\s*(?:am\b|pm\b|a\.m|p\.m|:\d|点|點|分|秒|小时|个小时|钟|号|日|月|年|天|周|星期|"
    r"min|mins\b|minutes?\b|hours?\b|hrs?\b|h\b|secs?\b|seconds?\b|o'?clock|days?\b|weeks?\b|months?\b|years?\b|"
    r"st\b|nd\b|rd\b|th\b)"
)
_PERCENT = re.compile(rf"百分之\s*{_NUM}|{_NUM}\s*(?:%|percent\b|per\s?cent\b)")
_FAHRENHEIT = re.compile(rf"华氏\s*{_NUM}\s*度?|{_NUM}\s*(?:°\s*f\b|华氏度?|degrees?\s*f(?:ahrenheit)?\b|fahrenheit\b)")
_CELSIUS = re.compile(rf"摄氏\s*{_NUM}\s*度?|{_NUM}\s*(?:°\s*c\b|摄氏度|度|degrees?\s*c(?:elsius)?\b|celsius\b|c\b)")
_DEGREES = re.compile(rf"{_NUM}\s*(?:°|degrees?\b)")
_HALF = re.compile(r"一半|\bhalf(?:way)?\b(?!\s+(?:an?\s+)?hour)")
# A number without a unit only after "to"/"到"...: "set the thermostat to 68", "音箱开到30"
# (not "bedroom 2"). Read as a temperature by a device that takes one, else as a plain level.
_BARE = re.compile(rf"(?:\bto|到|成|为|在|至)\s*{_NUM}(?![\d.%]|{_CN_NUM}|{_TIME_UNIT})")


@dataclass(frozen=True)
class Entity:
    """One slot: its name, its normalised value and the span of the message it came from
    ("" when it follows from the intent or a default rather than from words of the message)."""

    name: str
    value: str
    source_text: str


@dataclass(frozen=True)
class _Device:
    actions: Mapping[str, str] | None = None
    fahrenheit_from: float | None = None  # set for devices that take a temperature


@dataclass(frozen=True)
class _Match:
    kind: str
    value: str
    start: int
    end: int
    weight: int = 1


@dataclass
class _Text:
    """Normalised text and, per character, the index of the original character it came from."""

    original: str
    chars: list[str] = field(default_factory=list)
    origin: list[int] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.chars)

    def source(self, start: int, end: int) -> str:
        """The original text behind normalised [start, end), time expressions left out."""
        picked: list[str] = []
        last = -1
        for i in range(start, end):
            if self.chars[i] == _MASK or self.origin[i] == last:
                continue
            last = self.origin[i]
            ch = self.original[last]
            picked.append(" " if ch.isspace() else ch)
        return re.sub(r" {2,}", " ", "".join(picked)).strip()


def _number(text: str) -> float | None:
    """Digits or a Chinese numeral ("二十六" 26, "三五" 35) as a number; None past a million."""
    number = numerals.to_number(text)
    return float(number) if number is not None and number < 1e6 else None  # no device level is that big


def _format(number: float) -> str:
    return str(int(number)) if number == int(number) else f"{number:g}"


def _is_filler(ch: str) -> bool:
    """White space, punctuation or a removed time expression."""
    return ch == _MASK or ch.isspace() or unicodedata.category(ch)[0] == "P"


def _is_english(term: str) -> bool:
    return bool(_WORD.search(term))


class EntityExtractor:
    """Extracts the non-time slots of a message for a given intent (see ``extract``)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._max_chars = int(config.get("max_text_chars", 2000))
        fold = str(config.get("fold", "")).split()
        if any(len(pair) != 2 for pair in fold):
            raise ValueError("fold: expected pairs of two characters")
        self._fold = {pair[0]: pair[1] for pair in fold}

        self._devices: dict[str, _Device] = {}
        self._automaton = ahocorasick.Automaton()
        self._entries: dict[str, list[tuple[str, str, int]]] = {}
        for name, spec in _mapping(config, "devices").items():
            temperature = spec.get("temperature") or {}
            actions = spec.get("actions")
            self._devices[name] = _Device(
                actions=_strings(actions, f"devices.{name}.actions") if actions is not None else None,
                fahrenheit_from=float(temperature.get("fahrenheit_from", 1000)) if temperature else None,
            )
            # The weight ranks the device terms: named > weak > sensor reading (fallback).
            fallback = bool(spec.get("fallback", False))
            self._add("device", name, spec.get("terms", []), weight=0 if fallback else 2)
            self._add("device", name, spec.get("weak_terms", []), weight=0 if fallback else 1)
        for name, terms in _mapping(config, "rooms").items():
            self._add("room", name, terms)
        for name, terms in _mapping(config, "actions").items():
            self._add("action", name, terms)
        for name, terms in _mapping(config, "particles").items():
            self._add("particle", name, terms)
        self._action_defaults = _strings(config.get("action_defaults", {}), "action_defaults")
        for name, terms in _mapping(config, "categories").items():
            for term in _flat(terms):
                strong = isinstance(term, str) and term.startswith("!")
                self._add("category", name, [term[1:] if strong else term], weight=2 if strong else 1)
        self._categories = list(_mapping(config, "categories"))
        self._default_category = str(config.get("default_category", "")) or None
        levels = config.get("levels") or {}
        before = "|".join(re.escape(self._norm(t)) for t in levels.get("before", [])) or "(?!)"
        after = "|".join(re.escape(self._norm(t)) for t in levels.get("after", [])) or "(?!)"
        self._level = re.compile(rf"(?:{before})\s*(?:to|at|of|到|调到|开到)?\s*{_NUM}|{_NUM}\s*(?:{after})")

        task = config.get("task") or {}
        # Regular expressions, matched against the normalised (case-folded, Simplified) text.
        self._triggers = [re.compile(str(t), re.IGNORECASE) for t in task.get("triggers", [])]
        self._leading = self._words_regex(task.get("leading", []), anchor="^")
        self._trailing = self._words_regex(task.get("trailing", []), anchor="$")
        before_time = self._alternation(task.get("before_time", []))
        after_time = self._alternation(task.get("after_time", []))
        self._dangling = re.compile(rf"(?:(?<![a-z0-9]){before_time}\s*)?\x00+(?:\s*{after_time}(?![a-z0-9]))?")
        self._antecedent = re.compile(str(task["antecedent"]), re.IGNORECASE) if task.get("antecedent") else None
        if len(self._automaton):
            self._automaton.make_automaton()

    @classmethod
    def from_file(cls, path: Path) -> EntityExtractor:
        """Load the gazetteer YAML (config/entities.yaml)."""
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(config, dict):
            raise ValueError(f"{path}: expected a map")
        return cls(config)

    # -- public -------------------------------------------------------------------------------

    def extract(self, text: str, intent: str, time_spans: Sequence[tuple[int, int]] = ()) -> list[Entity]:
        """The slots of ``text`` that ``intent`` takes; ``time_spans`` are the character spans of
        time expressions in ``text`` (left out of values and of the task)."""
        if intent not in {"device.control", "device.query", "ticket.create", "reminder.create"}:
            return []
        doc = self._normalise(text[: self._max_chars], time_spans)
        if intent == "reminder.create":
            return self._task(doc)
        matches = self._scan(doc.text)
        if intent == "ticket.create":
            return self._category(doc, matches)
        return self._device_slots(doc, matches, intent)

    # -- building -----------------------------------------------------------------------------

    def _norm(self, text: str) -> str:
        return self._normalise(text).text.strip()

    def _normalise(self, text: str, masked: Sequence[tuple[int, int]] = ()) -> _Text:
        hidden = bytearray(len(text))
        for start, end in masked:
            start, end = max(0, int(start)), min(len(text), int(end))
            hidden[start:end] = b"\x01" * max(0, end - start)
        doc = _Text(text)
        for i, ch in enumerate(text):
            if hidden[i]:
                if not doc.chars or doc.chars[-1] != _MASK:
                    doc.chars.append(_MASK)
                    doc.origin.append(i)
                continue
            if ch in _INVISIBLE:
                continue
            for out in unicodedata.normalize("NFKC", ch).casefold().translate(_QUOTES):
                out = self._fold.get(out, out)
                if out.isspace() or unicodedata.category(out) in {"Cc", "Cf"}:
                    if doc.chars and doc.chars[-1] == " ":
                        continue
                    out = " "
                doc.chars.append(out)
                doc.origin.append(i)
        return doc

    def _add(self, kind: str, value: str, terms: Iterable[Any], weight: int = 1) -> None:
        for term in _flat(terms):
            if not isinstance(term, str):
                raise ValueError(f"{kind} {value!r}: {term!r}: quote on/off/yes/no (YAML reads them as booleans)")
            base = self._norm(term)
            if not base:
                raise ValueError(f"{kind} {value!r}: empty term")
            variants = {base}
            if _is_english(base):
                for form in (base, base.replace(" ", "-"), base.replace(" ", "")):
                    variants |= {form, form + "s", form + "es"}
            for key in variants:
                entries = self._entries.setdefault(key, [])
                if (kind, value, weight) not in entries:
                    entries.append((kind, value, weight))
                self._automaton.add_word(key, (key, entries))

    def _words_regex(self, words: Iterable[Any], anchor: str) -> re.Pattern[str]:
        alternation = self._alternation(words)
        if anchor == "^":  # used with .match(text, pos): anchored at pos
            return re.compile(rf"(?:{alternation})(?![a-z0-9])")
        return re.compile(rf"(?<![a-z0-9])(?:{alternation})$")

    def _alternation(self, words: Iterable[Any]) -> str:
        terms = sorted({self._norm(str(w)) for w in words}, key=len, reverse=True)
        return "(?:" + ("|".join(re.escape(t) for t in terms if t) or "(?!)") + ")"

    # -- matching -----------------------------------------------------------------------------

    def _scan(self, text: str) -> dict[str, list[_Match]]:
        """Gazetteer matches per kind: whole words for English, leftmost-longest, no overlaps."""
        found: dict[str, list[_Match]] = {}
        if not len(self._automaton):
            return found
        for end, (key, entries) in self._automaton.iter(text):
            start = end - len(key) + 1
            end += 1
            if _WORD.match(key[0]) and start > 0 and _WORD.match(text[start - 1]):
                continue
            if _WORD.match(key[-1]) and end < len(text) and _WORD.match(text[end]):
                continue
            for kind, value, weight in entries:
                found.setdefault(kind, []).append(_Match(kind, value, start, end, weight))
        for kind, matches in found.items():
            matches.sort(key=lambda m: (m.start, m.start - m.end))
            kept: list[_Match] = []
            for match in matches:
                if not kept or match.start >= kept[-1].end:
                    kept.append(match)
            found[kind] = kept
        return found

    def _device_slots(self, doc: _Text, matches: dict[str, list[_Match]], intent: str) -> list[Entity]:
        entities: list[Entity] = []
        devices = matches.get("device", [])
        device = max(devices, key=lambda m: (m.weight, -m.start), default=None)
        if device is not None:
            entities.append(Entity("device", device.value, doc.source(device.start, device.end)))
        rooms = matches.get("room", [])
        if rooms:
            entities.append(Entity("room", rooms[0].value, doc.source(rooms[0].start, rooms[0].end)))
        spec = self._devices[device.value] if device is not None else _Device()

        def outside_devices(m: _Match) -> bool:  # "锁" in "门锁", "vacuum" in "robot vacuum"
            return not any(d.start <= m.start and m.end <= d.end and d.end - d.start > m.end - m.start for d in devices)

        phrases = [m for m in matches.get("action", []) if outside_devices(m)]
        phrases = phrases or [m for m in matches.get("particle", []) if outside_devices(m)]
        if intent == "device.query":
            entities.append(Entity("action", "query", ""))
            if phrases:  # the state asked about: "is the light on?" -> on, "门锁了吗" -> lock
                mapping = spec.actions if spec.actions is not None else self._action_defaults
                phrase = phrases[0]
                asked = mapping.get(phrase.value, phrase.value)
                entities.append(Entity("state", asked, doc.source(phrase.start, phrase.end)))
            return entities

        value = self._value(doc, spec)
        if value is not None:
            entities.append(Entity("action", "set", doc.source(phrases[0].start, phrases[0].end) if phrases else ""))
            entities.append(value)
        elif phrases:
            phrase = phrases[0]
            if device is None:  # no device to read the action for: as said
                mapping: Mapping[str, str] = {}
            else:
                mapping = spec.actions if spec.actions is not None else self._action_defaults
            action = mapping.get(phrase.value, phrase.value)
            entities.append(Entity("action", action, doc.source(phrase.start, phrase.end)))
        return entities

    def _value(self, doc: _Text, device: _Device) -> Entity | None:
        """A level in the message: "50%", "24°C" / "75°F", or a plain number "3"."""
        text = doc.text
        temperature = device.fahrenheit_from

        def first(pattern: re.Pattern[str]) -> tuple[float, re.Match[str]] | None:
            for found in pattern.finditer(text):
                raw = next((g for g in found.groups() if g), None)
                number = _number(raw) if raw else None
                if number is not None:
                    return number, found
            return None

        def number_span(found: re.Match[str]) -> tuple[int, int]:
            return next(found.span(i) for i, g in enumerate(found.groups(), 1) if g)

        def entity(value: str, found: re.Match[str]) -> Entity:
            return Entity("value", value, doc.source(found.start(), found.end()))

        if hit := first(_PERCENT):
            return entity(f"{_format(hit[0])}%", hit[1])
        if hit := first(_FAHRENHEIT):
            return entity(f"{_format(hit[0])}°F", hit[1])
        if hit := first(_CELSIUS):
            return entity(f"{_format(hit[0])}°C", hit[1])
        if found := _HALF.search(text):
            return entity("50%", found)
        if hit := first(_DEGREES):
            unit = "F" if temperature is not None and hit[0] >= temperature else "C"
            return entity(f"{_format(hit[0])}°{unit}", hit[1])
        if hit := first(self._level):
            return entity(_format(hit[0]), hit[1])
        if hit := first(_BARE):
            number, found = hit
            value = _format(number)
            if temperature is not None:
                value += "°F" if number >= temperature else "°C"
            return Entity("value", value, doc.source(*number_span(found)))
        return None

    def _category(self, doc: _Text, matches: dict[str, list[_Match]]) -> list[Entity]:
        scores: dict[str, int] = {}
        first: dict[str, _Match] = {}
        seen: set[tuple[str, str]] = set()
        for match in matches.get("category", []):
            key = (match.value, doc.text[match.start : match.end])
            if key in seen:
                continue
            seen.add(key)
            scores[match.value] = scores.get(match.value, 0) + match.weight
            first.setdefault(match.value, match)
        if scores:
            best = max(self._categories, key=lambda c: (scores.get(c, 0), -self._categories.index(c)))
            return [Entity("category", best, doc.source(first[best].start, first[best].end))]
        if self._default_category:
            return [Entity("category", self._default_category, "")]
        return []

    def _task(self, doc: _Text) -> list[Entity]:
        # "at <time>", "<time> from now": the words around a time expression go with it.
        text = self._dangling.sub(lambda m: _MASK * len(m.group()), doc.text)
        triggers = [found for pattern in self._triggers if (found := pattern.search(text))]
        if not triggers:
            return []
        trigger = min(triggers, key=lambda m: (m.start(), -m.end()))  # the first, the longest there
        span = self._trim(text, trigger.end(), len(text))
        if span is None and self._antecedent is not None:
            # Nothing after the request: the plan said before it ("有个面试, 别让我忘了").
            clause = re.split(r"[,;.!?\u3002]", text[: trigger.start()])[0]
            if plan := self._antecedent.search(clause):
                span = self._trim(text, plan.start(1), plan.end(1))
        if span is None:
            return []
        task = doc.source(*span)
        return [Entity("task", task, task)] if task else []

    def _trim(self, text: str, start: int, end: int) -> tuple[int, int] | None:
        """[start, end) without the filler words and punctuation at either end."""
        while True:
            before = (start, end)
            while start < end and _is_filler(text[start]):
                start += 1
            while end > start and _is_filler(text[end - 1]):
                end -= 1
            if found := self._leading.match(text, start, end):
                start = found.end()
            if found := self._trailing.search(text, start, end):
                end = found.start()
            if (start, end) == before:
                break
        return (start, end) if start < end else None


def _flat(terms: Iterable[Any]) -> list[Any]:
    """Terms, where a list may group them in lists (one per language)."""
    if isinstance(terms, (str, bytes)) or not isinstance(terms, Iterable):
        raise ValueError(f"expected a list of terms, got {terms!r}")
    return [t for item in terms for t in (item if isinstance(item, list) else [item])]


def _mapping(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{key}: expected a map")
    return _strings(value, key, values=False)


def _strings(value: Any, where: str, values: bool = True) -> dict[str, Any]:
    """YAML reads a bare on/off as a boolean: insist on strings."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a map")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or (values and not isinstance(item, str)):
            raise ValueError(f"{where}: {key!r}: quote on/off/yes/no (YAML reads them as booleans)")
        out[key] = item
    return out
