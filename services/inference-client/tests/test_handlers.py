import json

import pytest

from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client import handlers
from switchboard.inference_client.config import Route, Settings, Target


def _request() -> m.InferenceRequest:
    return m.InferenceRequest(
        request_id="r",
        message_id="m",
        channel=m.CHANNEL_HTTP,
        channel_chat_id="c",
        messages=[
            m.ChatTurn(role=m.ROLE_SYSTEM, content="sys"),
            m.ChatTurn(role=m.ROLE_USER, content="first"),
            m.ChatTurn(role=m.ROLE_ASSISTANT, content="answer"),
            m.ChatTurn(role=m.ROLE_USER, content="second"),
        ],
    )


def test_routes_from_environment_in_full_and_short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SB_INFERENCE_ROUTES",
        '{"general": {"model": "echo_stream", "kind": "echo"},'
        ' "code": {"targets": [{"model": "a", "weight": 9}, {"model": "a", "version": "2", "weight": 1}],'
        ' "fallback": [{"model": "b"}], "cache": false}}',
    )
    routes = Settings().routes
    assert routes["general"] == Route(targets=[Target(model="echo_stream", kind="echo")])
    assert [t.name for t in routes["code"].targets] == ["a", "a:2"] and not routes["code"].cache
    assert routes["code"].fallback == [Target(model="b")]


def test_a_route_needs_some_weight_and_known_fields() -> None:
    with pytest.raises(ValueError, match="weight above 0"):
        Route(targets=[Target(model="a", weight=0)])
    with pytest.raises(ValueError, match="modle"):
        Route.model_validate({"targets": [{"modle": "a"}]})


def test_prompt_inputs() -> None:
    request = _request()
    assert json.loads(handlers.chat_messages_json(request)) == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "second"},
    ]
    assert handlers.last_user_text(request) == "second"


def test_chunks_and_results_carry_the_reply_address() -> None:
    request = _request()
    chunk = handlers.chunk(request, 2, "x")
    assert (chunk.sequence, chunk.message_id, chunk.channel_chat_id) == (2, "m", "c")
    result = handlers.result(
        request,
        text="xy",
        reason=m.FINISH_REASON_STOP,
        target=Target(model="s", version="3"),
        latency_ms=5,
        chunks=2,
    )
    assert (result.model_name, result.model_version, result.chunk_count, result.channel) == (
        "s",
        "3",
        2,
        m.CHANNEL_HTTP,
    )
    assert handlers.finish_reason("length") == m.FINISH_REASON_LENGTH


def test_coalescer_sends_a_fast_stream_as_no_chunk_at_all() -> None:
    chunks = handlers.Coalescer(interval_s=0.05)
    assert [chunks.add(word, now) for word, now in [("a", 0.0), (" b", 0.01), (" c", 0.02)]] == [None] * 3
    assert chunks.finish() is None and chunks.sent == 0


def test_coalescer_groups_pieces_per_interval_and_flushes_the_rest() -> None:
    chunks = handlers.Coalescer(interval_s=0.05)
    sent = [chunks.add(word, now) for word, now in [("a", 0.0), (" b", 0.03), (" c", 0.06), (" d", 0.07)]]
    assert sent == [None, None, "a b c", None]
    assert chunks.finish() == " d" and chunks.sent == 2


def test_coalescer_with_no_interval_sends_every_piece() -> None:
    chunks = handlers.Coalescer(interval_s=0)
    assert [chunks.add(w, 0.0) for w in ("a", "b")] == ["a", "b"]
    assert chunks.finish() is None


def test_the_deadline_moves_to_the_loop_clock_and_none_means_none() -> None:
    request = _request()
    assert handlers.deadline_in(request, now=1000.0, loop_now=5.0) is None
    request.deadline.FromSeconds(1012)
    assert handlers.deadline_in(request, now=1000.0, loop_now=5.0) == 17.0
    request.deadline.FromSeconds(990)  # already past: a deadline in the past, not none
    assert handlers.deadline_in(request, now=1000.0, loop_now=5.0) == -5.0


def test_an_api_call_is_audited_with_its_caller_and_how_it_ended_never_the_text() -> None:
    request = m.InferenceRequest(request_id="r-9", messages=[m.ChatTurn(role=m.ROLE_USER, content="my secret plan")])
    cases = {
        m.FINISH_REASON_STOP: m.OUTCOME_SUCCESS,
        m.FINISH_REASON_LENGTH: m.OUTCOME_SUCCESS,
        m.FINISH_REASON_BLOCKED: m.OUTCOME_BLOCKED,
        m.FINISH_REASON_ERROR: m.OUTCOME_FAILURE,
        m.FINISH_REASON_DEADLINE_EXCEEDED: m.OUTCOME_FAILURE,
    }
    for reason, outcome in cases.items():
        event = handlers.api_call_audit("reports", request, reason, "smollm2")
        assert event.action == "inference.api.call" and event.outcome == outcome
        assert event.actor.user_id == "api:reports" and event.labels["caller"] == "reports"
        assert event.labels["request_id"] == "r-9" and event.labels["model"] == "smollm2"
        assert "secret plan" not in str(event)
