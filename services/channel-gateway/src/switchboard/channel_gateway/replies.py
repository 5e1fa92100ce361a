"""Replies seen on the outbound topic, kept for a while, and the requests waiting for them."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from switchboard.events.v1 import messages_pb2 as m


@dataclass
class Reply:
    """What is known of the reply to one message."""

    chunks: dict[int, str] = field(default_factory=dict)
    final: m.OutboundMessage | None = None
    completed_at: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Replies:
    """Bounded, expiring map of message id -> Reply, filled from the outbound topic."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._entries: OrderedDict[str, Reply] = OrderedDict()
        # Message id -> who to call as pieces of its reply arrive (kept apart from the
        # entries: a follower makes no entry until there is something to keep).
        self._watchers: dict[str, list[Callable[[Reply], None]]] = {}

    def _entry(self, message_id: str) -> Reply:
        entry = self._entries.get(message_id)
        if entry is None:
            entry = self._entries[message_id] = Reply()
            self._evict()
        return entry

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, message_id: str) -> Reply | None:
        return self._entries.get(message_id)

    def on_outbound(self, message: m.OutboundMessage) -> None:
        """Record a piece or the final reply and wake whoever waits for it."""
        entry = self._entry(message.in_reply_to)
        if message.final:
            if entry.final is None:
                entry.final = message
                entry.completed_at = time.monotonic()
        else:
            entry.chunks.setdefault(message.sequence, message.text)
        entry.changed.set()
        entry.changed = asyncio.Event()
        for watcher in list(self._watchers.get(message.in_reply_to, ())):
            watcher(entry)

    def watch(self, message_id: str, watcher: Callable[[Reply], None]) -> Reply | None:
        """Call ``watcher`` with the reply each time a piece of it arrives, until unwatched:
        a follower without a task of its own (a WebSocket holds thousands). Returns what is
        known of the reply so far, if anything."""
        self._watchers.setdefault(message_id, []).append(watcher)
        return self._entries.get(message_id)

    def unwatch(self, message_id: str, watcher: Callable[[Reply], None]) -> None:
        watchers = self._watchers.get(message_id)
        if watchers is not None and watcher in watchers:
            watchers.remove(watcher)
            if not watchers:
                del self._watchers[message_id]

    async def wait_final(self, message_id: str, timeout_s: float) -> m.OutboundMessage | None:
        """The final reply, or None if it did not come within ``timeout_s``."""
        entry = self._entry(message_id)
        try:
            async with asyncio.timeout(timeout_s):
                while entry.final is None:
                    await entry.changed.wait()
        except TimeoutError:
            return None
        return entry.final

    async def follow(
        self, message_id: str, timeout_s: float, after: int = -1
    ) -> AsyncIterator[tuple[int, str] | m.OutboundMessage]:
        """Yield (sequence, text) pieces in order as they arrive (those after ``after``: a
        client resuming says what it has), then the final reply."""
        entry = self._entry(message_id)
        next_seq = after + 1
        async with asyncio.timeout(timeout_s):
            while True:
                while next_seq in entry.chunks:
                    yield next_seq, entry.chunks[next_seq]
                    next_seq += 1
                if entry.final is not None:
                    yield entry.final
                    return
                await entry.changed.wait()

    def _evict(self) -> None:
        now = time.monotonic()
        while self._entries:
            oldest = next(iter(self._entries.values()))
            expired = oldest.final is not None and now - oldest.completed_at > self._ttl_s
            if len(self._entries) <= self._max and not expired:
                break
            self._entries.popitem(last=False)
