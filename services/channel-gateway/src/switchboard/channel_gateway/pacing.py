"""What every platform channel needs to send replies: splitting long texts and pacing calls
within the platform's rate limits (per app, per chat, and a pause when it says 429)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at a line break, else at a
    space, else hard; nothing is lost and the pieces join back to ``text``."""
    pieces = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut])
        text = text[cut:]
    if text:
        pieces.append(text)
    return pieces


class RateGate:
    """Paces calls to a platform API: one app-wide interval, one per chat (which may depend
    on the chat, e.g. groups are slower), and an app-wide pause after a 429."""

    def __init__(self, per_app_s: float, per_chat_s: Callable[[str], float], platform: str) -> None:
        self._per_app_s = per_app_s
        self._per_chat_s = per_chat_s
        self._platform = platform
        self._next_app = 0.0
        self._next_chat: dict[str, float] = {}
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """The platform said 429: nothing goes out from this app for ``seconds``."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        logger.warning("platform asked to slow down; pausing", extra={"platform": self._platform, "pause_s": seconds})

    def ready(self, chat_id: str) -> bool:
        """Whether a message to ``chat_id`` could go out now (for skippable stream updates)."""
        now = time.monotonic()
        return now >= max(self._paused_until, self._next_app, self._next_chat.get(chat_id, 0.0))

    async def wait(self, chat_id: str) -> None:
        """Return when a message to ``chat_id`` may go out."""
        async with self._lock:
            now = time.monotonic()
            at = max(now, self._paused_until, self._next_app, self._next_chat.get(chat_id, 0.0))
            self._next_app = at + self._per_app_s
            self._next_chat[chat_id] = at + self._per_chat_s(chat_id)
            if len(self._next_chat) > 10_000:  # forget chats whose turn has passed
                self._next_chat = {chat: t for chat, t in self._next_chat.items() if t > now}
        # A 429 while waiting pushes this call back too.
        while (delay := max(at, self._paused_until) - time.monotonic()) > 0:  # noqa: ASYNC110 (a deadline)
            await asyncio.sleep(delay)
