"""Idempotency keys of POST requests (the ``Idempotency-Key`` header), in PostgreSQL so a
retry reaching another replica, or coming after a restart, is recognised."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


class KeyReused(Exception):
    """The key was used before for a different request."""


@dataclass(frozen=True)
class Claim:
    message_id: str
    conversation_id: str
    published: bool
    first: bool  # this request is the first with the key


class IdempotencyKeys:
    def __init__(self, pool: asyncpg.Pool, keep_s: float = 24 * 3600) -> None:
        self._pool = pool
        self._keep_s = keep_s

    async def find(self, subject: str, key: str, request_hash: str) -> Claim | None:
        """The earlier request with this key, if any; KeyReused if it was a different one."""
        row = await self._pool.fetchrow(
            "SELECT request_hash, message_id, conversation_id, published FROM idempotency_keys"
            " WHERE subject = $1 AND key = $2",
            subject,
            key,
        )
        if row is None:
            return None
        if row["request_hash"] != request_hash:
            raise KeyReused
        return Claim(row["message_id"], row["conversation_id"], row["published"], first=False)

    async def claim(self, subject: str, key: str, request_hash: str, message_id: str, conversation_id: str) -> Claim:
        """Record the key for ``message_id``, or return the request that got there first."""
        inserted = await self._pool.fetchval(
            "INSERT INTO idempotency_keys (subject, key, request_hash, message_id, conversation_id)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            subject,
            key,
            request_hash,
            message_id,
            conversation_id,
        )
        if inserted:
            return Claim(message_id, conversation_id, published=False, first=True)
        found = await self.find(subject, key, request_hash)
        assert found is not None
        return found

    async def mark_published(self, subject: str, key: str) -> None:
        await self._pool.execute(
            "UPDATE idempotency_keys SET published = true WHERE subject = $1 AND key = $2", subject, key
        )

    async def purge(self) -> int:
        result = await self._pool.execute(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)", self._keep_s
        )
        return int(result.split()[-1])
