from switchboard.common import postgres
from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import handlers


def _intent(text: str = "hi", priority: int = m.PRIORITY_URGENT) -> m.ParsedIntent:
    message = m.InboundMessage(message_id="m-1", channel=m.CHANNEL_HTTP, channel_chat_id="c-1", text=text)
    context = [m.ChatTurn(role=m.ROLE_USER, content="before"), m.ChatTurn(role=m.ROLE_ASSISTANT, content="reply")]
    return m.ParsedIntent(message=message, intent="chat", model_profile="code", priority=priority, context=context)


def test_chat_turn_becomes_a_request_with_context_and_reply_address() -> None:
    request = handlers.inference_request(_intent("now"), system_prompt="be brief", max_tokens=64, temperature=0.2)
    assert [(t.role, t.content) for t in request.messages] == [
        (m.ROLE_SYSTEM, "be brief"),
        (m.ROLE_USER, "before"),
        (m.ROLE_ASSISTANT, "reply"),
        (m.ROLE_USER, "now"),
    ]
    assert (request.message_id, request.channel, request.channel_chat_id) == ("m-1", m.CHANNEL_HTTP, "c-1")
    assert request.model_profile == "code" and request.priority == m.PRIORITY_URGENT
    assert request.params.max_tokens == 64 and request.stream


def test_request_id_is_stable_per_message() -> None:
    a = handlers.inference_request(_intent(), system_prompt="", max_tokens=1, temperature=0)
    b = handlers.inference_request(_intent(), system_prompt="", max_tokens=1, temperature=0)
    assert a.request_id == b.request_id == handlers.request_id_for("m-1")
    assert handlers.request_id_for("m-2") != a.request_id


def test_priority_picks_the_topic() -> None:
    assert handlers.topic_for(m.PRIORITY_URGENT, "u", "r") == "u"
    assert handlers.topic_for(m.PRIORITY_ROUTINE, "u", "r") == "r"
    assert handlers.topic_for(m.PRIORITY_UNSPECIFIED, "u", "r") == "r"


def test_failed_result_becomes_a_polite_reply_with_the_cause_kept() -> None:
    result = m.InferenceResult(
        request_id="r", message_id="m-1", finish_reason=m.FINISH_REASON_ERROR, error="triton down", chunk_count=0
    )
    reply = handlers.outbound_reply(result)
    assert reply.final and reply.in_reply_to == "m-1"
    assert "try again" in reply.text and "triton" not in reply.text
    assert reply.metadata["error"] == "triton down"


def test_chunks_keep_their_sequence() -> None:
    chunk = m.InferenceChunk(request_id="r", sequence=3, text=" x", message_id="m-1", channel=m.CHANNEL_HTTP)
    out = handlers.outbound_chunk(chunk)
    assert (out.sequence, out.text, out.final, out.in_reply_to) == (3, " x", False, "m-1")


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [version for version, _, _ in postgres.available("switchboard.scheduler")]
    assert versions == list(range(1, len(versions) + 1))
