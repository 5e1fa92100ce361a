"""Answering one InferenceRequest, whoever asked (Kafka or gRPC).

In order: the response cache; a slot (urgent before routine); then the route's targets in
turn (the canary split picks the first), each tried ``attempts_per_target`` times with
backoff and skipped while its circuit breaker is open, until one starts answering. Every
piece is screened (with the held-back tail of the text before it, StreamScreen) before it
is handed on, so no part of a blocked answer leaves: it is replaced by a safe message.
The request's deadline bounds all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import grpc
import openai
from tritonclient.utils import InferenceServerException

from switchboard.common import backoff, telemetry
from switchboard.common import text as text_rules
from switchboard.common.screening import StreamScreen, TextScreen
from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client import handlers, metrics, routing
from switchboard.inference_client.breaker import Breaker, State
from switchboard.inference_client.cache import Cached, ResponseCache
from switchboard.inference_client.config import Route, Settings, Target
from switchboard.inference_client.openai_backend import OpenAIBackend
from switchboard.inference_client.slots import PrioritySlots
from switchboard.inference_client.triton import TritonClient, TritonError

logger = logging.getLogger(__name__)

OnPiece = Callable[[str], Awaitable[None]]
# Screens a piece of the answer and hands on what may leave; None: the answer is complete.
Forward = Callable[[str | None], Awaitable[None]]
# What makes a target count as failed (anything else is a bug and surfaces as one).
_TARGET_ERRORS = (InferenceServerException, TritonError, TimeoutError, OSError, grpc.RpcError, openai.APIError)


@dataclass
class Outcome:
    """How a request ended."""

    text: str
    reason: m.FinishReason.ValueType
    target: Target | None = None
    usage: m.Usage | None = None
    error: str = ""
    cached: bool = False
    blocked_rule: str = ""
    # "<target>: <why>" for each target that failed or was skipped before the answer.
    failures: list[str] = field(default_factory=list)

    def result(self, request: m.InferenceRequest, latency_ms: int, chunks: int) -> m.InferenceResult:
        """The InferenceResult telling ``request``'s caller how it ended."""
        return handlers.result(
            request,
            text=self.text,
            reason=self.reason,
            target=self.target,
            latency_ms=latency_ms,
            chunks=chunks,
            usage=self.usage,
            error=self.error,
            cached=self.cached,
        )


class _Blocked(Exception):
    def __init__(self, rule: str) -> None:
        self.rule = rule


class Engine:
    def __init__(
        self,
        settings: Settings,
        triton: TritonClient,
        screen: TextScreen,
        cache: ResponseCache,
        clock: Callable[[], float] = time.monotonic,
        openai_backend: OpenAIBackend | None = None,
    ) -> None:
        self._settings = settings
        self._triton = triton
        self._openai = openai_backend or OpenAIBackend(settings.request_timeout_s)
        self._screen = screen
        self.cache = cache
        self._clock = clock
        self._slots = PrioritySlots(settings.max_concurrency)
        self._breakers: dict[str, Breaker] = {}
        # Requests routed to each model and not finished (waiting for a slot or running).
        self._using: Counter[str] = Counter()
        self._released = asyncio.Condition()
        self._switching = asyncio.Lock()

    async def close(self) -> None:
        await self._openai.close()

    def breaker(self, target: Target) -> Breaker:
        if target.name not in self._breakers:
            self._breakers[target.name] = Breaker(
                self._settings.breaker_failures, self._settings.breaker_reset_s, self._clock
            )
        return self._breakers[target.name]

    async def generate(self, request: m.InferenceRequest, key: str, on_piece: OnPiece) -> Outcome:
        """Answer ``request``; ``key`` (the conversation) picks the canary side; each piece
        of the answer goes to ``on_piece`` as it comes."""
        loop = asyncio.get_running_loop()
        deadline = handlers.deadline_in(request, time.time(), loop.time())
        sent: list[str] = []
        screen = StreamScreen(self._screen, self._settings.screen_hold_chars)

        async def forward(piece: str | None) -> None:
            """Screen ``piece`` and hand on what may leave; None: the answer is complete."""
            if piece is None:
                released = screen.finish()
            else:
                verdict, released = screen.feed(piece)
                if verdict is not None:
                    raise _Blocked(verdict.rule)
            if released:
                sent.append(released)
                await on_piece(released)

        try:
            route = routing.route_for(request.model_profile, self._settings.routes)
            cache_key = None
            if route.cache:
                names = ",".join(t.name for t in route.targets)
                cache_key = self.cache.key(request, names, self._settings.default_max_tokens)
            if (hit := self.cache.get(cache_key)) is not None:
                metrics.CACHE.labels("hit").inc()
                return Outcome(hit.text, hit.finish_reason, hit.target, hit.usage, cached=True)
            if cache_key is not None:
                metrics.CACHE.labels("miss").inc()
            rank = 0 if request.priority == m.PRIORITY_URGENT else 1
            chain = routing.chain(route, key)
            async with (
                asyncio.timeout_at(deadline),
                self._slots.hold(rank),
                self._use(t.model for t in chain if t.kind != "openai"),
            ):
                outcome = await self._first_answer(request, chain, forward, sent, screen)
        except _Blocked as blocked:
            metrics.BLOCKED.labels(blocked.rule).inc()
            logger.warning("model output blocked", extra={"request_id": request.request_id, "rule": blocked.rule})
            return Outcome(
                self._blocked_reply(request),
                m.FINISH_REASON_BLOCKED,
                error=f"output blocked ({blocked.rule})",
                blocked_rule=blocked.rule,
            )
        except TimeoutError:
            screen.drop()  # held back: not screened against what would have come next
            why = "deadline passed after the answer began" if sent else "deadline passed before an answer"
            return Outcome("".join(sent), m.FINISH_REASON_DEADLINE_EXCEEDED, error=why)
        except LookupError as exc:
            return Outcome("", m.FINISH_REASON_ERROR, error=str(exc))
        if outcome.reason in (m.FINISH_REASON_STOP, m.FINISH_REASON_LENGTH) and outcome.target is not None:
            usage = outcome.usage or m.Usage()
            self.cache.put(cache_key, Cached(outcome.text, outcome.reason, outcome.target, usage))
        return outcome

    async def _first_answer(
        self, request: m.InferenceRequest, chain: list[Target], forward: Forward, sent: list[str], screen: StreamScreen
    ) -> Outcome:
        failures: list[str] = []
        for target in chain:
            breaker = self.breaker(target)
            for attempt in range(self._settings.attempts_per_target):
                if not breaker.allow():
                    metrics.TARGET_FAILURES.labels(target.name, "circuit_open").inc()
                    failures.append(f"{target.name}: circuit open")
                    break
                if attempt:
                    await asyncio.sleep(self._backoff(attempt))
                try:
                    outcome = await self._call(target, request, forward, sent)
                except _TARGET_ERRORS as exc:
                    breaker.failure()
                    metrics.BREAKER_OPEN.labels(target.name).set(breaker.state is State.OPEN)
                    metrics.TARGET_FAILURES.labels(target.name, type(exc).__name__).inc()
                    failures.append(f"{target.name}: {_describe(exc)}")
                    logger.warning(
                        "model target failed",
                        extra={"request_id": request.request_id, "target": target.name, "error": _describe(exc)},
                    )
                    screen.drop()  # what this target said and was held back never leaves
                    if sent:  # part of the answer is out: no other model can take over now
                        return Outcome(
                            "".join(sent), m.FINISH_REASON_ERROR, target, error=failures[-1], failures=failures
                        )
                    continue
                breaker.success()
                metrics.BREAKER_OPEN.labels(target.name).set(0)
                metrics.ANSWERS.labels(target.name, m.FinishReason.Name(outcome.reason)).inc()
                outcome.failures = failures
                return outcome
        return Outcome("", m.FINISH_REASON_ERROR, error="no model answered: " + "; ".join(failures), failures=failures)

    async def _call(self, target: Target, request: m.InferenceRequest, forward: Forward, sent: list[str]) -> Outcome:
        finish, usage = "stop", None
        backend = self._openai if target.kind == "openai" else self._triton
        max_tokens = request.params.max_tokens or self._settings.default_max_tokens
        stream = backend.stream(target, request, self._settings.default_max_tokens)
        called = time.perf_counter()
        with telemetry.model_call(target.model, "openai" if target.kind == "openai" else "triton", max_tokens) as span:
            async with (
                contextlib.aclosing(stream),
                asyncio.timeout(target.first_piece_timeout_s or self._settings.first_piece_timeout_s) as first,
            ):
                async for piece in stream:
                    if first.when() is not None:  # it answers: from here only the deadline bounds it
                        first.reschedule(None)
                        waited = time.perf_counter() - called
                        metrics.FIRST_PIECE.labels(target.name).observe(waited)
                        span.set_attribute("switchboard.time_to_first_chunk_s", waited)
                    if piece.text:
                        await forward(piece.text)
                    if piece.finish_reason:
                        finish, usage = piece.finish_reason, piece.usage
            span.set_attribute("gen_ai.response.finish_reasons", [finish])
            if usage is not None:
                span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
        await forward(None)
        return Outcome("".join(sent), handlers.finish_reason(finish), target, usage)

    @contextlib.asynccontextmanager
    async def _use(self, models: Iterable[str]) -> AsyncIterator[None]:
        used = set(models)
        self._using.update(used)
        try:
            yield
        finally:
            self._using.subtract(used)
            async with self._released:
                self._released.notify_all()

    async def switch(self, routes: dict[str, Route], unload_unused: bool, drain_timeout_s: float = 60.0) -> list[str]:
        """Hot switch to ``routes`` while requests flow: load the models they name that are
        not loaded yet, route new requests by them, then, once no request of this process is
        still routed to a model no longer named, unload it (``unload_unused``). Streams in
        flight finish on the model they started on. Returns the models unloaded."""
        async with self._switching:
            wanted = _models(routes)
            for model in sorted(wanted):
                if not await self._triton.ready(model):
                    logger.info("loading model for the new routes", extra={"model": model})
                    await self._triton.load(model)
            unused = _models(self._settings.routes) - wanted
            self._settings.routes = routes
            logger.info("routes switched", extra={"models": sorted(wanted), "unused": sorted(unused)})
            if not unload_unused or not unused:
                return []
            async with asyncio.timeout(drain_timeout_s), self._released:
                await self._released.wait_for(lambda: all(self._using[model] <= 0 for model in unused))
            for model in sorted(unused):
                await self._triton.unload(model)
                logger.info("unloaded model no route names", extra={"model": model})
            return sorted(unused)

    def _backoff(self, attempt: int) -> float:
        return backoff.delay(attempt, self._settings.retry_backoff_s, cap_s=5.0, jitter=True)

    def _blocked_reply(self, request: m.InferenceRequest) -> str:
        text = handlers.last_user_text(request)
        return self._settings.blocked_reply_zh if text_rules.has_cjk(text) else self._settings.blocked_reply_en


def _models(routes: dict[str, Route]) -> set[str]:
    """The Triton models ``routes`` name."""
    return {t.model for r in routes.values() for t in (*r.targets, *r.fallback) if t.kind != "openai"}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
