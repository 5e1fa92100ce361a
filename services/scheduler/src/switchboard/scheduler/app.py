"""Wiring: intents in (chat turns become inference requests, reminder intents become jobs),
results in, replies out, every write through the outbox; the dispatcher fires due jobs."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg

from switchboard.common import events, postgres
from switchboard.common import text as text_rules
from switchboard.common.kafka import ConsumedEvent
from switchboard.common.plugins import Catalogue
from switchboard.common.service import ServiceRuntime
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import device_states, devices, handlers, jobs, plugins, reminders, store, workflows
from switchboard.scheduler.config import Settings
from switchboard.scheduler.dispatcher import Dispatcher
from switchboard.scheduler.outbox import Outbox, Queued

# Voice notes, pictures and documents, as the intent parser labels them.
MEDIA_INTENTS = "media."
logger = logging.getLogger(__name__)


class Scheduler:
    """Handles one partition's poll at a time: one transaction for all of its intents or results."""

    def __init__(
        self,
        settings: Settings,
        runtime: ServiceRuntime,
        pool: asyncpg.Pool,
        outbox: Outbox,
        dispatcher: Dispatcher,
        catalogue: Catalogue | None = None,
    ) -> None:
        self._settings = settings
        self._runtime = runtime
        self._pool = pool
        self._outbox = outbox
        self._dispatcher = dispatcher
        self._devices = devices.Registry.load(settings.devices_file)
        self._catalogue = catalogue

    def plugin_for(self, intent: str) -> m.PluginRegistration | None:
        """The enabled, registered plugin that handles ``intent``, if any."""
        if self._catalogue is None:
            return None
        return self._catalogue.route(intent, self._settings.plugins_enabled)

    async def handle(self, batch: list[ConsumedEvent]) -> None:
        intents: list[tuple[ConsumedEvent, m.ParsedIntent]] = []
        results: list[tuple[ConsumedEvent, m.InferenceResult]] = []
        for event in batch:
            # NUL cannot be stored in PostgreSQL: scrubbed from whatever reached the topic.
            payload = text_rules.scrub(events.unwrap(event.envelope))
            if isinstance(payload, m.ParsedIntent) and payload.intent in reminders.INTENTS:
                await self.reminder(event, payload)
            elif isinstance(payload, m.ParsedIntent) and payload.intent == devices.INTENT:
                await self.device(event, payload)
            elif isinstance(payload, m.ParsedIntent) and payload.intent == device_states.INTENT:
                await self.device_query(event, payload)
            elif isinstance(payload, m.ParsedIntent) and payload.intent.startswith(MEDIA_INTENTS):
                await self.media(event, payload)
            elif isinstance(payload, m.ParsedIntent) and payload.intent in self._dispatcher.workflows.by_intent:
                await self.workflow(event, payload)
            elif isinstance(payload, m.ParsedIntent) and (plugin := self.plugin_for(payload.intent)) is not None:
                await self.plugin(event, payload, plugin)
            elif isinstance(payload, m.DeviceCommandResult):
                if payload.state:
                    at = event.envelope.occurred_at.ToDatetime(tzinfo=UTC)
                    await self.device_said(payload.device_id, dict(payload.state), None, at, replace=False)
                await self.answered(event, payload.command_id, devices.KIND, payload.ok, payload.error, payload)
            elif isinstance(payload, m.DeviceState):
                online = payload.online if payload.HasField("online") else None
                said = payload.observed_at if payload.HasField("observed_at") else event.envelope.occurred_at
                at = said.ToDatetime(tzinfo=UTC)
                # A status with readings is the whole state; "offline" alone keeps the readings.
                await self.device_said(payload.device_id, dict(payload.state), online, at, replace=bool(payload.state))
            elif isinstance(payload, m.PluginReply):
                await self.answered(event, payload.request_id, plugins.KIND, payload.ok, payload.error, payload)
            elif isinstance(payload, m.ParsedIntent):
                intents.append((event, payload))
            elif isinstance(payload, m.InferenceChunk):
                await self.relay_chunk(event, payload)
            elif isinstance(payload, m.InferenceResult):
                results.append((event, payload))
        if intents:
            await self.dispatch(intents)
        if results:
            results = await self.workflow_results(results)
        if results:
            await self.complete(results)

    async def dispatch(self, intents: list[tuple[ConsumedEvent, m.ParsedIntent]]) -> None:
        """Chat turns become InferenceRequests, recorded and queued in one transaction."""
        s = self._settings
        dispatches = [
            store.Dispatch(
                request=handlers.inference_request(
                    intent, system_prompt=s.system_prompt, max_tokens=s.max_tokens, temperature=s.temperature
                ),
                intent_event_id=event.envelope.event_id,
                conversation_key=event.envelope.conversation_key,
                tenant_id=event.envelope.tenant_id,
            )
            for event, intent in intents
        ]
        async with self._pool.acquire() as conn, conn.transaction():
            new = await store.record_dispatches(conn, dispatches)
            queued = []
            for (event, _), dispatch in zip(intents, dispatches, strict=True):
                if dispatch.request.message_id not in new:
                    logger.info("message already dispatched", extra={"message_id": dispatch.request.message_id})
                    continue
                new.discard(dispatch.request.message_id)  # a duplicate later in the batch is skipped
                topic = handlers.topic_for(
                    dispatch.request.priority, s.topics.requests_urgent, s.topics.requests_routine
                )
                queued.append((topic, self._wrap(dispatch.request, event)))
            await self._outbox.add(conn, queued)
        self._outbox.wake()

    async def reminder(self, event: ConsumedEvent, intent: m.ParsedIntent) -> None:
        """Create, list or cancel the sender's reminders, and say what was done."""
        envelope = event.envelope
        message = intent.message
        owner = jobs.owner_of(intent, envelope.conversation_key)
        language = reminders.language_of(intent)
        async with self._pool.acquire() as conn, conn.transaction():
            if intent.intent == "reminder.create":
                planned = reminders.plan(intent, envelope.conversation_key, envelope.tenant_id, datetime.now(UTC))
                if isinstance(planned, reminders.Refusal):
                    text = planned.text if await jobs.first_handling(conn, message.message_id, intent.intent) else None
                elif await jobs.create(conn, [planned]):
                    await conn.execute("SELECT pg_notify($1, '')", self._dispatcher.channel)
                    text = reminders.confirmation(planned)
                else:
                    text = None  # the same message again: its reminder exists and was confirmed
            elif not await jobs.first_handling(conn, message.message_id, intent.intent):
                text = None
            elif intent.intent == "reminder.list":
                text = reminders.listing(intent, await jobs.upcoming(conn, owner, reminders.KIND))
            else:
                chosen, text = reminders.to_cancel(intent, await jobs.upcoming(conn, owner, reminders.KIND))
                if chosen:
                    text = reminders.cancelled(await jobs.cancel(conn, [j.id for j in chosen]), language)
            if text is None:
                logger.info("reminder intent already handled", extra={"message_id": message.message_id})
                return
            queued: list[Queued] = [(self._settings.topics.outbound, self._short_reply(intent, text, event))]
            await self._outbox.add(conn, queued)
        self._dispatcher.wake()
        self._outbox.wake()

    async def device(self, event: ConsumedEvent, intent: m.ParsedIntent) -> None:
        """Queue the command a device.control intent asks for (the dispatcher sends it at once),
        or say why not."""
        envelope = event.envelope
        s = self._settings
        planned = devices.plan(
            intent, self._devices, envelope.conversation_key, envelope.tenant_id, datetime.now(UTC), s.device_attempts
        )
        async with self._pool.acquire() as conn, conn.transaction():
            if isinstance(planned, reminders.Refusal):
                if not await self._reply_once(conn, event, intent, planned.text):
                    return
            elif await jobs.create(conn, [planned]):
                await conn.execute("SELECT pg_notify($1, '')", self._dispatcher.channel)
        self._dispatcher.wake()
        self._outbox.wake()

    async def device_query(self, event: ConsumedEvent, intent: m.ParsedIntent) -> None:
        """Answer a device.query from the devices' last known state (never the chat model)."""
        found = device_states.candidates(intent, self._devices)
        text = device_states.unanswerable(intent, found)
        async with self._pool.acquire() as conn, conn.transaction():
            if not await jobs.first_handling(conn, intent.message.message_id, intent.intent):
                logger.info("device question already answered", extra={"message_id": intent.message.message_id})
                return
            if text is None:
                known = await device_states.latest(conn, [d.id for d in found])
                text = device_states.answer(intent, found, known, datetime.now(UTC))
            await self._outbox.add(conn, [(self._settings.topics.outbound, self._short_reply(intent, text, event))])
        self._outbox.wake()

    async def media(self, event: ConsumedEvent, intent: m.ParsedIntent) -> None:
        """A voice note or picture: nothing transcribes or reads them yet (docs/media.md), so the
        sender is told so; the chat model, given no text, would only guess."""
        text = reminders.say("media_not_yet", reminders.language_of(intent))
        async with self._pool.acquire() as conn, conn.transaction():
            await self._reply_once(conn, event, intent, text)
        self._outbox.wake()

    async def _reply_once(
        self, conn: asyncpg.Connection, event: ConsumedEvent, intent: m.ParsedIntent, text: str
    ) -> bool:
        """Queue ``text`` as the reply to ``intent``'s message in ``conn``'s transaction; False,
        and nothing queued, when that message was handled before (a redelivery)."""
        if not await jobs.first_handling(conn, intent.message.message_id, intent.intent):
            return False
        await self._outbox.add(conn, [(self._settings.topics.outbound, self._short_reply(intent, text, event))])
        return True

    async def device_said(
        self, device_id: str, state: dict[str, str], online: bool | None, at: datetime, *, replace: bool
    ) -> None:
        """Keep what a device said about itself at ``at`` (its status, or a command result's state)."""
        async with self._pool.acquire() as conn:
            await device_states.record(conn, device_id, state, online, at, replace=replace)

    async def plugin(self, event: ConsumedEvent, intent: m.ParsedIntent, plugin: m.PluginRegistration) -> None:
        """Queue the call of ``plugin`` for ``intent`` (the dispatcher sends it at once)."""
        envelope = event.envelope
        call = plugins.plan(
            intent,
            plugin,
            envelope.conversation_key,
            envelope.tenant_id,
            datetime.now(UTC),
            self._settings.plugin_attempts,
        )
        async with self._pool.acquire() as conn, conn.transaction():
            if await jobs.create(conn, [call]):
                await conn.execute("SELECT pg_notify($1, '')", self._dispatcher.channel)
        self._dispatcher.wake()

    async def workflow(self, event: ConsumedEvent, intent: m.ParsedIntent) -> None:
        """Start the run of the workflow ``intent`` triggers (once per inbound message)."""
        flow = self._dispatcher.workflows.by_intent[intent.intent]
        envelope = event.envelope
        run = self._dispatcher.workflows.start(
            flow, intent, envelope.conversation_key, envelope.tenant_id, datetime.now(UTC)
        )
        async with self._pool.acquire() as conn, conn.transaction():
            if await jobs.create(conn, [run]):
                await conn.execute("SELECT pg_notify($1, '')", self._dispatcher.channel)
        self._dispatcher.wake()

    async def workflow_results(
        self, results: list[tuple[ConsumedEvent, m.InferenceResult]]
    ) -> list[tuple[ConsumedEvent, m.InferenceResult]]:
        """Hand the answers that workflow runs wait for to them; returns the others."""
        now = datetime.now(UTC)
        async with self._pool.acquire() as conn, conn.transaction():
            waiting = {
                j.payload["pending_request"]: j
                for j in await jobs.waiting_for(conn, [r.request_id for _, r in results])
            }
            if not waiting:
                return results
            handled: set[str] = set()
            for _, result in results:
                run = waiting.pop(result.request_id, None)
                if run is None:
                    continue
                handled.add(result.request_id)
                if result.finish_reason in (m.FINISH_REASON_ERROR, m.FINISH_REASON_DEADLINE_EXCEEDED):
                    run.payload["step_error"] = (
                        f"model failed: {result.error or m.FinishReason.Name(result.finish_reason)}"
                    )
                    run.status, run.due_at = "scheduled", now
                else:
                    step = workflows.current(self._dispatcher.workflows, run)
                    self._dispatcher.step_done(run, workflows.model_answer(step, run, result.text), now)
                await jobs.save_outcomes(conn, [run])
        self._dispatcher.wake()
        return [(e, r) for e, r in results if r.request_id not in handled]

    async def answered(
        self,
        event: ConsumedEvent,
        job_id: str,
        kind: str,
        ok: bool,
        error: str,
        answer: m.DeviceCommandResult | m.PluginReply,
    ) -> None:
        """A device or plugin answered: its job is done (or failed), and the user is told once."""
        async with self._pool.acquire() as conn, conn.transaction():
            job = await jobs.finish(conn, job_id, kind, ok, error)
            if job is None:
                logger.info("answer for nothing waiting", extra={"job_id": job_id, "kind": kind})
                return
            if isinstance(answer, m.PluginReply):
                text = plugins.reply_text(job, answer)
            else:
                text = devices.outcome_text(job, answer)
            reply = job.message(text, events.derived_id(event.envelope.event_id, f"{kind}-reply"))
            envelope = events.wrap(
                reply,
                conversation_key=job.conversation_key,
                source=self._settings.service_name,
                tenant_id=job.tenant_id,
                causation_id=event.envelope.event_id,
                traceparent=event.envelope.trace.traceparent or None,
            )
            await self._outbox.add(conn, [(self._settings.topics.outbound, envelope)])
        self._outbox.wake()

    def _short_reply(self, intent: m.ParsedIntent, text: str, event: ConsumedEvent) -> envelope_pb2.Envelope:
        message = intent.message
        reply = m.OutboundMessage(
            message_id=events.derived_id(event.envelope.event_id, "scheduler-reply"),
            in_reply_to=message.message_id,
            channel=message.channel,
            channel_chat_id=message.channel_chat_id,
            text=text,
            final=True,
            metadata={"source": self._settings.service_name, "intent": intent.intent},
        )
        return self._wrap(reply, event)

    async def relay_chunk(self, event: ConsumedEvent, chunk: m.InferenceChunk) -> None:
        # Pieces of a stream are passed straight on, without waiting for each
        # acknowledgement: a lost piece is covered by the final reply, which goes through
        # the outbox (and one producer keeps a conversation's pieces in order).
        envelope = self._wrap(handlers.outbound_chunk(chunk), event)
        await self._runtime.producer.enqueue(self._settings.topics.outbound, envelope)

    async def complete(self, results: list[tuple[ConsumedEvent, m.InferenceResult]]) -> None:
        """Record the answers and queue the replies, once per request."""
        async with self._pool.acquire() as conn, conn.transaction():
            still_open = await store.record_completions(conn, [result for _, result in results])
            queued = []
            for event, result in results:
                if result.request_id not in still_open:
                    logger.info("result for an unknown or finished request", extra={"request_id": result.request_id})
                    continue
                still_open.discard(result.request_id)
                queued.append((self._settings.topics.outbound, self._wrap(handlers.outbound_reply(result), event)))
            await self._outbox.add(conn, queued)
        self._outbox.wake()

    def _wrap(self, payload: m.InferenceRequest | m.OutboundMessage, cause: ConsumedEvent) -> envelope_pb2.Envelope:
        return events.wrap(
            payload,
            conversation_key=cause.envelope.conversation_key,
            source=self._settings.service_name,
            tenant_id=cause.envelope.tenant_id,
            causation_id=cause.envelope.event_id,
            # A batch handler has no one current trace: each output continues its cause's.
            traceparent=cause.envelope.trace.traceparent or None,
        )


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    pool = await postgres.connect(
        settings.database_url.get_secret_value(), settings.database_schema, "switchboard.scheduler", settings.pool_size
    )
    catalogue = Catalogue(settings.kafka, settings.topics.plugin_catalog)
    try:
        # All of the catalogue is read before the first intent, so that none goes to the
        # model for want of its plugin's registration.
        await catalogue.start()
        if settings.plugins_enabled:
            registered = sorted(catalogue.plugins)
            logger.info("plugins enabled", extra={"enabled": settings.plugins_enabled, "registered": registered})
        outbox = Outbox(pool, settings.database_schema, settings.topics.deadletter)
        dispatcher = Dispatcher(
            pool,
            outbox,
            schema=settings.database_schema,
            source=settings.service_name,
            outbound_topic=settings.topics.outbound,
            deadletter_topic=settings.topics.deadletter,
            batch=settings.dispatch_batch,
            poll_s=settings.dispatch_poll_s,
            backoff_base_s=settings.retry_base_s,
            backoff_cap_s=settings.retry_cap_s,
            keep_finished_s=settings.keep_finished_days * 86400,
            device_topic=settings.topics.device_commands,
            device_answer_s=settings.device_answer_s,
            requests_topic=settings.topics.requests_routine,
            workflow_set=workflows.Workflows.load(settings.workflows_dir),
        )
        async with ServiceRuntime(settings) as runtime:
            scheduler = Scheduler(settings, runtime, pool, outbox, dispatcher, catalogue)
            topics = settings.topics
            consumer = runtime.consumer(
                [topics.intents, topics.results, topics.device_results, topics.plugin_replies],
                group_id=settings.group_id,
                batch_handler=scheduler.handle,
                transient=postgres.TRANSIENT_ERRORS,  # PostgreSQL restarting: wait, never dead-letter
            )
            relay = outbox.relay(runtime.producer, stop, settings.relay_poll_s, settings.relay_batch)
            await runtime.run(stop, consumer, background=[relay, dispatcher.run(stop), catalogue.follow(stop)])
    finally:
        await catalogue.stop()
        await postgres.close(pool)
