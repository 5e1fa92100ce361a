"""The devices' last known state (scheduler device_states) against the real PostgreSQL."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from switchboard.common import postgres
from switchboard.scheduler import device_states
from tests.conftest import Stack

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 24, 21, 4, tzinfo=UTC)


@pytest.fixture
async def conn(stack: Stack, unique: str) -> AsyncIterator[asyncpg.Connection]:
    schema = f"test_{unique}"
    conn = await asyncpg.connect(stack.pg_dsn, server_settings={"search_path": schema})
    try:
        await postgres.migrate(conn, schema, "switchboard.scheduler")
        yield conn
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_the_latest_status_wins_and_changed_at_moves_only_on_a_change(conn: asyncpg.Connection) -> None:
    record = device_states.record
    await record(conn, "lamp", {"power": "on", "brightness": "80"}, True, T0, replace=True)
    await record(conn, "lamp", {"power": "on", "brightness": "80"}, True, T0 + timedelta(minutes=5), replace=True)
    known = (await device_states.latest(conn, ["lamp", "nobody"]))["lamp"]
    assert known == device_states.Known({"power": "on", "brightness": "80"}, True, T0)  # unchanged: still since T0

    # A status received late (older than what is kept) changes nothing.
    await record(conn, "lamp", {"power": "off"}, True, T0 - timedelta(minutes=1), replace=True)
    assert (await device_states.latest(conn, ["lamp"]))["lamp"].state["power"] == "on"

    # A command result merges its readings; a full status replaces them.
    later = T0 + timedelta(minutes=10)
    await record(conn, "lamp", {"power": "off"}, None, later, replace=False)
    assert await device_states.latest(conn, ["lamp"]) == {
        "lamp": device_states.Known({"power": "off", "brightness": "80"}, True, later)
    }
    await record(conn, "lamp", {"power": "off"}, None, later + timedelta(minutes=1), replace=True)
    assert (await device_states.latest(conn, ["lamp"]))["lamp"].state == {"power": "off"}

    # The last will: only reachability changes, the readings stay.
    gone = later + timedelta(minutes=2)
    await record(conn, "lamp", {}, False, gone, replace=False)
    assert await device_states.latest(conn, ["lamp"]) == {"lamp": device_states.Known({"power": "off"}, False, gone)}


async def test_a_nul_character_in_a_reading_does_not_fail_the_write(conn: asyncpg.Connection) -> None:
    await device_states.record(conn, "lamp", {"note\x00": "a\x00b"}, None, T0, replace=True)
    assert (await device_states.latest(conn, ["lamp"]))["lamp"].state == {"note": "ab"}
