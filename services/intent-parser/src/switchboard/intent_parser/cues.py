"""Keyword cues (config/intents.yaml ``cues``) as features of the intent classifier: one
binary feature per cue group that matches a message, and one per pair of groups that match.

Only the alternatives that match at least one training text are kept: a cue counts where
labelled rows attest it, so an alternative written while looking at held-out rows cannot
lift a figure measured on them (and cross-validation selects the cues inside each fold).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import sparse  # type: ignore[import-untyped]


def alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of a regular expression: "a|b(c|d)" -> ["a", "b(c|d)"]."""
    parts: list[str] = []
    depth, in_class, start, i = 0, False, 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]" or pattern[i + 1 : i + 3] == "^]":  # "[]...]": "]" is a member
                i += pattern[i + 1 : i + 3].index("]") + 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    return [*parts, pattern[start:]]


class Cues:
    """The cue features; ``patterns`` maps each group's name to the regular expression of its
    attested alternatives ("(?!)", never matching, where none is attested)."""

    def __init__(self, patterns: Mapping[str, str], weight: float) -> None:
        self.names = sorted(patterns)
        self.patterns = {name: patterns[name] for name in self.names}
        self._compiled = [re.compile(patterns[name]) for name in self.names]
        self.weight = weight
        count = len(self.names)
        self._pair_index = {pair: count + i for i, pair in enumerate(itertools.combinations(range(count), 2))}
        self.size = count + len(self._pair_index)

    @classmethod
    def attested(cls, groups: Mapping[str, Sequence[str]], weight: float, texts: Sequence[str]) -> Cues:
        """The cues of ``groups`` (name -> patterns), each group keeping the alternatives that
        match at least one of ``texts``."""
        patterns: dict[str, str] = {}
        for name in groups:
            try:
                compiled = [re.compile(a) for p in groups[name] for a in alternatives(p)]
                group = re.compile("|".join(f"(?:{p})" for p in groups[name]))
            except re.error as exc:
                raise ValueError(f"cue {name!r}: {exc}") from exc
            matched = [text for text in texts if group.search(text)]  # one pass over all texts
            kept = [c.pattern for c in compiled if any(c.search(text) for text in matched)]
            patterns[name] = "|".join(f"(?:{a})" for a in kept) or "(?!)"
        return cls(patterns, weight)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        rows: list[int] = []
        columns: list[int] = []
        for row, text in enumerate(texts):
            active = [i for i, pattern in enumerate(self._compiled) if pattern.search(text)]
            columns += active
            columns += [self._pair_index[pair] for pair in itertools.combinations(active, 2)]
            rows += [row] * (len(columns) - len(rows))
        data = np.full(len(columns), self.weight)
        return sparse.csr_matrix((data, (rows, columns)), shape=(len(texts), self.size))

    def active(self, text: str) -> list[str]:
        """The names of the groups that match a normalised text (for debugging)."""
        return [name for name, pattern in zip(self.names, self._compiled, strict=True) if pattern.search(text)]
