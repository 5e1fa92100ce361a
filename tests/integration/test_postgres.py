import asyncpg
import pytest

from tests.conftest import Stack

pytestmark = pytest.mark.integration


async def test_query_through_asyncpg(stack: Stack, unique: str) -> None:
    schema = f"test_{unique}"
    conn = await asyncpg.connect(stack.pg_dsn, timeout=10)
    try:
        version = await conn.fetchval("SHOW server_version")
        assert int(str(version).split(".")[0]) >= 13
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'CREATE TABLE "{schema}".jobs (id bigint PRIMARY KEY, due timestamptz NOT NULL)')
        await conn.executemany(
            f"INSERT INTO \"{schema}\".jobs VALUES ($1, timestamptz '2026-01-01 00:00Z' + make_interval(mins => $2))",
            [(i, i) for i in range(1, 6)],
        )
        due = await conn.fetch(
            f"SELECT id FROM \"{schema}\".jobs WHERE due < timestamptz '2026-01-01 00:03Z' ORDER BY id"
        )
        assert [row["id"] for row in due] == [1, 2]
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_wrong_password_is_refused(stack: Stack) -> None:
    user, _, rest = stack.pg_dsn.removeprefix("postgresql://").partition(":")
    bad_dsn = f"postgresql://{user}:wrong-password@{rest.partition('@')[2]}"
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(bad_dsn, timeout=10)
