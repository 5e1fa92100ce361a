"""``switchboard.inference.v1.InferenceService``: Generate and GenerateStream for callers
that want an answer synchronously (over gRPC, not through Kafka). The same engine answers:
routes, fallbacks, cache, screening and deadlines apply alike. A gRPC deadline becomes the
request's deadline when the request has none; a caller that goes away cancels the model call.

Every call carries a caller's bearer token ("authorization: Bearer <token>" metadata,
compared in constant time with each configured one) or is refused with UNAUTHENTICATED
before anything else happens; ``max_tokens`` above the configured cap is INVALID_ARGUMENT;
every answered call is audited with the caller's name (``on_outcome``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

import grpc

from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference.v1 import inference_pb2 as api
from switchboard.inference.v1 import inference_pb2_grpc as api_grpc
from switchboard.inference_client import handlers
from switchboard.inference_client.engine import Engine, Outcome

logger = logging.getLogger(__name__)

# Called with the caller's name, the request and its outcome (the service audits each call).
OnOutcome = Callable[[str, m.InferenceRequest, Outcome], Awaitable[None]]
_DONE = object()


class InferenceApi(api_grpc.InferenceServiceServicer):
    def __init__(self, engine: Engine, on_outcome: OnOutcome, tokens: Mapping[str, str], max_tokens: int) -> None:
        """``tokens``: caller name -> bearer token; ``max_tokens``: the most a call may ask for."""
        if not tokens:
            raise ValueError("the inference API needs at least one caller token")
        self._engine = engine
        self._on_outcome = on_outcome
        self._tokens = {name: token.encode() for name, token in tokens.items()}
        self._max_tokens = max_tokens

    async def _caller(self, context: grpc.aio.ServicerContext[object, object]) -> str:
        """The name of the caller whose token the call carries; UNAUTHENTICATED otherwise."""
        metadata = dict(context.invocation_metadata() or ())
        scheme, _, token = str(metadata.get("authorization", "")).partition(" ")
        if scheme.lower() == "bearer" and token:
            given = token.encode()
            # Every token compared, so the time taken says nothing about which one was close.
            matches = [name for name, known in self._tokens.items() if hmac.compare_digest(given, known)]
            if matches:
                return matches[0]
        logger.warning("inference API call refused: no valid bearer token", extra={"peer": context.peer()})
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a caller's bearer token is required")
        raise AssertionError("unreachable: abort raises")

    async def _checked(
        self, request: m.InferenceRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> tuple[str, m.InferenceRequest]:
        caller = await self._caller(context)
        if request.params.max_tokens > self._max_tokens:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request.params.max_tokens {request.params.max_tokens} is over this API's cap of {self._max_tokens}",
            )
        return caller, await _checked(request, context)

    async def Generate(
        self, request: api.GenerateRequest, context: grpc.aio.ServicerContext[api.GenerateRequest, object]
    ) -> api.GenerateResponse:
        caller, ask = await self._checked(request.request, context)
        started = time.perf_counter()

        async def ignore(_piece: str) -> None:
            return None

        outcome = await self._engine.generate(ask, ask.request_id, ignore)
        await self._on_outcome(caller, ask, outcome)
        return api.GenerateResponse(result=outcome.result(ask, _ms_since(started), chunks=0))

    async def GenerateStream(
        self, request: api.GenerateStreamRequest, context: grpc.aio.ServicerContext[api.GenerateStreamRequest, object]
    ) -> AsyncIterator[api.GenerateStreamResponse]:
        caller, ask = await self._checked(request.request, context)
        started = time.perf_counter()
        pieces: asyncio.Queue[object] = asyncio.Queue()

        async def answer() -> Outcome:
            try:
                return await self._engine.generate(ask, ask.request_id, pieces.put)
            finally:
                pieces.put_nowait(_DONE)

        task = asyncio.create_task(answer())
        sequence = 0
        try:
            while (piece := await pieces.get()) is not _DONE:
                yield api.GenerateStreamResponse(chunk=handlers.chunk(ask, sequence, str(piece)))
                sequence += 1
            outcome = await task
        finally:
            task.cancel()  # the caller went away: stop the model call
        await self._on_outcome(caller, ask, outcome)
        yield api.GenerateStreamResponse(result=outcome.result(ask, _ms_since(started), chunks=sequence))


async def _checked(
    request: m.InferenceRequest, context: grpc.aio.ServicerContext[object, object]
) -> m.InferenceRequest:
    """A copy of ``request`` with an id and a deadline; INVALID_ARGUMENT if it asks nothing."""
    if not any(turn.role == m.ROLE_USER and turn.content.strip() for turn in request.messages):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request.messages needs a non-empty user turn")
    ask = m.InferenceRequest()
    ask.CopyFrom(request)
    if not ask.request_id:
        ask.request_id = str(uuid.uuid4())
    remaining = context.time_remaining()
    if not ask.HasField("deadline") and remaining is not None:
        ask.deadline.FromDatetime(datetime.now(UTC) + timedelta(seconds=remaining))
    return ask


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


async def start(api_impl: InferenceApi, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """Serve ``api_impl`` on ``host:port`` (0: any free port); returns the server and its port."""
    server = grpc.aio.server()
    api_grpc.add_InferenceServiceServicer_to_server(api_impl, server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    logger.info("inference gRPC API up", extra={"address": f"{host}:{bound}"})
    return server, bound
