from switchboard.events.v1 import messages_pb2 as _messages_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerateRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _messages_pb2.InferenceRequest
    def __init__(self, request: _Optional[_Union[_messages_pb2.InferenceRequest, _Mapping]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _messages_pb2.InferenceResult
    def __init__(self, result: _Optional[_Union[_messages_pb2.InferenceResult, _Mapping]] = ...) -> None: ...

class GenerateStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _messages_pb2.InferenceRequest
    def __init__(self, request: _Optional[_Union[_messages_pb2.InferenceRequest, _Mapping]] = ...) -> None: ...

class GenerateStreamResponse(_message.Message):
    __slots__ = ("chunk", "result")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    chunk: _messages_pb2.InferenceChunk
    result: _messages_pb2.InferenceResult
    def __init__(self, chunk: _Optional[_Union[_messages_pb2.InferenceChunk, _Mapping]] = ..., result: _Optional[_Union[_messages_pb2.InferenceResult, _Mapping]] = ...) -> None: ...
