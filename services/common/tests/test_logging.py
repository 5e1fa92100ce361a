import json
import logging
import sys

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from switchboard.common import events, telemetry, tracing
from switchboard.common.logging import EcsFormatter
from switchboard.events.v1 import messages_pb2 as m


def _format(record_kwargs: dict[str, object], **extra: object) -> dict[str, object]:
    record = logging.makeLogRecord({"name": "svc.mod", "levelname": "INFO", "levelno": 20, **record_kwargs})
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(EcsFormatter("intent-parser").format(record))  # type: ignore[no-any-return]


def test_a_line_is_ecs_with_our_extras_in_their_own_namespace() -> None:
    doc = _format({"msg": "handled %s", "args": ("x",)}, event_id="e-1", error="boom", **{"http.request.method": "GET"})
    assert doc["message"] == "handled x"
    assert doc["log.level"] == "info" and doc["log"] == {"logger": "svc.mod", "origin": doc["log"]["origin"]}
    assert doc["service"] == {"name": "intent-parser"} and doc["ecs.version"]
    assert str(doc["@timestamp"]).endswith("Z")
    # A plain name would collide with ECS objects ("error"): ours go under switchboard.*
    assert doc["switchboard"] == {"event_id": "e-1", "error": "boom"}
    assert doc["http"] == {"request": {"method": "GET"}}  # a dotted name is the ECS field it names
    assert "trace" not in doc and "error" not in doc


def test_the_trace_and_span_of_the_event_being_handled_are_logged() -> None:
    traceparent = tracing.new_traceparent()
    token = tracing.current_traceparent.set(traceparent)
    try:
        doc = _format({"msg": "in a trace"})
    finally:
        tracing.current_traceparent.reset(token)
    assert doc["trace"] == {"id": tracing.trace_id(traceparent)} and doc["span"] == {"id": traceparent[36:52]}


def test_the_current_spans_ids_are_logged_when_tracing() -> None:
    telemetry.configure("intent-parser", None, exporter=InMemorySpanExporter())
    try:
        envelope = events.wrap(m.InboundMessage(text="hi"), conversation_key="c", source="test")
        with telemetry.consuming(envelope, "t", 0, 0, "g") as span:
            doc = _format({"msg": "handling"})
        context = span.get_span_context()
    finally:
        telemetry.shutdown()
    assert doc["trace"] == {"id": f"{context.trace_id:032x}"} and doc["span"] == {"id": f"{context.span_id:016x}"}


def test_exceptions_are_ecs_errors() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        doc = _format({"msg": "failed", "exc_info": sys.exc_info()})
    assert doc["error"]["type"] == "RuntimeError" and doc["error"]["message"] == "boom"  # type: ignore[index]
    assert 'raise RuntimeError("boom")' in doc["error"]["stack_trace"]  # type: ignore[index]
