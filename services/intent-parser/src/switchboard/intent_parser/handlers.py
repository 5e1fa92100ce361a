"""Understanding one inbound message, without I/O: filter, intent, slots, routing hints.

:class:`Parser` holds what is loaded once (the filter's lexicon, the classifier trained on
the dataset, the time and entity extractors, the routing rules) and turns an
``InboundMessage`` into either a :class:`Blocked` verdict or a ``ParsedIntent``. State that
outlives a message (context, limits, dedupe, identity links) is the Faust app's (app.py).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from switchboard.common import text as text_rules
from switchboard.common.screening import TextScreen, Verdict
from switchboard.events.v1 import messages_pb2 as m
from switchboard.intent_parser import model_store
from switchboard.intent_parser.classifier import IntentClassifier, public_paths
from switchboard.intent_parser.entities import EntityExtractor
from switchboard.intent_parser.times import TimeParser

# Messages that are not text go to a media route by their kind, whatever their caption says.
MEDIA_ROUTES = {
    m.MESSAGE_KIND_IMAGE: "media.image",
    m.MESSAGE_KIND_VOICE: "media.voice",
    m.MESSAGE_KIND_DOCUMENT: "media.document",
}
TIME_INTENTS = frozenset({"reminder.create", "reminder.list", "reminder.cancel"})
# The classifier reads this much of a message; the rest does not change what is asked.
MAX_CLASSIFIED_CHARS = 2000

_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class Blocked:
    """The input filter stopped the message: why, and what to tell the user."""

    verdict: Verdict
    reply: str


@dataclass(frozen=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]


class Routing:
    """Model profile and priority hints, from ``routing.yaml``: first matching rule wins."""

    def __init__(self, profiles: list[_Rule], urgent: list[_Rule], urgent_intents: frozenset[str]) -> None:
        self._profiles = profiles
        self._urgent = urgent
        self._urgent_intents = urgent_intents

    @classmethod
    def from_file(cls, path: Path) -> Routing:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        profiles = [_Rule(p["name"], re.compile(p["pattern"], re.IGNORECASE)) for p in spec["profiles"]]
        urgent = [_Rule(u["name"], re.compile(u["pattern"], re.IGNORECASE)) for u in spec["urgent"]]
        return cls(profiles, urgent, frozenset(spec.get("urgent_intents", ())))

    def route(self, text: str, intent: str, metadata: dict[str, str]) -> tuple[str, m.Priority.ValueType, str]:
        """(profile, priority, reason) for ``text`` classified as ``intent``."""
        profile, profile_reason = "general", "no profile rule matched"
        for rule in self._profiles:
            found = rule.pattern.search(text)
            if found:
                profile, profile_reason = rule.name, f"matched {found.group(0)[:40]!r}"
                break
        priority, priority_reason = m.PRIORITY_ROUTINE, "no urgency rule matched"
        if metadata.get("priority") == "urgent":
            priority, priority_reason = m.PRIORITY_URGENT, "the channel marked it urgent"
        elif intent in self._urgent_intents:
            priority, priority_reason = m.PRIORITY_URGENT, f"intent {intent} is urgent"
        else:
            for rule in self._urgent:
                found = rule.pattern.search(text)
                if found:
                    priority, priority_reason = m.PRIORITY_URGENT, f"{rule.name}: matched {found.group(0)[:40]!r}"
                    break
        label = "urgent" if priority == m.PRIORITY_URGENT else "routine"
        return profile, priority, f"profile={profile} ({profile_reason}); priority={label} ({priority_reason})"


def language_of(text: str, fallback: str = "") -> str:
    """ "zh" or "en" by the script most of the letters are in; ``fallback`` when there are none."""
    cjk = len(text_rules.CJK.findall(text[:MAX_CLASSIFIED_CHARS]))
    latin = len(_LATIN.findall(text[:MAX_CLASSIFIED_CHARS]))
    if cjk == 0 and latin == 0:
        return fallback
    # A CJK character carries about a word: "明天 9am 提醒我 call Bob" is Chinese.
    return "zh" if cjk * 3 >= latin else "en"


_CHOICES = (
    re.compile(r"^(?:1|one|first|the first(?: one)?|#1|第一个?|一|1号)$"),
    re.compile(r"^(?:2|two|second|the second(?: one)?|#2|第二个?|二|2号)$"),
)


def choice(text: str) -> int | None:
    """Which option an answer to the clarifying question picks (0 or 1), or None: "1", "the
    first one", "第二个"."""
    said = unicodedata.normalize("NFKC", text).casefold().strip()
    said = re.sub(r"[\s.,!?;:)。，、]+$", "", said).removeprefix("option ").strip()
    return next((i for i, pattern in enumerate(_CHOICES) if pattern.match(said)), None)


def clean(text: str) -> str:
    """``text`` with control characters (other than newlines and tabs) removed."""
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


class Parser:
    """Everything that is decided about one message from the message alone."""

    def __init__(
        self,
        input_filter: TextScreen,
        classifier: IntentClassifier,
        times: TimeParser,
        entities: EntityExtractor,
        routing: Routing,
        replies: dict[str, dict[str, str]],
    ) -> None:
        self.input_filter = input_filter
        self.classifier = classifier
        self.times = times
        self.entities = entities
        self.routing = routing
        self._replies = replies

    @classmethod
    def from_config(
        cls,
        config_dir: Path,
        dataset_dir: Path,
        train_splits: tuple[str, ...],
        model_cache_dir: Path | None = None,
    ) -> Parser:
        """A parser from the shipped configuration, its classifier trained on the own rows of
        ``train_splits`` and the public corpora's training rows (``dataset_dir``/public), or
        loaded from ``model_cache_dir`` where a replica saved the model of the same inputs."""
        datasets = sorted(dataset_dir.glob("utterances.*.jsonl"))
        spec: dict[str, Any] = yaml.safe_load((config_dir / "replies.yaml").read_text(encoding="utf-8"))
        times = TimeParser()
        times.warm_up()
        return cls(
            TextScreen.from_files(config_dir / "lexicon.txt", config_dir / "injection.yaml", "injection"),
            model_store.trained(
                model_cache_dir, datasets, train_splits, config_dir / "intents.yaml", public_paths(dataset_dir)
            ),
            times,
            EntityExtractor.from_file(config_dir / "entities.yaml"),
            Routing.from_file(config_dir / "routing.yaml"),
            spec,
        )

    def close_call(self, parsed: m.ParsedIntent) -> bool:
        """Whether the model's second choice for ``parsed`` is too close to its first to guess
        (config/intents.yaml ``clarify_margin``)."""
        margin = self.classifier.config.clarify_margin
        return bool(parsed.runner_up) and parsed.confidence - parsed.runner_up_confidence < margin

    def question(self, parsed: m.ParsedIntent, language: str) -> str | None:
        """The clarifying question for a close call ("Did you mean: 1) to set a reminder, or
        2) just to chat?"), or None when either intent has no wording in replies.yaml."""
        names = [f"intent.{parsed.intent}", f"intent.{parsed.runner_up}"]
        if not all(name in self._replies for name in names):
            return None
        first, second = (self.reply(name, language) for name in names)
        return self.reply("clarify", language, first=first, second=second)

    def reply(self, name: str, language: str, **values: Any) -> str:
        """The user-facing text ``name`` in ``language`` (English when it has no translation)."""
        texts = self._replies[name]
        return texts.get(language, texts["en"]).format(**values)

    def screen(self, message: m.InboundMessage, language: str) -> Blocked | None:
        """The filter's verdict on ``message``, or None when it may go on."""
        verdict = self.input_filter.check(message.text)
        if verdict is None:
            return None
        kind = verdict.rule.split(":", 1)[0]
        return Blocked(verdict, self.reply(f"blocked.{kind}", language))

    def understand(
        self, message: m.InboundMessage, now: datetime, time_zone: str, language: str, intent: str = ""
    ) -> m.ParsedIntent:
        """Intent, slots and routing hints of ``message`` said at ``now`` in ``time_zone``;
        ``intent``, when given (the user said which one they meant), is taken as it is."""
        text = clean(message.text)
        route = MEDIA_ROUTES.get(message.kind)
        runner_up, runner_up_confidence = "", 0.0
        if intent:
            confidence = 1.0
        elif route is not None:
            intent, confidence = route, 1.0
        else:
            prediction = self.classifier.predict(text[:MAX_CLASSIFIED_CHARS])
            intent, confidence = prediction.intent, prediction.confidence
            runner_up, runner_up_confidence = prediction.runner_up, prediction.runner_up_confidence
        slots: list[m.Slot] = []
        spans: tuple[tuple[int, int], ...] = ()
        if intent in TIME_INTENTS:
            found = self.times.parse(text, time_zone, now, intent)
            if found is not None:
                spans = found.spans
                slots.append(m.Slot(name="datetime", value=found.rfc3339, source_text=found.source_text, confidence=1))
                if found.rrule:
                    slots.append(m.Slot(name="rrule", value=found.rrule, source_text=found.source_text, confidence=1))
        for entity in self.entities.extract(text[:MAX_CLASSIFIED_CHARS], intent, spans):
            slots.append(m.Slot(name=entity.name, value=entity.value, source_text=entity.source_text, confidence=1))
        profile, priority, reason = self.routing.route(text[:MAX_CLASSIFIED_CHARS], intent, dict(message.metadata))
        return m.ParsedIntent(
            message=message,
            intent=intent,
            confidence=confidence,
            slots=slots,
            model_profile=profile,
            priority=priority,
            routing_reason=reason,
            language=language,
            time_zone=time_zone,
            runner_up=runner_up,
            runner_up_confidence=runner_up_confidence,
        )
