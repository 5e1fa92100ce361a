"""The input filter: a sensitive-word lexicon (Aho-Corasick, one pass over the text however
long the list) and prompt-injection patterns. A message it blocks never reaches a model;
the verdict names the rule that fired, for the audit event."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import ahocorasick
import yaml

# Zero-width and joiner characters used to split a word without it showing.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Verdict:
    """Why a message is blocked: ``rule`` is "lexicon:<category>" or "injection:<name>"."""

    rule: str
    matched: str


def normalise(text: str) -> str:
    """Full-width to ASCII (NFKC), case folded, invisible characters removed."""
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE).casefold()


def _squeeze(text: str) -> str:
    """Only letters and digits: "冰 毒", "冰-毒" and "冰毒" read the same."""
    return "".join(ch for ch in text if ch.isalnum())


class InputFilter:
    def __init__(self, lexicon: Iterable[tuple[str, str]], patterns: Mapping[str, str]) -> None:
        # English terms are matched as whole words in the text as written; Chinese ones
        # (no word boundaries to speak of) in the text with everything but letters removed.
        self._words = ahocorasick.Automaton()
        self._squeezed = ahocorasick.Automaton()
        for category, term in lexicon:
            term = normalise(term)
            if _CJK.search(term):
                self._squeezed.add_word(_squeeze(term), (category, term))
            else:
                self._words.add_word(term, (category, term))
        for automaton in (self._words, self._squeezed):
            if len(automaton):
                automaton.make_automaton()
        self._patterns = [(name, re.compile(pattern, re.IGNORECASE | re.DOTALL)) for name, pattern in patterns.items()]

    @classmethod
    def from_files(cls, lexicon_path: Path, injection_path: Path) -> InputFilter:
        """Read a "category<TAB>term" lexicon and a YAML map of injection patterns."""
        lexicon = []
        for number, line in enumerate(lexicon_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            category, tab, term = line.partition("\t")
            if not tab or not term.strip():
                raise ValueError(f"{lexicon_path}:{number}: expected 'category<TAB>term'")
            lexicon.append((category.strip(), term.strip()))
        patterns = yaml.safe_load(injection_path.read_text(encoding="utf-8")) or {}
        if not isinstance(patterns, dict):
            raise ValueError(f"{injection_path}: expected a map of name -> pattern")
        return cls(lexicon, {str(name): str(pattern) for name, pattern in patterns.items()})

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
                return Verdict(f"injection:{name}", found.group(0)[:80])
        return None
