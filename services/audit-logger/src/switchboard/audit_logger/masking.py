"""PII masking of free text before it is indexed.

What is found and how it is replaced:

- ``email``: e-mail addresses (ASCII and accented Latin);
- ``phone``: phone numbers valid for one of ``phone_regions`` (default CN, US, GB), or in
  ``+`` international form; found and validated by ``phonenumbers`` (libphonenumber's
  metadata) around each run of seven digits or more; a run longer than ``MAX_PHONE_RUN``
  characters, or every run of a text with more than ``MAX_PHONE_RUNS``, is masked without
  validation (so that masking stays linear in the text's length);
- ``id_card``: mainland China resident ID numbers (18 digits, ISO 7064 check digit, a real
  birth date), Hong Kong identity card numbers (check digit), US social security numbers;
- ``token``: bearer tokens, JWTs, well-known key formats (OpenAI ``sk-``, GitHub, Slack,
  AWS, Google, Telegram bot tokens), and the value after ``password=``, ``token:``,
  ``密码：`` and the like.

Each match becomes ``[kind]``, or ``[kind:1a2b3c4d]`` when a fingerprint key is set: the
first 8 hex digits of an HMAC-SHA256 of the normalised value, so an analyst can tell the
same phone number came up twice without seeing it. More patterns can be configured
(``extra_patterns``: name -> regular expression).

Chinese text has no spaces, so matches are delimited by lookarounds on ASCII letters and
digits, not ``\\b`` (which treats CJK characters as word characters).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

import phonenumbers

KINDS: Final = ("email", "phone", "id_card", "token")

_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"

# Latin letters with accents are allowed in addresses; CJK are not (they are the text
# around an address written without spaces).
# Every repetition is bounded by the lengths RFC 5321 allows (local part 64, label 63), so
# that a long run of local-part characters costs linear time, not a scan to its end from
# each of its characters.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9\u00c0-\u024f.!#$%&'*+/=?^`{|}~-])[A-Za-z0-9\u00c0-\u024f.!#$%&'*+/=?^`{|}~-]{1,64}@"
    r"(?:[A-Za-z0-9\u00c0-\u024f](?:[A-Za-z0-9\u00c0-\u024f-]{0,61}[A-Za-z0-9\u00c0-\u024f])?\.){1,8}[A-Za-z]{2,63}"
    + _NOT_ALNUM_AFTER
)
_SIX_DIGITS = re.compile(r"\d{6}")
# A cheap test before the phone matcher runs: seven digits or more, maybe separated.
_MAYBE_PHONE = re.compile(r"\d(?:[\s().-]{0,2}\d){6,}")
# The matcher (libphonenumber's) is slow and super-linear on long runs of digits and
# separators: it sees a window around each run, of this many characters each side (room
# for a "+", a bracket, an extension's "ext."), ...
_PHONE_CONTEXT = 8
# ... only runs this long or shorter ("+86 (138) 1234-5678 ext. 12345" is 30; two numbers
# joined by a space still fit) ...
MAX_PHONE_RUN = 48
# ... and only in texts with this many runs or fewer.
MAX_PHONE_RUNS = 32
_CN_ID = re.compile(_NOT_ALNUM_BEFORE + r"\d{17}[\dXx]" + _NOT_ALNUM_AFTER)
_HK_ID = re.compile(_NOT_ALNUM_BEFORE + r"([A-Z]{1,2})(\d{6})\(?([\dA])\)?" + r"(?![0-9A-Za-z])")
_US_SSN = re.compile(_NOT_ALNUM_BEFORE + r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}" + _NOT_ALNUM_AFTER)
# Key formats, each with a literal every match of it contains ("bearer" in any case): a
# format's pattern runs only on text that has its literal, since one alternation of them all
# tried at every character was most of the time spent on long texts with none.
_TOKEN_FORMATS: Final = (
    ("bearer", re.compile(r"(?i:bearer)\s+[A-Za-z0-9._~+/-]{16,}=*")),
    ("eyJ", re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),  # JWT
    ("sk-", re.compile(_NOT_ALNUM_BEFORE + r"sk-(?:proj-)?[A-Za-z0-9_-]{20,}")),  # OpenAI-style keys
    ("gh", re.compile(_NOT_ALNUM_BEFORE + r"gh[pousr]_[A-Za-z0-9]{36,}")),  # GitHub
    ("xox", re.compile(_NOT_ALNUM_BEFORE + r"xox[abprs]-[A-Za-z0-9-]{10,}")),  # Slack
    ("AKIA", re.compile(_NOT_ALNUM_BEFORE + r"AKIA[0-9A-Z]{16}" + _NOT_ALNUM_AFTER)),  # AWS access key id
    ("AIza", re.compile(_NOT_ALNUM_BEFORE + r"AIza[0-9A-Za-z_-]{35}")),  # Google API key
    (":", re.compile(_NOT_ALNUM_BEFORE + r"\d{8,10}:[A-Za-z0-9_-]{35}" + _NOT_ALNUM_AFTER)),  # Telegram bot token
)
# "password: hunter2", "api_key=…", "密码：123456": the value is the secret.
_LABELLED_SECRET = re.compile(
    r"(?i:\b(?:password|passwd|pwd|passcode|secret|api[_-]?key|access[_-]?token|token)\b|密码|口令|令牌|密钥)"
    r"\s*(?:is\s+|是\s*)?[:=：]?\s*(?P<value>[^\s,;，；。]{4,})"
)
# What every finding of the built-in kinds contains somewhere: "@", six digits (maybe
# separated, as in phone numbers), a key's prefix, a Chinese secret label; or one of the
# secret words (looked for in lower case). One scan of each rules most text out at once;
# the matchers above run only on text that has one of them.
_TRIGGER = re.compile(r"\d(?:[\s().-]{0,2}\d){5}|[@密口令]|eyJ|sk-|gh[pousr]_|xox|AKIA|AIza")
_TRIGGER_WORD = re.compile(r"bearer|passw|pwd|passcode|secret|api[_-]?key|token")
_SECRET_LABEL_CJK = re.compile(r"密码|口令|令牌|密钥")
_UPPER = re.compile(r"[A-Z]")
_CN_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK: Final = "10X98765432"


def _cn_id_valid(number: str) -> bool:
    total = sum(int(d) * w for d, w in zip(number[:17], _CN_ID_WEIGHTS, strict=True))
    if _CN_ID_CHECK[total % 11] != number[17].upper():
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= datetime.now(UTC).date()


def _hk_id_valid(letters: str, digits: str, check: str) -> bool:
    values = [36] * (2 - len(letters)) + [ord(c) - 55 for c in letters] + [int(d) for d in digits]
    total = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True))
    expected = (11 - total % 11) % 11
    return check == ("A" if expected == 10 else str(expected))


@dataclass(frozen=True, slots=True)
class Found:
    start: int
    end: int
    kind: str


class Masker:
    """Finds PII in text and replaces it; see the module docstring for what it finds."""

    def __init__(
        self,
        kinds: Sequence[str] = KINDS,
        *,
        phone_regions: Sequence[str] = ("CN", "US", "GB"),
        extra_patterns: Mapping[str, str] | None = None,
        fingerprint_key: bytes | None = None,
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown PII kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        self._kinds = frozenset(kinds)
        self._regions = [r.upper() for r in phone_regions]
        for region in self._regions:
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"unknown phone region {region!r}")
        self._extra = {name: re.compile(pattern) for name, pattern in (extra_patterns or {}).items()}
        self._key = fingerprint_key
        # The same text comes by several times (the message, its intent, the model request,
        # later turns' context): remember the last few thousand results.
        self._masked = functools.lru_cache(maxsize=8192)(self._mask)

    def mask(self, text: str) -> tuple[str, frozenset[str]]:
        """``text`` with every finding replaced, and the kinds found."""
        if not text:
            return text, frozenset()
        return self._masked(text)

    def _mask(self, text: str) -> tuple[str, frozenset[str]]:
        found = _without_overlaps(sorted(self._find(text), key=lambda f: (f.start, -(f.end - f.start))))
        if not found:
            return text, frozenset()
        parts: list[str] = []
        at = 0
        for f in found:
            parts += [text[at : f.start], self._placeholder(f.kind, text[f.start : f.end])]
            at = f.end
        parts.append(text[at:])
        return "".join(parts), frozenset(f.kind for f in found)

    def _placeholder(self, kind: str, value: str) -> str:
        if self._key is None:
            return f"[{kind}]"
        normal = re.sub(r"[\s().-]", "", value).lower()
        return f"[{kind}:{hmac.new(self._key, normal.encode(), hashlib.sha256).hexdigest()[:8]}]"

    def _find(self, text: str) -> Iterator[Found]:
        for name, pattern in self._extra.items():
            yield from (Found(m.start(), m.end(), name) for m in pattern.finditer(text))
        lower = text.lower()
        secret_word = _TRIGGER_WORD.search(lower) is not None
        if not (secret_word or _TRIGGER.search(text)):
            return
        if "email" in self._kinds and "@" in text:
            yield from (Found(m.start(), m.end(), "email") for m in _EMAIL.finditer(text))
        if "token" in self._kinds:
            for literal, pattern in _TOKEN_FORMATS:
                if literal in (lower if literal == "bearer" else text):
                    yield from (Found(m.start(), m.end(), "token") for m in pattern.finditer(text))
            if secret_word or _SECRET_LABEL_CJK.search(text):
                yield from (Found(m.start("value"), m.end("value"), "token") for m in _LABELLED_SECRET.finditer(text))
        if "id_card" in self._kinds and _SIX_DIGITS.search(text):  # both ID numbers have six in a row
            yield from (Found(m.start(), m.end(), "id_card") for m in _CN_ID.finditer(text) if _cn_id_valid(m[0]))
            if _UPPER.search(text):  # a Hong Kong number starts with a capital letter
                yield from (
                    Found(m.start(), m.end(), "id_card")
                    for m in _HK_ID.finditer(text)
                    if _hk_id_valid(m[1], m[2], m[3])
                )
        if "id_card" in self._kinds and "-" in text:
            yield from (Found(m.start(), m.end(), "id_card") for m in _US_SSN.finditer(text))
        if "phone" in self._kinds:
            yield from self._phones(text)

    def _phones(self, text: str) -> Iterator[Found]:
        """Phone numbers, in time linear in the text: the matcher runs only on a small window
        around each run of digits that could be one, and at most ``MAX_PHONE_RUNS`` times a
        text; a run too long to be one number, or every run of a text with more, is masked
        whole without asking it (over-masking is the safe side of a privacy filter)."""
        runs = [m.span() for m in _MAYBE_PHONE.finditer(text)]
        for start, end in runs:
            if len(runs) > MAX_PHONE_RUNS or end - start > MAX_PHONE_RUN:
                yield Found(start, end, "phone")
                continue
            low = max(0, start - _PHONE_CONTEXT)
            window = text[low : end + _PHONE_CONTEXT]
            for region in self._regions:
                found = [
                    (low + match.start, low + match.end)
                    for match in phonenumbers.PhoneNumberMatcher(window, region, leniency=phonenumbers.Leniency.VALID)
                ]
                yield from (Found(s, e, "phone") for s, e in found)
                if any(s <= start and end <= e for s, e in found):
                    break  # the whole run is a number of this region


def _without_overlaps(found: list[Found]) -> list[Found]:
    """Keep, of overlapping findings, the one starting first (the longest on a tie)."""
    kept: list[Found] = []
    for f in found:
        if kept and f.start < kept[-1].end:
            if f.end > kept[-1].end:  # a longer overlapping finding extends the masked span
                kept[-1] = Found(kept[-1].start, f.end, kept[-1].kind)
            continue
        kept.append(f)
    return kept
