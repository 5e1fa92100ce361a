"""Steady conversations over HTTP against a pipeline's gateways, as real users make them.

Each conversation is one user who opens a conversation and then sends a message every
``interval_s`` (``wait: false``), as many as ``messages`` (or until stopped). A request that
finds its gateway replica gone is sent again to another replica with the same
Idempotency-Key, as a client behind a load balancer would; only accepted messages count.
Afterwards :meth:`Traffic.replies` fetches each message's reply through the gateway.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests.e2e.pipeline import Pipeline


@dataclass(frozen=True)
class Sent:
    conversation: int
    seq: int  # 1, 2, ... within the conversation
    message_id: str
    text: str
    at: float  # wall clock when it was sent, seconds


def chat(conversation: int, seq: int) -> str:
    """A chat message the echo model answers with its own text."""
    return f"conversation {conversation} message {seq} hello"


@dataclass
class Traffic:
    pipeline: Pipeline
    conversations: int
    interval_s: float
    messages: int | None = None  # per conversation; None: until the block ends
    text: Callable[[int, int], str] = chat
    user: str = "user"  # subjects are f"{user}-{conversation}"
    sent: list[Sent] = field(default_factory=list)

    async def __aenter__(self) -> Traffic:
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._converse(c)) for c in range(self.conversations)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.finish()

    async def finish(self) -> None:
        """Wait for every conversation to send its ``messages`` (stop them if unlimited)."""
        if self.messages is None:
            self._stop.set()
        await asyncio.gather(*self._tasks)

    def subject(self, conversation: int) -> str:
        return f"{self.user}-{conversation}"

    async def _converse(self, conversation: int) -> None:
        opened = await self._post(conversation, "/v1/conversations", None)
        conversation_id = opened.json()["conversation_id"]
        seq = 0
        while not self._stop.is_set() and (self.messages is None or seq < self.messages):
            seq += 1
            text = self.text(conversation, seq)
            at = time.time()
            body = {"conversation_id": conversation_id, "text": text, "wait": False}
            response = await self._post(conversation, "/v1/messages", body)
            self.sent.append(Sent(conversation, seq, response.json()["message_id"], text, at))
            await asyncio.sleep(self.interval_s)

    async def _post(self, conversation: int, path: str, body: object) -> httpx.Response:
        """POST to a live gateway replica; the same request to the next one if it is gone."""
        key = str(uuid.uuid4())
        for attempt in range(100):
            urls = self.pipeline.gateway_urls[-self.pipeline.replicas :]  # the newest: those running now
            url = urls[(conversation + attempt) % len(urls)]
            try:
                async with self.pipeline.client(url, timeout=30, subject=self.subject(conversation)) as client:
                    response = await client.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                await asyncio.sleep(0.2)
                continue
            if response.status_code in (201, 202):
                return response
            if response.status_code < 500:
                raise AssertionError(f"{path}: {response.status_code} {response.text}")
            await asyncio.sleep(0.2)
        raise AssertionError(f"{path}: no gateway replica took the request")

    async def replies(self, timeout_s: float = 180) -> dict[str, str]:
        """Each message's reply as the gateway gives it (absent: none came within the time)."""
        replies: dict[str, str] = {}
        by_user: dict[int, list[Sent]] = defaultdict(list)
        for s in self.sent:
            by_user[s.conversation].append(s)
        deadline = time.monotonic() + timeout_s

        async def collect(conversation: int, mine: list[Sent]) -> None:
            url = self.pipeline.gateway_urls[-1]
            async with self.pipeline.client(url, timeout=30, subject=self.subject(conversation)) as client:
                for s in mine:
                    while time.monotonic() < deadline:
                        body = (await client.get(f"/v1/messages/{s.message_id}")).json()
                        if body.get("status") == "completed":
                            replies[s.message_id] = str(body["reply"])
                            break
                        await asyncio.sleep(0.5)

        await asyncio.gather(*(collect(c, mine) for c, mine in by_user.items()))
        return replies

    def unanswered(self, replies: dict[str, str]) -> list[Sent]:
        """Messages with no reply, or not the echo of their text (for chat traffic)."""
        return [s for s in self.sent if replies.get(s.message_id) != s.text]
