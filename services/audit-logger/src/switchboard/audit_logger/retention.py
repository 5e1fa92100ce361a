"""Retention of the audit data stream: rollover and deletion after a configurable time.

Where the cluster has index lifecycle management (ILM), the service installs an ILM policy
(:func:`~switchboard.audit_logger.documents.lifecycle_policy`) and names it in the index
template; Elasticsearch does the rest. Where it has not (the local development node is
Elastic's minimal distribution, without the ILM module), :class:`Housekeeper` applies the
same policy itself: it rolls the write index over once it is older than
``rollover_max_age``, and deletes a backing index once everything in it is older than
``retention``, i.e. ``retention`` after the next index took over (the same "after
rollover" clock ILM's delete phase uses). The write index is never deleted.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from dataclasses import dataclass

from elasticsearch import ApiError, AsyncElasticsearch

from switchboard.audit_logger import metrics
from switchboard.common.lifecycle import sleep_unless_stopped

logger = logging.getLogger(__name__)

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> float:
    """An Elasticsearch time value ("180d", "12h", "30s") in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration.strip())
    if match is None:
        raise ValueError(f"not a time value: {duration!r} (use e.g. 180d, 12h, 30m)")
    return int(match[1]) * _UNITS[match[2]]


async def has_ilm(es: AsyncElasticsearch) -> bool:
    """Whether the cluster runs index lifecycle management."""
    try:
        await es.ilm.get_status()
    except ApiError as exc:
        if exc.meta.status in (400, 404, 405):  # no handler for the ILM API
            return False
        raise
    return True


@dataclass(frozen=True)
class Backing:
    name: str
    created_s: float


class Housekeeper:
    """Rollover and retention of one data stream, done by the service itself."""

    def __init__(self, es: AsyncElasticsearch, data_stream: str, *, rollover_max_age: str, retention: str) -> None:
        self._es = es
        self._stream = data_stream
        self._max_age = rollover_max_age
        self._retention_s = seconds(retention)

    async def backing_indices(self) -> list[Backing]:
        """The stream's backing indices, oldest first (the last one is the write index)."""
        found = await self._es.indices.get(
            index=f".ds-{self._stream}-*", expand_wildcards="all", ignore_unavailable=True, allow_no_indices=True
        )
        indices = [
            Backing(name, int(info["settings"]["index"]["creation_date"]) / 1000) for name, info in found.items()
        ]
        return sorted(indices, key=lambda b: (b.created_s, b.name))

    async def run_once(self, now: float | None = None) -> list[str]:
        """Roll over if due, delete what is past retention; the names deleted."""
        now = time.time() if now is None else now
        indices = await self.backing_indices()
        if not indices:
            return []
        rolled = await self._es.indices.rollover(alias=self._stream, conditions={"max_age": self._max_age})
        if rolled.get("rolled_over"):
            logger.info("audit data stream rolled over", extra={"new_index": rolled.get("new_index")})
            indices = await self.backing_indices()
        deleted = []
        # Index i holds nothing newer than the creation of index i + 1 (its rollover).
        for older, newer in itertools.pairwise(indices):
            if now - newer.created_s >= self._retention_s:
                await self._es.indices.delete(index=older.name)
                deleted.append(older.name)
        if deleted:
            metrics.RETENTION_DELETED.inc(len(deleted))
            logger.info("audit indices past retention deleted", extra={"indices": deleted})
        kept = [b for b in indices if b.name not in deleted]
        metrics.OLDEST_DOCUMENT_AGE.set(now - kept[0].created_s if kept else 0)
        return deleted

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        """``run_once`` every ``interval_s`` until ``stop``; a failure is logged and retried."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                logger.exception("audit retention round failed; retrying next round")
            await sleep_unless_stopped(stop, interval_s)
