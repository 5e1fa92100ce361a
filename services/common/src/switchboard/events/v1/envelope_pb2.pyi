import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from switchboard.events.v1 import messages_pb2 as _messages_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Envelope(_message.Message):
    __slots__ = ("event_id", "event_type", "schema_version", "occurred_at", "produced_at", "trace", "tenant_id", "conversation_key", "source", "causation_id", "inbound_message", "parsed_intent", "inference_request", "inference_chunk", "inference_result", "outbound_message", "device_command", "audit_event", "device_command_result", "plugin_request", "plugin_reply", "device_state")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    PRODUCED_AT_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_KEY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CAUSATION_ID_FIELD_NUMBER: _ClassVar[int]
    INBOUND_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARSED_INTENT_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_REQUEST_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_CHUNK_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_RESULT_FIELD_NUMBER: _ClassVar[int]
    OUTBOUND_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_COMMAND_FIELD_NUMBER: _ClassVar[int]
    AUDIT_EVENT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_COMMAND_RESULT_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_REQUEST_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_REPLY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_STATE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: str
    schema_version: int
    occurred_at: _timestamp_pb2.Timestamp
    produced_at: _timestamp_pb2.Timestamp
    trace: TraceContext
    tenant_id: str
    conversation_key: str
    source: str
    causation_id: str
    inbound_message: _messages_pb2.InboundMessage
    parsed_intent: _messages_pb2.ParsedIntent
    inference_request: _messages_pb2.InferenceRequest
    inference_chunk: _messages_pb2.InferenceChunk
    inference_result: _messages_pb2.InferenceResult
    outbound_message: _messages_pb2.OutboundMessage
    device_command: _messages_pb2.DeviceCommand
    audit_event: _messages_pb2.AuditEvent
    device_command_result: _messages_pb2.DeviceCommandResult
    plugin_request: _messages_pb2.PluginRequest
    plugin_reply: _messages_pb2.PluginReply
    device_state: _messages_pb2.DeviceState
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., schema_version: _Optional[int] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., produced_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trace: _Optional[_Union[TraceContext, _Mapping]] = ..., tenant_id: _Optional[str] = ..., conversation_key: _Optional[str] = ..., source: _Optional[str] = ..., causation_id: _Optional[str] = ..., inbound_message: _Optional[_Union[_messages_pb2.InboundMessage, _Mapping]] = ..., parsed_intent: _Optional[_Union[_messages_pb2.ParsedIntent, _Mapping]] = ..., inference_request: _Optional[_Union[_messages_pb2.InferenceRequest, _Mapping]] = ..., inference_chunk: _Optional[_Union[_messages_pb2.InferenceChunk, _Mapping]] = ..., inference_result: _Optional[_Union[_messages_pb2.InferenceResult, _Mapping]] = ..., outbound_message: _Optional[_Union[_messages_pb2.OutboundMessage, _Mapping]] = ..., device_command: _Optional[_Union[_messages_pb2.DeviceCommand, _Mapping]] = ..., audit_event: _Optional[_Union[_messages_pb2.AuditEvent, _Mapping]] = ..., device_command_result: _Optional[_Union[_messages_pb2.DeviceCommandResult, _Mapping]] = ..., plugin_request: _Optional[_Union[_messages_pb2.PluginRequest, _Mapping]] = ..., plugin_reply: _Optional[_Union[_messages_pb2.PluginReply, _Mapping]] = ..., device_state: _Optional[_Union[_messages_pb2.DeviceState, _Mapping]] = ...) -> None: ...

class TraceContext(_message.Message):
    __slots__ = ("traceparent", "tracestate")
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    traceparent: str
    tracestate: str
    def __init__(self, traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ...) -> None: ...
