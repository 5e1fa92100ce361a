"""Event -> Elasticsearch document (ECS field names plus Switchboard's own), and the index
template and lifecycle policy that go with them. No I/O.

One document per event, whatever its type:

- ECS: ``@timestamp`` (when it happened), ``message`` (the text, masked), ``event.*``
  (``id``, ``action``, ``outcome``, ``reason``, ``duration`` in ns, ``created``,
  ``ingested``, ``hash``), ``user.*``, ``device.id``, ``service.name``, ``trace.id``,
  ``error.message``, ``labels`` (tenant and an audit record's own labels);
- ``switchboard.*``: ``event_type``, ``channel``, ``conversation``, ``message_id``,
  ``intent``, ``model``, ``latency_ms``, ``blocked``, ``blocked_reason``, ``cached``, …,
  ``masked`` (the PII kinds masked), ``kafka.*`` (where the record was), ``chain.*``
  (tamper evidence, see :mod:`switchboard.audit_logger.chain`) and ``payload`` (the whole
  event, masked, as one ``flattened`` field).
"""

from __future__ import annotations

import base64
import functools
import math
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from switchboard.audit_logger.masking import Masker
from switchboard.common import events, tracing
from switchboard.common.kafka import ConsumedEvent
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m


class TextMode(StrEnum):
    """What of the users' and models' text is stored."""

    MASKED = "masked"  # PII replaced (the default)
    RAW = "raw"  # as sent: only where the deployment's policy allows it
    NONE = "none"  # no text at all, only metadata


class UnmappableEventError(ValueError):
    """The event cannot be turned into a document (it is dead-lettered with this cause)."""


# Maps of the payload whose every value is free text (an AuditEvent's labels may hold
# anything a service put there: a search term, a device name).
TEXT_MAPS: Final = frozenset({"labels"})
# Labels every document gets from its envelope (not free text, never masked).
_OWN_LABELS: Final = frozenset({"tenant", "schema_version"})
# Fields of the payload that carry free text: masked (or dropped) like ``message``.
TEXT_FIELDS: Final = frozenset({"text", "content", "reason", "error", "source_text", "value", "display_name"})

# event.action of each business event; an AuditEvent names its own action.
ACTIONS: Final[dict[type[Message], str]] = {
    m.InboundMessage: "message.received",
    m.ParsedIntent: "intent.parsed",
    m.InferenceRequest: "inference.requested",
    m.InferenceChunk: "inference.chunk",
    m.InferenceResult: "inference.completed",
    m.OutboundMessage: "message.sent",
    m.DeviceCommand: "device.command",
    m.DeviceCommandResult: "device.result",
    m.DeviceState: "device.state",
    m.PluginRequest: "plugin.requested",
    m.PluginReply: "plugin.replied",
}


def channel_name(channel: int) -> str:
    return "" if channel == m.CHANNEL_UNSPECIFIED else m.Channel.Name(channel).removeprefix("CHANNEL_").lower()


def _iso(seconds: int, nanos: int) -> str:
    """A protobuf timestamp as ISO 8601 in UTC, to the millisecond (truncated)."""
    return f"{_iso_second(seconds)}.{nanos // 1_000_000:03d}Z"


@functools.lru_cache(maxsize=1024)
def _iso_second(seconds: int) -> str:
    # Events come in time order, many to a second: formatting each second once saves a
    # datetime per event.
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise UnmappableEventError(f"timestamp out of range: {seconds}s") from exc
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


class Mapper:
    """Builds the audit document of an event."""

    def __init__(self, masker: Masker, text: TextMode = TextMode.MASKED, dataset: str = "switchboard.audit") -> None:
        self._masker = masker
        # Plain booleans: reading an Enum member costs more than the rest of this for
        # each of the several texts of every event.
        mode = TextMode(text)
        self._raw_text = mode is TextMode.RAW
        self._no_text = mode is TextMode.NONE
        self._dataset = dataset

    def document(self, event: ConsumedEvent) -> dict[str, Any]:
        """The document of ``event`` (its id is the event id), without ``event.hash`` and
        ``switchboard.chain.prev``, which :class:`~switchboard.audit_logger.chain.Chain` adds.

        Raises:
            UnmappableEventError: the event cannot be mapped (the cause says why).
        """
        envelope = event.envelope
        if not envelope.event_id:
            raise UnmappableEventError("event has no event_id")
        try:
            payload = events.unwrap(envelope)
        except ValueError as exc:
            raise UnmappableEventError(str(exc)) from exc
        occurred = envelope.occurred_at if envelope.HasField("occurred_at") else envelope.produced_at
        produced = envelope.produced_at
        created = _iso(produced.seconds, produced.nanos)
        masked: set[str] = set()
        doc: dict[str, Any] = {
            "@timestamp": created if occurred == produced else _iso(occurred.seconds, occurred.nanos),
            "event": {
                "id": envelope.event_id,
                "kind": "event",
                "dataset": self._dataset,
                "created": created,
            },
            "service": {"name": envelope.source},
            "labels": {"tenant": envelope.tenant_id, "schema_version": str(envelope.schema_version)},
            "switchboard": {
                "event_type": envelope.event_type or type(payload).__name__,
                "conversation": envelope.conversation_key,
                "causation_id": envelope.causation_id,
                "kafka": {"topic": event.topic, "partition": event.partition, "offset": event.offset},
                "chain": {"key": f"{event.topic}/{event.partition}"},
            },
        }
        trace = tracing.trace_id(envelope.trace.traceparent)
        if trace:
            doc["trace"] = {"id": trace}
        mapper = _MAPPERS.get(type(payload))
        if mapper is None:
            raise UnmappableEventError(f"no mapping for event type {type(payload).__name__}")
        text = mapper(payload, doc)
        if text:
            stored = self._free_text(text, masked)
            if stored:
                doc["message"] = stored
        doc["switchboard"]["payload"] = plain(payload, lambda value: self._free_text(value, masked))
        self._mask_reasons(doc, masked)
        if masked:
            doc["switchboard"]["masked"] = sorted(masked)
        return doc

    def _mask_reasons(self, doc: dict[str, Any], masked: set[str]) -> None:
        """Mask what else may quote a user: reasons, error messages and label values (a
        refusal's reason may quote the refused input; a label may hold a search term)."""
        if self._raw_text:
            return
        for section, field in (("event", "reason"), ("error", "message"), ("switchboard", "blocked_reason")):
            value = doc.get(section, {}).get(field)
            if isinstance(value, str) and value:
                doc[section][field] = self._mask(value, masked)
        labels = doc["labels"]
        for key, value in labels.items():
            if key not in _OWN_LABELS and isinstance(value, str):
                labels[key] = self._mask(value, masked)

    def _mask(self, text: str, masked: set[str]) -> str:
        stored, kinds = self._masker.mask(text)
        masked |= kinds
        return stored

    def _free_text(self, text: str, masked: set[str]) -> str:
        if self._raw_text:
            return text
        if self._no_text:
            return ""
        stored, kinds = self._masker.mask(text)
        masked |= kinds
        return stored


Text = Callable[[str], str]  # what becomes of a free-text string (masked, kept or dropped)
Write = Callable[[Any, Text], Any]  # one field value -> plain data


def plain(message: Message, text: Text = str) -> dict[str, Any]:
    """``message`` as plain data, as ``MessageToDict(message, preserving_proto_field_name=True)``
    writes it, with ``text`` applied to free-text strings (fields and map entries named
    in TEXT_FIELDS; an empty result drops the entry).

    One pass instead of ``MessageToDict`` and then a walk over its result, with each
    field's writer worked out once per field rather than on every call: the audit logger
    does this for every event.
    """
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        write, repeated, free_text = _writer(field)
        if repeated:
            out[field.name] = [write(item, text) for item in value]
        else:
            item = write(value, text)
            if item or not free_text:
                out[field.name] = item
    return out


@functools.cache
def _writer(field: FieldDescriptor) -> tuple[Write, bool, bool]:
    """How ``field``'s values are written; whether it is repeated (a map is written as one
    value); whether it is free text."""
    free_text = field.name in TEXT_FIELDS and field.type == FieldDescriptor.TYPE_STRING
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return _map_writer(field.message_type.fields_by_name["value"], field.name in TEXT_MAPS), False, False
    return _value_writer(field, free_text), field.is_repeated, free_text


def _map_writer(entry: FieldDescriptor, all_text: bool = False) -> Write:
    """Writes a map; its string values named in TEXT_FIELDS (or all of them: ``all_text``) are free text."""
    write_value = _value_writer(entry, free_text=False)

    def write(value: Any, text: Text) -> dict[str, Any]:
        out = {}
        for key in value:
            name = ("true" if key else "false") if isinstance(key, bool) else str(key)
            item = write_value(value[key], text)
            if (all_text or name in TEXT_FIELDS) and isinstance(item, str):
                item = text(item)
                if not item:
                    continue
            out[name] = item
        return out

    return write


def _value_writer(field: FieldDescriptor, free_text: bool) -> Write:
    if field.message_type is not None:
        if field.message_type.full_name.startswith("google.protobuf."):  # Timestamp etc.: their JSON form
            return lambda value, text: MessageToDict(value)
        return plain
    if field.enum_type is not None:
        names = {number: value.name for number, value in field.enum_type.values_by_number.items()}
        return lambda value, text: names.get(value, value)
    if free_text:
        return lambda value, text: text(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return lambda value, text: base64.b64encode(value).decode()
    if field.cpp_type in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64):
        return lambda value, text: str(value)  # JSON numbers cannot hold every 64-bit integer
    if field.cpp_type == FieldDescriptor.CPPTYPE_FLOAT:
        return lambda value, text: _special_float(value) or _shortest_float32(value)
    if field.cpp_type == FieldDescriptor.CPPTYPE_DOUBLE:
        return lambda value, text: _special_float(value) or value
    return lambda value, text: value


def _special_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return ""


def _shortest_float32(value: float) -> float:
    """The shortest decimal that is still the same 32-bit float: 0.7, not 0.699999988079071."""
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", candidate))[0] == value:
            return candidate
    return value


def _outcome(ok: bool) -> str:
    return "success" if ok else "failure"


def _actor(actor: m.Actor, doc: dict[str, Any], person_id: str = "") -> None:
    user = {"id": person_id or actor.user_id, "name": actor.display_name}
    user = {k: v for k, v in user.items() if v}
    if actor.channel_user_id:
        doc["switchboard"]["channel_user_id"] = actor.channel_user_id
    if user:
        doc["user"] = user


def _inbound(p: m.InboundMessage, doc: dict[str, Any]) -> str:
    sb = doc["switchboard"]
    sb.update(message_id=p.message_id, channel=channel_name(p.channel), chat_id=p.channel_chat_id)
    sb["kind"] = m.MessageKind.Name(p.kind).removeprefix("MESSAGE_KIND_").lower()
    doc["event"].update(action=ACTIONS[m.InboundMessage], outcome="success")
    _actor(p.sender, doc)
    return p.text


def _intent(p: m.ParsedIntent, doc: dict[str, Any]) -> str:
    _inbound(p.message, doc)
    sb = doc["switchboard"]
    sb.update(
        intent=p.intent,
        intent_confidence=round(p.confidence, 4),
        model_profile=p.model_profile,
        priority=m.Priority.Name(p.priority).removeprefix("PRIORITY_").lower(),
        language=p.language,
    )
    if p.slots:
        sb["slots"] = sorted({s.name for s in p.slots})
    doc["event"]["action"] = ACTIONS[m.ParsedIntent]
    _actor(p.message.sender, doc, p.person_id)
    return p.message.text


def _request(p: m.InferenceRequest, doc: dict[str, Any]) -> str:
    doc["switchboard"].update(
        request_id=p.request_id,
        message_id=p.message_id,
        model_profile=p.model_profile,
        priority=m.Priority.Name(p.priority).removeprefix("PRIORITY_").lower(),
        channel=channel_name(p.channel),
        chat_id=p.channel_chat_id,
    )
    doc["event"].update(action=ACTIONS[m.InferenceRequest], outcome="success")
    return p.messages[-1].content if p.messages else ""


def _chunk(p: m.InferenceChunk, doc: dict[str, Any]) -> str:
    doc["switchboard"].update(
        request_id=p.request_id,
        message_id=p.message_id,
        channel=channel_name(p.channel),
        chat_id=p.channel_chat_id,
        sequence=p.sequence,
    )
    doc["event"].update(action=ACTIONS[m.InferenceChunk], outcome="success")
    return p.text


def _result(p: m.InferenceResult, doc: dict[str, Any]) -> str:
    blocked = p.finish_reason == m.FINISH_REASON_BLOCKED
    failed = p.finish_reason in (m.FINISH_REASON_ERROR, m.FINISH_REASON_DEADLINE_EXCEEDED)
    sb = doc["switchboard"]
    sb.update(
        request_id=p.request_id,
        message_id=p.message_id,
        channel=channel_name(p.channel),
        chat_id=p.channel_chat_id,
        model=p.model_name,
        model_version=p.model_version,
        latency_ms=p.latency_ms,
        finish_reason=m.FinishReason.Name(p.finish_reason).removeprefix("FINISH_REASON_").lower(),
        cached=p.cached,
        blocked=blocked,
        chunk_count=p.chunk_count,
        tokens={"prompt": p.usage.prompt_tokens, "completion": p.usage.completion_tokens},
    )
    if blocked:
        sb["blocked_reason"] = p.error or "output blocked"
    doc["event"].update(
        action=ACTIONS[m.InferenceResult], outcome=_outcome(not failed), duration=p.latency_ms * 1_000_000
    )
    if p.error and not blocked:
        doc["error"] = {"message": p.error}
    return p.text


def _outbound(p: m.OutboundMessage, doc: dict[str, Any]) -> str:
    sb = doc["switchboard"]
    sb.update(message_id=p.in_reply_to, channel=channel_name(p.channel), chat_id=p.channel_chat_id, sequence=p.sequence)
    sb["final"] = p.final
    reason = p.metadata.get("reason", "")
    if reason:
        doc["event"]["reason"] = reason
    doc["event"].update(action=ACTIONS[m.OutboundMessage], outcome="success")
    return p.text


def _device_command(p: m.DeviceCommand, doc: dict[str, Any]) -> str:
    doc["device"] = {"id": p.device_id}
    doc["switchboard"].update(message_id=p.in_reply_to, command_id=p.command_id, device_action=p.action, room=p.room)
    doc["event"].update(action=ACTIONS[m.DeviceCommand], outcome="success")
    return ""


def _device_result(p: m.DeviceCommandResult, doc: dict[str, Any]) -> str:
    doc["device"] = {"id": p.device_id}
    doc["switchboard"]["command_id"] = p.command_id
    doc["event"].update(action=ACTIONS[m.DeviceCommandResult], outcome=_outcome(p.ok))
    if p.error:
        doc["error"] = {"message": p.error}
    return ""


def _device_state(p: m.DeviceState, doc: dict[str, Any]) -> str:
    doc["device"] = {"id": p.device_id}
    doc["event"].update(action=ACTIONS[m.DeviceState], outcome="success")
    if p.HasField("online"):
        doc["labels"]["device_online"] = str(p.online).lower()
    return ""


def _plugin_request(p: m.PluginRequest, doc: dict[str, Any]) -> str:
    text = _intent(p.intent, doc)
    doc["switchboard"].update(request_id=p.request_id, plugin=p.plugin)
    doc["event"].update(action=ACTIONS[m.PluginRequest], outcome="success")
    return text


def _plugin_reply(p: m.PluginReply, doc: dict[str, Any]) -> str:
    doc["switchboard"].update(request_id=p.request_id, plugin=p.plugin)
    doc["event"].update(action=ACTIONS[m.PluginReply], outcome=_outcome(p.ok))
    if p.error:
        doc["error"] = {"message": p.error}
    return p.text


def _audit(p: m.AuditEvent, doc: dict[str, Any]) -> str:
    blocked = p.outcome == m.OUTCOME_BLOCKED
    outcome = {m.OUTCOME_SUCCESS: "success", m.OUTCOME_FAILURE: "failure", m.OUTCOME_BLOCKED: "failure"}
    doc["event"].update(action=p.action or "audit", outcome=outcome.get(p.outcome, "unknown"))
    if p.reason:
        doc["event"]["reason"] = p.reason
    sb = doc["switchboard"]
    sb["blocked"] = blocked
    if blocked:
        sb["blocked_reason"] = p.labels.get("rule") or p.reason
    if p.subject_event_id:
        sb["subject_event_id"] = p.subject_event_id
    channel = p.labels.get("channel", "")
    if channel:
        sb["channel"] = channel.removeprefix("CHANNEL_").lower()
    doc["labels"].update({k.replace(".", "_"): v for k, v in p.labels.items()})
    _actor(p.actor, doc)
    return ""


_MAPPERS: Final[dict[type[Message], Callable[[Any, dict[str, Any]], str]]] = {
    m.InboundMessage: _inbound,
    m.ParsedIntent: _intent,
    m.InferenceRequest: _request,
    m.InferenceChunk: _chunk,
    m.InferenceResult: _result,
    m.OutboundMessage: _outbound,
    m.DeviceCommand: _device_command,
    m.DeviceCommandResult: _device_result,
    m.DeviceState: _device_state,
    m.PluginRequest: _plugin_request,
    m.PluginReply: _plugin_reply,
    m.AuditEvent: _audit,
}
assert set(_MAPPERS) == {
    type(getattr(envelope_pb2.Envelope(), f.name))
    for f in envelope_pb2.Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields
}, "every payload type needs a mapping"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ingested(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``docs`` stamped with the time they are indexed (not part of their hash)."""
    stamp = now_iso()
    for doc in docs:
        doc["event"]["ingested"] = stamp
    return docs


_KEYWORD: Final = {"type": "keyword", "ignore_above": 1024}


def _keywords(*names: str) -> dict[str, Any]:
    return {name: _KEYWORD for name in names}


def mappings() -> dict[str, Any]:
    """The documents' mapping: strict, so a field the code does not know is an error, not
    a silent new field; an audit record's own labels are keywords under ``labels``."""
    date = {"type": "date"}
    long = {"type": "long"}
    boolean = {"type": "boolean"}
    return {
        "dynamic": "strict",
        "properties": {
            "@timestamp": date,
            "message": {"type": "text"},
            "event": {
                "properties": {
                    **_keywords("id", "kind", "dataset", "action", "outcome", "reason", "hash"),
                    "created": date,
                    "ingested": date,
                    "duration": long,
                }
            },
            "user": {"properties": _keywords("id", "name")},
            "device": {"properties": _keywords("id")},
            "service": {"properties": _keywords("name")},
            "trace": {"properties": _keywords("id")},
            "error": {"properties": {"message": {"type": "text"}}},
            "labels": {"type": "object", "dynamic": True},
            "switchboard": {
                "properties": {
                    **_keywords(
                        "event_type",
                        "channel",
                        "chat_id",
                        "channel_user_id",
                        "conversation",
                        "message_id",
                        "causation_id",
                        "subject_event_id",
                        "request_id",
                        "command_id",
                        "kind",
                        "intent",
                        "slots",
                        "language",
                        "priority",
                        "model",
                        "model_version",
                        "model_profile",
                        "finish_reason",
                        "blocked_reason",
                        "plugin",
                        "device_action",
                        "room",
                        "masked",
                    ),
                    "intent_confidence": {"type": "float"},
                    "latency_ms": long,
                    "sequence": long,
                    "chunk_count": long,
                    "cached": boolean,
                    "blocked": boolean,
                    "final": boolean,
                    "tokens": {"properties": {"prompt": long, "completion": long}},
                    "kafka": {"properties": {"topic": _KEYWORD, "partition": long, "offset": long}},
                    "chain": {"properties": _keywords("key", "prev")},
                    "payload": {"type": "flattened", "ignore_above": 4096},
                }
            },
        },
        # Labels are whatever an AuditEvent carries: always strings, so always keywords.
        "dynamic_templates": [
            {"labels": {"path_match": "labels.*", "match_mapping_type": "string", "mapping": _KEYWORD}}
        ],
    }


def index_template(pattern: str, *, lifecycle_policy: str | None) -> dict[str, Any]:
    """Composable index template for the audit data stream(s) matching ``pattern``."""
    settings: dict[str, Any] = {"number_of_replicas": 0, "codec": "best_compression"}
    if lifecycle_policy:
        settings["index.lifecycle.name"] = lifecycle_policy
    return {
        "index_patterns": [pattern],
        "data_stream": {},
        "priority": 200,
        "template": {"settings": settings, "mappings": mappings()},
        "_meta": {"description": "Switchboard audit trail", "managed_by": "switchboard-audit-logger"},
    }


def lifecycle_policy(*, rollover_max_age: str, rollover_max_size: str, retention: str) -> dict[str, Any]:
    """ILM policy: roll the write index over daily (or at ``rollover_max_size``), delete
    backing indices ``retention`` after their rollover."""
    return {
        "phases": {
            "hot": {
                "min_age": "0ms",
                "actions": {
                    "rollover": {"max_age": rollover_max_age, "max_primary_shard_size": rollover_max_size},
                    "set_priority": {"priority": 100},
                },
            },
            "delete": {"min_age": retention, "actions": {"delete": {}}},
        },
        "_meta": {"managed_by": "switchboard-audit-logger"},
    }
