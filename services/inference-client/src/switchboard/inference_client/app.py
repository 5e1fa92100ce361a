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
from switchboard.inference_client import grpc_api, handlers, routes_file
from switchboard.inference_client.cache import ResponseCache
from switchboard.inference_client.config import Settings
from switchboard.inference_client.engine import Engine, Outcome
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
            audit = handlers.blocked_audit(request, outcome.blocked_rule, event.envelope.event_id)
            await emit(self._settings.topics.audit, audit, "audit-output-blocked")
        final = outcome.result(request, int((time.perf_counter() - started) * 1000), chunks.sent)
        await emit(results, final, "result")
        # One line per answer, with the request's trace id: what an SRE reads beside the trace.
        logger.info(
            "answered",
            extra={
                "request_id": request.request_id,
                "model": final.model_name,
                "finish_reason": m.FinishReason.Name(final.finish_reason),
                "latency_ms": final.latency_ms,
                "chunks": chunks.sent,
            },
        )
        # Offsets are committed after this returns: only once every record is acknowledged.
        await asyncio.gather(*pending)
        self._ledger.note(request.request_id)


def audit_calls(settings: Settings, runtime: ServiceRuntime) -> grpc_api.OnOutcome:
    """For gRPC callers: every call is audited with its caller's name, and an answer
    screened out as on the Kafka path."""

    async def on_outcome(caller: str, request: m.InferenceRequest, outcome: Outcome) -> None:
        model = outcome.target.name if outcome.target is not None else ""
        records = [handlers.api_call_audit(caller, request, outcome.reason, model)]
        if outcome.blocked_rule:
            records.append(handlers.blocked_audit(request, outcome.blocked_rule))
        for record in records:
            envelope = events.wrap(record, conversation_key=request.request_id, source=settings.service_name)
            await (await runtime.producer.enqueue(settings.topics.audit, envelope))

    return on_outcome


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    if settings.routes_file is not None:
        settings.routes = routes_file.read(settings.routes_file)
    triton = TritonClient(settings.triton_url, settings.request_timeout_s)
    try:
        async with ServiceRuntime(settings) as runtime:
            ledger = Ledger(settings.answered_window_s)
            found = await ledger.load(settings.kafka, settings.topics.results)
            logger.info("answered requests in the last window", extra={"count": found})
            engine = build_engine(settings, triton)
            background = []
            if settings.routes_file is not None:
                background.append(
                    routes_file.follow(
                        settings.routes_file, engine, stop, settings.routes_poll_s, settings.unload_unused_models
                    )
                )
            api = None
            if settings.api_tokens:
                tokens = {name: token.get_secret_value() for name, token in settings.api_tokens.items()}
                service = grpc_api.InferenceApi(engine, audit_calls(settings, runtime), tokens, settings.api_max_tokens)
                api, _ = await grpc_api.start(service, settings.api_host, settings.api_port)
            else:
                logger.info("inference gRPC API off: no caller token (SB_INFERENCE_API_TOKENS)")
            worker = InferenceWorker(settings, runtime, engine, ledger)
            consumer = runtime.consumer(
                [settings.topics.requests_urgent, settings.topics.requests_routine],
                group_id=settings.group_id,
                handler=worker.handle,
                # Routine partitions wait while urgent ones have work (the slots do the rest).
                priority=[settings.topics.requests_urgent, settings.topics.requests_routine],
            )
            try:
                await runtime.run(stop, consumer, background=background)
            finally:
                if api is not None:
                    await api.stop(grace=5)
                await engine.close()
    finally:
        await triton.close()
