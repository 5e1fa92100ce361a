"""PostgreSQL helpers for services that keep state: versioned migrations and pools.

A service ships its migrations as ``<package>/migrations/NNNN_name.sql`` and applies them
at start. An advisory lock (one per schema) serialises replicas starting together: one
applies, the others wait and then find nothing left to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from importlib import resources

import asyncpg

logger = logging.getLogger(__name__)

# Errors that mean PostgreSQL is away for now (restarting, failing over, network), not that
# a statement is wrong: work is retried after them, never given up or dead-lettered.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # e.g. the connection was closed under a statement
    asyncpg.CannotConnectNowError,  # "the database system is starting up"
    asyncpg.AdminShutdownError,  # terminated by a fast shutdown
    asyncpg.CrashShutdownError,
    # The connection broke mid-statement and the pool's reset on release found it in a
    # half-done state ("cannot switch to state ..."): the same outage, seen late.
    asyncpg.InternalClientError,
)

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


def usable(conn: asyncpg.Connection) -> bool:
    """Whether ``conn`` (from a pool) still has a live session: after a lost connection the
    pool takes its proxy back, and the proxy refuses every call."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


async def close(pool: asyncpg.Pool, timeout_s: float = 10) -> None:
    """Close ``pool``, bounded: ``Pool.close`` waits for every connection to come back, and
    one still out (a task cancelled while PostgreSQL was away) would hold a stop for ever."""
    try:
        await asyncio.wait_for(pool.close(), timeout_s)
    except TimeoutError:
        logger.warning("pool connections still in use at stop; terminated", extra={"waited_s": timeout_s})
        pool.terminate()


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
        conn, self._conn = self._conn, None
        try:
            if self._held and usable(conn):
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._name)
        except TRANSIENT_ERRORS:
            pass  # the session, and the lock with it, are gone anyway
        finally:
            self._held = False
            await self._pool.release(conn)

    async def lost(self) -> None:
        """Forget the lock after its connection failed (PostgreSQL released it with the
        session); the next ``held()`` competes for it again on a new connection."""
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            if usable(conn):
                conn.terminate()
            await self._pool.release(conn)  # a no-op for a proxy the pool already took back


class Listener:
    """LISTEN on ``channel`` on a connection of its own, set up again after PostgreSQL
    comes back (call :meth:`ensure` before each wait; a notification missed while away is
    made up for by calling ``callback`` once on reconnecting)."""

    def __init__(self, pool: asyncpg.Pool, channel: str, callback: Callable[[], None]) -> None:
        self._pool = pool
        self._channel = channel
        self._callback = callback
        self._conn: asyncpg.Connection | None = None

    def _notified(self, *_: object) -> None:
        self._callback()

    async def ensure(self) -> None:
        if self._conn is not None and usable(self._conn):
            return
        reconnecting = self._conn is not None
        await self.close()
        conn = await self._pool.acquire()
        try:
            await conn.add_listener(self._channel, self._notified)
        except BaseException:
            await self._pool.release(conn)
            raise
        self._conn = conn
        if reconnecting:
            self._callback()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if usable(conn):
                await conn.remove_listener(self._channel, self._notified)
        except TRANSIENT_ERRORS:
            pass  # the session is gone, and its LISTEN with it
        finally:
            await self._pool.release(conn)  # a no-op for a proxy the pool already took back
