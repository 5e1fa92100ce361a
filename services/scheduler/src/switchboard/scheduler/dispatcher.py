"""The dispatcher: fires due jobs, on every replica at once, each job exactly once.

One round is one transaction: claim up to ``batch`` due jobs (``FOR UPDATE SKIP LOCKED``,
so replicas take disjoint sets), work out each one's messages, queue them in the outbox and
move each job on (next occurrence, done, a retry after backoff, or failed) — all committed
together. A replica killed mid-round rolls back: its jobs are due again for the others, and
nothing was sent (the outbox relays only committed rows). A firing's event id derives from
the job and the occurrence, so even a message relayed twice (a relay crash between Kafka's
acknowledgement and the delete) is one event to consumers, which dedupe on it.

Between rounds the dispatcher sleeps until the soonest due job, a NOTIFY from a replica
that created a sooner one, or ``poll_s``, whichever comes first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import Histogram

from switchboard.common import events, postgres
from switchboard.common.backoff import delay as retry_delay
from switchboard.common.kafka import headers as hdr
from switchboard.common.lifecycle import sleep_until_woken
from switchboard.events.v1 import envelope_pb2
from switchboard.scheduler import devices, jobs, plugins, reminders, workflows
from switchboard.scheduler.jobs import Job
from switchboard.scheduler.outbox import Outbox, Queued
from switchboard.scheduler.recurrence import InvalidRecurrence

logger = logging.getLogger(__name__)

LATENESS = Histogram(
    "switchboard_scheduler_job_lateness_seconds",
    "How long after its occurrence a job was fired",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)

# Source "topic" named in the dead-letter headers of a failed job.
JOBS_SOURCE = "scheduler.jobs"


class JobFailed(Exception):
    """A job's firing failed in a way worth retrying; the message is the cause."""


Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        outbox: Outbox,
        *,
        schema: str,
        source: str,
        outbound_topic: str,
        deadletter_topic: str,
        batch: int = 1000,
        poll_s: float = 1.0,
        backoff_base_s: float = 5.0,
        backoff_cap_s: float = 3600.0,
        clock: Clock = wall_clock,
        rng: random.Random | None = None,
        keep_finished_s: float = 30 * 86400,
        purge_every_s: float = 3600,
        device_topic: str = "",
        device_answer_s: float = 10.0,
        requests_topic: str = "",
        workflow_set: workflows.Workflows | None = None,
    ) -> None:
        self._pool = pool
        self._outbox = outbox
        self._source = source
        self._outbound = outbound_topic
        self._deadletter = deadletter_topic
        self._batch = batch
        self._poll_s = poll_s
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
        self._device_topic = device_topic
        self._requests_topic = requests_topic
        self.workflows = workflow_set or workflows.Workflows.load()
        self._device_answer = timedelta(seconds=device_answer_s)
        self._keep_finished_s = keep_finished_s
        self._purge_every_s = purge_every_s
        self._purged_at = 0.0
        self.channel = f"{schema}_jobs"  # NOTIFY channel: a job was created or moved sooner
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Fire due jobs until ``stop``; the round in progress is finished first."""
        listener = postgres.Listener(self._pool, self.channel, self._wake.set)
        try:
            while not stop.is_set():
                try:
                    await listener.ensure()
                    if await self.fire_due() == self._batch:
                        continue  # more are due: no sleep
                    await self._purge_now_and_then()
                    await sleep_until_woken(stop, self._wake, await self._seconds_to_next())
                except postgres.TRANSIENT_ERRORS as exc:
                    # PostgreSQL restarting: the round rolled back; try again shortly.
                    logger.warning("dispatch round failed; retrying", extra={"error": repr(exc)})
                    await sleep_until_woken(stop, self._wake, self._poll_s)
        finally:
            await listener.close()

    async def _purge_now_and_then(self) -> None:
        """Finished jobs and handled-message records go after ``keep_finished_s``."""
        if time.monotonic() - self._purged_at < self._purge_every_s:
            return
        self._purged_at = time.monotonic()
        async with self._pool.acquire() as conn:
            gone = await jobs.purge(conn, self._clock() - timedelta(seconds=self._keep_finished_s))
        if gone:
            logger.info("finished jobs purged", extra={"rows": gone})

    async def _seconds_to_next(self) -> float:
        async with self._pool.acquire() as conn:
            due = await jobs.next_due_at(conn)
        if due is None:
            return self._poll_s
        return max(0.0, min(self._poll_s, (due - self._clock()).total_seconds()))

    async def fire_due(self) -> int:
        """One round: fire what is due now; returns how many jobs were claimed."""
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await jobs.claim_due(conn, now, self._batch)
            if not claimed:
                return 0
            queued: list[Queued] = []
            for job in claimed:
                queued += await self._fire(conn, job, now)
            await jobs.save_outcomes(conn, claimed)
            await self._outbox.add(conn, queued)
        self._outbox.wake()
        return len(claimed)

    async def _fire(self, conn: asyncpg.Connection, job: Job, now: datetime) -> list[Queued]:
        """The messages of one job's firing; moves ``job`` on (in memory) to what comes next."""
        if job.kind == workflows.KIND:
            return await self._workflow_step(conn, job, now)
        if job.status == "waiting":  # sent, and its answer is overdue
            answerer = job.payload.get("device_id") or f"plugin {job.payload.get('plugin')}"
            answer_s = self._answer_within(job).total_seconds()
            return self._failed(job, now, f"no answer from {answerer} within {answer_s:g} s")
        try:
            queued = self._messages(job, now)
        except (JobFailed, InvalidRecurrence, KeyError, ValueError) as exc:
            return self._failed(job, now, f"{type(exc).__name__}: {exc}"[:500])
        if job.attempts == 0:
            LATENESS.labels(kind=job.kind).observe(max(0.0, (now - job.occurrence).total_seconds()))
        if job.kind in (devices.KIND, plugins.KIND):
            # Done when the device or plugin answers (Scheduler.device_result, .plugin_reply);
            # retried if it does not.
            job.status = "waiting"
            job.due_at = now + self._answer_within(job)
            return queued
        job.fired += 1
        job.attempts = 0
        job.last_error = None
        self._advance(job, now)
        return queued

    def _messages(self, job: Job, now: datetime) -> list[Queued]:
        if job.kind == reminders.KIND:
            message_id = self._event_id(job, "fire")
            return [(self._outbound, self._wrap(job, reminders.firing(job, message_id), message_id))]
        if job.kind == devices.KIND and self._device_topic:
            command = devices.command(job, now, self._device_answer)
            event_id = self._event_id(job, f"command-{job.attempts}")
            return [(self._device_topic, self._wrap(job, command, event_id))]
        if job.kind == plugins.KIND:
            event_id = self._event_id(job, f"request-{job.attempts}")
            return [(job.payload["request_topic"], self._wrap(job, plugins.request(job, now), event_id))]
        raise JobFailed(f"no executor for jobs of kind {job.kind!r}")

    def _answer_within(self, job: Job) -> timedelta:
        return plugins.answer_within(job) if job.kind == plugins.KIND else self._device_answer

    async def _workflow_step(self, conn: asyncpg.Connection, job: Job, now: datetime) -> list[Queued]:
        """Run the current step of a workflow run (or count its overdue or failed answer)."""
        try:
            step = workflows.current(self.workflows, job)
        except (KeyError, IndexError) as exc:
            job.max_attempts = 1
            return self._failed(job, now, f"{type(exc).__name__}: {exc}")
        job.max_attempts = step.retries + 1
        error = job.payload.pop("step_error", None)
        if job.status == "waiting" or error:
            return self._failed(job, now, error or f"no answer to step {step.name!r} within {step.timeout_s:g} s")
        tag = f"{step.name}#{job.attempts}"
        try:
            if step.call == "validate":
                outcome = workflows.validate(step, job)
            elif step.call == "model":
                outcome = workflows.model_request(step, job, events.derived_id(job.id, tag))
            elif step.call == "insert":
                table, values = workflows.insert_values(step, job)
                columns = list(values)  # checked against workflows.TABLES when the workflow loaded
                row_id = await conn.fetchval(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES"  # noqa: S608 (checked names)
                    f" ({', '.join(f'${i + 1}' for i in range(len(columns)))}) RETURNING id",
                    *values.values(),
                )
                outcome = workflows.Outcome(output={"id": row_id})
            else:
                outcome = workflows.Outcome(output={"sent": True}, reply=workflows.reply_text(step, job))
        except (KeyError, ValueError, TypeError) as exc:
            return self._failed(job, now, f"step {step.name!r}: {type(exc).__name__}: {exc}"[:500])
        queued: list[Queued] = []
        if outcome.reply is not None:
            message_id = self._event_id(job, f"reply-{tag}")
            queued.append((self._outbound, self._wrap(job, job.message(outcome.reply, message_id), message_id)))
        if outcome.request is not None:
            topic = self._requests_topic
            queued.append((topic, self._wrap(job, outcome.request, self._event_id(job, f"request-{tag}"))))
            job.payload["pending_request"] = outcome.request.request_id
            job.status = "waiting"
            job.due_at = now + timedelta(seconds=step.timeout_s)
            return queued
        if outcome.refused:
            job.status = "failed"
            job.last_error = f"step {step.name!r}: input refused"
            return queued
        return queued + self.step_done(job, outcome.output, now)

    def step_done(self, job: Job, output: object, now: datetime) -> list[Queued]:
        """Record the current step's output and move the run to its next step (or end it)."""
        step = workflows.current(self.workflows, job)
        job.payload.setdefault("outputs", {})[step.name] = output
        job.payload.pop("pending_request", None)
        job.attempts = 0
        job.last_error = None
        if workflows.is_last(self.workflows, job):
            job.status = "done"
            job.fired += 1
        else:
            job.payload["step"] = int(job.payload.get("step", 0)) + 1
            job.status = "scheduled"
            job.due_at = now
        return []

    def _advance(self, job: Job, now: datetime) -> None:
        recurrence = job.recurrence
        following = recurrence.next_due(job.occurrence, now) if recurrence is not None else None
        if following is None:
            job.status = "done"
            return
        job.occurrence = job.due_at = following

    def _failed(self, job: Job, now: datetime, cause: str) -> list[Queued]:
        """A failed attempt: retry after backoff, or dead-letter the occurrence after the last."""
        job.attempts += 1
        job.last_error = cause
        logger.warning(
            "job attempt failed", extra={"job_id": job.id, "kind": job.kind, "attempt": job.attempts, "error": cause}
        )
        if job.attempts < job.max_attempts:
            job.status = "scheduled"
            job.due_at = now + timedelta(seconds=retry_delay(job.attempts, *self._backoff, jitter=True, rng=self._rng))
            return []
        logger.error("job failed after its last attempt", extra={"job_id": job.id, "kind": job.kind})
        record = json.dumps(job.as_json(), ensure_ascii=False).encode()
        dead: Queued = (
            self._deadletter,
            record,
            job.conversation_key.encode(),
            hdr.for_dead_letter([("content-type", b"application/json")], cause, JOBS_SOURCE, 0, 0),
        )
        notice_id = self._event_id(job, "failed")
        if job.kind == devices.KIND:
            told = job.message(devices.failure_text(job), notice_id)
        elif job.kind == plugins.KIND:
            told = job.message(plugins.failure_text(job), notice_id)
        elif job.kind == workflows.KIND:
            told = job.message(reminders.say("workflow_failed", job.language), notice_id)
        else:
            told = reminders.failure_notice(job, notice_id)
        notice = self._wrap(job, told, notice_id)
        queued: list[Queued] = [dead]
        if job.channel and job.channel_chat_id:
            queued.append((self._outbound, notice))
        # A recurring job goes on with its next occurrence; a one-off one ends here.
        job.attempts = 0
        recurrence = None
        try:
            recurrence = job.recurrence
            following = recurrence.next_due(job.occurrence, now) if recurrence is not None else None
        except InvalidRecurrence:
            following = None
        if following is None:
            job.status = "failed"
        else:
            job.status = "scheduled"
            job.occurrence = job.due_at = following
        return queued

    def _event_id(self, job: Job, role: str) -> str:
        """The same id however often this occurrence is fired (see the module docstring)."""
        return events.derived_id(job.id, f"{role}@{job.occurrence.isoformat()}")

    def _wrap(self, job: Job, payload: object, event_id: str) -> envelope_pb2.Envelope:
        return events.wrap(
            payload,  # type: ignore[arg-type]
            conversation_key=job.conversation_key,
            source=self._source,
            tenant_id=job.tenant_id,
            event_id=event_id,
        )
