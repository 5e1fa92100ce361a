"""Pure decisions of the scheduler: what a parsed intent and a model answer turn into."""

from __future__ import annotations

import uuid

from switchboard.events.v1 import messages_pb2 as m

# Request ids derive from the inbound message id: the same message always maps to the
# same request, however many times upstream services (at least once) delivered it.
_REQUEST_NAMESPACE = uuid.UUID("3f5d7c1e-7a0b-4f3e-9a52-6f1c2b8d9e10")


def request_id_for(message_id: str) -> str:
    return str(uuid.uuid5(_REQUEST_NAMESPACE, message_id))


def inference_request(
    intent: m.ParsedIntent, *, system_prompt: str, max_tokens: int, temperature: float
) -> m.InferenceRequest:
    """A chat turn: the system prompt, the conversation so far, then the user's message."""
    message = intent.message
    turns = [m.ChatTurn(role=m.ROLE_SYSTEM, content=system_prompt)] if system_prompt else []
    turns += list(intent.context)
    turns.append(m.ChatTurn(role=m.ROLE_USER, content=message.text))
    return m.InferenceRequest(
        request_id=request_id_for(message.message_id),
        message_id=message.message_id,
        model_profile=intent.model_profile or "general",
        priority=intent.priority or m.PRIORITY_ROUTINE,
        messages=turns,
        params=m.GenerationParams(max_tokens=max_tokens, temperature=temperature),
        stream=True,
        channel=message.channel,
        channel_chat_id=message.channel_chat_id,
    )


def outbound_chunk(chunk: m.InferenceChunk) -> m.OutboundMessage:
    """A streamed piece of a reply."""
    return m.OutboundMessage(
        message_id=f"{chunk.request_id}:{chunk.sequence}",
        in_reply_to=chunk.message_id,
        channel=chunk.channel,
        channel_chat_id=chunk.channel_chat_id,
        text=chunk.text,
        sequence=chunk.sequence,
        final=False,
    )


_APOLOGY = "Sorry, I could not answer that just now. Please try again in a moment."


def outbound_reply(result: m.InferenceResult) -> m.OutboundMessage:
    """The complete reply; failures become a polite message, the cause stays in metadata."""
    failed = result.finish_reason in (m.FINISH_REASON_ERROR, m.FINISH_REASON_DEADLINE_EXCEEDED)
    metadata = {
        "model": result.model_name,
        "model_version": result.model_version,
        "finish_reason": m.FinishReason.Name(result.finish_reason),
        "latency_ms": str(result.latency_ms),
    }
    if result.error:
        metadata["error"] = result.error
    return m.OutboundMessage(
        message_id=f"{result.request_id}:final",
        in_reply_to=result.message_id,
        channel=result.channel,
        channel_chat_id=result.channel_chat_id,
        text=_APOLOGY if failed and not result.text else result.text,
        sequence=result.chunk_count,
        final=True,
        metadata=metadata,
    )


def topic_for(priority: m.Priority.ValueType, urgent: str, routine: str) -> str:
    return urgent if priority == m.PRIORITY_URGENT else routine
