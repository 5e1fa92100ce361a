"""The engine's decisions (fallback, retries, breaker, cache, screening, deadlines) with a
scripted stand-in for Triton; tests/integration/test_inference.py runs them on the real one."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from tritonclient.utils import InferenceServerException

from switchboard.common.screening import TextScreen
from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client.breaker import State
from switchboard.inference_client.cache import ResponseCache
from switchboard.inference_client.config import Route, Settings, Target
from switchboard.inference_client.engine import Engine
from switchboard.inference_client.triton import Piece

PRIMARY = Target(model="primary", kind="echo")
SPARE = Target(model="spare", kind="echo")


class Script:
    """Per model: a list of behaviours, one per call ("ok", "fail", "hang", "fail-midway")."""

    def __init__(self, **plans: list[str]) -> None:
        self.plans = plans
        self.calls: list[str] = []

    async def stream(self, target: Target, request: m.InferenceRequest, max_tokens: int) -> AsyncIterator[Piece]:
        self.calls.append(target.model)
        plan = self.plans[target.model]
        how = plan.pop(0) if len(plan) > 1 else plan[0]
        if how == "fail":
            raise InferenceServerException(f"model {target.model} unavailable")
        if how == "hang":
            await asyncio.sleep(60)
        words = request.messages[-1].content.split()
        for i, word in enumerate(words):
            if how == "fail-midway" and i == 1:
                raise InferenceServerException("connection reset")
            yield Piece(text=(" " if i else "") + word)
        yield Piece(text="", finish_reason="stop", usage=m.Usage(completion_tokens=len(words)))


def _engine(script: Script, **overrides: Any) -> Engine:
    options: dict[str, Any] = {"retry_backoff_s": 0.001, "first_piece_timeout_s": 0.2, **overrides}
    settings = Settings(routes={"general": Route(targets=[PRIMARY], fallback=[SPARE])}, **options)
    screen = TextScreen([("self_harm", "kill yourself")], {"api_token": r"\bsk-[a-z0-9]{20,}\b"}, "output")
    return Engine(settings, script, screen, ResponseCache(16, 60, False))  # type: ignore[arg-type]


def _ask(text: str, deadline_s: float | None = None) -> m.InferenceRequest:
    request = m.InferenceRequest(request_id="r", messages=[m.ChatTurn(role=m.ROLE_USER, content=text)])
    if deadline_s is not None:
        request.deadline.FromDatetime(datetime.now(UTC) + timedelta(seconds=deadline_s))
    return request


async def _run(engine: Engine, request: m.InferenceRequest) -> tuple[Any, list[str]]:
    pieces: list[str] = []

    async def on_piece(text: str) -> None:
        pieces.append(text)

    return await engine.generate(request, "conversation", on_piece), pieces


async def test_a_failing_primary_is_retried_then_the_fallback_answers() -> None:
    script = Script(primary=["fail"], spare=["ok"])
    outcome, pieces = await _run(_engine(script), _ask("one two"))
    assert script.calls == ["primary", "primary", "spare"]  # two tries each, then the next
    assert outcome.reason == m.FINISH_REASON_STOP and outcome.target == SPARE and "".join(pieces) == "one two"
    assert outcome.failures == ["primary: model primary unavailable"] * 2


async def test_a_retry_that_succeeds_stays_on_the_primary() -> None:
    script = Script(primary=["fail", "ok"], spare=["ok"])
    outcome, _ = await _run(_engine(script), _ask("hi"))
    assert script.calls == ["primary", "primary"] and outcome.target == PRIMARY


async def test_a_primary_that_says_nothing_in_time_is_given_up_on() -> None:
    script = Script(primary=["hang"], spare=["ok"])
    outcome, _ = await _run(_engine(script, attempts_per_target=1), _ask("hi"))
    assert outcome.target == SPARE and outcome.failures == ["primary: no answer in time"]


async def test_a_failure_after_the_answer_began_is_an_error_not_a_second_answer() -> None:
    script = Script(primary=["fail-midway"], spare=["ok"])
    outcome, pieces = await _run(_engine(script, screen_hold_chars=0), _ask("one two three"))  # nothing held back
    assert script.calls == ["primary"] and pieces == ["one"]
    assert outcome.reason == m.FINISH_REASON_ERROR and outcome.text == "one"


async def test_what_a_failed_target_said_while_held_back_never_leaves() -> None:
    script = Script(primary=["fail-midway"], spare=["ok"])
    outcome, pieces = await _run(_engine(script), _ask("one two three"))  # all of it within the held tail
    assert script.calls == ["primary", "primary", "spare"]
    assert outcome.reason == m.FINISH_REASON_STOP and outcome.target == SPARE
    assert "".join(pieces) == outcome.text == "one two three"


async def test_when_every_target_fails_the_error_names_each() -> None:
    outcome, _ = await _run(_engine(Script(primary=["fail"], spare=["fail"])), _ask("hi"))
    assert outcome.reason == m.FINISH_REASON_ERROR
    assert outcome.error.startswith("no model answered: primary: model primary unavailable;")
    assert "spare: model spare unavailable" in outcome.error


async def test_the_breaker_opens_skips_the_target_and_closes_after_a_good_trial() -> None:
    script = Script(primary=["fail"], spare=["ok"])
    engine = _engine(script, breaker_failures=4, breaker_reset_s=0.05, attempts_per_target=1)
    for i in range(4):
        await _run(engine, _ask(f"question {i}"))  # different questions: no cache hits
    assert engine.breaker(PRIMARY).state is State.OPEN
    assert REGISTRY.get_sample_value("switchboard_inference_breaker_open", {"target": "primary"}) == 1
    skipped = {"target": "primary", "why": "circuit_open"}
    before = REGISTRY.get_sample_value("switchboard_inference_target_failures_total", skipped) or 0
    script.calls.clear()
    outcome, _ = await _run(engine, _ask("question 5"))
    assert script.calls == ["spare"] and outcome.failures == ["primary: circuit open"]
    assert REGISTRY.get_sample_value("switchboard_inference_target_failures_total", skipped) == before + 1
    script.plans["primary"] = ["ok"]
    await asyncio.sleep(0.06)
    outcome, _ = await _run(engine, _ask("question 6"))
    assert outcome.target == PRIMARY and engine.breaker(PRIMARY).state is State.CLOSED
    assert REGISTRY.get_sample_value("switchboard_inference_breaker_open", {"target": "primary"}) == 0


async def test_a_repeated_question_is_answered_from_the_cache() -> None:
    script = Script(primary=["ok"], spare=["ok"])
    engine = _engine(script)
    first, _ = await _run(engine, _ask("What is up"))
    again, pieces = await _run(engine, _ask("what is   UP"))
    assert script.calls == ["primary"] and pieces == []
    assert again.cached and again.text == first.text == "What is up" and again.target == PRIMARY


async def test_a_blocked_answer_is_cut_before_the_offending_piece_and_replaced() -> None:
    engine = _engine(Script(primary=["ok"], spare=["ok"]))
    outcome, pieces = await _run(engine, _ask("you should kill yourself now"))
    assert outcome.reason == m.FINISH_REASON_BLOCKED and outcome.blocked_rule == "lexicon:self_harm"
    assert outcome.text == "Sorry, I can't share that answer." and pieces == []  # not even "kill" left
    # After 150 characters of harmless text, what left is a prefix without the key's start.
    text = "word " * 30 + "the key is sk-abcdefghijklmnopqrstuvwx and more"
    token, pieces = await _run(engine, _ask(text))
    assert token.blocked_rule == "output:api_token"
    assert pieces and text.startswith("".join(pieces)) and "sk" not in "".join(pieces)
    chinese = m.InferenceRequest(request_id="z", messages=[m.ChatTurn(role=m.ROLE_USER, content="说 kill yourself")])
    zh, _ = await _run(engine, chinese)
    assert zh.text == "抱歉，这个回答无法提供。"
    # Nothing blocked was cached.
    assert engine.cache.hits == 0


async def test_the_deadline_bounds_retries_and_fallbacks() -> None:
    script = Script(primary=["hang"], spare=["hang"])
    outcome, _ = await _run(_engine(script, first_piece_timeout_s=10), _ask("hi", deadline_s=0.1))
    assert outcome.reason == m.FINISH_REASON_DEADLINE_EXCEEDED
    assert outcome.error == "deadline passed before an answer"


@pytest.mark.parametrize("profile", ["general", "anything"])
async def test_unknown_profiles_use_general_and_no_general_is_an_error(profile: str) -> None:
    engine = _engine(Script(primary=["ok"], spare=["ok"]))
    request = _ask("hi")
    request.model_profile = profile
    assert (await _run(engine, request))[0].target == PRIMARY
    engine._settings.routes = {}
    outcome, _ = await _run(engine, request)
    assert outcome.reason == m.FINISH_REASON_ERROR and "no model route" in outcome.error
