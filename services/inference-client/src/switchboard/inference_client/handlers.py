"""Pure pieces of the inference client: prompts, deadlines and result messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client.config import Target

_ROLE_NAMES = {m.ROLE_SYSTEM: "system", m.ROLE_USER: "user", m.ROLE_ASSISTANT: "assistant"}
_FINISH = {"stop": m.FINISH_REASON_STOP, "length": m.FINISH_REASON_LENGTH}


def deadline_in(request: m.InferenceRequest, now: float, loop_now: float) -> float | None:
    """The request's deadline on the event loop's clock (None: no deadline); ``now`` is the
    wall clock (epoch seconds) at ``loop_now``. A deadline already past is in the past."""
    if not request.HasField("deadline"):
        return None
    wall = request.deadline.seconds + request.deadline.nanos / 1e9
    return loop_now + (wall - now)


def chat_messages_json(request: m.InferenceRequest) -> str:
    """The request's turns as the chat model's ``messages`` input."""
    turns = [{"role": _ROLE_NAMES.get(t.role, "user"), "content": t.content} for t in request.messages]
    return json.dumps(turns, ensure_ascii=False)


def last_user_text(request: m.InferenceRequest) -> str:
    """The text of the last user turn (what the echo models answer)."""
    for turn in reversed(request.messages):
        if turn.role == m.ROLE_USER:
            return turn.content
    return ""


def finish_reason(name: str) -> m.FinishReason.ValueType:
    return _FINISH.get(name, m.FINISH_REASON_STOP)


def chunk(request: m.InferenceRequest, sequence: int, text: str) -> m.InferenceChunk:
    return m.InferenceChunk(
        request_id=request.request_id,
        sequence=sequence,
        text=text,
        message_id=request.message_id,
        channel=request.channel,
        channel_chat_id=request.channel_chat_id,
    )


def result(
    request: m.InferenceRequest,
    *,
    text: str,
    reason: m.FinishReason.ValueType,
    target: Target | None,
    latency_ms: int,
    chunks: int,
    usage: m.Usage | None = None,
    error: str = "",
    cached: bool = False,
) -> m.InferenceResult:
    return m.InferenceResult(
        request_id=request.request_id,
        message_id=request.message_id,
        text=text,
        finish_reason=reason,
        usage=usage,
        model_name=target.model if target else "",
        model_version=target.version if target else "",
        latency_ms=latency_ms,
        error=error,
        chunk_count=chunks,
        channel=request.channel,
        channel_chat_id=request.channel_chat_id,
        cached=cached,
    )


def blocked_audit(request: m.InferenceRequest, rule: str, subject_event_id: str = "") -> m.AuditEvent:
    """The audit record of an answer screened out (the rule, never the text)."""
    return m.AuditEvent(
        action="output.blocked",
        outcome=m.OUTCOME_BLOCKED,
        reason=rule,
        subject_event_id=subject_event_id,
        labels={"rule": rule, "request_id": request.request_id, "profile": request.model_profile},
    )


def api_call_audit(
    caller: str, request: m.InferenceRequest, reason: m.FinishReason.ValueType, model: str
) -> m.AuditEvent:
    """The audit record of one answered InferenceService call: who, which request, how it
    ended (never the text)."""
    if reason == m.FINISH_REASON_BLOCKED:
        outcome = m.OUTCOME_BLOCKED
    elif reason in (m.FINISH_REASON_STOP, m.FINISH_REASON_LENGTH):
        outcome = m.OUTCOME_SUCCESS
    else:
        outcome = m.OUTCOME_FAILURE
    return m.AuditEvent(
        action="inference.api.call",
        outcome=outcome,
        actor=m.Actor(user_id=f"api:{caller}"),
        labels={
            "caller": caller,
            "request_id": request.request_id,
            "profile": request.model_profile,
            "finish_reason": m.FinishReason.Name(reason),
            "model": model,
        },
    )


@dataclass
class Coalescer:
    """Groups streamed pieces into chunks: at most one chunk per ``interval_s``.

    A model streams tokens far faster than any channel can show them (Telegram edits a
    message about once a second), and every chunk is an event on three topics and an
    audit document. So pieces are held until ``interval_s`` has passed since the first
    one held, then sent together. A stream that ends inside its first window sends no
    chunk at all (the result carries the text); otherwise the rest goes out as a last
    chunk, so the chunks of a reply always add up to its text. ``interval_s = 0`` sends
    every piece.
    """

    interval_s: float
    held: list[str] = field(default_factory=list)
    held_since: float = 0.0
    sent: int = 0

    def add(self, text: str, now: float) -> str | None:
        """Hold ``text``; returns the text of a chunk to send now, if one is due."""
        if not self.held:
            self.held_since = now
        self.held.append(text)
        return self._take() if now - self.held_since >= self.interval_s else None

    def finish(self) -> str | None:
        """The last chunk of a stream that already sent some, or None."""
        return self._take() if self.sent and self.held else None

    def _take(self) -> str:
        text = "".join(self.held)
        self.held.clear()
        self.sent += 1
        return text
