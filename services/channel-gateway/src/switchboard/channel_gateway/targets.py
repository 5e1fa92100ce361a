"""Where each accepted message's reply goes, when a channel needs more than the chat id
(PostgreSQL, so any replica can send the reply, also after a restart)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


class ReplyTargets:
    def __init__(self, pool: asyncpg.Pool, keep_s: float) -> None:
        self._pool = pool
        self._keep_s = keep_s

    async def remember(self, message_id: str, channel: str, target: dict[str, Any]) -> None:
        """Keep ``target`` for ``message_id``; a redelivered message keeps the first one."""
        await self._pool.execute(
            "INSERT INTO reply_targets (message_id, channel, target) VALUES ($1, $2, $3::jsonb)"
            " ON CONFLICT (message_id) DO NOTHING",
            message_id,
            channel,
            json.dumps(target),
        )

    async def get(self, message_id: str) -> dict[str, Any] | None:
        found = await self._pool.fetchval("SELECT target FROM reply_targets WHERE message_id = $1", message_id)
        return None if found is None else dict(json.loads(found))

    async def purge(self) -> int:
        """Forget targets older than ``keep_s``; returns how many."""
        result = await self._pool.execute(
            "DELETE FROM reply_targets WHERE created_at < now() - make_interval(secs => $1)", self._keep_s
        )
        return int(result.split()[-1])
