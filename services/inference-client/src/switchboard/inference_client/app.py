"""Wiring: consume inference requests, answer each once (engine.py), stream the answer
as chunks, then one result; audit blocked answers."""

from __future__ import annotations

import asyncio
import logging
import time

from switchboard.common import events
from switchboard.common.kafka import ConsumedEvent
from switchboard.common.screening import TextScreen
from switchboard.common.service import ServiceRuntime
from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client import handlers, routes_file
from switchboard.inference_client.cache import ResponseCache
from switchboard.inference_client.config import Settings
from switchboard.inference_client.engine import Engine
from switchboard.inference_client.ledger import Ledger
from switchboard.inference_client.triton import TritonClient

logger = logging.getLogger(__name__)


def build_engine(settings: Settings, triton: TritonClient) -> Engine:
    rules = settings.output_rules_dir
    screen = TextScreen.from_files(rules / "lexicon.txt", rules / "rules.yaml", "output")
    cache = ResponseCache(settings.cache_entries, settings.cache_ttl_s, settings.cache_contextual)
    return Engine(settings, triton, screen, cache)


class InferenceWorker:
    """Handles one InferenceRequest: chunks as they come, then one InferenceResult."""

    def __init__(self, settings: Settings, runtime: ServiceRuntime, engine: Engine, ledger: Ledger) -> None:
        self._settings = settings
        self._runtime = runtime
        self.engine = engine
        self._ledger = ledger

    async def handle(self, event: ConsumedEvent) -> None:
        request = events.unwrap(event.envelope)
        if not isinstance(request, m.InferenceRequest):
            logger.warning("ignoring unexpected event", extra={"event_type": event.envelope.event_type})
            return
        if not await self._ledger.claim(request.request_id):
            logger.info("request already answered; not answering again", extra={"request_id": request.request_id})
            return
        try:
            await self._answer(event, request)
        finally:
            self._ledger.release(request.request_id)

    async def _answer(self, event: ConsumedEvent, request: m.InferenceRequest) -> None:
        started = time.perf_counter()
        pending: list[asyncio.Future[object]] = []

        async def emit(topic: str, payload: m.InferenceChunk | m.InferenceResult | m.AuditEvent, role: str) -> None:
            envelope = events.wrap(
                payload,
                conversation_key=event.envelope.conversation_key,
                source=self._settings.service_name,
                tenant_id=event.envelope.tenant_id,
                causation_id=event.envelope.event_id,
                # The same request answered again (after a crash) makes the same event ids.
                event_id=events.derived_id(f"inference:{request.request_id}", role),
            )
            pending.append(await self._runtime.producer.enqueue(topic, envelope))

        results = self._settings.topics.results
        chunks = handlers.Coalescer(self._settings.stream_interval_ms / 1000)

        async def on_piece(text: str) -> None:
            due = chunks.add(text, time.perf_counter())
            if due is not None:
                await emit(results, handlers.chunk(request, chunks.sent - 1, due), f"chunk-{chunks.sent - 1}")

        key = event.envelope.conversation_key or request.request_id
        outcome = await self.engine.generate(request, key, on_piece)
        if outcome.reason != m.FINISH_REASON_BLOCKED and (last := chunks.finish()) is not None:
            await emit(results, handlers.chunk(request, chunks.sent - 1, last), f"chunk-{chunks.sent - 1}")
        if outcome.failures:
            logger.info("answered after failures", extra={"request_id": request.request_id, "failed": outcome.failures})
        if outcome.blocked_rule:
            audit = m.AuditEvent(
                action="output.blocked",
                outcome=m.OUTCOME_BLOCKED,
                reason=outcome.blocked_rule,
                subject_event_id=event.envelope.event_id,
                labels={
                    "rule": outcome.blocked_rule,
                    "request_id": request.request_id,
                    "profile": request.model_profile,
                },
            )
            await emit(self._settings.topics.audit, audit, "audit-output-blocked")
        final = handlers.result(
            request,
            text=outcome.text,
            reason=outcome.reason,
            target=outcome.target,
            latency_ms=int((time.perf_counter() - started) * 1000),
            chunks=chunks.sent,
            usage=outcome.usage,
            error=outcome.error,
            cached=outcome.cached,
        )
        await emit(results, final, "result")
        # Offsets are committed after this returns: only once every record is acknowledged.
        await asyncio.gather(*pending)
        self._ledger.note(request.request_id)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    if settings.routes_file is not None:
        settings.routes = routes_file.read(settings.routes_file)
    triton = TritonClient(settings.triton_url, settings.request_timeout_s)
    background: list[asyncio.Task[None]] = []
    try:
        async with ServiceRuntime(settings) as runtime:
            ledger = Ledger(settings.answered_window_s)
            found = await ledger.load(settings.kafka, settings.topics.results)
            logger.info("answered requests in the last window", extra={"count": found})
            engine = build_engine(settings, triton)
            if settings.routes_file is not None:
                follow = routes_file.follow(
                    settings.routes_file, engine, stop, settings.routes_poll_s, settings.unload_unused_models
                )
                background.append(asyncio.create_task(follow))
            worker = InferenceWorker(settings, runtime, engine, ledger)
            consumer = runtime.consumer(
                [settings.topics.requests_urgent, settings.topics.requests_routine],
                group_id=settings.group_id,
                handler=worker.handle,
                # Routine partitions wait while urgent ones have work (the slots do the rest).
                priority=[settings.topics.requests_urgent, settings.topics.requests_routine],
            )
            await runtime.run(stop, consumer)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await triton.close()
