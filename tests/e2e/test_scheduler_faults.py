"""The scheduler under faults, with two real replicas on the real PostgreSQL and Kafka:
kill -9 of each replica while reminders are firing, then a PostgreSQL restart; every
reminder still fires, and none twice (a record the relay sends again after a crash keeps
its event id, so consumers, which dedupe on it, see it once)."""

import asyncio
import signal
import subprocess
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from switchboard.scheduler import jobs
from switchboard.scheduler.jobs import Job
from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline
from tests.e2e.test_pipeline import _read_all

pytestmark = pytest.mark.integration

STACK = Path(__file__).resolve().parents[2] / "infra" / "stack.sh"
JOBS = 4000
SPREAD_S = 20


async def _insert(stack: Stack, schema: str, first: datetime) -> list[str]:
    conn = await asyncpg.connect(stack.pg_dsn, server_settings={"search_path": schema})
    try:
        batch = [
            Job(
                kind="reminder",
                owner=f"person-{i % 100}",
                title=f"job {i}",
                time_zone="UTC",
                occurrence=first + timedelta(seconds=SPREAD_S * i / JOBS),
                channel=1,
                channel_chat_id=f"chat-{i % 100}",
                conversation_key=f"conv-{i % 100}",
            )
            for i in range(JOBS)
        ]
        await jobs.create(conn, batch)
        return [job.id for job in batch]
    finally:
        await conn.close()


async def test_kill_9_of_each_replica_and_a_postgres_restart_lose_and_double_nothing(stack: Stack) -> None:
    pipeline = Pipeline(stack, replicas=2, modules=("scheduler",))
    await pipeline.start()
    try:
        first = datetime.now(UTC) + timedelta(seconds=3)
        ids = await _insert(stack, pipeline.schema, first)
        await asyncio.sleep(5)  # firing is under way
        await pipeline.restart("scheduler", sig=signal.SIGKILL)  # each replica in turn, mid-dispatch
        restarted = await asyncio.to_thread(
            subprocess.run, [str(STACK), "restart", "postgres"], capture_output=True, text=True, timeout=120
        )
        assert restarted.returncode == 0, (restarted.stdout + restarted.stderr)[-3000:]

        by_job: dict[str, set[str]] = defaultdict(set)
        async with asyncio.timeout(180):
            while len(by_job) < JOBS:
                await asyncio.sleep(1)
                by_job.clear()
                for envelope in await _read_all(stack, pipeline.topics.outbound):
                    by_job[envelope.outbound_message.metadata["job_id"]].add(envelope.event_id)
        assert set(by_job) == set(ids)
        assert all(len(event_ids) == 1 for event_ids in by_job.values())  # a resend keeps its event id
        conn = await asyncpg.connect(stack.pg_dsn, server_settings={"search_path": pipeline.schema})
        try:
            fired = await conn.fetch("SELECT status, fired, count(*) AS n FROM jobs GROUP BY 1, 2")
        finally:
            await conn.close()
        assert [tuple(r) for r in fired] == [("done", 1, JOBS)]
    finally:
        codes = await pipeline.stop()
    assert all(code == 0 for code in codes.values()), f"unclean exits: {codes}\n{pipeline.log_tails()}"
