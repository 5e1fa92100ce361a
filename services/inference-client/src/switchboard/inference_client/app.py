"""Wiring: consume inference requests, stream Triton's answer as chunks, then a result."""

from __future__ import annotations

import asyncio
import logging
import time

from switchboard.common import events
from switchboard.common.kafka import ConsumedEvent
from switchboard.common.service import ServiceRuntime
from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client import handlers
from switchboard.inference_client.config import Settings
from switchboard.inference_client.slots import PrioritySlots
from switchboard.inference_client.triton import TritonClient

logger = logging.getLogger(__name__)


class InferenceWorker:
    """Handles one InferenceRequest: chunks as they come, then one InferenceResult."""

    def __init__(self, settings: Settings, runtime: ServiceRuntime, triton: TritonClient) -> None:
        self._settings = settings
        self._runtime = runtime
        self._triton = triton
        self._slots = PrioritySlots(settings.max_concurrency)

    async def handle(self, event: ConsumedEvent) -> None:
        request = events.unwrap(event.envelope)
        if not isinstance(request, m.InferenceRequest):
            logger.warning("ignoring unexpected event", extra={"event_type": event.envelope.event_type})
            return
        started = time.perf_counter()
        pending: list[asyncio.Future[object]] = []

        async def emit(payload: m.InferenceChunk | m.InferenceResult) -> None:
            envelope = events.wrap(
                payload,
                conversation_key=event.envelope.conversation_key,
                source=self._settings.service_name,
                tenant_id=event.envelope.tenant_id,
                causation_id=event.envelope.event_id,
            )
            pending.append(await self._runtime.producer.enqueue(self._settings.topics.results, envelope))

        route = None
        pieces: list[str] = []
        chunks = handlers.Coalescer(self._settings.stream_interval_ms / 1000)
        usage: m.Usage | None = None
        error = ""
        loop = asyncio.get_running_loop()
        deadline = handlers.deadline_in(request, time.time(), loop.time())
        rank = 0 if request.priority == m.PRIORITY_URGENT else 1
        try:
            route = handlers.route_for(request.model_profile, self._settings.routes)
            finish = "stop"
            # The deadline bounds the wait for a slot and the call alike.
            async with asyncio.timeout_at(deadline), self._slots.hold(rank):
                async for piece in self._triton.stream(route, request, self._settings.default_max_tokens):
                    if piece.text:
                        pieces.append(piece.text)
                        due = chunks.add(piece.text, time.perf_counter())
                        if due is not None:
                            await emit(handlers.chunk(request, chunks.sent - 1, due))
                    if piece.finish_reason:
                        finish, usage = piece.finish_reason, piece.usage
            reason = handlers.finish_reason(finish)
            last = chunks.finish()
            if last is not None:
                await emit(handlers.chunk(request, chunks.sent - 1, last))
        except TimeoutError as exc:
            reason = m.FINISH_REASON_DEADLINE_EXCEEDED
            error = str(exc) or (
                "deadline passed after the answer began" if pieces else "deadline passed before an answer"
            )
        except Exception as exc:  # the user gets an error reply instead of silence
            logger.exception("inference failed", extra={"request_id": request.request_id})
            reason, error = m.FINISH_REASON_ERROR, repr(exc)
        final = handlers.result(
            request,
            text="".join(pieces),
            reason=reason,
            route=route,
            latency_ms=int((time.perf_counter() - started) * 1000),
            chunks=chunks.sent,
            usage=usage,
            error=error,
        )
        await emit(final)
        # Offsets are committed after this returns: only once every record is acknowledged.
        await asyncio.gather(*pending)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    triton = TritonClient(settings.triton_url, settings.request_timeout_s)
    try:
        async with ServiceRuntime(settings) as runtime:
            worker = InferenceWorker(settings, runtime, triton)
            consumer = runtime.consumer(
                [settings.topics.requests_urgent, settings.topics.requests_routine],
                group_id=settings.group_id,
                handler=worker.handle,
                # Routine partitions wait while urgent ones have work (the slots do the rest).
                priority=[settings.topics.requests_urgent, settings.topics.requests_routine],
            )
            await runtime.run(stop, consumer)
    finally:
        await triton.close()
