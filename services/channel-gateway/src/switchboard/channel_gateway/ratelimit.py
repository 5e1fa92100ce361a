"""Messages per user per minute, enforced across replicas (a counter per user and minute
in PostgreSQL: one round trip per message)."""

from __future__ import annotations

import asyncpg


class RateLimiter:
    def __init__(self, pool: asyncpg.Pool, per_minute: int) -> None:
        self._pool = pool
        self._per_minute = per_minute

    async def allow(self, subject: str) -> float | None:
        """None if ``subject`` may send one more message now; else seconds until it may."""
        if self._per_minute <= 0:
            return None
        row = await self._pool.fetchrow(
            "INSERT INTO rate_windows AS w (subject, window_start, count)"
            " VALUES ($1, date_trunc('minute', now()), 1)"
            " ON CONFLICT (subject, window_start) DO UPDATE SET count = w.count + 1"
            " RETURNING count, extract(epoch FROM w.window_start + interval '1 minute' - now()) AS left_s",
            subject,
        )
        return None if row["count"] <= self._per_minute else max(float(row["left_s"]), 0.0)

    async def purge(self) -> None:
        """Forget windows that ended."""
        await self._pool.execute("DELETE FROM rate_windows WHERE window_start < now() - interval '2 minutes'")
