"""Event -> document mapping: every payload type, the analysts' fields, text modes."""

from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from switchboard.audit_logger import documents
from switchboard.audit_logger.documents import Mapper, TextMode, UnmappableEventError
from switchboard.audit_logger.masking import Masker
from switchboard.common import events
from switchboard.common.kafka import ConsumedEvent
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m

ALICE = m.Actor(user_id="u-alice", channel_user_id="tg:42", display_name="Alice")
MESSAGE = m.InboundMessage(
    message_id="m-1", channel=m.CHANNEL_TELEGRAM, channel_chat_id="42", sender=ALICE, text="call me on 13812345678"
)
INTENT = m.ParsedIntent(
    message=MESSAGE, intent="chat", confidence=0.9, person_id="p-alice", slots=[m.Slot(name="when", value="3pm")]
)

# One of every payload type an Envelope can carry.
PAYLOADS: list[Message] = [
    MESSAGE,
    INTENT,
    m.InferenceRequest(message_id="m-1", request_id="r-1", messages=[m.ChatTurn(role=m.ROLE_USER, content="hi")]),
    m.InferenceChunk(message_id="m-1", request_id="r-1", text="h", sequence=3),
    m.InferenceResult(message_id="m-1", request_id="r-1", model_name="smollm2", latency_ms=12, cached=True),
    m.OutboundMessage(in_reply_to="m-1", text="hello", channel=m.CHANNEL_TELEGRAM),
    m.DeviceCommand(in_reply_to="m-1", device_id="lamp-1", action="turn_on", room="kitchen"),
    m.DeviceCommandResult(command_id="c-1", device_id="lamp-1", ok=False, error="unreachable"),
    m.DeviceState(device_id="lamp-1", state={"power": "on"}, online=True),
    m.PluginRequest(request_id="p-1", plugin="units", intent=INTENT),
    m.PluginReply(request_id="p-1", plugin="units", ok=True, text="3 km"),
    m.AuditEvent(action="input.blocked", outcome=m.OUTCOME_BLOCKED, reason="lexicon", labels={"rule": "lexicon"}),
]


def _event(payload: Message, offset: int = 7, topic: str = "switchboard.inbound.v1") -> ConsumedEvent:
    envelope = events.wrap(payload, conversation_key="c-1", source="test")
    return ConsumedEvent(envelope=envelope, topic=topic, partition=2, offset=offset, key=b"c-1", headers=[])


def _mapped_fields(mapping: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for name, spec in mapping.items():
        if "properties" in spec:
            out |= _mapped_fields(spec["properties"], f"{prefix}{name}.")
        else:
            out.add(prefix + name)
    return out


def _doc_fields(doc: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for name, value in doc.items():
        if isinstance(value, dict) and name != "payload" and prefix + name != "labels":
            out |= _doc_fields(value, f"{prefix}{name}.")
        else:
            out.add(prefix + name)
    return out


def test_every_payload_type_is_covered_here() -> None:
    carried = {f.message_type.name for f in envelope_pb2.Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields}
    assert {p.DESCRIPTOR.name for p in PAYLOADS} == carried


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.DESCRIPTOR.name)
def test_every_event_type_maps_onto_the_strict_mapping(payload: Message) -> None:
    mapped = _mapped_fields(documents.mappings()["properties"])
    event = _event(payload)
    doc = Mapper(Masker()).document(event)
    assert _doc_fields(doc) <= mapped
    assert doc["event"]["id"] == event.envelope.event_id
    assert doc["event"]["action"] and doc["event"]["outcome"] in ("success", "failure", "unknown")
    assert doc["switchboard"]["event_type"] == payload.DESCRIPTOR.name
    assert doc["switchboard"]["kafka"] == {"topic": "switchboard.inbound.v1", "partition": 2, "offset": 7}
    assert doc["switchboard"]["chain"] == {"key": "switchboard.inbound.v1/2"}


def test_the_fields_analysts_ask_for() -> None:
    mapper = Mapper(Masker())
    intent = mapper.document(_event(INTENT))
    assert intent["user"] == {"id": "p-alice", "name": "Alice"}  # the person, across channels
    assert intent["switchboard"]["channel"] == "telegram"
    assert intent["switchboard"]["intent"] == "chat" and intent["switchboard"]["message_id"] == "m-1"
    result = mapper.document(_event(m.InferenceResult(model_name="smollm2", latency_ms=42, cached=True)))
    assert result["switchboard"]["model"] == "smollm2" and result["switchboard"]["latency_ms"] == 42
    assert result["event"]["duration"] == 42_000_000 and result["switchboard"]["cached"] is True
    assert len(result["trace"]["id"]) == 32
    blocked = mapper.document(
        _event(m.InferenceResult(finish_reason=m.FINISH_REASON_BLOCKED, error="output blocked (lexicon)"))
    )
    assert blocked["switchboard"]["blocked"] is True
    assert blocked["switchboard"]["blocked_reason"] == "output blocked (lexicon)"
    audit = mapper.document(_event(PAYLOADS[-1]))
    assert audit["event"]["action"] == "input.blocked" and audit["event"]["outcome"] == "failure"
    assert audit["switchboard"]["blocked_reason"] == "lexicon" and audit["labels"]["rule"] == "lexicon"
    device = mapper.document(_event(PAYLOADS[7]))
    assert device["device"]["id"] == "lamp-1" and device["error"]["message"] == "unreachable"
    assert device["event"]["outcome"] == "failure"


def test_text_is_masked_everywhere_it_is_stored() -> None:
    doc = Mapper(Masker()).document(_event(INTENT))
    assert doc["message"] == "call me on [phone]"
    assert doc["switchboard"]["masked"] == ["phone"]
    assert "13812345678" not in repr(doc)  # nor in the payload copy


def test_raw_text_only_when_configured_and_none_drops_it() -> None:
    raw = Mapper(Masker(), TextMode.RAW).document(_event(MESSAGE))
    assert raw["message"] == MESSAGE.text and "masked" not in raw["switchboard"]
    bare = Mapper(Masker(), TextMode.NONE).document(_event(MESSAGE))
    assert "message" not in bare and "text" not in bare["switchboard"]["payload"]
    assert bare["switchboard"]["payload"]["message_id"] == "m-1"


def test_an_event_that_cannot_be_mapped_says_why() -> None:
    event = _event(MESSAGE)
    event.envelope.occurred_at.seconds = 10**13  # year 318 857: no date field holds it
    with pytest.raises(UnmappableEventError, match="timestamp out of range"):
        Mapper(Masker()).document(event)
    empty = ConsumedEvent(
        envelope=envelope_pb2.Envelope(event_id="e"), topic="t", partition=0, offset=0, key=None, headers=[]
    )
    with pytest.raises(UnmappableEventError, match="no payload"):
        Mapper(Masker()).document(empty)


def test_the_same_event_always_makes_the_same_document() -> None:
    event = _event(INTENT)
    assert Mapper(Masker()).document(event) == Mapper(Masker()).document(event)  # what the hash chain relies on


def test_template_names_the_lifecycle_policy_only_when_there_is_one() -> None:
    with_ilm = documents.index_template("logs-x-*", lifecycle_policy="logs-x")
    assert with_ilm["template"]["settings"]["index.lifecycle.name"] == "logs-x"
    assert (
        "index.lifecycle.name"
        not in documents.index_template("logs-x-*", lifecycle_policy=None)["template"]["settings"]
    )
    policy = documents.lifecycle_policy(rollover_max_age="1d", rollover_max_size="50gb", retention="180d")
    assert policy["phases"]["delete"]["min_age"] == "180d"
    assert policy["phases"]["hot"]["actions"]["rollover"]["max_age"] == "1d"


def _filled(message: Message, depth: int = 0) -> Message:
    """``message`` with every field set (one field of each oneof, two items of each list
    and map), to a value of the field's type; nested messages too, three levels deep."""
    for field in message.DESCRIPTOR.fields:
        if field.containing_oneof is not None and message.WhichOneof(field.containing_oneof.name):
            continue
        target = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key in ("text", "other"):  # "text": a free-text entry
                if value_field.message_type is None:
                    target[key] = _sample(value_field, key)
                elif depth < 3:
                    _filled(target[key], depth + 1)
        elif field.is_repeated:
            for n in range(2):
                if field.message_type is None:
                    target.append(_sample(field, str(n)))
                elif depth < 3:
                    _filled(target.add(), depth + 1)
        elif field.message_type is not None:
            if field.message_type.full_name == "google.protobuf.Timestamp":
                target.seconds, target.nanos = 1_795_000_000, 5_000_000
            elif depth < 3:
                _filled(target, depth + 1)
                if not target.ListFields():
                    target.SetInParent()
        else:
            setattr(message, field.name, _sample(field, "x"))
    return message


def _sample(field: Any, tag: str) -> Any:
    kind = field.cpp_type
    if field.enum_type is not None:
        return field.enum_type.values[-1].number
    if field.type == field.TYPE_BYTES:
        return b"\x00\xff" + tag.encode()
    if kind == field.CPPTYPE_STRING:
        return f"{field.name} {tag}"
    if kind == field.CPPTYPE_BOOL:
        return True
    if kind in (field.CPPTYPE_FLOAT, field.CPPTYPE_DOUBLE):
        return 0.7
    if kind in (field.CPPTYPE_INT64, field.CPPTYPE_UINT64):
        return 2**40 + 3  # written as a string
    return 42


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.DESCRIPTOR.name)
def test_plain_writes_what_message_to_dict_writes(payload: Message) -> None:
    filled = _filled(type(payload)())
    assert documents.plain(filled) == MessageToDict(filled, preserving_proto_field_name=True)


def test_plain_writes_special_floats_and_unknown_enum_values_as_message_to_dict_does() -> None:
    for confidence in (float("nan"), float("inf"), float("-inf"), 0.1, 1e-7):
        intent = m.ParsedIntent(intent="chat", confidence=confidence, priority=99)  # 99: no such priority
        assert documents.plain(intent) == MessageToDict(intent, preserving_proto_field_name=True)


def test_free_text_is_masked_in_nested_messages_lists_and_maps() -> None:
    request = m.InferenceRequest(request_id="r-1", messages=[m.ChatTurn(role=m.ROLE_USER, content="at 13812345678")])
    assert Mapper(Masker()).document(_event(request))["switchboard"]["payload"]["messages"][0]["content"] == (
        "at [phone]"
    )
    reply = m.OutboundMessage(
        in_reply_to="m-1", metadata={"reason": "mail bob@example.com", "source": "bob@example.com"}
    )
    doc = Mapper(Masker()).document(_event(reply))
    assert doc["switchboard"]["payload"]["metadata"] == {
        "reason": "mail [email]",  # a free-text entry
        "source": "bob@example.com",  # an identifier, not free text
    }
    assert doc["switchboard"]["masked"] == ["email"]
    bare = Mapper(Masker(), TextMode.NONE)
    assert "content" not in bare.document(_event(request))["switchboard"]["payload"]["messages"][0]
    assert bare.document(_event(reply))["switchboard"]["payload"]["metadata"] == {"source": "bob@example.com"}


def test_reasons_and_labels_are_masked_too() -> None:
    refusal = m.AuditEvent(
        action="request.rejected",
        outcome=m.OUTCOME_BLOCKED,
        reason="text: bad value from alice@example.com",
        labels={"channel": "http", "status": "422", "query": "who is 13812345678"},
    )
    doc = Mapper(Masker()).document(_event(refusal, topic="switchboard.audit.v1"))
    assert doc["event"]["reason"] == "text: bad value from [email]"
    assert doc["labels"]["query"] == "who is [phone]" and doc["labels"]["status"] == "422"
    assert doc["switchboard"]["blocked_reason"] == "text: bad value from [email]"
    assert doc["switchboard"]["masked"] == ["email", "phone"]
    assert "alice@example.com" not in repr(doc) and "13812345678" not in repr(doc)
    failed = m.DeviceCommandResult(
        command_id="c-1", device_id="lamp-1", ok=False, error="no answer from +1 415 555 2671"
    )
    assert "2671" not in repr(Mapper(Masker()).document(_event(failed)))
