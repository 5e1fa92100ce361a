"""Screening text against a sensitive-word lexicon (Aho-Corasick, one pass over the text
however long the list) and named regular expressions.

The intent parser screens what users send (lexicon and prompt-injection patterns: a message
it blocks never reaches a model); the inference client screens what models answer (lexicon
and output rules: a blocked answer never leaves). The verdict names the rule that fired,
for the audit event."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import ahocorasick
import yaml

from switchboard.common.text import has_cjk

# Zero-width and joiner characters used to split a word without it showing.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


@dataclass(frozen=True)
class Verdict:
    """Why a text is blocked: ``rule`` is "lexicon:<category>" or "<kind>:<name>" (a pattern)."""

    rule: str
    matched: str


def normalise(text: str) -> str:
    """Full-width to ASCII (NFKC), case folded, invisible characters removed."""
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE).casefold()


def _squeeze(text: str) -> str:
    """Only letters and digits: "冰 毒", "冰-毒" and "冰毒" read the same."""
    return "".join(ch for ch in text if ch.isalnum())


class TextScreen:
    """A lexicon and named patterns; ``kind`` prefixes the patterns' rule names."""

    def __init__(self, lexicon: Iterable[tuple[str, str]], patterns: Mapping[str, str], kind: str) -> None:
        self._kind = kind
        # English terms are matched as whole words in the text as written; Chinese ones
        # (no word boundaries to speak of) in the text with everything but letters removed.
        self._words = ahocorasick.Automaton()
        self._squeezed = ahocorasick.Automaton()
        for category, term in lexicon:
            term = normalise(term)
            if has_cjk(term):
                self._squeezed.add_word(_squeeze(term), (category, term))
            else:
                self._words.add_word(term, (category, term))
        for automaton in (self._words, self._squeezed):
            if len(automaton):
                automaton.make_automaton()
        self._patterns = [(name, re.compile(pattern, re.IGNORECASE | re.DOTALL)) for name, pattern in patterns.items()]

    @classmethod
    def from_files(cls, lexicon_path: Path, patterns_path: Path, kind: str) -> TextScreen:
        """Read a "category<TAB>term" lexicon and a YAML map of name -> pattern."""
        lexicon = []
        for number, line in enumerate(lexicon_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            category, tab, term = line.partition("\t")
            if not tab or not term.strip():
                raise ValueError(f"{lexicon_path}:{number}: expected 'category<TAB>term'")
            lexicon.append((category.strip(), term.strip()))
        patterns = yaml.safe_load(patterns_path.read_text(encoding="utf-8")) or {}
        if not isinstance(patterns, dict):
            raise ValueError(f"{patterns_path}: expected a map of name -> pattern")
        return cls(lexicon, {str(name): str(pattern) for name, pattern in patterns.items()}, kind)

    def check(self, text: str) -> Verdict | None:
        """The first rule ``text`` breaks, or None if it may pass."""
        plain = normalise(text)
        if len(self._words):
            for end, (category, term) in self._words.iter(plain):
                start = end - len(term) + 1
                before = plain[start - 1] if start > 0 else " "
                after = plain[end + 1] if end + 1 < len(plain) else " "
                if not before.isalnum() and not after.isalnum():
                    return Verdict(f"lexicon:{category}", term)
        if len(self._squeezed):
            for _, (category, term) in self._squeezed.iter(_squeeze(plain)):
                return Verdict(f"lexicon:{category}", term)
        for name, pattern in self._patterns:
            if (found := pattern.search(plain)) is not None:
                return Verdict(f"{self._kind}:{name}", found.group(0)[:80])
        return None


class StreamScreen:
    """Screens a text that comes in pieces (a streamed answer) in time linear in its length.

    Each piece is checked together with the last ``hold`` characters before it, and those
    are held back until a later piece (or the end) shows they do not begin something
    blocked: a rule's match of up to ``hold`` characters is caught whole before any of it
    has been released. A match longer than that can straddle the released text and be
    missed; ``hold`` is set above the longest match the rules need (the output rules' are
    under 40 characters; the inference client holds 48).
    """

    def __init__(self, screen: TextScreen, hold: int) -> None:
        self._screen = screen
        self._hold = hold
        self._held = ""

    def feed(self, piece: str) -> tuple[Verdict | None, str]:
        """The verdict on the text so far, and what may be released now ("" when blocked)."""
        window = self._held + piece
        verdict = self._screen.check(window)
        if verdict is not None:
            return verdict, ""
        cut = max(0, len(window) - self._hold)
        released, self._held = window[:cut], window[cut:]
        return None, released

    def finish(self) -> str:
        """The end of the text: what was held back (already checked), released."""
        rest, self._held = self._held, ""
        return rest

    def drop(self) -> None:
        """Forget what is held (its text failed or ran out of time: it is never released)."""
        self._held = ""
