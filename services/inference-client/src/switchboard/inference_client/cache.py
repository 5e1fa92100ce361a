"""Response cache: the same question asked again (first turn, same profile, same
generation parameters) is answered without calling a model.

Bounded (least recently used out first) with a time to live. Keys are normalised: case,
full-width forms and runs of whitespace do not make a prompt different. Turns with
conversation context (earlier assistant turns, more than one user turn) are personal and
never cached unless ``contextual`` is set.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TLRUCache

from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client.config import Target

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Cached:
    text: str
    finish_reason: m.FinishReason.ValueType
    target: Target
    usage: m.Usage


def normalise(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def contextual(request: m.InferenceRequest) -> bool:
    """Does the request carry conversation context (anything but system turns and one user turn)?"""
    users = sum(1 for t in request.messages if t.role == m.ROLE_USER)
    others = sum(1 for t in request.messages if t.role not in (m.ROLE_USER, m.ROLE_SYSTEM))
    return users != 1 or others > 0


class ResponseCache:
    def __init__(
        self, entries: int, ttl_s: float, allow_contextual: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: TLRUCache[str, Cached] | None = None
        if entries > 0:
            self._entries = TLRUCache(maxsize=entries, ttu=lambda _k, _v, now: now + ttl_s, timer=clock)
        self._allow_contextual = allow_contextual
        self.hits = self.misses = 0

    def key(self, request: m.InferenceRequest, route_name: str, max_tokens: int) -> str | None:
        """The cache key of ``request`` on a route, or None when it must not be cached."""
        if self._entries is None or (contextual(request) and not self._allow_contextual):
            return None
        params = request.params
        parts = [route_name, str(params.max_tokens or max_tokens), f"{params.temperature:.3f}", str(params.seed)]
        parts += [f"{t.role}:{normalise(t.content)}" for t in request.messages]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def get(self, key: str | None) -> Cached | None:
        if key is None or self._entries is None:
            return None
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: str | None, answer: Cached) -> None:
        if key is not None and self._entries is not None:
            self._entries[key] = answer
