"""Which platform deliveries were already accepted, in PostgreSQL (shared by all replicas)."""

from __future__ import annotations

import logging

import asyncpg

logger = logging.getLogger(__name__)


class SeenDeliveries:
    """Keys of accepted deliveries per channel, kept for ``keep_s`` (longer than any retry window)."""

    def __init__(self, pool: asyncpg.Pool, keep_s: float) -> None:
        self._pool = pool
        self._keep_s = keep_s

    async def seen(self, channel: str, *keys: str) -> bool:
        """Whether any of ``keys`` was accepted (Feishu may repeat a message under a new event id)."""
        return bool(
            await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM seen_deliveries WHERE channel = $1 AND key = ANY($2::text[]))",
                channel,
                list(keys),
            )
        )

    async def remember(self, channel: str, *keys: str) -> None:
        await self._pool.execute(
            "INSERT INTO seen_deliveries (channel, key) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            channel,
            list(keys),
        )

    async def purge(self) -> int:
        """Forget deliveries older than ``keep_s``; returns how many."""
        result = await self._pool.execute(
            "DELETE FROM seen_deliveries WHERE seen_at < now() - make_interval(secs => $1)", self._keep_s
        )
        return int(result.split()[-1])
