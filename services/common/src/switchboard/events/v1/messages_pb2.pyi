import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_HTTP: _ClassVar[Channel]
    CHANNEL_WEBSOCKET: _ClassVar[Channel]
    CHANNEL_TELEGRAM: _ClassVar[Channel]
    CHANNEL_FEISHU: _ClassVar[Channel]
    CHANNEL_MQTT: _ClassVar[Channel]

class MessageKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_KIND_UNSPECIFIED: _ClassVar[MessageKind]
    MESSAGE_KIND_TEXT: _ClassVar[MessageKind]
    MESSAGE_KIND_VOICE: _ClassVar[MessageKind]
    MESSAGE_KIND_IMAGE: _ClassVar[MessageKind]
    MESSAGE_KIND_DOCUMENT: _ClassVar[MessageKind]
    MESSAGE_KIND_COMMAND: _ClassVar[MessageKind]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_URGENT: _ClassVar[Priority]
    PRIORITY_ROUTINE: _ClassVar[Priority]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_STOP: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_ERROR: _ClassVar[FinishReason]
    FINISH_REASON_BLOCKED: _ClassVar[FinishReason]
    FINISH_REASON_DEADLINE_EXCEEDED: _ClassVar[FinishReason]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_SUCCESS: _ClassVar[Outcome]
    OUTCOME_FAILURE: _ClassVar[Outcome]
    OUTCOME_BLOCKED: _ClassVar[Outcome]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_HTTP: Channel
CHANNEL_WEBSOCKET: Channel
CHANNEL_TELEGRAM: Channel
CHANNEL_FEISHU: Channel
CHANNEL_MQTT: Channel
MESSAGE_KIND_UNSPECIFIED: MessageKind
MESSAGE_KIND_TEXT: MessageKind
MESSAGE_KIND_VOICE: MessageKind
MESSAGE_KIND_IMAGE: MessageKind
MESSAGE_KIND_DOCUMENT: MessageKind
MESSAGE_KIND_COMMAND: MessageKind
PRIORITY_UNSPECIFIED: Priority
PRIORITY_URGENT: Priority
PRIORITY_ROUTINE: Priority
ROLE_UNSPECIFIED: Role
ROLE_SYSTEM: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_STOP: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_ERROR: FinishReason
FINISH_REASON_BLOCKED: FinishReason
FINISH_REASON_DEADLINE_EXCEEDED: FinishReason
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_SUCCESS: Outcome
OUTCOME_FAILURE: Outcome
OUTCOME_BLOCKED: Outcome

class Actor(_message.Message):
    __slots__ = ("user_id", "channel_user_id", "display_name", "locale", "time_zone")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_USER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    channel_user_id: str
    display_name: str
    locale: str
    time_zone: str
    def __init__(self, user_id: _Optional[str] = ..., channel_user_id: _Optional[str] = ..., display_name: _Optional[str] = ..., locale: _Optional[str] = ..., time_zone: _Optional[str] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("uri", "mime_type", "size_bytes", "file_name", "sha256", "duration_ms")
    URI_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    uri: str
    mime_type: str
    size_bytes: int
    file_name: str
    sha256: str
    duration_ms: int
    def __init__(self, uri: _Optional[str] = ..., mime_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., file_name: _Optional[str] = ..., sha256: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class InboundMessage(_message.Message):
    __slots__ = ("message_id", "channel", "channel_message_id", "channel_chat_id", "sender", "kind", "text", "attachments", "reply_to", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    channel: Channel
    channel_message_id: str
    channel_chat_id: str
    sender: Actor
    kind: MessageKind
    text: str
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    reply_to: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, message_id: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., channel_message_id: _Optional[str] = ..., channel_chat_id: _Optional[str] = ..., sender: _Optional[_Union[Actor, _Mapping]] = ..., kind: _Optional[_Union[MessageKind, str]] = ..., text: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ..., reply_to: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Slot(_message.Message):
    __slots__ = ("name", "value", "source_text", "confidence")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TEXT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    source_text: str
    confidence: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., source_text: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class ChatTurn(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: Role
    content: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., content: _Optional[str] = ...) -> None: ...

class ParsedIntent(_message.Message):
    __slots__ = ("message", "intent", "confidence", "slots", "model_profile", "priority", "routing_reason", "context", "language", "time_zone", "person_id", "runner_up", "runner_up_confidence")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_PROFILE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ROUTING_REASON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNER_UP_FIELD_NUMBER: _ClassVar[int]
    RUNNER_UP_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    message: InboundMessage
    intent: str
    confidence: float
    slots: _containers.RepeatedCompositeFieldContainer[Slot]
    model_profile: str
    priority: Priority
    routing_reason: str
    context: _containers.RepeatedCompositeFieldContainer[ChatTurn]
    language: str
    time_zone: str
    person_id: str
    runner_up: str
    runner_up_confidence: float
    def __init__(self, message: _Optional[_Union[InboundMessage, _Mapping]] = ..., intent: _Optional[str] = ..., confidence: _Optional[float] = ..., slots: _Optional[_Iterable[_Union[Slot, _Mapping]]] = ..., model_profile: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ..., routing_reason: _Optional[str] = ..., context: _Optional[_Iterable[_Union[ChatTurn, _Mapping]]] = ..., language: _Optional[str] = ..., time_zone: _Optional[str] = ..., person_id: _Optional[str] = ..., runner_up: _Optional[str] = ..., runner_up_confidence: _Optional[float] = ...) -> None: ...

class GenerationParams(_message.Message):
    __slots__ = ("max_tokens", "temperature", "top_p", "stop", "seed")
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    max_tokens: int
    temperature: float
    top_p: float
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    def __init__(self, max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ...) -> None: ...

class InferenceRequest(_message.Message):
    __slots__ = ("request_id", "message_id", "model_profile", "priority", "messages", "params", "deadline", "stream", "channel", "channel_chat_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_PROFILE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    message_id: str
    model_profile: str
    priority: Priority
    messages: _containers.RepeatedCompositeFieldContainer[ChatTurn]
    params: GenerationParams
    deadline: _timestamp_pb2.Timestamp
    stream: bool
    channel: Channel
    channel_chat_id: str
    def __init__(self, request_id: _Optional[str] = ..., message_id: _Optional[str] = ..., model_profile: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ..., messages: _Optional[_Iterable[_Union[ChatTurn, _Mapping]]] = ..., params: _Optional[_Union[GenerationParams, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stream: _Optional[bool] = ..., channel: _Optional[_Union[Channel, str]] = ..., channel_chat_id: _Optional[str] = ...) -> None: ...

class InferenceChunk(_message.Message):
    __slots__ = ("request_id", "sequence", "text", "message_id", "channel", "channel_chat_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    sequence: int
    text: str
    message_id: str
    channel: Channel
    channel_chat_id: str
    def __init__(self, request_id: _Optional[str] = ..., sequence: _Optional[int] = ..., text: _Optional[str] = ..., message_id: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., channel_chat_id: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class InferenceResult(_message.Message):
    __slots__ = ("request_id", "message_id", "text", "finish_reason", "usage", "model_name", "model_version", "latency_ms", "error", "chunk_count", "channel", "channel_chat_id", "cached")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    message_id: str
    text: str
    finish_reason: FinishReason
    usage: Usage
    model_name: str
    model_version: str
    latency_ms: int
    error: str
    chunk_count: int
    channel: Channel
    channel_chat_id: str
    cached: bool
    def __init__(self, request_id: _Optional[str] = ..., message_id: _Optional[str] = ..., text: _Optional[str] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., latency_ms: _Optional[int] = ..., error: _Optional[str] = ..., chunk_count: _Optional[int] = ..., channel: _Optional[_Union[Channel, str]] = ..., channel_chat_id: _Optional[str] = ..., cached: _Optional[bool] = ...) -> None: ...

class OutboundMessage(_message.Message):
    __slots__ = ("message_id", "in_reply_to", "channel", "channel_chat_id", "text", "sequence", "final", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    in_reply_to: str
    channel: Channel
    channel_chat_id: str
    text: str
    sequence: int
    final: bool
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, message_id: _Optional[str] = ..., in_reply_to: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., channel_chat_id: _Optional[str] = ..., text: _Optional[str] = ..., sequence: _Optional[int] = ..., final: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DeviceCommand(_message.Message):
    __slots__ = ("command_id", "device_id", "action", "room", "value", "params", "expires_at", "in_reply_to")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    device_id: str
    action: str
    room: str
    value: str
    params: _containers.ScalarMap[str, str]
    expires_at: _timestamp_pb2.Timestamp
    in_reply_to: str
    def __init__(self, command_id: _Optional[str] = ..., device_id: _Optional[str] = ..., action: _Optional[str] = ..., room: _Optional[str] = ..., value: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., in_reply_to: _Optional[str] = ...) -> None: ...

class DeviceCommandResult(_message.Message):
    __slots__ = ("command_id", "device_id", "ok", "error", "state")
    class StateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    device_id: str
    ok: bool
    error: str
    state: _containers.ScalarMap[str, str]
    def __init__(self, command_id: _Optional[str] = ..., device_id: _Optional[str] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ..., state: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DeviceState(_message.Message):
    __slots__ = ("device_id", "state", "online", "observed_at")
    class StateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    state: _containers.ScalarMap[str, str]
    online: bool
    observed_at: _timestamp_pb2.Timestamp
    def __init__(self, device_id: _Optional[str] = ..., state: _Optional[_Mapping[str, str]] = ..., online: _Optional[bool] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PluginRegistration(_message.Message):
    __slots__ = ("name", "version", "title", "description", "intents", "request_topic", "reply_topic", "timeout_s", "registered_at")
    class TitleEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TOPIC_FIELD_NUMBER: _ClassVar[int]
    REPLY_TOPIC_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    title: _containers.ScalarMap[str, str]
    description: str
    intents: _containers.RepeatedScalarFieldContainer[str]
    request_topic: str
    reply_topic: str
    timeout_s: float
    registered_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., title: _Optional[_Mapping[str, str]] = ..., description: _Optional[str] = ..., intents: _Optional[_Iterable[str]] = ..., request_topic: _Optional[str] = ..., reply_topic: _Optional[str] = ..., timeout_s: _Optional[float] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PluginRequest(_message.Message):
    __slots__ = ("request_id", "plugin", "intent", "deadline", "attempt")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    plugin: str
    intent: ParsedIntent
    deadline: _timestamp_pb2.Timestamp
    attempt: int
    def __init__(self, request_id: _Optional[str] = ..., plugin: _Optional[str] = ..., intent: _Optional[_Union[ParsedIntent, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ...) -> None: ...

class PluginReply(_message.Message):
    __slots__ = ("request_id", "plugin", "ok", "text", "error", "data")
    class DataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    plugin: str
    ok: bool
    text: str
    error: str
    data: _containers.ScalarMap[str, str]
    def __init__(self, request_id: _Optional[str] = ..., plugin: _Optional[str] = ..., ok: _Optional[bool] = ..., text: _Optional[str] = ..., error: _Optional[str] = ..., data: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("action", "outcome", "reason", "subject_event_id", "actor", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    action: str
    outcome: Outcome
    reason: str
    subject_event_id: str
    actor: Actor
    labels: _containers.ScalarMap[str, str]
    def __init__(self, action: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., reason: _Optional[str] = ..., subject_event_id: _Optional[str] = ..., actor: _Optional[_Union[Actor, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...
