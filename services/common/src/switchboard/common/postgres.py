"""PostgreSQL helpers for services that keep state: versioned migrations and pools.

A service ships its migrations as ``<package>/migrations/NNNN_name.sql`` and applies them
at start. An advisory lock (one per schema) serialises replicas starting together: one
applies, the others wait and then find nothing left to do.
"""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg

logger = logging.getLogger(__name__)

# Schema names are interpolated into SQL, so they are checked against this first.
SCHEMA_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"


def available(package: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped in ``package``, in order."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


async def migrate(conn: asyncpg.Connection, schema: str, package: str) -> list[str]:
    """Apply ``package``'s pending migrations in ``schema`` (the connection's search_path);
    returns the names applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrate:{schema}")
    try:
        # ``schema`` matches SCHEMA_PATTERN (checked by the service's settings).
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in available(package):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            applied.append(name)
            logger.info("migration applied", extra={"migration": name, "schema": schema})
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"migrate:{schema}")
    return applied


async def connect(dsn: str, schema: str, package: str, pool_size: int) -> asyncpg.Pool:
    """A pool whose connections work in ``schema``, migrated to ``package``'s latest."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=pool_size,  # connect up front, not on the first messages
        max_size=pool_size,
        timeout=10,
        server_settings={"search_path": schema},
    )
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema, package)
    except BaseException:
        await pool.close()
        raise
    return pool


class AdvisoryLock:
    """A session-level advisory lock that makes one replica the leader for some work.

    ``held()`` tries to take the lock (once per call) on a connection kept for the purpose
    and says whether this process holds it. The lock goes with the connection: if the
    process dies, PostgreSQL releases it and another replica's next ``held()`` wins.
    """

    def __init__(self, pool: asyncpg.Pool, name: str) -> None:
        self._pool = pool
        self._name = name
        self._conn: asyncpg.Connection | None = None
        self._held = False

    async def held(self) -> bool:
        if self._held:
            return True
        if self._conn is None:
            self._conn = await self._pool.acquire()
        self._held = bool(await self._conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._name))
        return self._held

    async def release(self) -> None:
        if self._conn is None:
            return
        if self._held:
            await self._conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._name)
            self._held = False
        await self._pool.release(self._conn)
        self._conn = None
